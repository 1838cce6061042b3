/** Every server message is an envelope: type, payload object, ISO-8601 timestamp, and the request id when it answers one. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { ISO_TIMESTAMP, type ServerMsg } from './helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
});
after(() => ts.close());

function assertEnvelope(m: ServerMsg, type: string, id: string | undefined): void {
  assert.equal(m.type, type, `type of ${JSON.stringify(m)}`);
  assert.equal(typeof m.payload, 'object');
  assert.notEqual(m.payload, null);
  assert.match(m.timestamp, ISO_TIMESTAMP);
  // A real instant, close to now.
  const at = Date.parse(m.timestamp);
  assert.ok(Math.abs(Date.now() - at) < 10_000, `timestamp ${m.timestamp} is not current`);
  assert.equal(new Date(at).toISOString(), m.timestamp);
  if (id === undefined) assert.equal('id' in m, false, `unexpected id in ${JSON.stringify(m)}`);
  else assert.equal(m.id, id);
  const allowed = new Set(['type', 'payload', 'timestamp', 'id']);
  for (const key of Object.keys(m)) assert.ok(allowed.has(key), `unexpected envelope field '${key}'`);
}

test(
  'auth_success, pong, data, error and batch replies carry the request id',
  { timeout: 10_000 },
  async () => {
    const c = await ts.connect();
    c.send({ type: 'auth', id: 'a-1', payload: { token: ts.token }, timestamp: new Date().toISOString() });
    assertEnvelope(await c.next(), 'auth_success', 'a-1');

    c.send({ type: 'ping', id: 'p-1' });
    const pong = await c.next();
    assertEnvelope(pong, 'pong', 'p-1');
    assert.deepEqual(pong.payload, {});

    c.send({ type: 'query', id: 'q-1', payload: { sql: 'SELECT 1 AS one' } });
    const data = await c.next();
    assertEnvelope(data, 'data', 'q-1');
    assert.equal(data.payload.status, 'success');

    c.send({ type: 'query', id: 'q-2', payload: { sql: 'SELECT * FROM no_such_table' } });
    const err = await c.next();
    assertEnvelope(err, 'error', 'q-2');
    assert.equal(err.payload.status, 'error');
    assert.equal(err.payload.code, 'TABLE_NOT_FOUND');
    assert.equal(typeof err.payload.message, 'string');

    c.send({ type: 'batch', id: 'b-1', payload: { queries: [{ sql: 'SELECT 1' }] } });
    assertEnvelope(await c.next(), 'data', 'b-1');

    c.send({ type: 'cancel', id: 'c-1', payload: { id: 'nothing-running' } });
    assertEnvelope(await c.next(), 'data', 'c-1');

    c.send('not json at all');
    assertEnvelope(await c.next(), 'error', undefined);

    assert.deepEqual(c.pending(), []);
  },
);

test('messages without an id are answered without one', { timeout: 10_000 }, async () => {
  const c = await ts.connectAuthed();
  c.send({ type: 'ping' });
  assertEnvelope(await c.next(), 'pong', undefined);
  c.send({ type: 'query', payload: { sql: 'SELECT 2 AS two' } });
  const data = await c.next();
  assertEnvelope(data, 'data', undefined);
  assert.deepEqual(data.payload.rows, [[2]]);
});

test('URL-token auth_success and auth_error are envelopes too', { timeout: 10_000 }, async () => {
  const good = await ts.connect({ token: ts.token });
  assertEnvelope(await good.next(), 'auth_success', undefined);

  const bad = await ts.connect({ token: 'garbage' });
  const m = await bad.next();
  assertEnvelope(m, 'auth_error', undefined);
  assert.equal(m.payload.status, 'error');
  assert.equal(m.payload.code, 'AUTH_FAILED');
  assert.equal((await bad.closed()).code, 1008);
});
