/**
 * Starts the real server on port 0 with a fresh data directory, logs the admin in over HTTP, and
 * tracks every client a test opens so that one `close()` tears it all down.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type ServerConfig } from '../../src/config/config.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { startServer, type RustyServer, type StartOptions } from '../../src/server.ts';
import { TestClient, type ConnectOptions } from './ws-client.ts';
import { dropCaptureSlot, engineConfig, type EngineName } from './engines.ts';

export const ADMIN_PASSWORD = 'test-admin-password';
export const STREAM_PATH = '/api/v1/stream';

export interface TestServer {
  server: RustyServer;
  dataDir: string;
  /** A token for `admin`, from a real login. */
  token: string;
  /** Opens a WebSocket to `path` (default /api/v1/stream) and waits until it is open. */
  connect(options?: ConnectOptions & { path?: string; token?: string }): Promise<TestClient>;
  /** Opens a socket with the admin token in the URL and waits for auth_success. */
  connectAuthed(options?: ConnectOptions): Promise<TestClient>;
  /** fetch() against the server, with JSON helpers. */
  http(
    path: string,
    init?: { method?: string; body?: unknown; token?: string | null; rawBody?: string },
  ): Promise<{
    status: number;
    body: unknown;
  }>;
  /** The HS256 secret the server signs tokens with (from `<data_dir>/jwt-secret`). */
  secret(): Uint8Array;
  close(): Promise<void>;
}

export function freshDataDir(): string {
  return mkdtempSync(join(tmpdir(), 'rustydb-test-'));
}

export async function login(
  baseUrl: string,
  username: string,
  password: string,
): Promise<{ status: number; body: unknown }> {
  const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
    signal: AbortSignal.timeout(5000),
  });
  return { status: res.status, body: await res.json() };
}

export async function startTestServer(
  overrides: Partial<ServerConfig> = {},
  options: StartOptions & { dataDir?: string; engine?: EngineName } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? freshDataDir();
  const engine = options.engine && !overrides.engine ? await engineConfig(options.engine) : {};
  const config = loadConfig({
    overrides: { port: 0, data_dir: dataDir, admin_password: ADMIN_PASSWORD, ...engine, ...overrides },
  });
  let server: RustyServer;
  try {
    server = await startServer(config, { logger: silentLogger, ...options });
  } catch (err) {
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  // Nodes on PostgreSQL keep a generated secret in the database, not in the data directory.
  const sharedSecret =
    config.engine === 'postgres' && !config.jwt_secret
      ? (
          await server.engine.internal.get<{ value: string }>(
            "SELECT value FROM meta WHERE key = 'jwt_secret'",
          )
        )?.value
      : undefined;
  const clients = new Set<TestClient>();
  let token = '';
  if (config.admin_password !== undefined) {
    try {
      const res = await login(server.url, 'admin', config.admin_password);
      if (res.status !== 200) throw new Error(`test login failed: ${res.status} ${JSON.stringify(res.body)}`);
      token = (res.body as { data: { token: string } }).data.token;
    } catch (err) {
      await server.close();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
      throw err;
    }
  }

  const ts: TestServer = {
    server,
    dataDir,
    token,
    async connect(opts = {}) {
      const { path = STREAM_PATH, token: urlToken, ...rest } = opts;
      const url = `${server.wsUrl}${path}${urlToken !== undefined ? `?token=${encodeURIComponent(urlToken)}` : ''}`;
      const client = await TestClient.connect(url, rest);
      clients.add(client);
      return client;
    },
    async connectAuthed(opts = {}) {
      const client = await ts.connect({ ...opts, token });
      await client.next((m) => m.type === 'auth_success', 3000);
      return client;
    },
    async http(path, init = {}) {
      const headers: Record<string, string> = {};
      const auth = init.token === undefined ? token : init.token;
      if (auth !== null && auth !== '') headers.authorization = `Bearer ${auth}`;
      let body: string | undefined;
      if (init.rawBody !== undefined) body = init.rawBody;
      else if (init.body !== undefined) body = JSON.stringify(init.body);
      if (body !== undefined) headers['content-type'] = 'application/json';
      const res = await fetch(`${server.url}${path}`, {
        method: init.method ?? (body === undefined ? 'GET' : 'POST'),
        headers,
        body,
        signal: AbortSignal.timeout(10_000),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = JSON.parse(text);
      } catch {
        // Not JSON: the test sees the raw text.
      }
      return { status: res.status, body: parsed };
    },
    secret() {
      if (sharedSecret !== undefined) return Buffer.from(sharedSecret, 'base64');
      return Buffer.from(readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim(), 'base64');
    },
    async close() {
      for (const client of clients) client.terminate();
      clients.clear();
      await server.close();
      // Only a database made for this server alone: others may share it (and take the slot over).
      if (engine.database_url) await dropCaptureSlot(engine.database_url);
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return ts;
}

/** Runs SQL over HTTP as admin; throws unless it succeeded. For setting up fixtures. */
export async function sql(ts: TestServer, text: string, params: unknown[] = []): Promise<QueryData> {
  const res = await ts.http('/api/v1/query', { body: { sql: text, params } });
  if (res.status !== 200) throw new Error(`fixture SQL failed (${res.status}): ${JSON.stringify(res.body)}`);
  return (res.body as { data: QueryData }).data;
}

export interface QueryData {
  columns: string[];
  rows: unknown[][];
  rows_affected: number;
  last_insert_id?: number;
}

/** Counts forever: only a cancel or a timeout stops it. */
export const ENDLESS =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

/** Process CPU time (all threads, so the engine's too) spent over `ms`, in milliseconds. */
export async function cpuDuring(ms: number): Promise<number> {
  const before = process.cpuUsage();
  await sleep(ms);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / 1000;
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
