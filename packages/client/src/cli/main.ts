/**
 * The entry of `@rustydb/client`'s `rustydb` command: the clients of a running server, and the server's
 * commands when `@rustydb/server` is installed beside it.
 */
import { companion, rustydbMain } from '@rustydb/protocol/cli';
import { commandSet } from './commands.ts';

// A variable, not a literal: the server is an optional companion, not a dependency to compile against.
const SERVER_CLI = '@rustydb/server/cli';

rustydbMain(
  commandSet,
  companion('@rustydb/server', "The server's commands (serve, user, role)", () => import(SERVER_CLI)),
);
