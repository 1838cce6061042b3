/**
 * max_subscriptions_per_connection: a connection holds at most that many subscriptions, live queries and
 * change streams (on /graphql/ws: operations). One more is refused with RATE_LIMIT_EXCEEDED for its id;
 * the connection and its other subscriptions carry on, and ending one makes room again.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';
import { Events, attached, disposeClients, wsClient } from './graphql/helpers.ts';

const LIMIT = 3;

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ max_subscriptions_per_connection: LIMIT, enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await ts.http('/api/v1/documents/collections', { body: { name: 'docs' } });
});
after(async () => {
  await disposeClients();
  await ts.close();
});

/** Sends `subscribe` (or `watch`) with `id` and returns the first answer to it. */
async function open(c: TestClient, id: string, payload: Record<string, unknown>, type = 'subscribe') {
  c.send({ type, id, payload });
  return c.reply(id, 5000);
}

test('auth_success advertises the limit', async () => {
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'a', payload: { token: ts.token } });
  const m = await c.reply('a');
  assert.equal(m.type, 'auth_success');
  assert.equal((m.payload.limits as { max_subscriptions: unknown }).max_subscriptions, LIMIT);
  c.close();
});

test('one subscription over the limit is refused for its id; the others still deliver; ending one makes room', async () => {
  const c = await ts.connectAuthed();
  assert.equal((await open(c, 't1', { table: 'notes' })).type, 'subscribed');
  assert.equal((await open(c, 'q1', { query: 'SELECT count(*) FROM notes' })).type, 'subscribed');
  assert.equal((await open(c, 'w1', { collection: 'docs' }, 'watch')).type, 'subscribed');

  for (const [id, payload, type] of [
    ['t2', { table: 'notes' }, 'subscribe'],
    ['q2', { query: 'SELECT id FROM notes' }, 'subscribe'],
    ['w2', { collection: 'docs' }, 'watch'],
  ] as const) {
    const refused = await open(c, id, payload, type);
    assert.equal(refused.type, 'error', JSON.stringify(refused));
    assert.equal(refused.payload.code, 'RATE_LIMIT_EXCEEDED');
    assert.match(String(refused.payload.message), /at most 3 subscriptions/);
    // Waiting would not help: no retry_after_ms for a client to wait on.
    assert.equal(refused.payload.details?.retry_after_ms, undefined);
  }

  // Another connection has a limit of its own.
  const other = await ts.connectAuthed();
  assert.equal((await open(other, 't1', { table: 'notes' })).type, 'subscribed');

  await sql(ts, "INSERT INTO notes (body) VALUES ('still delivered')");
  const change = await c.next((m) => m.id === 't1' && m.type === 'change', 5000);
  assert.equal((change.payload as { row?: { body?: string } }).row?.body, 'still delivered');

  c.send({ type: 'unsubscribe', id: 't1' });
  await c.next((m) => m.id === 't1' && m.type === 'unsubscribed', 5000);
  assert.equal((await open(c, 't3', { table: 'notes' })).type, 'subscribed');
  c.close();
  other.close();
});

test('on /graphql/ws, one operation over the limit gets RATE_LIMIT_EXCEEDED; completing one makes room', async () => {
  const started = Date.now();
  const client = wsClient(ts, ts.token);
  const query = 'subscription { tableChanges(table: notes) { changeType row } }';
  const held = Array.from(
    { length: LIMIT },
    () => new Events<{ tableChanges: { changeType: string } }>(client, query),
  );
  await attached(ts, 'notes', LIMIT, started);

  const refused = new Events(client, query);
  const { error } = await refused.ended(5000);
  assert.ok(Array.isArray(error), `expected GraphQL errors, got ${JSON.stringify(error)}`);
  const first = (error as { extensions?: { code?: string }; message: string }[])[0]!;
  assert.equal(first.extensions?.code, 'RATE_LIMIT_EXCEEDED', JSON.stringify(error));
  assert.match(first.message, /at most 3 operations/);

  await sql(ts, "INSERT INTO notes (body) VALUES ('graphql')");
  for (const events of held) assert.equal((await events.data(5000)).tableChanges.changeType, 'INSERT');

  held[0]!.dispose();
  const again = new Events<{ tableChanges: { changeType: string } }>(client, query);
  await attached(ts, 'notes', LIMIT, started);
  await sql(ts, "INSERT INTO notes (body) VALUES ('room again')");
  assert.equal((await again.data(5000)).tableChanges.changeType, 'INSERT');
});
