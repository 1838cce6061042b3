/**
 * Helpers for the attack suite, on top of the shared test server: users with chosen roles, clients
 * logged in as them over every route, the state of the data before and after an attack, and a check
 * that the server still serves after it.
 */
import assert from 'node:assert/strict';
import { login, sql, type TestServer } from '../helpers/test-server.ts';
import type { BatchItem, TestClient } from '../helpers/ws-client.ts';

export const USER_PASSWORD = 'user-password-1';

/** Creates a role with the given grants through the admin API. */
export async function createRole(
  ts: TestServer,
  name: string,
  grants: { privilege: string; table?: string }[],
): Promise<void> {
  const res = await ts.http('/api/v1/roles', { body: { name, grants } });
  assert.equal(res.status, 201, `creating role ${name}: ${JSON.stringify(res.body)}`);
}

/** Creates a user with `roles` and returns a token from a real login. */
export async function createUser(
  ts: TestServer,
  name: string,
  roles: string[],
  password = USER_PASSWORD,
): Promise<string> {
  const res = await ts.http('/api/v1/users', { body: { username: name, password, roles } });
  assert.equal(res.status, 201, `creating user ${name}: ${JSON.stringify(res.body)}`);
  return loginToken(ts, name, password);
}

export async function loginToken(ts: TestServer, name: string, password = USER_PASSWORD): Promise<string> {
  const res = await login(ts.server.url, name, password);
  assert.equal(res.status, 200, `login ${name}: ${JSON.stringify(res.body)}`);
  return (res.body as { data: { token: string } }).data.token;
}

/** A socket authenticated with `token` through an auth message. */
export async function connectWith(ts: TestServer, token: string): Promise<TestClient> {
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'auth', payload: { token } });
  const m = await c.reply('auth');
  assert.equal(m.type, 'auth_success', JSON.stringify(m));
  return c;
}

export interface Outcome {
  /** 'ok' or the error code. */
  code: string;
  message?: string;
  details?: Record<string, unknown>;
  rows?: unknown[][];
}

/** The routes a statement can take into the engine. */
export const ROUTES = [
  'stream query',
  'stream batch',
  'stream transaction',
  'http query',
  'http batch',
  'graphql',
] as const;
export type Route = (typeof ROUTES)[number];

/**
 * Runs one statement through `route` as the holder of `token` (the client `c` for the stream routes)
 * and reports what came back.
 */
export async function runAs(
  ts: TestServer,
  route: Route,
  token: string,
  c: TestClient,
  statement: string,
  params: unknown[] = [],
): Promise<Outcome> {
  switch (route) {
    case 'stream query': {
      const { error, rows } = await c.query(statement, { params });
      if (error)
        return { code: error.payload.code!, message: error.payload.message!, details: error.payload.details };
      return { code: 'ok', rows };
    }
    case 'stream batch':
    case 'stream transaction': {
      const m = await c.request({
        type: 'batch',
        payload: { queries: [{ sql: statement, params }], transaction: route === 'stream transaction' },
      });
      if (m.type === 'error')
        return { code: m.payload.code!, message: m.payload.message!, details: m.payload.details };
      const item = m.payload.results![0]!;
      return itemOutcome(item);
    }
    case 'http query': {
      const res = await ts.http('/api/v1/query', { body: { sql: statement, params }, token });
      const body = res.body as {
        data?: { rows: unknown[][] };
        error?: { code: string; message: string; details?: Record<string, unknown> };
      };
      if (res.status !== 200) {
        assert.equal(res.status, statusOf(body.error!.code), `HTTP status for ${body.error!.code}`);
        return { code: body.error!.code, message: body.error!.message, details: body.error!.details };
      }
      return { code: 'ok', rows: body.data!.rows };
    }
    case 'graphql': {
      const res = await ts.http('/graphql', {
        body: {
          query:
            'mutation ($sql: String!, $params: [JSON]) { executeSql(sql: $sql, params: $params) { rows } }',
          variables: { sql: statement, params },
        },
        token,
      });
      const body = res.body as {
        data?: { executeSql: { rows: unknown[][] } | null } | null;
        errors?: { message: string; extensions?: { code?: string; details?: Record<string, unknown> } }[];
      };
      const error = body.errors?.[0];
      if (error) {
        return {
          code: error.extensions?.code ?? 'UNKNOWN',
          message: error.message,
          ...(error.extensions?.details ? { details: error.extensions.details } : {}),
        };
      }
      return { code: 'ok', rows: body.data!.executeSql!.rows };
    }
    case 'http batch': {
      const res = await ts.http('/api/v1/batch', { body: { queries: [{ sql: statement, params }] }, token });
      const body = res.body as { data?: { results: BatchItem[] }; error?: { code: string; message: string } };
      if (res.status !== 200) return { code: body.error!.code, message: body.error!.message };
      return itemOutcome(body.data!.results[0]!);
    }
  }
}

function itemOutcome(item: BatchItem): Outcome {
  if (item.status === 'error') return { code: item.code!, message: item.message! };
  return { code: 'ok', rows: item.rows ?? [] };
}

/** The HTTP status each refusal must come with. */
export function statusOf(code: string): number {
  const statuses: Record<string, number> = {
    AUTH_REQUIRED: 401,
    AUTH_FAILED: 401,
    AUTH_EXPIRED: 401,
    PERMISSION_DENIED: 403,
    INVALID_MESSAGE: 400,
    QUERY_ERROR: 400,
    TABLE_NOT_FOUND: 404,
    NOT_FOUND: 404,
    RATE_LIMIT_EXCEEDED: 429,
    CONNECTION_LIMIT: 503,
  };
  return statuses[code] ?? 500;
}

/** Every row of the given tables, read as admin: compare before and after an attack. */
export async function snapshot(
  ts: TestServer,
  tables: readonly string[],
  /** What orders the rows: SQLite's rowid, or a key column on engines without one. */
  orderBy = 'rowid',
): Promise<Record<string, unknown[][]>> {
  const out: Record<string, unknown[][]> = {};
  for (const table of tables) out[table] = (await sql(ts, `SELECT * FROM ${table} ORDER BY ${orderBy}`)).rows;
  return out;
}

/** The users, roles and grants as the admin API reports them. */
export async function securityState(ts: TestServer): Promise<unknown> {
  const users = await ts.http('/api/v1/users');
  const roles = await ts.http('/api/v1/roles');
  assert.equal(users.status, 200);
  assert.equal(roles.status, 200);
  return { users: users.body, roles: roles.body };
}

/** The server still answers: a fresh admin socket gets a pong, readiness is 200, and a query runs. */
export async function assertAlive(ts: TestServer): Promise<void> {
  const c = await ts.connectAuthed();
  try {
    const pong = await c.request({ type: 'ping' });
    assert.equal(pong.type, 'pong');
    const { rows, error } = await c.query('SELECT 40 + 2');
    assert.equal(error, undefined);
    assert.deepEqual(rows, [[42]]);
  } finally {
    c.close();
  }
  const ready = await ts.http('/api/v1/health/readiness', { token: null });
  assert.equal(ready.status, 200);
}

/** Polls `check` until it returns true or `timeoutMs` passes; returns how long it took. */
export async function within(timeoutMs: number, check: () => Promise<boolean> | boolean): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Subscribes `c` to the live query `query`: it must be refused with PERMISSION_DENIED, or its first
 * answer must show nothing that matches `hidden` (then the subscription is ended).
 */
export async function assertLiveQueryHides(c: TestClient, query: string, hidden: RegExp): Promise<void> {
  const id = c.newId('live');
  c.send({ type: 'subscribe', id, payload: { query } });
  const first = await c.next((m) => m.id === id, 3000);
  if (first.type === 'error') {
    assert.equal(first.payload.code, 'PERMISSION_DENIED', `${query}: ${JSON.stringify(first.payload)}`);
    return;
  }
  assert.doesNotMatch(JSON.stringify(first.payload), hidden, query);
  c.send({ type: 'unsubscribe', id });
}
