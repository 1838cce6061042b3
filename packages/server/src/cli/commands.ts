/**
 * The server's commands of `rustydb`: `serve` runs the server; `user` and `role` administer a running
 * one. Loading this module is cheap (the server itself is imported only by `serve`), so the client's
 * `rustydb` can load it for its help.
 */
import { CONFIG_FIELDS, envName, flagName, type ConfigField } from '../config/config.ts';
import { ADMIN_USAGE, UsageError, runAdminCommand } from './admin-commands.ts';
import { parseArgs } from './args.ts';

const SUMMARIES = {
  serve: 'run the server (embedded SQLite in --data-dir)',
  user: 'manage users of a running server (see below)',
  role: 'manage roles and their privileges of a running server',
} as const;

type ServerCommand = keyof typeof SUMMARIES;

/** The server's part of `rustydb help`. */
export function serverUsage(): string {
  const fields = Object.entries(CONFIG_FIELDS).map(
    ([field, spec]) =>
      `  ${flagName(field as ConfigField).padEnd(30)} ${envName(field as ConfigField).padEnd(38)} ${spec.help}`,
  );
  return `server commands:
${Object.entries(SUMMARIES)
  .map(([command, summary]) => `  ${command.padEnd(9)} ${summary}`)
  .join('\n')}

${ADMIN_USAGE}

configuration (flag / environment variable; flags win over the environment, which wins over --config FILE):
${fields.join('\n')}`;
}

/** Runs `rustydb <command> …argv`; resolves with the exit code. */
export async function runServerCommand(command: ServerCommand, argv: string[]): Promise<number> {
  const args = parseArgs([command, ...argv]);
  if (command === 'serve') {
    const { serve } = await import('./serve.ts');
    await serve(args);
    return 0;
  }
  try {
    process.stdout.write(`${await runAdminCommand(args)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`rustydb: ${err.message}\n\n${ADMIN_USAGE}\n`);
    return 2;
  }
}

/**
 * `@rustydb/server`'s part of `rustydb`, in the shape `@rustydb/client/cli` expects of a command set
 * (declared here, not imported: the server does not depend on the client).
 */
export const commandSet = {
  packageName: '@rustydb/server',
  commands: Object.keys(SUMMARIES) as readonly string[],
  usage: serverUsage,
  run: (command: string, argv: string[]): Promise<number> => runServerCommand(command as ServerCommand, argv),
};
