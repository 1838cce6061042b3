/**
 * The server's commands of `rustydb`: `serve` runs the server; `user` and `role` administer a running
 * one. Loading this module is cheap (the server itself is imported only by `serve`), so the client's
 * `rustydb` can load it for its help.
 */
import { commandSummaries, type CommandSet } from '@rustydb/protocol/cli';
import { CONFIG_FIELDS, envName, flagName, type ConfigField } from '../config/config.ts';
import { ADMIN_USAGE, UsageError, runAdminCommand } from './admin-commands.ts';
import { parseArgs } from './args.ts';
import { BACKUP_USAGE, runBackup, runRestore } from './backup-commands.ts';
import { holdYoungGeneration, scavengeOnMainThreadOnSmallMachines } from './young-generation.ts';

const SUMMARIES = {
  serve: 'run the server (embedded SQLite in --data-dir)',
  user: 'manage users of a running server (see below)',
  role: 'manage roles and their privileges of a running server',
  backup: "save a consistent copy of a running server's database (--to FILE)",
  restore: 'put a backup in place of the database in --data-dir, the server stopped (--from FILE)',
} as const;

type ServerCommand = keyof typeof SUMMARIES;

const CONFIG_USAGE = `configuration (flag / environment variable; flags win over the environment, which wins over --config FILE):
${Object.entries(CONFIG_FIELDS)
  .map(
    ([field, spec]) =>
      `  ${flagName(field as ConfigField).padEnd(30)} ${envName(field as ConfigField).padEnd(38)} ${spec.help}`,
  )
  .join('\n')}`;

const SERVER_USAGE = `${commandSummaries('server commands:', SUMMARIES)}

${ADMIN_USAGE}

${BACKUP_USAGE}

${CONFIG_USAGE}`;

/** Each command's own usage, for `rustydb COMMAND --help` and `rustydb help COMMAND`. */
const COMMAND_USAGE: Record<ServerCommand, string> = {
  serve: `usage: rustydb serve [--config FILE] [--field-name VALUE …]
  runs the server (embedded SQLite in --data-dir); Ctrl-C or SIGTERM closes every connection with 1001

${CONFIG_USAGE}
`,
  user: `${ADMIN_USAGE}\n`,
  role: `${ADMIN_USAGE}\n`,
  backup: `${BACKUP_USAGE}\n`,
  restore: `${BACKUP_USAGE}\n`,
};

/** Runs `rustydb <command> …argv`; resolves with the exit code. */
export async function runServerCommand(command: ServerCommand, argv: string[]): Promise<number> {
  const args = parseArgs([command, ...argv]);
  if (command === 'serve') {
    // From before the server's modules load until it listens (see young-generation.ts).
    const release = holdYoungGeneration();
    scavengeOnMainThreadOnSmallMachines();
    try {
      const { serve } = await import('./serve.ts');
      await serve(args);
    } finally {
      release();
    }
    return 0;
  }
  const backups = command === 'backup' || command === 'restore';
  try {
    const run = command === 'backup' ? runBackup : command === 'restore' ? runRestore : runAdminCommand;
    process.stdout.write(`${await run(args)}\n`);
    return 0;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`rustydb: ${err.message}\n\n${backups ? BACKUP_USAGE : ADMIN_USAGE}\n`);
    return 2;
  }
}

/** `@rustydb/server`'s part of `rustydb`. */
export const commandSet: CommandSet = {
  packageName: '@rustydb/server',
  commands: Object.keys(SUMMARIES),
  usage: () => SERVER_USAGE,
  commandUsage: (command) => COMMAND_USAGE[command as ServerCommand],
  run: (command, argv) => runServerCommand(command as ServerCommand, argv),
};
