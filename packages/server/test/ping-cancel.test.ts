/** `ping` → `pong`, and `cancel` of running queries (the engine's work really stops). */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuDuring, ENDLESS, sleep, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';
import { ENGINES, type EngineName } from './helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  let ts: TestServer;
  let c: TestClient;
  before(async () => {
    ts = await startTestServer({ statement_timeout: 30 }, { engine });
    c = await ts.connectAuthed();
  });
  after(() => ts.close());

  test('ping is answered by pong with the same id and an empty payload', async () => {
    c.send({ type: 'ping', id: 'ping-1', timestamp: new Date().toISOString() });
    const pong = await c.reply('ping-1');
    assert.equal(pong.type, 'pong');
    assert.deepEqual(pong.payload, {});
    // Payload and timestamp are optional on ping.
    c.send({ type: 'ping', id: 'ping-2' });
    assert.equal((await c.reply('ping-2')).type, 'pong');
  });

  test('cancel stops a running query: QUERY_CANCELLED for the query, {cancelled:true} for the cancel', async () => {
    c.send({ type: 'query', id: 'endless-1', payload: { sql: ENDLESS } });
    await sleep(200);
    const started = Date.now();
    c.send({ type: 'cancel', id: 'cancel-1', payload: { id: 'endless-1' } });
    const ack = await c.reply('cancel-1');
    assert.equal(ack.type, 'data');
    assert.deepEqual(ack.payload, { status: 'success', cancelled: true });
    const stopped = await c.reply('endless-1', 3000);
    assert.equal(stopped.type, 'error');
    assert.equal(stopped.payload.code, 'QUERY_CANCELLED');
    assert.ok(Date.now() - started < 1000, `cancel took ${Date.now() - started} ms`);
    // Nothing else arrives for the cancelled query, and the socket still works.
    const { rows } = await c.query('SELECT 41 + 1');
    assert.deepEqual(rows, [[42]]);
    assert.equal(
      c.pending().some((m) => m.id === 'endless-1'),
      false,
    );
  });

  test('a cancelled query stops using CPU (the engine was interrupted, not abandoned)', async () => {
    c.send({ type: 'query', id: 'endless-cpu', payload: { sql: ENDLESS } });
    await sleep(150);
    c.send({ type: 'cancel', id: 'cancel-cpu', payload: { id: 'endless-cpu' } });
    assert.equal((await c.reply('endless-cpu')).payload.code, 'QUERY_CANCELLED');
    await sleep(100);
    const cpuMs = await cpuDuring(600);
    assert.ok(cpuMs < 300, `process used ${cpuMs.toFixed(0)} ms CPU in 600 ms after the cancel`);
  });

  test('cancel of an unknown id answers {cancelled:false}', async () => {
    c.send({ type: 'cancel', id: 'cancel-unknown', payload: { id: 'never-sent' } });
    const ack = await c.reply('cancel-unknown');
    assert.equal(ack.type, 'data');
    assert.deepEqual(ack.payload, { status: 'success', cancelled: false });
  });

  test('cancel of a query that already finished answers {cancelled:false}', async () => {
    const { rows } = await c.query('SELECT 1');
    assert.deepEqual(rows, [[1]]);
    c.send({ type: 'cancel', id: 'cancel-late', payload: { id: 'q-1' } });
    assert.deepEqual((await c.reply('cancel-late')).payload, { status: 'success', cancelled: false });
  });

  test("one socket cannot cancel another socket's query", async () => {
    const other = await ts.connectAuthed();
    other.send({ type: 'query', id: 'shared-id', payload: { sql: ENDLESS } });
    await sleep(100);
    c.send({ type: 'cancel', id: 'cancel-foreign', payload: { id: 'shared-id' } });
    assert.deepEqual((await c.reply('cancel-foreign')).payload, { status: 'success', cancelled: false });
    other.send({ type: 'cancel', id: 'cancel-own', payload: { id: 'shared-id' } });
    assert.deepEqual((await other.reply('cancel-own')).payload, { status: 'success', cancelled: true });
    assert.equal((await other.reply('shared-id')).payload.code, 'QUERY_CANCELLED');
  });

  test('a running batch can be cancelled by its id', async () => {
    c.send({
      type: 'batch',
      id: 'endless-batch',
      payload: { queries: [{ sql: 'SELECT 1' }, { sql: ENDLESS }] },
    });
    await sleep(150);
    c.send({ type: 'cancel', id: 'cancel-batch', payload: { id: 'endless-batch' } });
    assert.deepEqual((await c.reply('cancel-batch')).payload, { status: 'success', cancelled: true });
    const m = await c.reply('endless-batch');
    // A non-transactional batch reports the stopped statement in its results.
    assert.equal(m.type, 'data');
    assert.deepEqual(
      m.payload.results!.map((r) => r.code ?? r.status),
      ['success', 'QUERY_CANCELLED'],
    );
  });

  test('a second request reusing the id of a running one is refused with INVALID_MESSAGE', async () => {
    c.send({ type: 'query', id: 'dup', payload: { sql: ENDLESS } });
    await sleep(100);
    c.send({ type: 'query', id: 'dup', payload: { sql: 'SELECT 1' } });
    const refused = await c.reply('dup');
    assert.equal(refused.type, 'error');
    assert.equal(refused.payload.code, 'INVALID_MESSAGE');
    c.send({ type: 'cancel', id: 'cancel-dup', payload: { id: 'dup' } });
    assert.deepEqual((await c.reply('cancel-dup')).payload, { status: 'success', cancelled: true });
    assert.equal((await c.reply('dup')).payload.code, 'QUERY_CANCELLED');
  });

  test('closing the socket stops its running query', async () => {
    const other = await ts.connectAuthed();
    other.send({ type: 'query', id: 'orphan', payload: { sql: ENDLESS } });
    await sleep(150);
    other.close();
    await other.closed();
    await sleep(200);
    const cpuMs = await cpuDuring(600);
    assert.ok(cpuMs < 300, `process used ${cpuMs.toFixed(0)} ms CPU in 600 ms after the client left`);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
