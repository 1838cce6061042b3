/** `rustydb serve`: starts the server with the configuration from flags, environment and file. */
import { describeConfig, loadConfig } from '../config/config.ts';
import { startServer } from '../server.ts';
import type { ParsedArgs } from './args.ts';

export async function serve(args: ParsedArgs): Promise<void> {
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
