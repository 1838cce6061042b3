/**
 * A test server on a PostgreSQL database of its own, with a superuser connection to that database: the
 * tests of the server's queries of its own tables fill those tables and explain the queries through it.
 */
import { createRequire } from 'node:module';
import { startTestServer, type TestServer } from './test-server.ts';
import { dropCaptureSlot, engineConfig, postgresUrl } from './engines.ts';
import type { PgRows } from './query-plans.ts';

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: { connectionString: string }) => SuperuserClient;
};

/** A `pg` client, connected as the tests' superuser. */
export type SuperuserClient = PgRows & {
  query(text: string, values?: unknown[]): Promise<unknown>;
  connect(): Promise<void>;
  end(): Promise<void>;
};

/** A superuser connection to the database of `databaseUrl` (the server's own URL, of its own role). */
export async function superuserClient(databaseUrl: string): Promise<SuperuserClient> {
  const url = new URL(await postgresUrl());
  url.pathname = new URL(databaseUrl).pathname;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return client;
}

export interface ServerOnPostgres {
  ts: TestServer;
  databaseUrl: string;
  /** The superuser connection to the server's database. */
  client: SuperuserClient;
  /** Runs `text` on that connection; its rows, as arrays. */
  rows(text: string, values?: unknown[]): Promise<unknown[][]>;
  /** Closes the connection and the server, and drops the server's replication slot. */
  close(): Promise<void>;
}

export async function startServerOnPostgres(): Promise<ServerOnPostgres> {
  const engine = await engineConfig('postgres');
  const databaseUrl = engine.database_url!;
  const ts = await startTestServer({ enable_rate_limiting: false, ...engine });
  const client = await superuserClient(databaseUrl);
  return {
    ts,
    databaseUrl,
    client,
    rows: async (text, values = []) => (await client.query({ text, values, rowMode: 'array' })).rows,
    close: async () => {
      await client.end();
      await ts.close();
      await dropCaptureSlot(databaseUrl);
    },
  };
}
