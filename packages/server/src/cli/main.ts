/** `rustydb` command line: `serve` runs the server; `user` and `role` administer a running one. */
import { describeConfig, loadConfig, CONFIG_FIELDS, envName, flagName } from '../config/config.ts';
import { startServer } from '../server.ts';
import { parseArgs, type ParsedArgs } from './args.ts';
import { ADMIN_USAGE, UsageError, runAdminCommand } from './admin-commands.ts';
import { CLIENT_USAGE, isClientCommand, runClientCommand } from './client-commands.ts';

const USAGE = `usage: rustydb <command> [options]

commands:
  serve     run the server (embedded SQLite in --data-dir)
  user      manage users of a running server (see below)
  role      manage roles and their privileges of a running server
  shell     interactive SQL shell on a running server
  query     run one statement on a running server (for scripts)
  watch     print a table's changes as they happen
  help      show this text

${CLIENT_USAGE}

${ADMIN_USAGE}

configuration (flag / environment variable; flags win over the environment, which wins over --config FILE):
${Object.entries(CONFIG_FIELDS)
  .map(
    ([field, spec]) =>
      `  ${flagName(field as keyof typeof CONFIG_FIELDS).padEnd(30)} ${envName(field as keyof typeof CONFIG_FIELDS).padEnd(38)} ${spec.help}`,
  )
  .join('\n')}
`;

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
    case 'help':
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
