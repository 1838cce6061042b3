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
import { createServer } from 'node:http';
import { generateKeyPairSync } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK } from 'jose';

postgresCases('PostgreSQL cases', () => {
  let pg: TestPostgres;
  let ts: TestServer;
  let databaseUrl: string;

  before(async () => {
    pg = await startTestPostgres();
    databaseUrl = await pg.createDatabase('node', 'node-password');
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

  test("while PostgreSQL is down, the list of sessions holds this node's own and says the others are missing", async () => {
    // The administrator signs in through an identity provider on a second node: a token of the server's
    // own is checked against the users and revocations in PostgreSQL (and fails closed while it is
    // down), a provider's token without an id against the provider's keys only.
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const keys = [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'ES256', use: 'sig' }];
    const jwks = createServer((_req, res) => res.end(JSON.stringify({ keys })));
    await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
    const idp = await startTestServer({
      engine: 'postgres',
      database_url: databaseUrl,
      jwks_url: `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/jwks.json`,
      jwks_issuer: 'https://idp.test/',
      jwks_audience: 'rustydb',
      jwks_roles_claim: 'groups',
      jwks_role_map: JSON.stringify({ ops: ['admin'] }),
    });
    const token = await new SignJWT({ groups: ['ops'] })
      .setProtectedHeader({ alg: 'ES256', kid: 'k' })
      .setSubject('ops-lead')
      .setIssuer('https://idp.test/')
      .setAudience('rustydb')
      .setExpirationTime('10m')
      .sign(privateKey);
    type Listed = {
      node: string;
      sessions: { node: string; user: string }[];
      unanswered_nodes: number | null;
    };
    const list = async (): Promise<Listed> => {
      const res = await idp.http('/api/v1/sessions', { token });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body as { data: Listed }).data;
    };
    // Both nodes' sessions, once each node listens again (a node whose listening connection is still
    // reconnecting after the earlier restarts is not counted, or misses the request for a moment).
    const bothListed = async (): Promise<void> => {
      for (const started = Date.now(); ; await sleep(100)) {
        const listed = await list();
        // The earlier tests' clients of the first node are still open: admin may be there more than once.
        const users = [...new Set(listed.sessions.map((s) => s.user))].sort();
        if (listed.unanswered_nodes === 0 && users.join() === 'admin,ops-lead') return;
        assert.ok(Date.now() - started < 10_000, JSON.stringify(listed));
      }
    };
    try {
      const here = await idp.connect({ token });
      assert.equal((await here.next()).type, 'auth_success');
      const elsewhere = await ts.connectAuthed();
      await bothListed();

      await pg.pause();
      try {
        const alone = await list();
        assert.deepEqual(
          alone.sessions.map((s) => [s.user, s.node]),
          [['ops-lead', alone.node]],
        );
        // The other nodes can be neither asked nor counted: null says their sessions are missing.
        assert.equal(alone.unanswered_nodes, null);
      } finally {
        await pg.resume();
      }
      await bothListed();
      elsewhere.close();
    } finally {
      await idp.close();
      await new Promise<void>((resolve) => jwks.close(() => resolve()));
    }
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
