/**
 * Issue 14, breach 6, and its pattern: nothing a statement returns may reveal another session's
 * activity. Statements of all users share the engine's connections, so the connection's own state —
 * the last inserted rowid, the rows changed by the last statement, the total of changes — belongs to
 * whoever ran last. The SQL functions that read it are refused; the `last_insert_id` and
 * `rows_affected` the server reports are only ever the statement's own.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { connectWith, createRole, createUser, runAs, type Route } from './helpers.ts';

let ts: TestServer;
let admin: TestClient;
let eve: string;
let eveSocket: TestClient;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)');
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (1, 'taken')");
  await createRole(ts, 'eve_role', [
    { privilege: 'SELECT', table: 'public_t' },
    { privilege: 'INSERT', table: 'public_t' },
    { privilege: 'UPDATE', table: 'public_t' },
    { privilege: 'CREATE' },
  ]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  eveSocket = await connectWith(ts, eve);
  admin = await ts.connectAuthed();
});

after(() => ts.close());

/** The admin inserts a row with a telling rowid over the WebSocket (the inline fast path). */
async function adminInserts(id: number): Promise<void> {
  const { error } = await admin.query('INSERT INTO secret (id, s) VALUES (?, ?)', { params: [id, 'x'] });
  assert.equal(error, undefined);
}

const ROUTES: Route[] = ['stream query', 'http query', 'stream batch', 'stream transaction', 'graphql'];

test("last_insert_rowid() and changes() never show the admin's insert (the reported breach)", async () => {
  await adminInserts(424242);
  for (const route of ROUTES) {
    await adminInserts(424242 + ROUTES.indexOf(route) + 1);
    const out = await runAs(ts, route, eve, eveSocket, 'SELECT last_insert_rowid(), changes()');
    assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${JSON.stringify(out)}`);
    assert.ok(!JSON.stringify(out).includes('4242'), `${route}: ${JSON.stringify(out)}`);
  }
});

test('every way of calling them is refused: total_changes, views, CTEs, expressions, triggers of writes', async () => {
  await adminInserts(515151);
  const view = await runAs(
    ts,
    'stream query',
    eve,
    eveSocket,
    'CREATE VIEW session_state AS SELECT last_insert_rowid() AS id',
  );
  // Whether or not the view can be created, reading it must not tell anything.
  for (const statement of [
    'SELECT total_changes()',
    'SELECT "last_insert_rowid"()',
    'SELECT LAST_INSERT_ROWID() + 0',
    'WITH t(x) AS (SELECT changes()) SELECT x FROM t',
    'SELECT v FROM public_t WHERE id = last_insert_rowid()',
    "SELECT json_object('id', last_insert_rowid())",
    'SELECT coalesce(NULL, changes(), total_changes())',
    ...(view.code === 'ok' ? ['SELECT id FROM session_state'] : []),
  ]) {
    const out = await runAs(ts, 'stream query', eve, eveSocket, statement);
    assert.equal(out.code, 'PERMISSION_DENIED', `${statement}: ${JSON.stringify(out)}`);
    assert.ok(!JSON.stringify(out).includes('5151'), `${statement}: ${JSON.stringify(out)}`);
  }
  // Nor by writing them into a table the user can read.
  const write = await runAs(
    ts,
    'stream query',
    eve,
    eveSocket,
    'INSERT INTO public_t (v) VALUES (last_insert_rowid())',
  );
  assert.equal(write.code, 'PERMISSION_DENIED', JSON.stringify(write));
  if (view.code === 'ok') await sql(ts, 'DROP VIEW session_state');
});

test("an insert that inserts nothing reports no last_insert_id (not the previous session's)", async () => {
  for (const [statement, params] of [
    ['INSERT OR IGNORE INTO public_t (v) VALUES (?)', ['taken']],
    ['INSERT INTO public_t (v) SELECT v FROM public_t WHERE 0', []],
    ['INSERT INTO public_t (v) VALUES (?) ON CONFLICT (v) DO NOTHING', ['taken']],
    ['INSERT INTO public_t (v) VALUES (?) ON CONFLICT (v) DO UPDATE SET v = excluded.v', ['taken']],
  ] as const) {
    await adminInserts(616161 + Math.floor(Math.random() * 1000));
    const { chunks, error } = await eveSocket.query(statement, { params });
    assert.equal(error, undefined, `${statement}: ${JSON.stringify(error)}`);
    const last = chunks.at(-1)!.payload;
    assert.ok(!JSON.stringify(last).includes('6161'), `${statement}: ${JSON.stringify(last)}`);
    assert.notEqual(last.last_insert_id !== undefined && last.last_insert_id > 600_000, true);
    const http = await ts.http('/api/v1/query', { body: { sql: statement, params }, token: eve });
    assert.ok(!JSON.stringify(http.body).includes('6161'), `${statement}: ${JSON.stringify(http.body)}`);
  }
  // An insert that does insert reports its own id.
  const { chunks } = await eveSocket.query("INSERT INTO public_t (v) VALUES ('mine')");
  const own = chunks.at(-1)!.payload.last_insert_id;
  assert.deepEqual((await sql(ts, "SELECT id FROM public_t WHERE v = 'mine'")).rows, [[own]]);
});

test("statements that change no rows report rows_affected 0, not the previous statement's count", async () => {
  await sql(ts, 'DELETE FROM secret');
  for (let i = 0; i < 5; i++) await adminInserts(700 + i);
  // The admin's bulk change is the connection's last count…
  await sql(ts, "UPDATE secret SET s = 'y'");
  for (const statement of ['ANALYZE public_t', 'CREATE INDEX IF NOT EXISTS pv ON public_t (v)']) {
    await sql(ts, "UPDATE secret SET s = 'z'");
    const out = await ts.http('/api/v1/query', { body: { sql: statement }, token: ts.token });
    assert.equal(out.status, 200, JSON.stringify(out.body));
    assert.equal((out.body as { data: { rows_affected: number } }).data.rows_affected, 0, statement);
  }
});
