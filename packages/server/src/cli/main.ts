/**
 * The entry of `@rustydb/server`'s `rustydb` command. The server's commands run here; the others
 * (`shell`, `query`, `watch`: clients of a running server) come with `@rustydb/client`, and run through
 * its dispatcher when it is installed beside the server.
 */
import { commandSet, serverUsage } from './commands.ts';

/** The part of `@rustydb/client/cli` used here, declared locally: the client is optional. */
interface ClientCli {
  commandSet: typeof commandSet;
  runRustydb(
    argv: readonly string[],
    own: typeof commandSet,
    companion: { packageName: string; provides: string; load(): Promise<typeof commandSet | undefined> },
  ): Promise<number>;
}

// A variable, not a literal: the client is an optional companion, not a dependency to compile against.
const CLIENT_CLI = '@rustydb/client/cli';
const CLIENT_MISSING =
  'shell, query and watch (clients of a running server) come with @rustydb/client, which is not installed here: npm install @rustydb/client';

async function clientCli(): Promise<ClientCli | undefined> {
  try {
    return (await import(CLIENT_CLI)) as ClientCli;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code === 'ERR_MODULE_NOT_FOUND' && e.message?.includes("'@rustydb/client'")) return undefined;
    throw err;
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && commandSet.commands.includes(command)) return commandSet.run(command, rest);
  const client = await clientCli();
  if (client) {
    return client.runRustydb(argv, commandSet, {
      packageName: '@rustydb/client',
      provides: 'shell, query and watch (clients of a running server)',
      load: async () => client.commandSet,
    });
  }
  const usage = `usage: rustydb <command> [options]\n\n${serverUsage()}\n\n${CLIENT_MISSING}\n`;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(usage);
    return 0;
  }
  process.stderr.write(`rustydb: unknown command '${command}'\n\n${usage}`);
  return 2;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`rustydb: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
