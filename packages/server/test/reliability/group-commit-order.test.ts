/**
 * Group commit keeps a connection's order (durability full): a request sees the writes sent before it
 * on the same connection even while they wait for their commit group. A later inline keyed read, a
 * read on a worker and a batch wait until those writes are answered; a later keyed write joins them in
 * order. The waiting request counts as running and can be cancelled.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_RUNNING_QUERIES } from '../../src/core/stream-session.ts';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import { holdWriter } from '../helpers/hold-writer.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE o (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
});
after(() => ts.close());

function query(id: string, text: string, params: unknown[] = []): unknown {
  return { type: 'query', id, payload: { sql: text, params } };
}

/** The position of the answer to `id` among what the client received. */
function answerAt(client: TestClient, id: string): number {
  return client.received.findIndex((m) => m.id === id);
}

async function replies(client: TestClient, ids: string[]): Promise<Map<string, ServerMsg>> {
  const answered = new Map<string, ServerMsg>();
  for (const id of ids) {
    const reply = await client.reply(id, 15_000);
    assert.equal(reply.type, 'data', `${id}: ${JSON.stringify(reply)}`);
    answered.set(id, reply);
  }
  return answered;
}

test('write then read, pipelined: every kind of read sees the write sent before it', async () => {
  const c = await ts.connectAuthed();
  const held = await holdWriter(ts, "INSERT INTO o (v) VALUES ('long')");
  c.send(query('w', 'INSERT INTO o (id, v) VALUES (?, ?)', [10, 'ten']));
  // An inline keyed read, a read on a worker, and a batch.
  c.send(query('keyed', 'SELECT v FROM o WHERE id = ?', [10]));
  c.send(query('scan', "SELECT count(*) FROM o WHERE v = 'ten'"));
  c.send({ type: 'batch', id: 'batch', payload: { queries: [{ sql: 'SELECT v FROM o WHERE id = 10' }] } });
  await sleep(200);
  // Nothing overtook the write while it waited for its group.
  assert.deepEqual(
    c.received.filter((m) => ['w', 'keyed', 'scan', 'batch'].includes(m.id ?? '')),
    [],
  );
  await held.release();
  const answered = await replies(c, ['w', 'keyed', 'scan', 'batch']);
  assert.equal(answered.get('w')!.payload.rows_affected, 1);
  assert.deepEqual(answered.get('keyed')!.payload.rows, [['ten']]);
  assert.deepEqual(answered.get('scan')!.payload.rows, [[1]]);
  const [batchResult] = answered.get('batch')!.payload.results as { rows: unknown[] }[];
  assert.deepEqual(batchResult!.rows, [['ten']]);
  for (const id of ['keyed', 'scan', 'batch']) assert.ok(answerAt(c, 'w') < answerAt(c, id), id);
});

test('write, write, read, pipelined: the writes share a group in order and the read sees both', async () => {
  const c = await ts.connectAuthed();
  const held = await holdWriter(ts, "INSERT INTO o (v) VALUES ('long')");
  c.send(query('w1', 'INSERT INTO o (id, v) VALUES (?, ?)', [20, 'twenty']));
  c.send(query('w2', 'UPDATE o SET v = ? WHERE id = ?', ['twenty, updated', 20]));
  c.send(query('r', 'SELECT v FROM o WHERE id = ?', [20]));
  await sleep(200);
  await held.release();
  const answered = await replies(c, ['w1', 'w2', 'r']);
  assert.equal(answered.get('w1')!.payload.rows_affected, 1);
  assert.equal(answered.get('w2')!.payload.rows_affected, 1);
  assert.deepEqual(answered.get('r')!.payload.rows, [['twenty, updated']]);
  assert.ok(answerAt(c, 'w2') < answerAt(c, 'r'));
  // Without a held writer too (the case of a client that pipelines right after connecting).
  c.send(query('w3', 'INSERT INTO o (id, v) VALUES (?, ?)', [21, 'a']));
  c.send(query('w4', 'INSERT INTO o (id, v) VALUES (?, ?)', [22, 'b']));
  c.send(query('r2', 'SELECT count(*) FROM o WHERE id IN (21, 22)'));
  assert.deepEqual((await replies(c, ['w3', 'w4', 'r2'])).get('r2')!.payload.rows, [[2]]);
});

test('a failed write is answered before the read that waits for it, which then runs', async () => {
  const c = await ts.connectAuthed();
  const held = await holdWriter(ts, "INSERT INTO o (v) VALUES ('long')");
  c.send(query('dup', 'INSERT INTO o (id, v) VALUES (?, ?)', [10, 'again']));
  c.send(query('r', 'SELECT v FROM o WHERE id = ?', [10]));
  await sleep(200);
  await held.release();
  const dup = await c.reply('dup', 15_000);
  assert.equal(dup.type, 'error');
  assert.match(String(dup.payload.message), /UNIQUE constraint failed/);
  assert.deepEqual((await c.reply('r', 15_000)).payload.rows, [['ten']]);
  assert.ok(answerAt(c, 'dup') < answerAt(c, 'r'));
});

test('a request waiting for the writes ahead counts as running, and can be cancelled', async () => {
  const c = await ts.connectAuthed();
  const held = await holdWriter(ts, "INSERT INTO o (v) VALUES ('long')");
  c.send(query('w', 'INSERT INTO o (id, v) VALUES (?, ?)', [30, 'thirty']));
  for (let i = 1; i < MAX_RUNNING_QUERIES; i++) c.send(query(`r${i}`, 'SELECT v FROM o WHERE id = ?', [30]));
  // One more than may run: refused, although a keyed read alone would have run at once.
  c.send(query('over', 'SELECT v FROM o WHERE id = ?', [30]));
  const over = await c.reply('over', 5000);
  assert.equal(over.payload.code, 'RATE_LIMIT_EXCEEDED', JSON.stringify(over));
  c.send({ type: 'cancel', payload: { id: 'r1' } });
  assert.equal((await c.reply('r1', 5000)).payload.code, 'QUERY_CANCELLED');
  await held.release();
  const answered = await replies(c, [
    'w',
    ...Array.from({ length: MAX_RUNNING_QUERIES - 2 }, (_, i) => `r${i + 2}`),
  ]);
  for (const [id, reply] of answered) if (id !== 'w') assert.deepEqual(reply.payload.rows, [['thirty']], id);
});
