/**
 * `@rustydb/protocol/cli`: the one `rustydb` command, put together from the packages that are
 * installed. `@rustydb/server` brings the server's commands (`serve`, `user`, `role`) and
 * `@rustydb/client` the clients of a running server (`shell`, `query`, `watch`). Both packages install a
 * `rustydb` that runs its own commands and hands the others to the other package when that one is
 * installed beside it, so users type `rustydb …` whichever package put the command on their PATH. The
 * dispatcher lives here because this is the package both depend on.
 */

/** What a package contributes to `rustydb` (the export `commandSet` of `@rustydb/<package>/cli`). */
export interface CommandSet {
  /** The package that brings these commands, for messages: `@rustydb/client`. */
  readonly packageName: string;
  readonly commands: readonly string[];
  /** Its part of `rustydb help`: the commands with a line each, then their options. */
  usage(): string;
  /** One command's usage, for `rustydb COMMAND --help` and `rustydb help COMMAND`. */
  commandUsage(command: string): string;
  /** Runs `rustydb <command> …argv`; resolves with the exit code. */
  run(command: string, argv: string[]): Promise<number>;
}

/** The other package, loaded only when a command or the help needs it. */
export interface Companion {
  readonly packageName: string;
  /** What its commands are, for the help when it is missing: "The server's commands (serve, …)". */
  readonly provides: string;
  /** Its command set, or undefined when it is not installed. */
  load(): Promise<CommandSet | undefined>;
}

export interface CommandOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/**
 * The other package as a companion: `load` imports its `cli` module (the caller does the import, so
 * that the specifier is resolved from the calling package's location). A package that is not installed
 * loads as undefined; any other failure, such as a broken installation, is thrown.
 */
export function companion(packageName: string, provides: string, load: () => Promise<unknown>): Companion {
  return {
    packageName,
    provides,
    async load() {
      try {
        return ((await load()) as { commandSet: CommandSet }).commandSet;
      } catch (err) {
        const e = err as { code?: string; message?: string };
        if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.includes(`'${packageName}'`)) return undefined;
        throw err;
      }
    },
  };
}

/** The list of commands that opens a package's part of the help: one line each, aligned. */
export function commandSummaries(title: string, summaries: Readonly<Record<string, string>>): string {
  const lines = Object.entries(summaries).map(([command, summary]) => `  ${command.padEnd(9)} ${summary}`);
  return `${title}\n${lines.join('\n')}`;
}

/**
 * `rustydb help`, the same whichever package's `rustydb` prints it: the packages in name order (the
 * client's commands, then the server's, which end with the long table of configuration flags).
 */
export function rustydbUsage(sets: readonly CommandSet[], missing: readonly Companion[]): string {
  const ordered = [...sets].sort((a, b) => a.packageName.localeCompare(b.packageName));
  const parts = [
    "usage: rustydb <command> [options]   (`rustydb help COMMAND` or `rustydb COMMAND --help`: one command's usage)",
    ...ordered.map((set) => set.usage()),
  ];
  for (const absent of missing) {
    parts.push(
      `${absent.provides} come with ${absent.packageName}, which is not installed here: npm install ${absent.packageName}`,
    );
  }
  return `${parts.join('\n\n')}\n`;
}

/**
 * `--help` or `-h` among the arguments (before a `--` that ends the options) asks for usage instead
 * of running the command.
 */
function asksForHelp(argv: readonly string[]): boolean {
  for (const arg of argv) {
    if (arg === '--') return false;
    if (arg === '--help' || arg === '-h') return true;
  }
  return false;
}

/**
 * Runs `rustydb …argv`: `own`'s commands, else the companion's (loaded only then, or for the help);
 * resolves with the exit code.
 */
export async function runRustydb(
  argv: readonly string[],
  own: CommandSet,
  companion: Companion,
  output: CommandOutput = process,
): Promise<number> {
  const first = argv[0]?.startsWith('-') ? undefined : argv[0];
  const help = asksForHelp(argv) || first === undefined || first === 'help';
  const command = first === 'help' ? argv[1] : first;
  if (!help && command !== undefined && own.commands.includes(command))
    return own.run(command, argv.slice(1));

  const other = await companion.load();
  const sets = other ? [own, other] : [own];
  const owner = sets.find((set) => command !== undefined && set.commands.includes(command));
  if (owner && !help) return owner.run(command!, argv.slice(1));
  if (owner) {
    output.stdout.write(owner.commandUsage(command!));
    return 0;
  }
  const usage = rustydbUsage(sets, other ? [] : [companion]);
  if (command === undefined) {
    output.stdout.write(usage);
    return 0;
  }
  output.stderr.write(`rustydb: unknown command '${command}'\n\n${usage}`);
  return 2;
}

/**
 * A package's `rustydb` entry: runs the process's arguments, sets its exit code, and reports an
 * unexpected failure as one line (`rustydb: message`) with exit code 1.
 */
export function rustydbMain(own: CommandSet, companion: Companion): void {
  runRustydb(process.argv.slice(2), own, companion).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`rustydb: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
