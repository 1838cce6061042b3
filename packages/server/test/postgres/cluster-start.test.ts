/**
 * Nodes started at the same moment on an empty PostgreSQL database (same RUSTYDB_ADMIN_PASSWORD, no
 * jwt_secret) all come up, with exactly one admin user and one signing secret shared through the
 * database: a token from any node is accepted by every other. The race is run several times, each on
 * a fresh database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { createHash, createHmac } from 'node:crypto';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { asSuperuser, dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: { connectionString: string }) => {
    connect(): Promise<void>;
    query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
    end(): Promise<void>;
  };
};

const NODES = 3;
const RACES = 3;

postgresCases('PostgreSQL cases', () => {
  test(`${NODES} nodes started at once on an empty database: one admin, one secret, tokens good everywhere (${RACES} races)`, async () => {
    for (let race = 1; race <= RACES; race++) {
      const engine = await engineConfig('postgres');
      const database = new URL(engine.database_url!).pathname.slice(1);
      const started = await Promise.allSettled(
        Array.from({ length: NODES }, () => startTestServer({ ...engine })),
      );
      const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
      try {
        const failures = started.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
        assert.deepEqual(failures, [], `race ${race}: every node starts`);
        const [users, secrets] = (await asSuperuser(
          [
            "SELECT username FROM rustydb._rustydb_users WHERE username = 'admin'",
            "SELECT value FROM rustydb.meta WHERE key = 'jwt_secret'",
          ],
          database,
        )) as { rows: unknown[] }[];
        assert.equal(users!.rows.length, 1, `race ${race}: exactly one admin user`);
        assert.equal(secrets!.rows.length, 1, `race ${race}: exactly one signing secret`);
        const secret = Buffer.from(nodes[0]!.secret()).toString('base64');
        for (const node of nodes) assert.equal(Buffer.from(node.secret()).toString('base64'), secret);
        // The token each node issued at its login is accepted by every node.
        for (const issuer of nodes) {
          for (const other of nodes) {
            const me = await other.http('/api/v1/auth/me', { token: issuer.token });
            assert.equal(me.status, 200, `race ${race}: ${JSON.stringify(me.body)}`);
          }
        }
      } finally {
        await Promise.all(nodes.map((node: TestServer) => node.close()));
        await dropCaptureSlot(engine.database_url!);
      }
    }
  });

  test('a node starts while another node is in the middle of a privileges sync that grants on the public schema', async () => {
    const engine = await engineConfig('postgres');
    const first = await startTestServer({ ...engine });
    // What a running node does when a role gets CREATE (rustydb_api.sync_privileges), held open.
    const running = new pg.Client({ connectionString: engine.database_url! });
    await running.connect();
    let second: TestServer | undefined;
    try {
      await running.query('BEGIN');
      await running.query(
        "INSERT INTO rustydb._rustydb_roles (name, description) VALUES ('makers', ''); INSERT INTO rustydb._rustydb_grants (role, privilege, table_name) VALUES ('makers', 'CREATE', '')",
      );
      await running.query('SELECT rustydb_api.sync_privileges()');
      const starting = startTestServer({ ...engine });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await running.query('COMMIT');
      second = await starting;
      const me = await second.http('/api/v1/auth/me', { token: first.token });
      assert.equal(me.status, 200);
    } finally {
      await running.end();
      await second?.close();
      await first.close();
      await dropCaptureSlot(engine.database_url!);
    }
  });

  test("the first statements of a new set of roles on two nodes at once: both get the set's login role", async () => {
    const engine = await engineConfig('postgres');
    const node = await startTestServer({ enable_rate_limiting: false, ...engine });
    const other = new pg.Client({ connectionString: engine.database_url! });
    await other.connect();
    try {
      await node.http('/api/v1/roles', { body: { name: 'fresh_set', grants: [{ privilege: 'CREATE' }] } });
      await node.http('/api/v1/users', {
        body: { username: 'newcomer', password: 'newcomer-password', roles: ['fresh_set'] },
      });
      const login = await node.http('/api/v1/auth/login', {
        body: { username: 'newcomer', password: 'newcomer-password' },
        token: null,
      });
      const token = (login.body as { data: { token: string } }).data.token;
      // Another node makes the login role of the set {fresh_set} (as PostgresEngine does), not yet committed.
      const [{ prefix, secret }] = (
        await other.query(
          `SELECT 'rdb' || d.oid || '_' AS prefix, m.value AS secret FROM pg_database d, rustydb.meta m
            WHERE d.datname = current_database() AND m.key = 'session_role_secret'`,
        )
      ).rows as [{ prefix: string; secret: string }];
      const name = `${prefix}s_${createHash('sha256').update('fresh_set').digest('hex').slice(0, 24)}`;
      await other.query('BEGIN');
      await other.query('SELECT rustydb_api.session_role($1::text[], $2)', [
        ['fresh_set'],
        createHmac('sha256', secret).update(name).digest('base64url'),
      ]);
      const first = node.http('/api/v1/query', {
        body: { sql: 'CREATE TABLE made_by_newcomer (id int)' },
        token,
      });
      await new Promise((resolve) => setTimeout(resolve, 500));
      await other.query('COMMIT');
      const made = await first;
      assert.equal(made.status, 200, JSON.stringify(made.body));
    } finally {
      await other.end();
      await node.close();
      await dropCaptureSlot(engine.database_url!);
    }
  });
});
