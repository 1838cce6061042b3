/** permessage-deflate is negotiated, and large compressible results arrive intact (and compressed). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import { TestClient } from './helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE docs (id INTEGER PRIMARY KEY, body TEXT)');
  await sql(
    ts,
    "INSERT INTO docs (id, body) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT x, 'the quick brown fox jumps over the lazy dog ' || (x % 10) FROM c",
  );
});
after(() => ts.close());

test('permessage-deflate is negotiated', async () => {
  const c = await ts.connectAuthed();
  assert.match(c.ws.extensions, /^permessage-deflate/);
});

test('a large compressible result arrives intact and is compressed on the wire', async () => {
  // Watch the raw TCP socket to count the bytes that actually crossed the wire.
  const ws = new WebSocket(`${ts.server.wsUrl}/api/v1/stream?token=${ts.token}`, { perMessageDeflate: true });
  let tcp: Socket | undefined;
  ws.once('upgrade', (res) => (tcp = res.socket as Socket));
  const c = await TestClient.adopt(ws);
  try {
    assert.equal((await c.next()).type, 'auth_success');
    assert.ok(tcp);
    const before = tcp.bytesRead;
    const { rows, chunks } = await c.query(
      'SELECT id, body FROM docs ORDER BY id',
      { chunk_size: 5000 },
      15_000,
    );
    const wire = tcp.bytesRead - before;
    // 4 full chunks (the server may close the result with an empty fifth one).
    assert.deepEqual(
      chunks.slice(0, 4).map((m) => m.payload.rows?.length),
      [5000, 5000, 5000, 5000],
    );
    assert.ok(chunks.length <= 5);
    assert.equal(chunks.at(-1)!.payload.rows_affected, 20_000);
    assert.equal(rows.length, 20_000);
    rows.forEach((row, i) => {
      assert.equal(row[0], i + 1);
      assert.equal(row[1], `the quick brown fox jumps over the lazy dog ${(i + 1) % 10}`);
    });
    const text = c.rawTexts.slice(1).reduce((n, t) => n + Buffer.byteLength(t), 0);
    assert.ok(wire * 4 < text, `${wire} bytes on the wire for ${text} bytes of JSON: not compressed`);
  } finally {
    c.terminate();
  }
});

test('a client without compression gets the same result uncompressed', async () => {
  const c = await ts.connect({ token: ts.token, perMessageDeflate: false });
  assert.equal(c.ws.extensions, '');
  assert.equal((await c.next()).type, 'auth_success');
  const { rows } = await c.query('SELECT count(*), sum(length(body)) FROM docs');
  assert.deepEqual(rows, [[20_000, 20_000 * 45]]);
});
