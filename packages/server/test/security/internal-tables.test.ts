/**
 * The server's own tables (`_rustydb_users`, `_rustydb_grants`, the change log, revoked tokens, …) are
 * out of reach of every client, admins included, whatever the spelling and whichever route the
 * statement takes: WebSocket query, WebSocket batch (with and without a transaction), HTTP query and
 * HTTP batch. Each attempt is PERMISSION_DENIED, and users, roles and grants are unchanged afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, login, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { assertAlive, connectWith, createUser, runAs, ROUTES, securityState } from './helpers.ts';

let ts: TestServer;
let writerToken: string;
let writer: TestClient;
let admin: TestClient;
let initialState: unknown;

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
  writerToken = await createUser(ts, 'writer', ['readwrite']);
  writer = await connectWith(ts, writerToken);
  admin = await ts.connectAuthed();
  initialState = await securityState(ts);
});

after(() => ts.close());

const ATTEMPTS = [
  'SELECT * FROM _rustydb_users',
  'SELECT password_hash FROM "_rustydb_users"',
  'SELECT * FROM [_rustydb_users]',
  'SELECT * FROM `_rustydb_users`',
  'SELECT * FROM _RustyDB_Users',
  'SELECT * FROM main._rustydb_grants',
  'SELECT * FROM "main"."_RUSTYDB_ROLES"',
  'SELECT * FROM _rustydb_revoked_tokens',
  'SELECT * FROM _rustydb_changes',
  'SELECT * FROM/**/_rustydb_users',
  "SELECT * FROM pragma_table_info('_rustydb_users')",
  "SELECT * FROM pragma_index_list('_RUSTYDB_GRANTS')",
  "SELECT sql FROM sqlite_schema WHERE name = '_rustydb_users'",
  "INSERT INTO _rustydb_users (username, password_hash, roles) VALUES ('evil', 'x', '[\"admin\"]')",
  "UPDATE _rustydb_grants SET privilege = 'ADMIN'",
  "INSERT INTO _rustydb_grants (role, privilege, table_name) VALUES ('readonly', 'ADMIN', '')",
  'DELETE FROM _rustydb_revoked_tokens',
  'DROP TABLE _rustydb_users',
  'CREATE VIEW leak AS SELECT * FROM _rustydb_users',
  'CREATE TRIGGER t_leak AFTER INSERT ON notes BEGIN DELETE FROM _rustydb_users; END',
  'ALTER TABLE _rustydb_users RENAME TO stolen',
  "SELECT * FROM notes WHERE body = '_rustydb_users'",
] as const;

for (const statement of ATTEMPTS) {
  for (const route of ROUTES) {
    test(`${route}: ${statement}`, async () => {
      for (const [who, token, client] of [
        ['readwrite user', writerToken, writer],
        ['admin', ts.token, admin],
      ] as const) {
        const out = await runAs(ts, route, token, client, statement);
        assert.equal(out.code, 'PERMISSION_DENIED', `${who}: ${JSON.stringify(out)}`);
        assert.match(out.message!, /internal tables are not accessible$/, who);
      }
    });
  }
}

test('a computed table-function argument reveals nothing of an internal table, not even its columns', async () => {
  // The name as a blob literal slips past the lexical check; the catalogue a user without ADMIN is
  // served holds no internal table, so pragma_table_info answers as for a table that does not exist.
  const hex = Buffer.from('_rustydb_users').toString('hex');
  for (const statement of [
    `SELECT name FROM pragma_table_info(x'${hex}')`,
    `SELECT count(*) FROM sqlite_schema WHERE name = CAST(x'${hex}' AS TEXT)`,
  ]) {
    const out = await runAs(ts, 'stream query', writerToken, writer, statement);
    if (out.code === 'ok')
      assert.ok(
        out.rows!.every((r) => r.every((v) => v === 0)),
        `${statement}: ${JSON.stringify(out.rows)}`,
      );
    else assert.equal(out.code, 'PERMISSION_DENIED', `${statement}: ${out.message}`);
  }
});

test('after every attempt users, roles and grants are unchanged and the admin still logs in', async () => {
  assert.deepEqual(await securityState(ts), initialState);
  assert.equal((await login(ts.server.url, 'admin', ADMIN_PASSWORD)).status, 200);
  assert.equal((await login(ts.server.url, 'writer', 'user-password-1')).status, 200);
  await assertAlive(ts);
});
