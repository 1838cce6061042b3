/**
 * How `rustydb shell`, `query` and `watch` reach a server: `--url` (RUSTYDB_URL, default
 * http://127.0.0.1:8080), then `--token` (RUSTYDB_TOKEN) or `--user`/`--password` (RUSTYDB_USER,
 * default admin / RUSTYDB_PASSWORD). They talk the WebSocket protocol through the client SDK.
 */
import { RustyDBClient, type ClientOptions } from '../index.ts';

export interface ConnectionFlags {
  url?: string | undefined;
  user?: string | undefined;
  password?: string | undefined;
  token?: string | undefined;
}

export const CONNECTION_OPTIONS = {
  url: { type: 'string' },
  user: { type: 'string' },
  password: { type: 'string' },
  token: { type: 'string' },
} as const;

export const CONNECTION_USAGE = `connection: --url URL (RUSTYDB_URL, default http://127.0.0.1:8080)
            --user NAME --password P (RUSTYDB_USER, default admin; RUSTYDB_PASSWORD), or --token T (RUSTYDB_TOKEN)`;

export class CommandError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value === '' ? undefined : value;

export function clientOptions(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  extra: Partial<ClientOptions> = {},
): ClientOptions {
  const url = nonEmpty(flags.url) ?? nonEmpty(env.RUSTYDB_URL) ?? 'http://127.0.0.1:8080';
  const token = nonEmpty(flags.token) ?? nonEmpty(env.RUSTYDB_TOKEN);
  const password = nonEmpty(flags.password) ?? nonEmpty(env.RUSTYDB_PASSWORD);
  const username = nonEmpty(flags.user) ?? nonEmpty(env.RUSTYDB_USER) ?? 'admin';
  try {
    new URL(url);
  } catch {
    throw new CommandError(`invalid --url '${url}'`, 2);
  }
  return {
    url,
    ...(token ? { token } : {}),
    ...(password ? { username, password } : {}),
    ...extra,
  };
}

/** Connects and authenticates, or throws a CommandError that says why. */
export async function openClient(options: ClientOptions): Promise<RustyDBClient> {
  const client = new RustyDBClient(options);
  try {
    await client.ready();
    // Without credentials the socket opens unauthenticated: fine only if the server does not ask for any.
    if (!options.token && !options.password) await client.query('SELECT 1');
  } catch (err) {
    await client.close();
    const e = err as { code?: string; message?: string };
    if (e.code === 'AUTH_REQUIRED') {
      throw new CommandError(
        `${options.url} requires authentication: give --password (RUSTYDB_PASSWORD) or --token (RUSTYDB_TOKEN)`,
      );
    }
    throw new CommandError(`cannot connect to ${options.url}: ${e.code ? `${e.code}: ` : ''}${e.message}`);
  }
  return client;
}
