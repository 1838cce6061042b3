/**
 * One user must not stop everyone else. Twelve heavy reads sent at once by one user on one socket must
 * not take every read worker: another user's query runs beside them instead of behind them. The same
 * holds for the pooled connections that run transactional batches. And a read-only user's long
 * transactional read batch must not make writes wait or fail.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { login, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

const HEAVY = 12;
/**
 * The heavy requests that may have finished before another user's request is answered. Served in
 * arrival order, it would wait for at least HEAVY - engine_pool_size + 1 = 9 of them; served beside
 * them, for none (a few, at worst, on a very busy machine).
 */
const FINISHED_BEFORE_AT_MOST = 2;
/**
 * A read that holds a read worker or a pooled connection for a while (a second or more on a busy
 * machine). PostgreSQL's own processes would run a counting query beside the server and slow every other
 * test down: there the statement sleeps instead, holding its connection just the same.
 */
const HEAVY_SQL: Record<EngineName, string> = {
  sqlite:
    'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT count(*) FROM c',
  postgres: 'SELECT count(*) FROM (SELECT pg_sleep(1.5)) AS held',
};

async function connectAs(ts: TestServer, username: string, roles: string[]): Promise<TestClient> {
  const created = await ts.http('/api/v1/users', {
    body: { username, password: `${username}-password`, roles },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const res = await login(ts.server.url, username, `${username}-password`);
  const client = await ts.connect({ token: (res.body as { data: { token: string } }).data.token });
  assert.equal((await client.next()).type, 'auth_success');
  return client;
}

/**
 * Sends HEAVY requests of one user at once, then, once they have reached the engine, another user's
 * request; answers that request's reply and how many heavy ones had finished before it came back, after
 * checking that every heavy one succeeded.
 */
async function besideHeavy<T>(
  t: TestContext,
  heavy: TestClient,
  heavyMessage: { type: string; payload: unknown },
  other: () => Promise<T>,
): Promise<{ answer: T; finishedBefore: number }> {
  let finished = 0;
  const heavyDone = Array.from({ length: HEAVY }, () =>
    heavy.request(heavyMessage, 140_000).then((reply) => {
      finished++;
      return reply;
    }),
  );
  // Let every heavy request reach the engine first.
  await new Promise((resolve) => setTimeout(resolve, 200));
  const started = Date.now();
  const answer = await other();
  const waited = Date.now() - started;
  const finishedBefore = finished;
  const replies = await Promise.all(heavyDone);
  t.diagnostic(
    `the other user's request took ${waited} ms; ${finishedBefore} of ${HEAVY} heavy ones had finished by then`,
  );
  assert.ok(
    replies.every((r) => r.type === 'data'),
    JSON.stringify(replies.find((r) => r.type !== 'data')?.payload),
  );
  return { answer, finishedBefore };
}

/**
 * The suite, run once per engine: on SQLite the read workers and pooled connections are shared fairly,
 * on PostgreSQL the connections of the pool that every user of one set of roles shares.
 */
function suite(engine: EngineName): void {
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false, statement_timeout: 120 }, { engine });
    await sql(ts, `CREATE TABLE notes (id ${dialectOf(engine).autoId}, body TEXT)`);
    await sql(ts, "INSERT INTO notes (body) VALUES ('a'), ('b'), ('c')");
  });
  after(() => ts.close());

  test(
    "twelve heavy reads from one socket do not starve another user's query",
    { timeout: 150_000 },
    async (t) => {
      const heavy = await connectAs(ts, 'hog', ['readonly']);
      const other = await connectAs(ts, 'neighbour', ['readonly']);
      // A scan (not a keyed lookup): it needs a read worker, as the heavy reads do.
      const { answer, finishedBefore } = await besideHeavy(
        t,
        heavy,
        { type: 'query', payload: { sql: HEAVY_SQL[engine] } },
        () => other.query("SELECT count(*) FROM notes WHERE body LIKE '%'", {}, 140_000),
      );
      assert.equal(answer.error, undefined, JSON.stringify(answer.error?.payload));
      assert.deepEqual(answer.rows, [[3]]);
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
      const heavy = await connectAs(ts, 'tx-hog', ['readonly']);
      const other = await connectAs(ts, 'tx-neighbour', ['readonly']);
      // Three times the pool (engine_pool_size is 4): a transactional batch holds a pooled connection.
      const { answer, finishedBefore } = await besideHeavy(
        t,
        heavy,
        { type: 'batch', payload: { transaction: true, queries: [{ sql: HEAVY_SQL[engine] }] } },
        () =>
          other.request(
            {
              type: 'batch',
              payload: { transaction: true, queries: [{ sql: 'SELECT count(*) FROM notes' }] },
            },
            140_000,
          ),
      );
      assert.equal(answer.type, 'data', JSON.stringify(answer.payload));
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
      const reader = await connectAs(ts, 'long-reader', ['readonly']);
      const writer = await ts.connectAuthed();
      const batch = reader.request(
        {
          type: 'batch',
          payload: { transaction: true, queries: [{ sql: HEAVY_SQL[engine] }, { sql: HEAVY_SQL[engine] }] },
        },
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

  test(
    "a user's write does not hold the write lock while it waits for that user's own reads",
    { timeout: 150_000 },
    async () => {
      // The writer role: it may write, and so may hold the write lock while it waits for a connection.
      const heavy = await connectAs(ts, 'rw-hog', ['readwrite']);
      const other = await ts.connectAuthed();
      let readsFinished = 0;
      // Its share of the pooled connections (all but one of four), held by long read transactions.
      const reads = Array.from({ length: 3 }, () =>
        heavy
          .request(
            {
              type: 'batch',
              payload: {
                transaction: true,
                queries: [{ sql: HEAVY_SQL[engine] }, { sql: HEAVY_SQL[engine] }],
              },
            },
            140_000,
          )
          .then((reply) => {
            readsFinished++;
            return reply;
          }),
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const write = (client: TestClient, body: string): Promise<{ type: string; payload?: unknown }> =>
        client.request(
          {
            type: 'batch',
            payload: {
              transaction: true,
              queries: [{ sql: 'INSERT INTO notes (body) VALUES (?)', params: [body] }],
            },
          },
          140_000,
        );
      // Its write takes the write lock, then needs a connection beyond its share.
      const own = write(heavy, 'rw-hog');
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Every other writer waits for that lock.
      const reply = await write(other, 'admin');
      const finishedBefore = readsFinished;
      assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
      assert.equal((await own).type, 'data');
      assert.ok((await Promise.all(reads)).every((r) => r.type === 'data'));
      assert.equal(
        finishedBefore,
        0,
        `another user's write waited for ${finishedBefore} long reads of one user`,
      );
    },
  );
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
