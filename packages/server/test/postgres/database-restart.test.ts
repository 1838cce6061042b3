/**
 * A node outlives its database: while PostgreSQL is down, readiness says so (503) and statements fail
 * with INTERNAL_ERROR rather than hanging; once it is back, the node serves again on fresh connections,
 * without a restart of its own. Runs on a PostgreSQL server of its own, since it stops it.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { runStatements, postgresCases } from '../helpers/engines.ts';
import { startTestPostgres, type TestPostgres } from '../../../../scripts/postgres-for-tests.mjs';

postgresCases('PostgreSQL cases', () => {
  let pg: TestPostgres;
  let ts: TestServer;

  before(async () => {
    pg = await startTestPostgres();
    const databaseUrl = await pg.createDatabase('node', 'node-password');
    ts = await startTestServer({ engine: 'postgres', database_url: databaseUrl });
    await sql(ts, 'CREATE TABLE kept (id int PRIMARY KEY)');
    await sql(ts, 'INSERT INTO kept VALUES (1)');
  });
  after(async () => {
    await ts?.close();
    pg?.stop();
  });

  const ready = async (): Promise<number> =>
    (await ts.http('/api/v1/health/readiness', { token: null })).status;

  test('readiness is false while PostgreSQL is down, and the node serves again once it is back', async () => {
    assert.equal(await ready(), 200);
    const c = await ts.connectAuthed();
    assert.deepEqual((await c.query('SELECT count(*) FROM kept')).rows, [[1]]);

    await pg.pause();
    assert.equal(await ready(), 503);
    const failed = await c.query('SELECT count(*) FROM kept');
    assert.equal(failed.error?.payload.code, 'INTERNAL_ERROR');
    assert.doesNotMatch(failed.error!.payload.message!, /ECONN|127\.0\.0\.1/);

    await pg.resume();
    assert.equal(await ready(), 200);
    assert.deepEqual((await c.query('SELECT count(*) FROM kept')).rows, [[1]]);
    const login = await ts.http('/api/v1/auth/login', {
      body: { username: 'admin', password: 'test-admin-password' },
      token: null,
    });
    assert.equal(login.status, 200);
  });

  test('after PostgreSQL restarts, change capture reconnects and a subscription goes on without loss', async () => {
    const c = await ts.connectAuthed();
    c.send({ type: 'subscribe', id: 'kept', payload: { table: 'kept' } });
    const ack = await c.next((m) => m.id === 'kept' && m.type === 'subscribed');
    await pg.pause();
    await pg.resume();
    await sql(ts, 'INSERT INTO kept VALUES (2)');
    await sql(ts, 'INSERT INTO kept VALUES (3)');
    const seen = [];
    for (let i = 0; i < 2; i++)
      seen.push(await c.next((m) => m.id === 'kept' && m.type === 'change', 10_000));
    assert.deepEqual(
      seen.map((m) => [m.payload.sequence, (m.payload.row as { id: number }).id]),
      [
        [(ack.payload.sequence as number) + 1, 2],
        [(ack.payload.sequence as number) + 2, 3],
      ],
    );
  });

  test('a statement whose connection PostgreSQL ends mid-run fails at once, and the node goes on serving', async () => {
    const c = await ts.connectAuthed();
    const id = c.newId('q');
    c.send({ type: 'query', id, payload: { sql: 'SELECT 1 FROM pg_sleep(30)' } });
    const superuser = async (statement: string): Promise<unknown[]> => {
      const [result] = (await runStatements(pg.url, [statement])) as { rows: unknown[] }[];
      return result!.rows;
    };
    const sleeping =
      "SELECT pid FROM pg_stat_activity WHERE datname = 'node' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()";
    for (let i = 0; i < 100 && (await superuser(sleeping)).length === 0; i++) await sleep(50);
    await superuser(`SELECT pg_terminate_backend(pid) FROM (${sleeping}) AS s`);
    // The driver's cursor, once its connection is gone, waits for a reply that never comes: the statement
    // must still end with an error (and its timeout must not go on cancelling a backend that is gone).
    const answer = await c.collect(id, 5000);
    assert.equal(answer.error?.payload.code, 'INTERNAL_ERROR');
    assert.deepEqual((await c.query('SELECT count(*) FROM kept')).rows, [[3]]);
  });

  test('a fast stop of PostgreSQL right after a write does not wait on the node', async () => {
    // The node's capture is sent the write and must confirm or let go of it before PostgreSQL's
    // walsender lets the shutdown finish; a node that did neither would hold it for wal_sender_timeout
    // (60 s). A fast stop otherwise takes well under a second.
    await sql(ts, 'INSERT INTO kept VALUES (4)');
    const started = performance.now();
    await pg.pause();
    const took = performance.now() - started;
    await pg.resume();
    assert.ok(took < 10_000, `the fast stop took ${Math.round(took)} ms`);
    assert.equal(await ready(), 200);
  });
});
