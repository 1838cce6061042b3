/**
 * Statements no client may run through `query`: several statements at once, transaction control,
 * the server's internal tables, ATTACH, state-changing PRAGMAs and extension loading.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { login, ADMIN_PASSWORD, sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';

let ts: TestServer;
let c: TestClient;
before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, "INSERT INTO t (v) VALUES ('a'), ('b')");
  c = await ts.connectAuthed();
});
after(() => ts.close());

async function codeOf(sqlText: string): Promise<string | undefined> {
  const { error } = await c.query(sqlText);
  return error?.payload.code;
}

async function rowCount(): Promise<number> {
  const { rows } = await c.query('SELECT count(*) FROM t');
  return rows[0]![0] as number;
}

test('several statements in one query are refused with QUERY_ERROR and none runs', async () => {
  assert.equal(await codeOf('SELECT 1; SELECT 2'), 'QUERY_ERROR');
  assert.equal(await codeOf("INSERT INTO t (v) VALUES ('x'); DELETE FROM t"), 'QUERY_ERROR');
  assert.equal(await codeOf('SELECT 1; DROP TABLE t'), 'QUERY_ERROR');
  assert.equal(await rowCount(), 2);
  // One statement with a trailing semicolon, or a semicolon inside a string, is still one statement.
  assert.deepEqual((await c.query('SELECT 1 AS one;')).rows, [[1]]);
  assert.deepEqual((await c.query("SELECT 'a;b' AS s")).rows, [['a;b']]);
});

test('transaction control is refused with QUERY_ERROR', async () => {
  for (const text of [
    'BEGIN',
    'BEGIN IMMEDIATE',
    'COMMIT',
    'END',
    'ROLLBACK',
    'SAVEPOINT s1',
    'RELEASE s1',
  ]) {
    assert.equal(await codeOf(text), 'QUERY_ERROR', text);
  }
  // The refused BEGIN left no transaction open: a write through another socket is visible at once.
  const other = await ts.connectAuthed();
  await other.query("INSERT INTO t (v) VALUES ('tx-check')");
  assert.deepEqual((await c.query("SELECT count(*) FROM t WHERE v = 'tx-check'")).rows, [[1]]);
  await other.query("DELETE FROM t WHERE v = 'tx-check'");
});

test('internal tables are PERMISSION_DENIED, however they are spelled', async () => {
  for (const text of [
    'SELECT * FROM _rustydb_users',
    'SELECT password_hash FROM "_rustydb_users"',
    'SELECT * FROM main._RUSTYDB_USERS',
    "UPDATE _rustydb_users SET password_hash = 'x'",
    'DELETE FROM _rustydb_users',
    'DROP TABLE _rustydb_users',
    'CREATE TABLE _rustydb_mine (x)',
    "SELECT name FROM sqlite_master WHERE name = '_rustydb_users'",
  ]) {
    assert.equal(await codeOf(text), 'PERMISSION_DENIED', text);
  }
  // Nothing happened to the users: the admin can still log in.
  const res = await login(ts.server.url, 'admin', ADMIN_PASSWORD);
  assert.equal(res.status, 200);
});

test('ATTACH and DETACH are PERMISSION_DENIED', async () => {
  assert.equal(await codeOf("ATTACH DATABASE '/tmp/rustydb-evil.db' AS evil"), 'PERMISSION_DENIED');
  assert.equal(await codeOf("ATTACH ':memory:' AS m"), 'PERMISSION_DENIED');
  assert.equal(await codeOf('DETACH DATABASE main'), 'PERMISSION_DENIED');
});

test('state-changing PRAGMAs are PERMISSION_DENIED; read-only schema PRAGMAs work', async () => {
  for (const text of [
    'PRAGMA journal_mode = DELETE',
    'PRAGMA journal_mode=OFF',
    'PRAGMA foreign_keys = OFF',
    'PRAGMA writable_schema = 1',
    'PRAGMA synchronous(0)',
    'PRAGMA main.journal_mode = DELETE',
    'PRAGMA table_info = 1',
  ]) {
    assert.equal(await codeOf(text), 'PERMISSION_DENIED', text);
  }
  const info = await c.query('PRAGMA table_info(t)');
  assert.equal(info.error, undefined);
  assert.deepEqual(
    info.rows.map((r) => r[1]),
    ['id', 'v'],
  );
});

test('load_extension is PERMISSION_DENIED', async () => {
  assert.equal(await codeOf("SELECT load_extension('/tmp/nothing.so')"), 'PERMISSION_DENIED');
  assert.equal(await codeOf("SELECT LOAD_EXTENSION('libevil')"), 'PERMISSION_DENIED');
});

test('quoted function names are refused like bare ones (extension loading, file access)', async () => {
  // The server's own signing secret: whoever reads it can forge a token for any user.
  const secretFile = join(ts.dataDir, 'jwt-secret');
  const target = join(ts.dataDir, 'written-by-sql.txt');
  const statements = [
    `SELECT "readfile"('${secretFile}')`,
    `SELECT \`readfile\`('${secretFile}')`,
    `SELECT "writefile"('${target}', 'owned')`,
    `SELECT "load_extension"('/tmp/nothing.so')`,
    `SELECT [load_extension]('/tmp/nothing.so')`,
    'SELECT count(*) FROM "sqlite_dbpage"',
  ];
  const outcomes: string[] = [];
  for (const text of statements) {
    const { error, rows } = await c.query(text);
    outcomes.push(`${text} -> ${error?.payload.code ?? `ran: ${JSON.stringify(rows)}`}`);
  }
  assert.deepEqual(
    outcomes,
    statements.map((text) => `${text} -> PERMISSION_DENIED`),
  );
  assert.equal(existsSync(target), false, 'a client wrote a file on the server through writefile()');
});

test('a user without any privilege cannot read the signing secret through a quoted readfile()', async () => {
  const created = await ts.http('/api/v1/users', {
    body: { username: 'mallory', password: 'mallory-password', roles: [] },
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const res = await login(ts.server.url, 'mallory', 'mallory-password');
  assert.equal(res.status, 200);
  const mallory = await ts.connect({ token: (res.body as { data: { token: string } }).data.token });
  assert.equal((await mallory.next()).type, 'auth_success');
  const { error, rows } = await mallory.query(`SELECT "readfile"('${join(ts.dataDir, 'jwt-secret')}')`);
  assert.equal(
    error?.payload.code,
    'PERMISSION_DENIED',
    `an unprivileged user read the JWT signing secret (and can forge an admin token): ${JSON.stringify(rows)}`,
  );
});

test('directory listing through fsdir() is PERMISSION_DENIED', async () => {
  const { error, rows } = await c.query(`SELECT name FROM fsdir('${ts.dataDir}')`);
  assert.equal(error?.payload.code, 'PERMISSION_DENIED', `listed: ${JSON.stringify(rows)}`);
});

test('temporary objects are PERMISSION_DENIED whichever way they are named', async () => {
  const statements = [
    'CREATE TEMP TABLE tt (x)',
    'CREATE TEMPORARY VIEW tv AS SELECT 1',
    'CREATE TABLE temp.tt2 (x)',
    'CREATE VIEW "temp".tv2 AS SELECT 1',
  ];
  const outcomes: string[] = [];
  for (const text of statements) outcomes.push(`${text} -> ${(await codeOf(text)) ?? 'created'}`);
  assert.deepEqual(
    outcomes,
    statements.map((text) => `${text} -> PERMISSION_DENIED`),
  );
});

test('refusals are the same inside a batch', async () => {
  const id = c.newId('b');
  c.send({
    type: 'batch',
    id,
    payload: {
      queries: [
        { sql: 'SELECT * FROM _rustydb_users' },
        { sql: "ATTACH ':memory:' AS m" },
        { sql: 'PRAGMA journal_mode = DELETE' },
        { sql: 'BEGIN' },
        { sql: 'SELECT 1; SELECT 2' },
        { sql: 'SELECT 3 AS three' },
      ],
    },
  });
  const m = await c.reply(id);
  assert.equal(m.type, 'data');
  assert.deepEqual(
    m.payload.results!.map((r) => r.code ?? r.status),
    ['PERMISSION_DENIED', 'PERMISSION_DENIED', 'PERMISSION_DENIED', 'QUERY_ERROR', 'QUERY_ERROR', 'success'],
  );
});

test('refusals are the same over HTTP', async () => {
  const res = await ts.http('/api/v1/query', { body: { sql: 'SELECT * FROM _rustydb_users' } });
  assert.equal(res.status, 403);
  assert.deepEqual((res.body as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
  const multi = await ts.http('/api/v1/query', { body: { sql: 'SELECT 1; SELECT 2' } });
  assert.equal(multi.status, 400);
  assert.equal((multi.body as { error: { code: string } }).error.code, 'QUERY_ERROR');
});
