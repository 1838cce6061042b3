/**
 * Nodes started at the same moment on an empty PostgreSQL database (same RUSTYDB_ADMIN_PASSWORD, no
 * jwt_secret) all come up, with exactly one admin user and one signing secret shared through the
 * database: a token from any node is accepted by every other. The race is run several times, each on
 * a fresh database.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { asSuperuser, dropCaptureSlot, engineConfig, ENGINES } from '../helpers/engines.ts';

const NODES = 3;
const RACES = 3;

if (!ENGINES.includes('postgres')) {
  test('PostgreSQL cases: no PostgreSQL 15+ on this machine (install postgresql or set RUSTYDB_PG_BIN)', () => {
    assert.ok(!ENGINES.includes('postgres'));
  });
} else {
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
}
