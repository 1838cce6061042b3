/** `rustydb` command line: `serve` runs the server; `user` and `role` administer a running one. */
import { describeConfig, loadConfig, CONFIG_FIELDS, envName, flagName } from '../config/config.ts';
import { startServer } from '../server.ts';
import { parseArgs, type ParsedArgs } from './args.ts';
import { ADMIN_USAGE, UsageError, runAdminCommand } from './admin-commands.ts';
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './client-commands.ts';
import { CONNECTION_USAGE } from './client-connection.ts';
import { QUERY_USAGE } from './query-command.ts';
import { SHELL_USAGE } from './shell.ts';
import { WATCH_USAGE } from './watch-command.ts';

const CONFIG_USAGE = `configuration (flag / environment variable; flags win over the environment, which wins over --config FILE):
${Object.entries(CONFIG_FIELDS)
  .map(
    ([field, spec]) =>
      `  ${flagName(field as keyof typeof CONFIG_FIELDS).padEnd(30)} ${envName(field as keyof typeof CONFIG_FIELDS).padEnd(38)} ${spec.help}`,
  )
  .join('\n')}`;

const USAGE = `usage: rustydb <command> [options]

commands:
  serve     run the server (embedded SQLite in --data-dir)
  user      manage users of a running server (see below)
  role      manage roles and their privileges of a running server
  shell     interactive SQL shell on a running server
  query     run one statement on a running server (for scripts)
  watch     print a table's changes as they happen
  help      show this text (\`rustydb help COMMAND\` or \`rustydb COMMAND --help\`: one command's)

${CLIENT_USAGE}

${ADMIN_USAGE}

${CONFIG_USAGE}
`;

/** Each command's own usage, for `rustydb COMMAND --help` and `rustydb help COMMAND`. */
const COMMAND_USAGE: Record<string, string> = {
  serve: `usage: rustydb serve [--config FILE] [--field-name VALUE …]
  runs the server (embedded SQLite in --data-dir); Ctrl-C or SIGTERM closes every connection with 1001

${CONFIG_USAGE}
`,
  user: `${ADMIN_USAGE}\n`,
  role: `${ADMIN_USAGE}\n`,
  shell: `usage: ${SHELL_USAGE}\n${CONNECTION_USAGE}\n`,
  query: `usage: ${QUERY_USAGE}\n${CONNECTION_USAGE}\n`,
  watch: `usage: ${WATCH_USAGE}\n${CONNECTION_USAGE}\n`,
};

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

/** Prints the usage of `command` (all of it when none is named); exit 2 for an unknown command. */
function printHelp(command: string | undefined): void {
  if (command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return;
  }
  const usage = COMMAND_USAGE[command];
  if (usage) {
    process.stdout.write(usage);
    return;
  }
  process.stderr.write(`unknown command '${command}'\n${USAGE}`);
  process.exitCode = 2;
}

async function serve(args: ParsedArgs): Promise<void> {
  const config = loadConfig({
    flags: args.config,
    env: process.env,
    ...(args.configFile ? { file: args.configFile } : {}),
  });
  const server = await startServer(config, {
    onGeneratedAdminPassword: (password) =>
      process.stdout.write(
        `\nCreated user 'admin' with generated password: ${password}\n` +
          'It is shown only this once. Set RUSTYDB_ADMIN_PASSWORD before the first start to choose it.\n\n',
      ),
  });
  process.stdout.write(`effective configuration: ${JSON.stringify(describeConfig(config))}\n`);
  // Warnings about an exposed configuration (no TLS off loopback, authentication off) come from the
  // server itself, through its logger.
  process.stdout.write(`RustyDB listening on ${server.url} (WebSocket ${server.wsUrl}/api/v1/stream)\n`);
  if (server.consoleUrl) process.stdout.write(`Web console: ${server.consoleUrl}\n`);
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`${signal} received: closing connections\n`);
    server.close().then(
      () => process.exit(0),
      (err) => {
        process.stderr.write(`shutdown failed: ${(err as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: string[]): Promise<void> {
  const command = argv[0]?.startsWith('-') ? undefined : argv[0];
  if (asksForHelp(argv)) {
    printHelp(command);
    return;
  }
  if (command === 'help') {
    printHelp(argv[1]);
    return;
  }
  if (isClientCommand(argv[0])) {
    process.exitCode = await runClientCommand(argv[0]!, argv.slice(1));
    return;
  }
  const args = parseArgs(argv);
  switch (args.command) {
    case 'serve':
      await serve(args);
      return;
    case 'user':
    case 'role':
      try {
        process.stdout.write(`${await runAdminCommand(args)}\n`);
      } catch (err) {
        if (!(err instanceof UsageError)) throw err;
        process.stderr.write(`rustydb: ${err.message}\n\n${ADMIN_USAGE}\n`);
        process.exitCode = 2;
      }
      return;
    case undefined:
      process.stdout.write(USAGE);
      return;
    default:
      process.stderr.write(`unknown command '${args.command}'\n${USAGE}`);
      process.exitCode = 2;
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`rustydb: ${(err as Error).message}\n`);
  process.exit(1);
});
