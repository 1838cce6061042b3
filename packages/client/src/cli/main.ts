/**
 * The entry of `@rustydb/client`'s `rustydb` command: its own commands, and the server's when
 * `@rustydb/server` is installed beside it.
 */
import { importIfInstalled, runRustydb, type CommandSet } from './command-set.ts';
import { commandSet } from './commands.ts';

// A variable, not a literal: the server is an optional companion, not a dependency to compile against.
const SERVER_CLI = '@rustydb/server/cli';

runRustydb(process.argv.slice(2), commandSet, {
  packageName: '@rustydb/server',
  provides: 'The server and its administration (serve, user, role)',
  load: async () =>
    (
      await importIfInstalled(
        '@rustydb/server',
        () => import(SERVER_CLI) as Promise<{ commandSet: CommandSet }>,
      )
    )?.commandSet,
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`rustydb: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
