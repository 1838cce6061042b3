/** WebSocket-level limits: binary frames, invalid UTF-8, oversized messages and the connection limit. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, startTestServer, type TestServer } from './helpers/test-server.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ websocket_max_message_size: 1024, websocket_max_connections: 2 });
});
after(() => ts.close());

async function waitForCount(n: number): Promise<void> {
  const deadline = Date.now() + 2000;
  while (ts.server.gateway.connectionCount !== n) {
    if (Date.now() > deadline)
      throw new Error(`connection count stayed ${ts.server.gateway.connectionCount}, expected ${n}`);
    await sleep(10);
  }
}

test('a binary frame closes the socket with 1003', async () => {
  const c = await ts.connectAuthed();
  c.sendRaw(Buffer.from(JSON.stringify({ type: 'ping', id: 'bin' })), { binary: true });
  const { code } = await c.closed();
  assert.equal(code, 1003);
  assert.equal(
    c.received.some((m) => m.type === 'pong'),
    false,
  );
  await waitForCount(0);
});

test('a text frame with invalid UTF-8 closes the socket with 1007', async () => {
  const c = await ts.connectAuthed();
  c.sendRaw(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), { binary: false });
  assert.equal((await c.closed()).code, 1007);
  await waitForCount(0);
});

test('a message above websocket_max_message_size closes the socket with 1009', async () => {
  const c = await ts.connectAuthed();
  c.send({ type: 'query', id: 'big', payload: { sql: `SELECT '${'x'.repeat(2000)}'` } });
  assert.equal((await c.closed()).code, 1009);
  await waitForCount(0);
});

test('the limit applies to the decompressed size of a compressed message', async () => {
  const c = await ts.connectAuthed();
  assert.match(c.ws.extensions, /permessage-deflate/);
  // ~5 KB of one repeated character compresses to a few dozen bytes on the wire.
  c.send({ type: 'query', id: 'zipped', payload: { sql: `SELECT '${'z'.repeat(5000)}'` } });
  assert.equal((await c.closed()).code, 1009);
  await waitForCount(0);
});

test('a message just under the limit is accepted', async () => {
  const c = await ts.connectAuthed();
  const sqlText = `SELECT '${'y'.repeat(900)}' AS s`;
  const { rows, error } = await c.query(sqlText);
  assert.equal(error, undefined);
  assert.equal((rows[0]![0] as string).length, 900);
  c.close();
  await c.closed();
  await waitForCount(0);
});

test('the connection over websocket_max_connections gets CONNECTION_LIMIT and close 1013', async () => {
  const a = await ts.connect();
  const b = await ts.connect();
  await waitForCount(2);
  const third = await ts.connect();
  const m = await third.next();
  assert.equal(m.type, 'error');
  assert.equal(m.payload.status, 'error');
  assert.equal(m.payload.code, 'CONNECTION_LIMIT');
  const closed = await third.closed();
  assert.equal(closed.code, 1013);
  // The first two are untouched and still usable.
  for (const c of [a, b]) {
    c.send({ type: 'auth', id: 'auth', payload: { token: ts.token } });
    assert.equal((await c.reply('auth')).type, 'auth_success');
  }
  // A place freed by a close is available again.
  a.close();
  await a.closed();
  await waitForCount(1);
  const again = await ts.connect({ token: ts.token });
  assert.equal((await again.next()).type, 'auth_success');
  b.close();
  again.close();
  await Promise.all([b.closed(), again.closed()]);
  await waitForCount(0);
});

test('an unknown WebSocket path is refused with 404', async () => {
  await assert.rejects(ts.connect({ path: '/api/v1/nowhere' }), /404/);
});
