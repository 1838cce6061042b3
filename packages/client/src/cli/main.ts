/**
 * The entry of `@rustydb/client`'s `rustydb` command: the clients of a running server, and the server's
 * commands when `@rustydb/server` is installed beside it.
 */
import { importIfInstalled, rustydbMain, type CommandSet } from '@rustydb/protocol/cli';
import { commandSet } from './commands.ts';

// A variable, not a literal: the server is an optional companion, not a dependency to compile against.
const SERVER_CLI = '@rustydb/server/cli';

rustydbMain(commandSet, {
  packageName: '@rustydb/server',
  provides: "The server's commands (serve, user, role)",
  load: async () =>
    (
      await importIfInstalled(
        '@rustydb/server',
        () => import(SERVER_CLI) as Promise<{ commandSet: CommandSet }>,
      )
    )?.commandSet,
});
