/**
 * One user must not stop everyone else. Twelve heavy reads sent at once by one user on one socket must
 * not take every read worker: another user's query runs beside them instead of behind them. The same
 * holds for the pooled connections that run transactional batches. And a read-only user's long
 * transactional read batch must not make writes wait or fail.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { login, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const HEAVY = 12;
/**
 * The heavy requests that may have finished before another user's request is answered. Served in
 * arrival order, it would wait for at least HEAVY - engine_pool_size + 1 = 9 of them. Served beside
 * them, it waits for none; but its own trivial statement shares two busy cores with three heavy ones,
 * and has been seen to take as long as four of them, so the bound lies between.
 */
const FINISHED_BEFORE_AT_MOST = HEAVY / 2;
/** A read that runs on a read worker or a pooled connection for a while (a second or more on a busy machine). */
const HEAVY_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c';

let ts: TestServer;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false, statement_timeout: 120 });
  await sql(ts, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  await sql(ts, "INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')");
});
after(() => ts.close());

async function connectAs(username: string, roles: string[]): Promise<TestClient> {
  const created = await ts.http('/api/v1/users', {
    body: { username, password: `${username}-password`, roles },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const res = await login(ts.server.url, username, `${username}-password`);
  const client = await ts.connect({ token: (res.body as { data: { token: string } }).data.token });
  assert.equal((await client.next()).type, 'auth_success');
  return client;
}

test(
  "twelve heavy reads from one socket do not starve another user's query",
  { timeout: 150_000 },
  async (t) => {
    const heavy = await connectAs('hog', ['readonly']);
    const other = await connectAs('neighbour', ['readonly']);
    let finished = 0;
    const heavyDone = Array.from({ length: HEAVY }, () =>
      heavy.request({ type: 'query', payload: { sql: HEAVY_SQL } }, 140_000).then((reply) => {
        finished++;
        return reply;
      }),
    );
    // Let every heavy read reach the engine first.
    await new Promise((resolve) => setTimeout(resolve, 200));
    // A scan (not a keyed lookup): it needs a read worker, as the heavy reads do.
    const started = Date.now();
    const answer = await other.query("SELECT count(*) FROM notes WHERE body LIKE '%'", {}, 140_000);
    const waited = Date.now() - started;
    const finishedBefore = finished;
    const replies = await Promise.all(heavyDone);
    t.diagnostic(
      `the other user's query took ${waited} ms; ${finishedBefore} of ${HEAVY} heavy reads had finished by then`,
    );
    assert.equal(answer.error, undefined, JSON.stringify(answer.error?.payload));
    assert.deepEqual(answer.rows, [[3]]);
    assert.ok(
      replies.every((r) => r.type === 'data'),
      JSON.stringify(replies.find((r) => r.type !== 'data')?.payload),
    );
    // Served beside the heavy reads, not behind the ones that waited for a worker before it.
    assert.ok(
      finishedBefore <= FINISHED_BEFORE_AT_MOST,
      `the other user's query waited for ${finishedBefore} heavy reads of one user`,
    );
  },
);

test(
  "many long transactional batches of one user do not make another user's batch wait behind them",
  { timeout: 150_000 },
  async (t) => {
    const heavy = await connectAs('tx-hog', ['readonly']);
    const other = await connectAs('tx-neighbour', ['readonly']);
    let finished = 0;
    // Three times the pool (engine_pool_size is 4): a transactional batch holds a pooled connection.
    const heavyDone = Array.from({ length: HEAVY }, () =>
      heavy
        .request({ type: 'batch', payload: { transaction: true, queries: [{ sql: HEAVY_SQL }] } }, 140_000)
        .then((reply) => {
          finished++;
          return reply;
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    const answer = await other.request(
      {
        type: 'batch',
        payload: { transaction: true, queries: [{ sql: 'SELECT count(*) FROM notes' }] },
      },
      140_000,
    );
    const waited = Date.now() - started;
    const finishedBefore = finished;
    const replies = await Promise.all(heavyDone);
    t.diagnostic(
      `the other user's batch took ${waited} ms; ${finishedBefore} of ${HEAVY} heavy batches had finished by then`,
    );
    assert.equal(answer.type, 'data', JSON.stringify(answer.payload));
    assert.ok(
      replies.every((r) => r.type === 'data'),
      JSON.stringify(replies.find((r) => r.type !== 'data')?.payload),
    );
    // Served beside the heavy batches, not behind the ones that waited for a connection before it.
    assert.ok(
      finishedBefore <= FINISHED_BEFORE_AT_MOST,
      `the other user's batch waited for ${finishedBefore} heavy batches of one user`,
    );
  },
);

test(
  "a read-only user's long transactional read batch does not make writes fail",
  { timeout: 60_000 },
  async () => {
    const reader = await connectAs('long-reader', ['readonly']);
    const writer = await ts.connectAuthed();
    const batch = reader.request(
      { type: 'batch', payload: { transaction: true, queries: [{ sql: HEAVY_SQL }, { sql: HEAVY_SQL }] } },
      60_000,
    );
    await new Promise((resolve) => setTimeout(resolve, 200));
    for (let i = 0; i < 20; i++) {
      const reply = await writer.request(
        {
          type: 'batch',
          payload: {
            transaction: true,
            queries: [{ sql: 'INSERT INTO notes (body) VALUES (?)', params: [`w${i}`] }],
          },
        },
        30_000,
      );
      assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
    }
    assert.equal((await batch).type, 'data');
  },
);
