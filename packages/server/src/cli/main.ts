/**
 * The entry of `@rustydb/server`'s `rustydb` command: the server's commands, and the clients of a
 * running server (`shell`, `query`, `watch`) when `@rustydb/client` is installed beside it.
 */
import { companion, rustydbMain } from '@rustydb/protocol/cli';
import { commandSet } from './commands.ts';

// A variable, not a literal: the client is an optional companion, not a dependency to compile against.
const CLIENT_CLI = '@rustydb/client/cli';

rustydbMain(
  commandSet,
  companion(
    '@rustydb/client',
    'The clients of a running server (shell, query, watch, gen)',
    () => import(CLIENT_CLI),
  ),
);
