/** statement_timeout: a statement running longer is stopped and reported as QUERY_TIMEOUT. */
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
    ts = await startTestServer({ statement_timeout: 0.3 }, { engine });
    c = await ts.connectAuthed();
  });
  after(() => ts.close());

  test('a query running past statement_timeout gets QUERY_TIMEOUT', async () => {
    const started = Date.now();
    const { error, chunks } = await c.query(ENDLESS, {}, 5000);
    const elapsed = Date.now() - started;
    assert.equal(chunks.length, 0);
    assert.equal(error?.type, 'error');
    assert.equal(error?.payload.code, 'QUERY_TIMEOUT');
    assert.ok(elapsed >= 250, `timed out after only ${elapsed} ms`);
    assert.ok(elapsed < 2000, `timed out after ${elapsed} ms`);
  });

  test('the timed-out statement stops using CPU', async () => {
    await c.query(ENDLESS, {}, 5000);
    await sleep(100);
    const cpuMs = await cpuDuring(600);
    assert.ok(cpuMs < 300, `process used ${cpuMs.toFixed(0)} ms CPU in 600 ms after the timeout`);
  });

  test('a statement inside a transactional batch times out too, and nothing is applied', async () => {
    await c.query('CREATE TABLE marks (x INTEGER)');
    const id = c.newId('b');
    c.send({
      type: 'batch',
      id,
      payload: { transaction: true, queries: [{ sql: 'INSERT INTO marks VALUES (1)' }, { sql: ENDLESS }] },
    });
    const m = await c.reply(id, 5000);
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'QUERY_TIMEOUT');
    assert.deepEqual((await c.query('SELECT count(*) FROM marks')).rows, [[0]]);
  });

  test('over HTTP a timed-out query is 408 QUERY_TIMEOUT', async () => {
    const res = await ts.http('/api/v1/query', { body: { sql: ENDLESS } });
    assert.equal(res.status, 408);
    assert.equal((res.body as { error: { code: string } }).error.code, 'QUERY_TIMEOUT');
  });

  test('quick statements are unaffected by the timeout', async () => {
    const { rows, error } = await c.query(
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) SELECT sum(x) FROM c',
    );
    assert.equal(error, undefined);
    assert.deepEqual(rows, [[500500]]);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
