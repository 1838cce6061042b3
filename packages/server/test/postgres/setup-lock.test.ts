/**
 * What serializes the nodes' set-up and migrations on PostgreSQL is out of every client's reach. Any
 * role may call pg_advisory_lock(), so a set-up lock taken with it could be held by a user's statement
 * (on a pooled connection, a session-level advisory lock outlives the statement) and stall every node
 * that starts, and every migration, for as long as the user likes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { asSuperuser, dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';

/** Key of the advisory lock RustyDB's set-up took before it used a table of its private schema. */
const FORMER_SETUP_LOCK = 0x7275_7374;

postgresCases('PostgreSQL cases', () => {
  let a: TestServer;
  let databaseUrl: string;
  let database: string;

  before(async () => {
    const engine = await engineConfig('postgres');
    databaseUrl = engine.database_url!;
    database = new URL(databaseUrl).pathname.slice(1);
    a = await startTestServer({ enable_rate_limiting: false, ...engine });
    await sql(a, 'CREATE TABLE notes (id int PRIMARY KEY)');
  });
  after(async () => {
    await a?.close();
    await dropCaptureSlot(databaseUrl);
  });

  /** Ends the user's connections that hold advisory locks (what an operator would do). */
  const releaseAdvisoryLocks = (): Promise<unknown> =>
    asSuperuser([
      `SELECT pg_terminate_backend(l.pid) FROM pg_locks l JOIN pg_stat_activity s ON s.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND s.datname = '${database}'`,
    ]);

  test("a user holding every advisory lock RustyDB ever used stalls neither a node's start nor DDL", async () => {
    const role = await a.http('/api/v1/roles', {
      body: { name: 'reader', grants: [{ privilege: 'SELECT', table: 'notes' }] },
    });
    assert.equal(role.status, 201, JSON.stringify(role.body));
    const user = await a.http('/api/v1/users', {
      body: { username: 'alice', password: 'alice-password', roles: ['reader'] },
    });
    assert.equal(user.status, 201, JSON.stringify(user.body));
    const login = await a.http('/api/v1/auth/login', {
      body: { username: 'alice', password: 'alice-password' },
      token: null,
    });
    const token = (login.body as { data: { token: string } }).data.token;
    // Session-level (kept by the pooled connection after the statement) and in both key forms.
    const taken = await a.http('/api/v1/query', {
      body: {
        sql: `SELECT pg_advisory_lock(${FORMER_SETUP_LOCK}), pg_advisory_lock(0, ${FORMER_SETUP_LOCK})`,
      },
      token,
    });
    assert.equal(taken.status, 200, JSON.stringify(taken.body));

    let b: TestServer | undefined;
    const starting = startTestServer({
      enable_rate_limiting: false,
      engine: 'postgres',
      database_url: databaseUrl,
    });
    try {
      const started = await Promise.race([starting, sleep(20_000).then(() => undefined)]);
      assert.ok(started, 'a second node did not start within 20 s while a user held the advisory lock');
      b = started;
      const created = await b.http('/api/v1/query', { body: { sql: 'CREATE TABLE made_on_b (id int)' } });
      assert.equal(created.status, 200, JSON.stringify(created.body));
      const onA = await a.http('/api/v1/query', { body: { sql: 'CREATE TABLE made_on_a (id int)' } });
      assert.equal(onA.status, 200, JSON.stringify(onA.body));
    } finally {
      await releaseAdvisoryLocks();
      b ??= await starting;
      await b.close();
    }
  });
});
