/**
 * Issue 14, breach 5, and its pattern: which virtual tables a statement reads is decided from what
 * its compiled program opens, never from names in its text. A CTE, a view, an alias or a user table
 * named like an allowed table-valued function (json_each, json_tree, pragma_…) must not let another
 * virtual table (dbstat, an FTS index, …) through.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { connectWith, createRole, createUser, runAs, type Route } from './helpers.ts';

let ts: TestServer;
let eve: string;
let eveSocket: TestClient;
let builder: string;
let builderSocket: TestClient;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, "INSERT INTO secret (s) VALUES ('page-content-of-the-secret')");
  await sql(ts, 'CREATE VIRTUAL TABLE notes_fts USING fts5(body)');
  await sql(ts, "INSERT INTO notes_fts (body) VALUES ('indexed secret note')");
  await createRole(ts, 'eve_role', [{ privilege: 'SELECT', table: 'public_t' }]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  eveSocket = await connectWith(ts, eve);
  // A user who may create tables and views and write one of them.
  await createRole(ts, 'builder_role', [
    { privilege: 'CREATE' },
    { privilege: 'DROP' },
    ...['SELECT', 'INSERT'].map((privilege) => ({ privilege, table: 'json_each' })),
    ...['SELECT', 'INSERT'].map((privilege) => ({ privilege, table: 'public_t' })),
  ]);
  builder = await createUser(ts, 'builder', ['builder_role']);
  builderSocket = await connectWith(ts, builder);
});

after(() => ts.close());

const ROUTES: Route[] = ['stream query', 'http query', 'stream batch', 'graphql'];

async function refusedToEve(statement: string): Promise<void> {
  for (const route of ROUTES) {
    const out = await runAs(ts, route, eve, eveSocket, statement);
    assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement} → ${JSON.stringify(out)}`);
    if (out.details) assert.deepEqual(out.details, { privilege: 'ADMIN' }, statement);
  }
}

test('a CTE named like an allowed table function does not open dbstat (the reported breach)', async () => {
  await refusedToEve(
    "WITH json_each(x) AS (SELECT 1) SELECT name, pageno, payload FROM dbstat WHERE name IN ('secret')",
  );
});

test('every spelling of the same trick: other function names, aliases, several CTEs, subqueries', async () => {
  for (const statement of [
    "WITH json_tree(x) AS (SELECT 1) SELECT name FROM dbstat WHERE name = 'secret'",
    "WITH pragma_table_info(x) AS (SELECT 1) SELECT name FROM dbstat WHERE name = 'secret'",
    'WITH "json_each"(x) AS (SELECT 1), json_tree(y) AS (SELECT 2) SELECT * FROM dbstat, notes_fts',
    "WITH json_each(x) AS (SELECT 1) SELECT body FROM notes_fts WHERE notes_fts MATCH 'secret'",
    "SELECT * FROM dbstat AS json_each WHERE json_each.name = 'secret'",
    "SELECT (SELECT count(*) FROM dbstat) FROM json_each('[1]')",
    "SELECT j.value, d.name FROM json_each('[1]') AS j, dbstat AS d",
    'WITH json_each(x) AS (SELECT 1) SELECT x FROM json_each UNION ALL SELECT pageno FROM dbstat',
  ]) {
    await refusedToEve(statement);
  }
});

test('the real table-valued functions stay open to everyone, under any alias', async () => {
  for (const [statement, rows] of [
    ["SELECT value FROM json_each('[1,2]')", [[1], [2]]],
    ["SELECT value FROM json_each('[1,2]') AS dbstat", [[1], [2]]],
    ["WITH dbstat(x) AS (SELECT 1) SELECT x + value FROM dbstat, json_each('[1]')", [[2]]],
    ["SELECT key FROM json_tree('{\"a\":1}') WHERE key = 'a'", [['a']]],
    ["SELECT count(*) FROM json_each('[1]') AS a, json_each('[1,2]') AS b", [[2]]],
  ] as const) {
    const out = await runAs(ts, 'stream query', eve, eveSocket, statement);
    assert.equal(out.code, 'ok', `${statement}: ${JSON.stringify(out)}`);
    assert.deepEqual(out.rows, rows, statement);
  }
});

test('a live query cannot reach a virtual table under any name either', async () => {
  for (const [id, query] of [
    ['cte', "WITH json_each(x) AS (SELECT 1) SELECT name, pageno FROM dbstat WHERE name = 'secret'"],
    ['alias', 'SELECT count(*) FROM dbstat AS json_tree'],
    ['fts', "SELECT body FROM notes_fts WHERE notes_fts MATCH 'secret'"],
    ['nested', 'SELECT * FROM public_t WHERE id IN (SELECT pageno FROM dbstat)'],
  ] as const) {
    eveSocket.send({ type: 'subscribe', id, payload: { query } });
    const answer = await eveSocket.next((m) => m.id === id);
    assert.equal(answer.type, 'error', `${query}: ${JSON.stringify(answer)}`);
    assert.equal(answer.payload.code, 'PERMISSION_DENIED', query);
  }
  assert.ok(!JSON.stringify(eveSocket.received).includes('page-content'), 'a page of secret was sent');
});

test('what a statement only tests or copies is refused too: EXISTS, counts, INSERT … SELECT, RETURNING', async () => {
  for (const statement of [
    "SELECT EXISTS (SELECT 1 FROM dbstat WHERE name = 'secret')",
    "SELECT id FROM public_t WHERE (SELECT count(*) FROM notes_fts WHERE notes_fts MATCH 'secret') > 0",
    'SELECT v FROM public_t ORDER BY (SELECT max(pgsize) FROM dbstat)',
    "SELECT CASE WHEN EXISTS (SELECT 1 FROM notes_fts) THEN 'y' END",
  ]) {
    await refusedToEve(statement);
  }
  const before_ = await sql(ts, 'SELECT * FROM public_t ORDER BY id');
  for (const statement of [
    "INSERT INTO public_t (v) SELECT name FROM dbstat WHERE name = 'secret'",
    "INSERT INTO public_t (v) SELECT body FROM notes_fts WHERE notes_fts MATCH 'secret'",
    "INSERT INTO public_t (v) VALUES ('x') RETURNING (SELECT count(*) FROM dbstat)",
    'INSERT INTO public_t (v) VALUES ((SELECT body FROM notes_fts LIMIT 1))',
  ]) {
    for (const route of ['stream query', 'http query', 'stream transaction'] as const) {
      const out = await runAs(ts, route, builder, builderSocket, statement);
      assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement} → ${JSON.stringify(out)}`);
      if (out.details) assert.equal(out.details.privilege, 'ADMIN', statement);
    }
  }
  assert.deepEqual(await sql(ts, 'SELECT * FROM public_t ORDER BY id'), before_);
});

test("an administrator's view over a virtual table gives a user nothing, even granted by name", async () => {
  await sql(ts, 'CREATE VIEW notes_view AS SELECT body FROM notes_fts');
  await createRole(ts, 'view_reader', [{ privilege: 'SELECT', table: 'notes_view' }]);
  const reader = await createUser(ts, 'view_reader_user', ['view_reader', 'eve_role']);
  const c = await connectWith(ts, reader);
  try {
    for (const route of ['stream query', 'http query', 'graphql'] as const) {
      const out = await runAs(ts, route, reader, c, 'SELECT body FROM notes_view');
      assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${JSON.stringify(out)}`);
      assert.ok(!JSON.stringify(out).includes('indexed secret'), JSON.stringify(out));
    }
    c.send({ type: 'subscribe', id: 'nv', payload: { query: 'SELECT body FROM notes_view' } });
    const live = await c.next((m) => m.id === 'nv');
    assert.equal(live.type, 'error', JSON.stringify(live));
    assert.ok(!JSON.stringify(c.received).includes('indexed secret'), JSON.stringify(c.received));
  } finally {
    c.close();
    await sql(ts, 'DROP VIEW notes_view');
  }
});

test('after DDL in a transactional batch a virtual table still needs ADMIN', async () => {
  // readwrite: every table privilege on every table, CREATE, DROP, ALTER — not ADMIN.
  const writer = await createUser(ts, 'rw_vt', ['readwrite']);
  const c = await connectWith(ts, writer);
  try {
    for (const second of [
      "SELECT name, pageno FROM dbstat WHERE name = 'secret'",
      "WITH json_each(x) AS (SELECT 1) SELECT body FROM notes_fts WHERE notes_fts MATCH 'secret'",
      'INSERT INTO rw_copy (v) SELECT name FROM dbstat',
    ]) {
      const res = await c.request({
        type: 'batch',
        payload: { transaction: true, queries: [{ sql: 'CREATE TABLE rw_copy (v TEXT)' }, { sql: second }] },
      });
      assert.equal(res.type, 'error', `${second}: ${JSON.stringify(res)}`);
      assert.equal(res.payload.code, 'PERMISSION_DENIED', second);
      assert.ok(!JSON.stringify(res).includes('indexed secret'), JSON.stringify(res));
    }
    const left = await sql(ts, "SELECT name FROM sqlite_schema WHERE name = 'rw_copy'");
    assert.deepEqual(left.rows, [], 'a refused batch left its table');
  } finally {
    c.close();
  }
});

test("an administrator's trigger that reads a virtual table is refused to the user whose write fires it", async () => {
  await sql(ts, 'CREATE TABLE copies (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(
    ts,
    'CREATE TRIGGER copy_notes AFTER INSERT ON public_t BEGIN INSERT INTO copies (v) SELECT body FROM notes_fts; END',
  );
  await createRole(ts, 'copier_role', [
    { privilege: 'INSERT', table: 'public_t' },
    { privilege: 'SELECT', table: 'copies' },
    { privilege: 'INSERT', table: 'copies' },
  ]);
  const copier = await createUser(ts, 'copier', ['copier_role']);
  const c = await connectWith(ts, copier);
  try {
    const out = await runAs(ts, 'stream query', copier, c, "INSERT INTO public_t (v) VALUES ('fire')");
    assert.equal(out.code, 'PERMISSION_DENIED', JSON.stringify(out));
    assert.deepEqual(out.details, { privilege: 'ADMIN' });
    assert.deepEqual((await sql(ts, 'SELECT count(*) FROM copies')).rows, [[0]]);
  } finally {
    c.close();
    await sql(ts, 'DROP TRIGGER copy_notes');
    await sql(ts, 'DROP TABLE copies');
  }
});

// Last: once a table named json_each has existed, SQLite keeps treating the name as not a function on
// connections that saw it (see the report of issue 14); nothing after this test calls json_each.
test('a table or view named like a table function does not open another virtual table', async () => {
  const create = await runAs(ts, 'stream query', builder, builderSocket, 'CREATE TABLE json_each (a TEXT)');
  assert.equal(create.code, 'ok', JSON.stringify(create));
  try {
    // The column list after the table's name reads like a call of json_each in the text.
    const copy = await runAs(
      ts,
      'stream query',
      builder,
      builderSocket,
      "INSERT INTO json_each (a) SELECT name FROM dbstat WHERE name = 'secret'",
    );
    assert.equal(copy.code, 'PERMISSION_DENIED', JSON.stringify(copy));
    assert.deepEqual(copy.details, { privilege: 'ADMIN' });
    assert.deepEqual((await sql(ts, 'SELECT count(*) FROM json_each')).rows, [[0]]);
  } finally {
    await sql(ts, 'DROP TABLE json_each');
  }
  const view = await runAs(
    ts,
    'stream query',
    builder,
    builderSocket,
    'CREATE VIEW json_tree AS SELECT name, pageno FROM dbstat',
  );
  assert.equal(view.code, 'ok', 'a view needs only CREATE; its readers are checked');
  try {
    // Refused either way: by the analysis (ADMIN), or by SQLite itself, which will not let a view
    // created by a statement read dbstat.
    for (const statement of ['SELECT * FROM json_tree', "SELECT * FROM json_tree WHERE name = 'secret'"]) {
      const out = await runAs(ts, 'stream query', builder, builderSocket, statement);
      assert.notEqual(out.code, 'ok', `${statement}: ${JSON.stringify(out)}`);
      assert.ok(!JSON.stringify(out).includes('secret'), JSON.stringify(out));
    }
  } finally {
    await sql(ts, 'DROP VIEW json_tree');
  }
});
