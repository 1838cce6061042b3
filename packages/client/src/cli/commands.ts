/**
 * The commands of `rustydb` that act as a database client: `shell`, `query`, `watch` over the WebSocket
 * protocol, and `gen types` from the schema endpoint. They parse their own flags (node:util parseArgs) and return the process exit code.
 */
import { commandSummaries, type CommandSet } from '@rustydb/protocol/cli';
import { CONNECTION_USAGE, CommandError } from './client-connection.ts';
import { GEN_USAGE, genCommand } from './gen-types-command.ts';
import { QUERY_USAGE, queryCommand, type CommandIo } from './query-command.ts';
import { SHELL_USAGE, shellCommand } from './shell.ts';
import { WATCH_USAGE, watchCommand } from './watch-command.ts';

const SUMMARIES = {
  shell: 'interactive SQL shell on a running server',
  query: 'run one statement on a running server (for scripts)',
  watch: "print a table's changes as they happen",
  gen: 'write TypeScript types of the tables and collections you may read (gen types)',
} as const;

type ClientCommand = keyof typeof SUMMARIES;

export const CLIENT_USAGE = `${commandSummaries('client commands (talk to a running server over /api/v1/stream):', SUMMARIES)}

  ${SHELL_USAGE.replaceAll('\n', '\n  ')}
  ${QUERY_USAGE.replaceAll('\n', '\n  ')}
  ${WATCH_USAGE.replaceAll('\n', '\n  ')}
  ${GEN_USAGE.replaceAll('\n', '\n  ')}
  ${CONNECTION_USAGE.replaceAll('\n', '\n  ')}`;

/** Each command's own usage, for `rustydb COMMAND --help` and `rustydb help COMMAND`. */
const COMMAND_USAGE: Record<ClientCommand, string> = {
  shell: `usage: ${SHELL_USAGE}\n${CONNECTION_USAGE}\n`,
  query: `usage: ${QUERY_USAGE}\n${CONNECTION_USAGE}\n`,
  watch: `usage: ${WATCH_USAGE}\n${CONNECTION_USAGE}\n`,
  gen: `usage: ${GEN_USAGE}\n${CONNECTION_USAGE}\n`,
};

const PROCESS_IO: CommandIo = {
  stdin: process.stdin,
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
};

/** Runs `rustydb <command> …argv`; resolves with the exit code. */
export async function runClientCommand(
  command: ClientCommand,
  argv: string[],
  io: CommandIo = PROCESS_IO,
): Promise<number> {
  try {
    if (command === 'shell') return await shellCommand(argv, io);
    if (command === 'query') return await queryCommand(argv, io);
    if (command === 'gen') return await genCommand(argv, io);
    return await watchCommand(argv, io);
  } catch (err) {
    if (err instanceof CommandError) {
      io.stderr.write(`rustydb: ${err.message}\n`);
      return err.exitCode;
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.stderr.write(`rustydb: ${(err as Error).message}\n\n${CLIENT_USAGE}\n`);
      return 2;
    }
    throw err;
  }
}

/** `@rustydb/client`'s part of `rustydb`. */
export const commandSet: CommandSet = {
  packageName: '@rustydb/client',
  commands: Object.keys(SUMMARIES),
  usage: () => CLIENT_USAGE,
  commandUsage: (command) => COMMAND_USAGE[command as ClientCommand],
  run: (command, argv) => runClientCommand(command as ClientCommand, argv),
};
