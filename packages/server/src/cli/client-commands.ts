/**
 * The commands that act as a database client over the WebSocket protocol: `shell`, `query`, `watch`.
 * They parse their own flags (node:util parseArgs) and return the process exit code.
 */
import { CONNECTION_USAGE, CommandError } from './client-connection.ts';
import { QUERY_USAGE, queryCommand, type CommandIo } from './query-command.ts';
import { SHELL_USAGE, shellCommand } from './shell.ts';
import { WATCH_USAGE, watchCommand } from './watch-command.ts';

export const CLIENT_COMMANDS = ['shell', 'query', 'watch'] as const;

export const CLIENT_USAGE = `client commands (talk to a running server over /api/v1/stream):
  ${SHELL_USAGE.replaceAll('\n', '\n  ')}
  ${QUERY_USAGE.replaceAll('\n', '\n  ')}
  ${WATCH_USAGE.replaceAll('\n', '\n  ')}
  ${CONNECTION_USAGE.replaceAll('\n', '\n  ')}`;

export function isClientCommand(command: string | undefined): boolean {
  return (CLIENT_COMMANDS as readonly (string | undefined)[]).includes(command);
}

/** Runs `rustydb <command> …argv`; resolves with the exit code. */
export async function runClientCommand(
  command: string,
  argv: string[],
  io: CommandIo = { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env },
): Promise<number> {
  try {
    if (command === 'shell') return await shellCommand(argv, io);
    if (command === 'query') return await queryCommand(argv, io);
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
