/**
 * A change fanned out to many subscribers is serialized once and framed per socket by the server itself
 * (flow-controlled-socket.ts `sendFramed`), except where `ws` must frame it: a socket that negotiated
 * permessage-deflate gets large messages compressed by `ws`, which compresses asynchronously. Every
 * subscriber must still receive every change intact and in log order, whatever its id, the frame's
 * length form (7-bit, 16-bit, 64-bit) and the mix of compressed and uncompressed messages.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { TestClient, type ServerMsg } from '../helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  const admin = await ts.connectAuthed();
  const created = await admin.query('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  assert.equal(created.error, undefined);
  admin.close();
});
after(() => ts.close());

/** Bodies of every frame length form, compressible above ws's 1 KB threshold, with multi-byte text. */
const BODIES = [
  'ü',
  'ünïcødé ✓ '.repeat(20),
  'large and compressible ✓ '.repeat(200),
  'x',
  'a row longer than 65,535 bytes ✓ '.repeat(2500),
  'small again',
  'large and compressible again ✓ '.repeat(100),
  'last',
];

interface Subscriber {
  client: TestClient;
  id: string;
  tcp: Socket;
}

async function subscriber(id: string, perMessageDeflate: boolean): Promise<Subscriber> {
  const ws = new WebSocket(`${ts.server.wsUrl}/api/v1/stream?token=${ts.token}`, { perMessageDeflate });
  let tcp: Socket | undefined;
  ws.once('upgrade', (res) => (tcp = res.socket as Socket));
  const client = await TestClient.adopt(ws);
  assert.equal((await client.next()).type, 'auth_success');
  assert.equal(ws.extensions !== '', perMessageDeflate);
  client.send({ type: 'subscribe', id, payload: { table: 'notes' } });
  const reply = await client.next((m) => m.id === id);
  assert.equal(reply.type, 'subscribed', JSON.stringify(reply));
  return { client, id, tcp: tcp! };
}

test('every subscriber gets each change intact and in order, compressed or not, whatever its id', async () => {
  const subscribers = await Promise.all([
    subscriber('plain', false),
    subscriber('ünïcødé id ✓ "quoted"', false),
    subscriber('deflate', true),
    subscriber('deflate ✓ ü', true),
  ]);
  const wireBefore = subscribers.map((s) => s.tcp.bytesRead);
  const writer = await ts.connectAuthed();
  // One transaction: its changes reach the subscribers in one pass, back to back on each socket.
  writer.send({
    type: 'batch',
    id: 'writes',
    payload: {
      transaction: true,
      queries: BODIES.map((body, i) => ({
        sql: 'INSERT INTO notes (id, body) VALUES (?, ?)',
        params: [i + 1, body],
      })),
    },
  });
  const written = await writer.next((m) => m.id === 'writes', 10_000);
  assert.equal(written.type, 'data', JSON.stringify(written.payload));

  for (const [i, { client, id }] of subscribers.entries()) {
    const received: ServerMsg[] = [];
    for (let n = 0; n < BODIES.length; n++) {
      received.push(await client.next((m) => m.id === id, 10_000));
    }
    assert.deepEqual(
      received.map((m) => [m.type, (m.payload as { row: { id: number; body: string } }).row]),
      BODIES.map((body, n) => ['change', { id: n + 1, body }]),
      `subscriber ${i} (${id})`,
    );
    const sequences = received.map((m) => (m.payload as { sequence: number }).sequence);
    assert.deepEqual(
      sequences,
      [...sequences].sort((a, b) => a - b),
    );
  }

  // The compressing subscribers really got the large changes compressed (through ws), the others not.
  const wire = subscribers.map((s, i) => s.tcp.bytesRead - wireBefore[i]!);
  const text = BODIES.reduce((sum, body) => sum + Buffer.byteLength(body), 0);
  assert.ok(wire[0]! > text && wire[1]! > text, `uncompressed subscribers read ${wire[0]}, ${wire[1]} bytes`);
  assert.ok(wire[2]! * 4 < text && wire[3]! * 4 < text, `compressed subscribers read ${wire[2]}, ${wire[3]}`);
});

test('a pass to more sockets than one write batch keeps every subscription whole and in order', async () => {
  // Frames are written in batches of a few dozen sockets as a pass goes (flow-controlled-socket.ts
  // FLUSH_BATCH): here one connection's two subscriptions sit on either side of 40 other sockets in
  // the pass, so its frames leave in separate writes, with other sockets' writes between them.
  const first = await subscriber('first', false);
  const others = await Promise.all(Array.from({ length: 40 }, (_, i) => subscriber(`other-${i}`, false)));
  first.client.send({ type: 'subscribe', id: 'second', payload: { table: 'notes' } });
  assert.equal((await first.client.next((m) => m.id === 'second')).type, 'subscribed');
  const writer = await ts.connectAuthed();
  writer.send({
    type: 'batch',
    id: 'more',
    payload: {
      transaction: true,
      queries: [101, 102, 103].map((id) => ({
        sql: 'INSERT INTO notes (id, body) VALUES (?, ?)',
        params: [id, `row ${id}`],
      })),
    },
  });
  assert.equal((await writer.next((m) => m.id === 'more', 10_000)).type, 'data');
  const rowsOf = async (client: TestClient, id: string): Promise<number[]> => {
    const ids: number[] = [];
    for (let n = 0; n < 3; n++) {
      const message = await client.next((m) => m.id === id, 10_000);
      assert.equal(message.type, 'change');
      ids.push((message.payload as { row: { id: number } }).row.id);
    }
    return ids;
  };
  assert.deepEqual(await rowsOf(first.client, 'first'), [101, 102, 103]);
  assert.deepEqual(await rowsOf(first.client, 'second'), [101, 102, 103]);
  for (const other of others) assert.deepEqual(await rowsOf(other.client, other.id), [101, 102, 103]);
  for (const s of [first, ...others]) s.client.close();
  writer.close();
});
