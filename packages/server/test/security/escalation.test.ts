/**
 * Privilege escalation attempts by users holding narrow grants: reaching a table they were not granted
 * through views, triggers, CTEs, subqueries, INSERT … SELECT, RETURNING, upserts, REPLACE, renamed
 * tables and DDL. Each attempt runs over the WebSocket and over HTTP, must be PERMISSION_DENIED naming
 * exactly the privilege and table, and must leave every table as it was.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { assertAlive, connectWith, createRole, createUser, runAs, snapshot, type Route } from './helpers.ts';

const TABLES = ['pub', 'secret', 'secret_log', 'pub_logged', 'pub_guarded'];

let ts: TestServer;
const tokens: Record<string, string> = {};
const clients: Record<string, TestClient> = {};
let initial: Record<string, unknown[][]>;

before(async () => {
  ts = await startTestServer();
  for (const ddl of [
    'CREATE TABLE pub (id INTEGER PRIMARY KEY, p TEXT UNIQUE)',
    'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)',
    'CREATE TABLE secret_log (id INTEGER PRIMARY KEY, msg TEXT)',
    'CREATE TABLE pub_logged (id INTEGER PRIMARY KEY, p TEXT)',
    'CREATE TABLE pub_guarded (id INTEGER PRIMARY KEY, p TEXT)',
    'CREATE VIEW v_secret AS SELECT * FROM secret',
    'CREATE VIEW v_pub AS SELECT id, p FROM pub',
    // Writing pub_logged copies the row into secret_log, which its writers may not touch.
    'CREATE TRIGGER pub_logged_copy AFTER INSERT ON pub_logged BEGIN INSERT INTO secret_log (msg) VALUES (new.p); END',
    // Writing pub_guarded reads secret (a trigger condition).
    "CREATE TRIGGER pub_guarded_check BEFORE INSERT ON pub_guarded WHEN (SELECT count(*) FROM secret) > 100 BEGIN SELECT RAISE(ABORT, 'full'); END",
  ]) {
    await sql(ts, ddl);
  }
  await sql(ts, "INSERT INTO pub (p) VALUES ('one'), ('two')");
  await sql(ts, "INSERT INTO secret (s) VALUES ('launch-code'), ('salary')");
  await sql(ts, "INSERT INTO secret_log (msg) VALUES ('log-1')");

  await createRole(ts, 'pub_reader', [{ privilege: 'SELECT', table: 'pub' }]);
  await createRole(ts, 'pub_inserter', [
    { privilege: 'INSERT', table: 'pub' },
    { privilege: 'INSERT', table: 'pub_logged' },
    { privilege: 'INSERT', table: 'pub_guarded' },
  ]);
  await createRole(ts, 'pub_writer', [
    { privilege: 'SELECT', table: 'pub' },
    { privilege: 'INSERT', table: 'pub' },
    { privilege: 'UPDATE', table: 'pub' },
    { privilege: 'DELETE', table: 'pub' },
  ]);
  await createRole(ts, 'view_reader', [{ privilege: 'SELECT', table: 'v_secret' }]);
  await createRole(ts, 'builder', [{ privilege: 'CREATE' }, { privilege: 'SELECT', table: 'mine' }]);

  for (const [user, roles] of Object.entries({
    reader: ['pub_reader'],
    inserter: ['pub_inserter'],
    writer: ['pub_writer'],
    viewer: ['view_reader'],
    builder: ['builder'],
    everything_reader: ['readonly'],
  })) {
    tokens[user] = await createUser(ts, user, roles);
    clients[user] = await connectWith(ts, tokens[user]);
  }
  initial = await snapshot(ts, TABLES);
});

after(() => ts.close());

const BOTH: Route[] = ['stream query', 'http query'];

/** `user` runs `statement` on each route: PERMISSION_DENIED on exactly `privilege` on `table`; nothing changes. */
async function denied(user: string, statement: string, privilege: string, table: string): Promise<void> {
  for (const route of BOTH) {
    const out = await runAs(ts, route, tokens[user]!, clients[user]!, statement);
    assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement} → ${JSON.stringify(out)}`);
    const shown = privilege === 'WRITE' ? 'INSERT, UPDATE or DELETE' : privilege;
    assert.equal(out.message, `permission denied: ${shown} on table ${table}`, `${route}: ${statement}`);
    assert.deepEqual(out.details, { privilege, table }, `${route}: ${statement}`);
  }
  assert.deepEqual(await snapshot(ts, TABLES), initial, `data changed after: ${statement}`);
}

async function allowed(user: string, statement: string): Promise<unknown[][]> {
  const out = await runAs(ts, 'stream query', tokens[user]!, clients[user]!, statement);
  assert.equal(out.code, 'ok', `${statement} → ${JSON.stringify(out)}`);
  return out.rows!;
}

test('control: the reader reads pub, and the readonly role reads secret', async () => {
  assert.deepEqual(await allowed('reader', 'SELECT p FROM pub ORDER BY id'), [['one'], ['two']]);
  assert.deepEqual(await allowed('everything_reader', 'SELECT s FROM secret ORDER BY id'), [
    ['launch-code'],
    ['salary'],
  ]);
});

test('direct read of an ungranted table', async () => {
  await denied('reader', 'SELECT * FROM secret', 'SELECT', 'secret');
});

test('direct read, spelled in another case and quoted', async () => {
  await denied('reader', 'SELECT * FROM "SECRET"', 'SELECT', 'secret');
  await denied('reader', 'SELECT * FROM main.Secret', 'SELECT', 'secret');
});

test('a view over the table: a grant on the view does not reach its base table', async () => {
  await denied('viewer', 'SELECT * FROM v_secret', 'SELECT', 'secret');
  await denied('reader', 'SELECT * FROM v_secret', 'SELECT', 'secret');
});

test('a view over a granted table is readable', async () => {
  assert.deepEqual(await allowed('reader', 'SELECT p FROM v_pub ORDER BY id'), [['one'], ['two']]);
});

test('a CTE reading the table', async () => {
  await denied('reader', 'WITH x AS (SELECT * FROM secret) SELECT * FROM x', 'SELECT', 'secret');
});

test('a recursive CTE joined to the table', async () => {
  await denied(
    'reader',
    'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3) SELECT s FROM n JOIN secret ON secret.id = n.i',
    'SELECT',
    'secret',
  );
});

test('a scalar subquery in the select list', async () => {
  await denied('reader', 'SELECT p, (SELECT s FROM secret LIMIT 1) FROM pub', 'SELECT', 'secret');
});

test('an EXISTS subquery used as an oracle', async () => {
  await denied(
    'reader',
    "SELECT p FROM pub WHERE EXISTS (SELECT 1 FROM secret WHERE s LIKE 'launch%')",
    'SELECT',
    'secret',
  );
});

test('a subquery that never runs (the row cannot match, LIMIT 0) is refused all the same', async () => {
  await denied(
    'reader',
    'SELECT p FROM pub WHERE id = -1 AND id IN (SELECT id FROM secret)',
    'SELECT',
    'secret',
  );
  await denied('reader', 'SELECT * FROM (SELECT * FROM secret LIMIT 0)', 'SELECT', 'secret');
});

test('a subquery the planner removes entirely (WHERE 0) reads nothing and returns nothing', async () => {
  // Not in the compiled program, so nothing of `secret` can be reached: the statement is harmless.
  assert.deepEqual(
    await allowed('reader', 'SELECT p FROM pub WHERE 0 AND id IN (SELECT id FROM secret)'),
    [],
  );
});

test('a UNION with the table', async () => {
  await denied('reader', 'SELECT p FROM pub UNION ALL SELECT s FROM secret', 'SELECT', 'secret');
});

test('a JOIN with the table', async () => {
  await denied('reader', 'SELECT * FROM pub JOIN secret ON pub.id = secret.id', 'SELECT', 'secret');
});

test('an aggregate and a window function over the table', async () => {
  await denied('reader', 'SELECT count(*) FROM secret', 'SELECT', 'secret');
  await denied('reader', 'SELECT s, row_number() OVER (ORDER BY id) FROM secret', 'SELECT', 'secret');
});

test('json_each over a column of the table', async () => {
  await denied(
    'reader',
    'SELECT value FROM json_each((SELECT json_group_array(s) FROM secret))',
    'SELECT',
    'secret',
  );
});

test('INSERT … SELECT copying the table into a writable one', async () => {
  await denied('writer', 'INSERT INTO pub (p) SELECT s FROM secret', 'SELECT', 'secret');
});

test('UPDATE with a subquery reading the table', async () => {
  await denied(
    'writer',
    'UPDATE pub SET p = (SELECT s FROM secret WHERE id = 1) WHERE id = 1',
    'SELECT',
    'secret',
  );
});

test('UPDATE … FROM the table', async () => {
  await denied(
    'writer',
    'UPDATE pub SET p = secret.s FROM secret WHERE secret.id = pub.id',
    'SELECT',
    'secret',
  );
});

test('DELETE driven by the table', async () => {
  await denied('writer', 'DELETE FROM pub WHERE id IN (SELECT id FROM secret)', 'SELECT', 'secret');
});

test('INSERT … RETURNING without SELECT on the target', async () => {
  await denied('inserter', "INSERT INTO pub (p) VALUES ('x') RETURNING *", 'SELECT', 'pub');
});

test('INSERT … RETURNING a subquery over another table', async () => {
  await denied(
    'writer',
    "INSERT INTO pub (p) VALUES ('x') RETURNING (SELECT s FROM secret LIMIT 1)",
    'SELECT',
    'secret',
  );
});

test('an upsert (ON CONFLICT DO UPDATE) without UPDATE', async () => {
  await denied(
    'inserter',
    "INSERT INTO pub (p) VALUES ('one') ON CONFLICT (p) DO UPDATE SET p = 'hijacked'",
    'UPDATE',
    'pub',
  );
});

test('INSERT OR REPLACE without DELETE', async () => {
  await denied('inserter', "INSERT OR REPLACE INTO pub (id, p) VALUES (1, 'replaced')", 'DELETE', 'pub');
});

test('REPLACE INTO without DELETE', async () => {
  await denied('inserter', "REPLACE INTO pub (id, p) VALUES (1, 'replaced')", 'DELETE', 'pub');
});

test('UPDATE OR REPLACE on an ungranted table (it reads before it writes)', async () => {
  await denied('writer', "UPDATE OR REPLACE secret SET s = 'x'", 'SELECT', 'secret');
});

test('UPDATE OR REPLACE without DELETE on a granted table', async () => {
  await createRole(ts, 'pub_updater', [
    { privilege: 'SELECT', table: 'pub' },
    { privilege: 'UPDATE', table: 'pub' },
  ]);
  tokens.updater = await createUser(ts, 'updater', ['pub_updater']);
  clients.updater = await connectWith(ts, tokens.updater);
  await denied('updater', "UPDATE OR REPLACE pub SET p = 'one' WHERE id = 2", 'DELETE', 'pub');
});

test('DELETE without WHERE by a user who may read but not delete', async () => {
  await denied('reader', 'DELETE FROM pub', 'DELETE', 'pub');
});

test('DELETE without WHERE by a user who may neither read nor delete (the first missing right is named)', async () => {
  await denied('inserter', 'DELETE FROM pub', 'SELECT', 'pub');
});

test('DELETE without WHERE on an ungranted table by a user who may delete elsewhere', async () => {
  await denied('writer', 'DELETE FROM secret', 'SELECT', 'secret');
});

test('a write on a granted table whose trigger writes an ungranted one', async () => {
  await denied('inserter', "INSERT INTO pub_logged (p) VALUES ('via-trigger')", 'WRITE', 'secret_log');
});

test('a write on a granted table whose trigger reads an ungranted one', async () => {
  await denied('inserter', "INSERT INTO pub_guarded (p) VALUES ('probe')", 'SELECT', 'secret');
});

test('DDL without the DDL privilege names the global privilege', async () => {
  for (const [statement, privilege] of [
    ['DROP TABLE secret', 'DROP'],
    ['ALTER TABLE secret ADD COLUMN leak TEXT', 'ALTER'],
    ['ALTER TABLE secret RENAME TO mine', 'ALTER'],
    ['CREATE TABLE mine (x)', 'CREATE'],
    ['CREATE VIEW mine AS SELECT 1', 'CREATE'],
  ] as const) {
    for (const route of BOTH) {
      const out = await runAs(ts, route, tokens.writer!, clients.writer!, statement);
      assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement}`);
      assert.equal(out.message, `permission denied: ${privilege} privilege required`);
      assert.deepEqual(out.details, { privilege }, `${route}: ${statement}`);
    }
  }
  assert.deepEqual(await snapshot(ts, TABLES), initial);
});

test('CREATE TABLE … AS SELECT from an ungranted table', async () => {
  await denied('builder', 'CREATE TABLE mine AS SELECT * FROM secret', 'SELECT', 'secret');
  const missing = await runAs(ts, 'http query', tokens.builder!, clients.builder!, 'SELECT * FROM mine');
  assert.equal(missing.code, 'TABLE_NOT_FOUND');
});

test('CREATE INDEX on an ungranted table', async () => {
  await denied('builder', 'CREATE INDEX secret_s ON secret (s)', 'SELECT', 'secret');
});

test('a view created by a user over an ungranted table cannot be read through', async () => {
  const created = await runAs(
    ts,
    'stream query',
    tokens.builder!,
    clients.builder!,
    'CREATE VIEW mine AS SELECT * FROM secret',
  );
  assert.equal(created.code, 'ok');
  try {
    await denied('builder', 'SELECT * FROM mine', 'SELECT', 'secret');
  } finally {
    await sql(ts, 'DROP VIEW mine');
  }
});

test('a table renamed by the admin is out of reach of a grant on its old name', async () => {
  await sql(ts, 'CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER)');
  await sql(ts, 'INSERT INTO ledger (amount) VALUES (100)');
  await createRole(ts, 'ledger_reader', [{ privilege: 'SELECT', table: 'ledger' }]);
  const token = await createUser(ts, 'accountant', ['ledger_reader']);
  const c = await connectWith(ts, token);
  assert.deepEqual((await c.query('SELECT amount FROM ledger')).rows, [[100]]);
  await sql(ts, 'ALTER TABLE ledger RENAME TO ledger_archive');
  for (const route of BOTH) {
    const renamed = await runAs(ts, route, token, c, 'SELECT amount FROM ledger_archive');
    assert.equal(renamed.code, 'PERMISSION_DENIED', route);
    assert.deepEqual(renamed.details, { privilege: 'SELECT', table: 'ledger_archive' });
    const old = await runAs(ts, route, token, c, 'SELECT amount FROM ledger');
    assert.equal(old.code, 'TABLE_NOT_FOUND', route);
  }
  assert.deepEqual((await sql(ts, 'SELECT amount FROM ledger_archive')).rows, [[100]]);
});

test('a statement cached before a rename is re-checked after it', async () => {
  await sql(ts, 'CREATE TABLE drafts (id INTEGER PRIMARY KEY, body TEXT)');
  await sql(ts, "INSERT INTO drafts (body) VALUES ('draft')");
  await createRole(ts, 'drafts_reader', [{ privilege: 'SELECT', table: 'drafts' }]);
  const token = await createUser(ts, 'editor', ['drafts_reader']);
  const c = await connectWith(ts, token);
  // The same text, first on the granted table, then (after two renames) on another one.
  assert.deepEqual((await c.query('SELECT * FROM drafts')).rows, [[1, 'draft']]);
  await sql(ts, 'ALTER TABLE drafts RENAME TO drafts_old');
  await sql(ts, 'ALTER TABLE secret RENAME TO drafts');
  try {
    const out = await runAs(ts, 'stream query', token, c, 'SELECT * FROM drafts');
    // A grant names a table; the table now called `drafts` is readable under that grant. What matters
    // is that the old table is not, whatever the cache held.
    const old = await runAs(ts, 'stream query', token, c, 'SELECT * FROM drafts_old');
    assert.equal(old.code, 'PERMISSION_DENIED');
    assert.deepEqual(old.details, { privilege: 'SELECT', table: 'drafts_old' });
    assert.equal(out.code, 'ok');
  } finally {
    await sql(ts, 'ALTER TABLE drafts RENAME TO secret');
    await sql(ts, 'ALTER TABLE drafts_old RENAME TO drafts');
  }
  assert.deepEqual(await snapshot(ts, TABLES), initial);
});

test('a user holding ALTER cannot rename an ungranted table onto a granted name', async () => {
  await sql(ts, 'CREATE TABLE own (x)');
  await createRole(ts, 'alterer', [
    { privilege: 'ALTER' },
    { privilege: 'SELECT', table: 'loot' },
    ...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((privilege) => ({ privilege, table: 'own' })),
  ]);
  const token = await createUser(ts, 'renamer', ['alterer']);
  const c = await connectWith(ts, token);
  for (const statement of [
    'ALTER TABLE secret RENAME TO loot',
    'ALTER TABLE main."secret" RENAME TO loot',
    'ALTER TABLE secret RENAME COLUMN s TO loot',
    'ALTER TABLE secret DROP COLUMN s',
  ]) {
    const out = await runAs(ts, 'stream query', token, c, statement);
    assert.equal(out.code, 'PERMISSION_DENIED', `${statement}: ${JSON.stringify(out)}`);
    assert.deepEqual(out.details, { privilege: 'SELECT', table: 'secret' }, statement);
  }
  // Control: the same user may alter a table on which it holds every right.
  const own = await runAs(ts, 'stream query', token, c, 'ALTER TABLE own ADD COLUMN extra TEXT');
  assert.equal(own.code, 'ok', JSON.stringify(own));
  const read = await runAs(ts, 'stream query', token, c, 'SELECT * FROM loot');
  assert.notEqual(read.code, 'ok', 'the secret table became readable under a granted name');
  assert.deepEqual(await snapshot(ts, TABLES), initial);
});

test('a user holding CREATE cannot plant a trigger on an ungranted table', async () => {
  await createRole(ts, 'planter', [
    { privilege: 'CREATE' },
    { privilege: 'SELECT', table: 'drop_box' },
    { privilege: 'INSERT', table: 'drop_box' },
    ...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((privilege) => ({ privilege, table: 'planter_own' })),
  ]);
  await sql(ts, 'CREATE TABLE drop_box (v TEXT)');
  await sql(ts, 'CREATE TABLE planter_own (v TEXT)');
  const token = await createUser(ts, 'planter', ['planter']);
  const c = await connectWith(ts, token);
  const out = await runAs(
    ts,
    'stream query',
    token,
    c,
    'CREATE TRIGGER siphon AFTER INSERT ON secret BEGIN INSERT INTO drop_box (v) VALUES (new.s); END',
  );
  assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
  assert.deepEqual(out.details, { privilege: 'ADMIN' });
  // Triggers are stored code: even on a table the planter holds every right on, creating one takes
  // ADMIN (stored-code.test.ts covers the rule).
  const own = await runAs(
    ts,
    'stream query',
    token,
    c,
    'CREATE TRIGGER mine AFTER INSERT ON planter_own BEGIN INSERT INTO drop_box (v) VALUES (new.v); END',
  );
  assert.equal(own.code, 'PERMISSION_DENIED', JSON.stringify(own));
  assert.deepEqual(own.details, { privilege: 'ADMIN' });
  // Whatever happened, the admin's next secret must not land where the planter can read it.
  await sql(ts, "INSERT INTO secret (s) VALUES ('new-secret')");
  try {
    const read = await runAs(ts, 'stream query', token, c, 'SELECT v FROM drop_box');
    assert.deepEqual(read.rows, []);
  } finally {
    await sql(ts, "DELETE FROM secret WHERE s = 'new-secret'");
    await sql(ts, 'DROP TRIGGER IF EXISTS siphon');
  }
});

test('a deleted role re-created later under the same name grants nothing to its former holders', async () => {
  await createRole(ts, 'temp_auditor', [{ privilege: 'SELECT', table: 'pub' }]);
  const token = await createUser(ts, 'former', ['temp_auditor']);
  const c = await connectWith(ts, token);
  assert.equal((await runAs(ts, 'stream query', token, c, 'SELECT count(*) FROM pub')).code, 'ok');
  assert.equal((await ts.http('/api/v1/roles/temp_auditor', { method: 'DELETE' })).status, 200);
  assert.deepEqual(
    ((await ts.http('/api/v1/users/former')).body as { data: { roles: string[] } }).data.roles,
    [],
  );
  // Someone creates a powerful role that happens to reuse the name.
  await createRole(ts, 'temp_auditor', [{ privilege: 'SELECT', table: 'secret' }]);
  for (const route of BOTH) {
    const out = await runAs(ts, route, token, c, 'SELECT * FROM secret');
    assert.equal(out.code, 'PERMISSION_DENIED', route);
  }
  await ts.http('/api/v1/roles/temp_auditor', { method: 'DELETE' });
});

test('an administrator cannot disable themselves or drop their own ADMIN privilege', async () => {
  for (const body of [{ disabled: true }, { roles: ['readwrite'] }, { roles: [] }]) {
    const res = await ts.http('/api/v1/users/admin', { method: 'PATCH', body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
  }
  const user = (await ts.http('/api/v1/users/admin')).body as {
    data: { roles: string[]; disabled: boolean };
  };
  assert.deepEqual(user.data, { username: 'admin', roles: ['admin'], disabled: false });
  // Keeping ADMIN through another role is fine.
  assert.equal(
    (await ts.http('/api/v1/users/admin', { method: 'PATCH', body: { roles: ['admin', 'monitor'] } })).status,
    200,
  );
  assert.equal(
    (await ts.http('/api/v1/users/admin', { method: 'PATCH', body: { roles: ['admin'] } })).status,
    200,
  );
});

test('temporary objects cannot be used to shadow a granted table', async () => {
  for (const route of BOTH) {
    const out = await runAs(
      ts,
      route,
      tokens.builder!,
      clients.builder!,
      'CREATE TEMP VIEW pub AS SELECT * FROM secret',
    );
    assert.equal(out.code, 'PERMISSION_DENIED', route);
  }
  assert.deepEqual(await allowed('reader', 'SELECT p FROM pub ORDER BY id'), [['one'], ['two']]);
});

test('a readonly-like role reads exactly the granted table, on every route, and writes nothing', async () => {
  const routes: Route[] = [
    'stream query',
    'stream batch',
    'stream transaction',
    'http query',
    'http batch',
    'graphql',
  ];
  for (const route of routes) {
    const ok = await runAs(ts, route, tokens.reader!, clients.reader!, 'SELECT p FROM pub ORDER BY id');
    assert.equal(ok.code, 'ok', route);
    assert.deepEqual(ok.rows, [['one'], ['two']], route);
    for (const [statement, privilege, table] of [
      ['SELECT * FROM secret', 'SELECT', 'secret'],
      ['SELECT * FROM secret_log', 'SELECT', 'secret_log'],
      ['SELECT * FROM pub_logged', 'SELECT', 'pub_logged'],
      ["INSERT INTO pub (p) VALUES ('no')", 'INSERT', 'pub'],
      ["UPDATE pub SET p = 'no'", 'UPDATE', 'pub'],
      ['DELETE FROM pub WHERE id = 1', 'DELETE', 'pub'],
    ] as const) {
      const out = await runAs(ts, route, tokens.reader!, clients.reader!, statement);
      assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement}`);
      // Batch items carry no details; the message names the table and privilege either way.
      assert.match(
        out.message!,
        new RegExp(`permission denied: ${privilege} on table ${table}$`),
        `${route}: ${statement}`,
      );
    }
    const ddl = await runAs(ts, route, tokens.reader!, clients.reader!, 'CREATE TABLE nope (x)');
    assert.equal(ddl.code, 'PERMISSION_DENIED', route);
  }
  assert.deepEqual(await snapshot(ts, TABLES), initial);
});

test('after every attempt the data is intact and the server serves', async () => {
  assert.deepEqual(await snapshot(ts, TABLES), initial);
  await assertAlive(ts);
});
