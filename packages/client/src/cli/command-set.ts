/**
 * The one `rustydb` command, put together from the packages that are installed. `@rustydb/client`
 * brings the commands that are clients of a running server (`shell`, `query`, `watch`) and
 * `@rustydb/server` the server's own (`serve`, `user`, `role`). Each package's `rustydb` runs its own
 * commands and hands the others to the other package when that one is installed beside it, so users
 * type `rustydb …` whichever package put the command on their PATH.
 */

/** What a package contributes to `rustydb` (the export `commandSet` of `@rustydb/<package>/cli`). */
export interface CommandSet {
  /** The package that brings these commands, for messages: `@rustydb/client`. */
  readonly packageName: string;
  readonly commands: readonly string[];
  /** Its part of `rustydb help`: the commands with a line each, then their options. */
  usage(): string;
  /** Runs `rustydb <command> …argv`; resolves with the exit code. */
  run(command: string, argv: string[]): Promise<number>;
}

/** The other package, loaded only when a command or the help needs it. */
export interface Companion {
  readonly packageName: string;
  /** What its commands are, for the help when it is missing: "the server (serve, user, role)". */
  readonly provides: string;
  /** Its command set, or undefined when it is not installed. */
  load(): Promise<CommandSet | undefined>;
}

export interface CommandOutput {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

const HELP_COMMANDS = new Set([undefined, 'help', '--help', '-h']);

/**
 * Imports another package's `cli` module, or returns undefined when that package is not installed
 * (any other failure, a broken installation, is thrown). `load` does the import, so that the specifier
 * is resolved from the calling package's own location.
 */
export async function importIfInstalled<T>(
  packageName: string,
  load: () => Promise<T>,
): Promise<T | undefined> {
  try {
    return await load();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.includes(`'${packageName}'`)) return undefined;
    throw err;
  }
}

/**
 * `rustydb help`, the same whichever package's `rustydb` prints it: the packages in name order (the
 * client's commands, then the server's, which end with the long table of configuration flags).
 */
export function rustydbUsage(sets: readonly CommandSet[], missing: readonly Companion[]): string {
  const ordered = [...sets].sort((a, b) => a.packageName.localeCompare(b.packageName));
  const parts = ['usage: rustydb <command> [options]', ...ordered.map((set) => set.usage())];
  for (const absent of missing) {
    parts.push(
      `${absent.provides} come with ${absent.packageName}, which is not installed here: npm install ${absent.packageName}`,
    );
  }
  return `${parts.join('\n\n')}\n`;
}

/** Runs `rustydb …argv`: `own`'s commands, else the companion's; resolves with the exit code. */
export async function runRustydb(
  argv: readonly string[],
  own: CommandSet,
  companion: Companion,
  output: CommandOutput = process,
): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && own.commands.includes(command)) return own.run(command, rest);
  const other = await companion.load();
  if (other && command !== undefined && other.commands.includes(command)) return other.run(command, rest);
  const usage = rustydbUsage(other ? [own, other] : [own], other ? [] : [companion]);
  if (HELP_COMMANDS.has(command)) {
    output.stdout.write(usage);
    return 0;
  }
  output.stderr.write(`rustydb: unknown command '${command}'\n\n${usage}`);
  return 2;
}
