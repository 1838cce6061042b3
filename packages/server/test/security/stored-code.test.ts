/**
 * Issue 14, breach 3, and its pattern: stored code runs with the privileges of whoever fires it, so it
 * must never be able to do more than its creator could. The rule RustyDB keeps: creating or dropping a
 * trigger (the only stored code SQLite runs that can read or write other tables) requires ADMIN; a
 * trigger an administrator made is still checked, when it fires, against the privileges of the user
 * whose statement fires it. Defaults, generated columns, CHECK constraints and views cannot read or
 * write on their own (SQLite refuses subqueries in the first three; a view is checked against the
 * tables under it for each reader).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { connectWith, createRole, createUser, runAs, snapshot } from './helpers.ts';

const SECRET = 'vault-combination-77';

let ts: TestServer;
let builder: string;
let builderSocket: TestClient;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, 'CREATE TABLE audit_trail (id INTEGER PRIMARY KEY, what TEXT)');
  await sql(ts, 'INSERT INTO secret (s) VALUES (?)', [SECRET]);
  // Everything on public_t, and the schema privileges: before, this was enough to plant a trigger.
  await createRole(ts, 'builder', [
    { privilege: 'CREATE' },
    { privilege: 'DROP' },
    { privilege: 'ALTER' },
    ...['SELECT', 'INSERT', 'UPDATE', 'DELETE'].map((privilege) => ({ privilege, table: 'public_t' })),
  ]);
  builder = await createUser(ts, 'builder', ['builder']);
  builderSocket = await connectWith(ts, builder);
});

after(() => ts.close());

async function asBuilder(statement: string): Promise<{ code: string; details?: Record<string, unknown> }> {
  return runAs(ts, 'stream query', builder, builderSocket, statement);
}

test('a trigger planted on a fully granted table cannot copy a secret table when the admin writes', async () => {
  const out = await asBuilder(
    'CREATE TRIGGER siphon AFTER INSERT ON public_t BEGIN INSERT INTO public_t (v) SELECT s FROM secret; END',
  );
  assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
  assert.deepEqual(out.details, { privilege: 'ADMIN' });
  // The admin's ordinary insert copies nothing.
  await sql(ts, "INSERT INTO public_t (v) VALUES ('by-admin')");
  const read = await runAs(ts, 'http query', builder, builderSocket, 'SELECT v FROM public_t');
  assert.deepEqual(read.rows, [['by-admin']]);
  await sql(ts, 'DELETE FROM public_t');
});

test('the same over HTTP, in a batch and in a transaction: no route creates a trigger without ADMIN', async () => {
  const statement =
    'CREATE TRIGGER siphon2 AFTER UPDATE ON public_t BEGIN UPDATE public_t SET v = (SELECT s FROM secret); END';
  for (const route of ['http query', 'stream batch', 'stream transaction', 'http batch'] as const) {
    const out = await runAs(ts, route, builder, builderSocket, statement);
    assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${JSON.stringify(out)}`);
  }
  // A transactional batch that creates a table first holds later statements to a coarser rule:
  // the trigger after it is refused as well.
  const batch = await builderSocket.request({
    type: 'batch',
    payload: {
      transaction: true,
      queries: [
        { sql: 'CREATE TABLE mine (v TEXT)' },
        {
          sql: 'CREATE TRIGGER on_mine AFTER INSERT ON mine BEGIN INSERT INTO mine SELECT s FROM secret; END',
        },
      ],
    },
  });
  assert.equal(batch.type, 'error', JSON.stringify(batch));
  assert.equal(batch.payload.code, 'PERMISSION_DENIED');
  const triggers = await sql(
    ts,
    "SELECT name FROM sqlite_schema WHERE type = 'trigger' AND name NOT LIKE '\\_rustydb\\_%' ESCAPE '\\'",
  );
  assert.deepEqual(triggers.rows, []);
});

test('a statement after DDL in a transactional batch is held to the same schema rules', async () => {
  // readwrite holds every table privilege on every table, CREATE, DROP and ALTER — not ADMIN.
  const writer = await createUser(ts, 'rw_user', ['readwrite']);
  const c = await connectWith(ts, writer);
  for (const [second, need] of [
    ['CREATE TRIGGER t_rw AFTER INSERT ON rw_a BEGIN INSERT INTO rw_a SELECT s FROM secret; END', 'ADMIN'],
    ['CREATE VIRTUAL TABLE rw_v USING dbstat', 'ADMIN'],
  ] as const) {
    const res = await c.request({
      type: 'batch',
      payload: { transaction: true, queries: [{ sql: 'CREATE TABLE rw_a (v TEXT)' }, { sql: second }] },
    });
    assert.equal(res.type, 'error', `${second}: ${JSON.stringify(res)}`);
    assert.equal(res.payload.code, 'PERMISSION_DENIED');
    assert.equal(res.payload.details?.privilege, need, JSON.stringify(res.payload));
  }
  // What no table privilege covers is found in the statement's program there too: it is compiled on a
  // copy of the schema with the batch's DDL applied (before, these ran with privileges on every table).
  for (const second of [
    'SELECT last_insert_rowid(), total_changes()',
    'INSERT INTO rw_a (v) SELECT changes()',
    'SELECT name, pgsize FROM dbstat',
    'CREATE VIEW rw_cat AS SELECT name FROM sqlite_schema',
  ]) {
    const res = await c.request({
      type: 'batch',
      payload: {
        transaction: true,
        queries: [
          { sql: 'CREATE TABLE rw_a (v TEXT)' },
          { sql: second },
          ...(second.startsWith('CREATE VIEW') ? [{ sql: 'SELECT name FROM rw_cat' }] : []),
        ],
      },
    });
    assert.equal(res.type, 'error', `${second}: ${JSON.stringify(res)}`);
    assert.equal(res.payload.code, 'PERMISSION_DENIED', `${second}: ${JSON.stringify(res)}`);
  }
  // Nothing of either batch was applied.
  const objects = await sql(ts, "SELECT name FROM sqlite_schema WHERE name LIKE 'rw\\_%' ESCAPE '\\'");
  assert.deepEqual(objects.rows, []);
  c.close();
});

test('a migration in one transactional batch still runs for a user holding the schema privileges', async () => {
  const writer = await createUser(ts, 'migrator', ['readwrite']);
  const c = await connectWith(ts, writer);
  const queries = [
    'CREATE TABLE mig_a (id INTEGER PRIMARY KEY, v TEXT)',
    "INSERT INTO mig_a (v) VALUES ('one'), ('two')",
    'CREATE INDEX mig_a_v ON mig_a (v)',
    'CREATE TABLE mig_b (id INTEGER PRIMARY KEY, a INTEGER REFERENCES mig_a(id), w TEXT)',
    "INSERT INTO mig_b (a, w) SELECT id, v || '!' FROM mig_a",
    'DROP INDEX mig_a_v',
    'CREATE VIEW mig_v AS SELECT b.w FROM mig_b AS b JOIN mig_a AS a ON a.id = b.a',
    'ALTER TABLE mig_a ADD COLUMN extra TEXT',
    'SELECT w FROM mig_v ORDER BY w',
    'DROP VIEW mig_v',
    'DROP TABLE mig_b',
    'DROP TABLE mig_a',
  ];
  const res = await c.request({
    type: 'batch',
    payload: { transaction: true, queries: queries.map((text) => ({ sql: text })) },
  });
  assert.equal(res.type, 'data', JSON.stringify(res));
  assert.deepEqual(res.payload.results![8]!.rows, [['one!'], ['two!']]);
  const left = await sql(ts, "SELECT name FROM sqlite_schema WHERE name LIKE 'mig\\_%' ESCAPE '\\'");
  assert.deepEqual(left.rows, []);
  c.close();
});

test('an INSTEAD OF trigger (a view used for writes) is stored code too', async () => {
  assert.equal((await asBuilder('CREATE VIEW pv AS SELECT id, v FROM public_t')).code, 'ok');
  const out = await asBuilder(
    'CREATE TRIGGER pv_insert INSTEAD OF INSERT ON pv BEGIN INSERT INTO public_t (v) SELECT s FROM secret; END',
  );
  assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
  assert.deepEqual(out.details, { privilege: 'ADMIN' });
  assert.equal((await asBuilder('DROP VIEW pv')).code, 'ok');
});

test("an administrator's trigger is not the builder's to drop", async () => {
  await sql(
    ts,
    "CREATE TRIGGER keep_trail AFTER DELETE ON public_t BEGIN INSERT INTO audit_trail (what) VALUES ('deleted ' || old.v); END",
  );
  const out = await asBuilder('DROP TRIGGER keep_trail');
  assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
  assert.deepEqual(out.details, { privilege: 'ADMIN' });
  await sql(ts, 'DROP TRIGGER keep_trail');
});

test("an administrator's trigger fires for users, checked against the firing user's privileges", async () => {
  await sql(
    ts,
    "CREATE TRIGGER trail AFTER INSERT ON public_t BEGIN INSERT INTO audit_trail (what) VALUES ('inserted ' || new.v); END",
  );
  try {
    // The builder may insert into public_t but not write audit_trail: the trigger's write is theirs.
    const refused = await asBuilder("INSERT INTO public_t (v) VALUES ('x')");
    assert.equal(refused.code, 'PERMISSION_DENIED', JSON.stringify(refused));
    assert.deepEqual(refused.details, { privilege: 'WRITE', table: 'audit_trail' });
    // A user who may write both fires it like anyone else.
    await createRole(ts, 'logger', [
      { privilege: 'INSERT', table: 'public_t' },
      { privilege: 'INSERT', table: 'audit_trail' },
    ]);
    const logger = await createUser(ts, 'logger', ['logger']);
    const c = await connectWith(ts, logger);
    const ok = await runAs(ts, 'stream query', logger, c, "INSERT INTO public_t (v) VALUES ('y')");
    assert.equal(ok.code, 'ok', JSON.stringify(ok));
    assert.deepEqual((await sql(ts, 'SELECT what FROM audit_trail')).rows, [['inserted y']]);
    c.close();
  } finally {
    await sql(ts, 'DROP TRIGGER trail');
    await sql(ts, 'DELETE FROM public_t');
    await sql(ts, 'DELETE FROM audit_trail');
  }
});

test('defaults, generated columns and CHECK constraints cannot read another table', async () => {
  const before_ = await snapshot(ts, ['secret']);
  for (const ddl of [
    'CREATE TABLE g1 (a INTEGER, b TEXT AS ((SELECT s FROM secret)))',
    'CREATE TABLE g2 (a INTEGER, b TEXT DEFAULT ((SELECT s FROM secret)))',
    'CREATE TABLE g3 (a TEXT CHECK (a <> (SELECT s FROM secret)))',
    'CREATE INDEX g4 ON public_t ((SELECT s FROM secret))',
    'CREATE INDEX g5 ON public_t (v) WHERE v IN (SELECT s FROM secret)',
  ]) {
    const out = await asBuilder(ddl);
    assert.notEqual(out.code, 'ok', `${ddl} was accepted`);
  }
  assert.deepEqual(await snapshot(ts, ['secret']), before_);
});

test('a view reading a secret table can be created, but reads nothing for its creator', async () => {
  assert.equal((await asBuilder('CREATE VIEW peek AS SELECT s FROM secret')).code, 'ok');
  const out = await asBuilder('SELECT * FROM peek');
  assert.equal(out.code, 'PERMISSION_DENIED');
  assert.deepEqual(out.details, { privilege: 'SELECT', table: 'secret' });
  assert.equal((await asBuilder('DROP VIEW peek')).code, 'ok');
});

test("writing through an administrator's view is checked against the writer, trigger body included", async () => {
  await sql(ts, 'CREATE VIEW entry AS SELECT id, v FROM public_t');
  await sql(
    ts,
    "CREATE TRIGGER entry_insert INSTEAD OF INSERT ON entry BEGIN INSERT INTO public_t (v) VALUES (new.v); INSERT INTO audit_trail (what) VALUES ('via view ' || new.v); END",
  );
  try {
    const before_ = await snapshot(ts, ['public_t', 'audit_trail']);
    // The builder may write public_t but not audit_trail: the view's trigger writes both for them.
    const out = await asBuilder("INSERT INTO entry (v) VALUES ('through-the-view')");
    assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
    assert.deepEqual(out.details, { privilege: 'WRITE', table: 'audit_trail' });
    assert.deepEqual(await snapshot(ts, ['public_t', 'audit_trail']), before_);
    // The administrator's own write goes through the same trigger.
    await sql(ts, "INSERT INTO entry (v) VALUES ('by-admin')");
    assert.deepEqual((await sql(ts, 'SELECT what FROM audit_trail')).rows, [['via view by-admin']]);
  } finally {
    await sql(ts, 'DROP VIEW entry');
    await sql(ts, 'DELETE FROM public_t');
    await sql(ts, 'DELETE FROM audit_trail');
  }
});

test('a foreign-key action is a write of the user whose statement sets it off', async () => {
  // An administrator's table whose rows go with the public_t row they refer to.
  await sql(
    ts,
    'CREATE TABLE orders (id INTEGER PRIMARY KEY, item INTEGER REFERENCES public_t(id) ON DELETE CASCADE ON UPDATE SET NULL)',
  );
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (1, 'item')");
  await sql(ts, 'INSERT INTO orders (item) VALUES (1)');
  // The builder may read orders (so that what is missing is the write).
  await createRole(ts, 'orders_reader', [{ privilege: 'SELECT', table: 'orders' }]);
  await createRole(ts, 'probe_owner', [
    { privilege: 'SELECT', table: 'probe' },
    { privilege: 'INSERT', table: 'probe' },
  ]);
  const res = await ts.http('/api/v1/users/builder', {
    method: 'PATCH',
    body: { roles: ['builder', 'orders_reader', 'probe_owner'] },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  try {
    // The builder may delete and update public_t, but not write orders: the cascade would.
    for (const statement of [
      'DELETE FROM public_t WHERE id = 1',
      'UPDATE public_t SET id = 2 WHERE id = 1',
    ]) {
      const out = await asBuilder(statement);
      assert.equal(out.code, 'PERMISSION_DENIED', `${statement}: ${JSON.stringify(out)}`);
      assert.deepEqual(out.details, { privilege: 'WRITE', table: 'orders' }, statement);
    }
    assert.deepEqual((await sql(ts, 'SELECT item FROM orders')).rows, [[1]]);
    // And a reference is a read: inserting into the builder's own table that refers to secret needs
    // SELECT on secret (the check tells whether that secret row exists), whatever the value.
    assert.equal((await asBuilder('CREATE TABLE probe (s INTEGER REFERENCES secret(id))')).code, 'ok');
    const probe = await asBuilder('INSERT INTO probe (s) VALUES (1)');
    assert.equal(probe.code, 'PERMISSION_DENIED', JSON.stringify(probe));
    assert.deepEqual(probe.details, { privilege: 'SELECT', table: 'secret' });
    assert.equal((await asBuilder('INSERT INTO probe (s) VALUES (NULL)')).code, 'PERMISSION_DENIED');
  } finally {
    await sql(ts, 'DROP TABLE IF EXISTS probe');
    await sql(ts, 'DROP TABLE orders');
    await sql(ts, 'DELETE FROM public_t');
    await ts.http('/api/v1/users/builder', { method: 'PATCH', body: { roles: ['builder'] } });
  }
});
