/**
 * What no client may do, admins included: attach or detach databases, VACUUM (INTO a file), change the
 * connection's state with a PRAGMA, load extensions, touch the filesystem, read raw pages or other
 * sessions' statements. Each attempt runs over the WebSocket and HTTP as the admin and as a
 * `readwrite` user, must be refused with the exact code, and must leave no trace (no file written,
 * foreign keys still enforced, the journal still WAL).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { assertAlive, connectWith, createUser, runAs, snapshot, type Route } from './helpers.ts';

let ts: TestServer;
let writerToken: string;
let writer: TestClient;
let admin: TestClient;
let initial: Record<string, unknown[][]>;
const OUTSIDE = join(tmpdir(), `rustydb-attack-${process.pid}`);

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE parent (id INTEGER PRIMARY KEY)');
  await sql(
    ts,
    'CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent (id))',
  );
  await sql(ts, 'INSERT INTO parent (id) VALUES (1)');
  await sql(ts, 'INSERT INTO child (parent_id) VALUES (1)');
  writerToken = await createUser(ts, 'writer', ['readwrite']);
  writer = await connectWith(ts, writerToken);
  admin = await ts.connectAuthed();
  initial = await snapshot(ts, ['parent', 'child']);
  filesBefore = files();
});

after(() => ts.close());

const ROUTES: Route[] = ['stream query', 'http query', 'stream transaction'];

async function refused(statement: string, code: string, message: RegExp): Promise<void> {
  for (const route of ROUTES) {
    for (const [who, token, client] of [
      ['admin', ts.token, admin],
      ['readwrite user', writerToken, writer],
    ] as const) {
      const out = await runAs(ts, route, token, client, statement);
      assert.equal(out.code, code, `${who} over ${route}: ${statement} → ${JSON.stringify(out)}`);
      assert.match(out.message!, message, `${who} over ${route}: ${statement}`);
    }
  }
}

const files = (): string[] => readdirSync(ts.dataDir).sort();
let filesBefore: string[] = [];

test('ATTACH a new file', async () => {
  await refused(`ATTACH DATABASE '${OUTSIDE}.db' AS evil`, 'PERMISSION_DENIED', /ATTACH is not allowed/);
  assert.equal(existsSync(`${OUTSIDE}.db`), false);
});

test('ATTACH the database file itself under another name', async () => {
  await refused(
    `ATTACH '${join(ts.dataDir, 'rustydb.sqlite')}' AS twin`,
    'PERMISSION_DENIED',
    /ATTACH is not allowed/,
  );
});

test('ATTACH in lower case with a URI filename', async () => {
  await refused(`attach 'file:${OUTSIDE}.db?mode=rwc' as evil`, 'PERMISSION_DENIED', /ATTACH is not allowed/);
});

test('DETACH main', async () => {
  await refused('DETACH DATABASE main', 'PERMISSION_DENIED', /DETACH is not allowed/);
});

test('VACUUM INTO a file outside the data directory', async () => {
  await refused(`VACUUM INTO '${OUTSIDE}-copy.db'`, 'PERMISSION_DENIED', /VACUUM is not allowed/);
  assert.equal(existsSync(`${OUTSIDE}-copy.db`), false, 'the database was copied out');
});

test('VACUUM INTO a file inside the data directory', async () => {
  await refused(`VACUUM INTO '${join(ts.dataDir, 'copy.db')}'`, 'PERMISSION_DENIED', /VACUUM is not allowed/);
});

test('plain VACUUM', async () => {
  await refused('VACUUM', 'PERMISSION_DENIED', /VACUUM is not allowed/);
});

const PRAGMA_REFUSAL = /only read-only schema PRAGMAs/;
for (const pragma of [
  'PRAGMA foreign_keys = OFF',
  'PRAGMA foreign_keys=0',
  'PRAGMA journal_mode = DELETE',
  'PRAGMA main.journal_mode = OFF',
  'PRAGMA writable_schema = ON',
  'PRAGMA schema_version = 1',
  'PRAGMA user_version = 7',
  'PRAGMA synchronous(OFF)',
  'PRAGMA query_only = 1',
  'PRAGMA recursive_triggers = 1',
  'PRAGMA trusted_schema = 1',
  'PRAGMA cell_size_check = 0',
  'PRAGMA mmap_size = 268435456',
  'PRAGMA wal_checkpoint(TRUNCATE)',
  'PRAGMA optimize',
  'PRAGMA database_list',
  'PRAGMA "foreign_keys" = 0',
  'pragma Foreign_Keys = off',
]) {
  test(`state-changing or revealing PRAGMA: ${pragma}`, async () => {
    await refused(pragma, 'PERMISSION_DENIED', PRAGMA_REFUSAL);
  });
}

test('load_extension, bare, quoted and bracketed', async () => {
  for (const statement of [
    "SELECT load_extension('/tmp/evil.so')",
    'SELECT "load_extension"(\'/tmp/evil.so\')',
    "SELECT [load_extension]('/tmp/evil.so', 'init')",
  ]) {
    await refused(statement, 'PERMISSION_DENIED', /not allowed/);
  }
});

test('readfile() of the signing secret, bare and quoted', async () => {
  const secret = join(ts.dataDir, 'jwt-secret');
  for (const statement of [
    `SELECT readfile('${secret}')`,
    `SELECT "readfile"('${secret}')`,
    `SELECT \`ReadFile\`('${secret}')`,
  ]) {
    await refused(statement, 'PERMISSION_DENIED', /not allowed/);
  }
});

test('writefile() outside and inside the data directory', async () => {
  for (const target of [`${OUTSIDE}.txt`, join(ts.dataDir, 'owned.txt')]) {
    await refused(`SELECT writefile('${target}', 'owned')`, 'PERMISSION_DENIED', /not allowed/);
    await refused(`SELECT "writefile"('${target}', 'owned')`, 'PERMISSION_DENIED', /not allowed/);
    assert.equal(existsSync(target), false, `${target} was written`);
  }
});

test('fsdir() listing the data directory', async () => {
  await refused(
    `SELECT name FROM fsdir('${ts.dataDir}')`,
    'PERMISSION_DENIED',
    /not allowed|privilege required/,
  );
});

test('raw pages through sqlite_dbpage, bare and quoted', async () => {
  await refused('SELECT data FROM sqlite_dbpage', 'PERMISSION_DENIED', /not allowed/);
  await refused(
    'SELECT data FROM "sqlite_dbpage" WHERE pgno = 2',
    'PERMISSION_DENIED',
    /not allowed|privilege required/,
  );
});

test("other sessions' statements through sqlite_stmt, bare and quoted", async () => {
  await refused('SELECT sql FROM sqlite_stmt', 'PERMISSION_DENIED', /sqlite_stmt is not allowed/);
  await refused('SELECT sql FROM "SQLITE_STMT"', 'PERMISSION_DENIED', /sqlite_stmt is not allowed/);
});

test('sha3_query() running an ATTACH hidden in a string', async () => {
  await refused(
    `SELECT hex(sha3_query('ATTACH ''${OUTSIDE}-sha.db'' AS e'))`,
    'PERMISSION_DENIED',
    /sha3_query is not allowed/,
  );
  await refused(
    `SELECT "sha3_query"('ATTACH ''${OUTSIDE}-sha.db'' AS e')`,
    'PERMISSION_DENIED',
    /sha3_query is not allowed/,
  );
  assert.equal(existsSync(`${OUTSIDE}-sha.db`), false, 'sha3_query attached a file');
});

test('sha3_query() as an oracle over a table (its hash reveals whether rows match)', async () => {
  await refused(
    "SELECT hex(sha3_query('SELECT id FROM parent WHERE id = 1'))",
    'PERMISSION_DENIED',
    /sha3_query is not allowed/,
  );
});

test('a trigger in the temp schema on a main table (it would fire for other sessions)', async () => {
  await refused(
    'CREATE TRIGGER temp.siphon AFTER INSERT ON main.child BEGIN DELETE FROM parent; END',
    'PERMISSION_DENIED',
    /temporary/,
  );
  await refused('CREATE TABLE "temp".shadow (x)', 'PERMISSION_DENIED', /temporary/);
  await refused('CREATE VIEW TEMP . child AS SELECT 1 AS id', 'PERMISSION_DENIED', /temporary/);
});

test('virtual tables other than the named table-valued functions need ADMIN', async () => {
  // An admin's full-text index over data the user was never granted.
  await sql(ts, 'CREATE VIRTUAL TABLE notes_fts USING fts5(body)');
  try {
    for (const statement of [
      'SELECT body FROM notes_fts',
      "SELECT body FROM notes_fts WHERE notes_fts MATCH 'launch'",
      "INSERT INTO notes_fts (body) VALUES ('planted')",
      'DELETE FROM notes_fts',
      'SELECT name, pageno FROM dbstat',
      'SELECT value FROM generate_series(1, 3)',
    ]) {
      for (const route of ['stream query', 'http query'] as const) {
        const out = await runAs(ts, route, writerToken, writer, statement);
        assert.equal(out.code, 'PERMISSION_DENIED', `${route}: ${statement} → ${JSON.stringify(out)}`);
        assert.deepEqual(out.details, { privilege: 'ADMIN' }, statement);
      }
    }
    // The table-valued functions the text names stay available to everyone.
    const json = await runAs(ts, 'stream query', writerToken, writer, "SELECT value FROM json_each('[1,2]')");
    assert.deepEqual(json.rows, [[1], [2]]);
    const info = await runAs(
      ts,
      'http query',
      writerToken,
      writer,
      "SELECT name FROM pragma_table_info('parent')",
    );
    assert.deepEqual(info.rows, [['id']]);
  } finally {
    await sql(ts, 'DROP TABLE notes_fts');
  }
});

test('fts3_tokenizer', async () => {
  await refused("SELECT fts3_tokenizer('simple')", 'PERMISSION_DENIED', /fts3_tokenizer is not allowed/);
});

test('transaction control is QUERY_ERROR and leaves no transaction open', async () => {
  for (const statement of [
    'BEGIN',
    'BEGIN EXCLUSIVE',
    'COMMIT',
    'ROLLBACK',
    'SAVEPOINT x',
    'RELEASE x',
    'END',
  ]) {
    const out = await runAs(ts, 'stream query', writerToken, writer, statement);
    assert.equal(out.code, 'QUERY_ERROR', statement);
  }
  const ok = await runAs(ts, 'http query', ts.token, admin, 'INSERT INTO parent (id) VALUES (2)');
  assert.equal(ok.code, 'ok');
  await sql(ts, 'DELETE FROM parent WHERE id = 2');
});

test('a second statement smuggled after the first is QUERY_ERROR and neither runs', async () => {
  for (const statement of [
    'SELECT 1; DELETE FROM child',
    "SELECT 'x'; ATTACH 'evil.db' AS e",
    'SELECT 1 /* ; */ ; PRAGMA foreign_keys = OFF',
  ]) {
    const out = await runAs(ts, 'http query', writerToken, writer, statement);
    assert.notEqual(out.code, 'ok', statement);
  }
  assert.deepEqual(await snapshot(ts, ['parent', 'child']), initial);
});

test('temporary tables, views and triggers', async () => {
  for (const statement of [
    'CREATE TEMP TABLE t (x)',
    'CREATE TEMPORARY VIEW v AS SELECT 1',
    'CREATE TEMP TRIGGER tr AFTER INSERT ON parent BEGIN SELECT 1; END',
  ]) {
    await refused(statement, 'PERMISSION_DENIED', /temporary/);
  }
});

test('afterwards: foreign keys are still enforced, the journal is still WAL, no file appeared', async () => {
  const orphan = await runAs(
    ts,
    'stream query',
    ts.token,
    admin,
    'INSERT INTO child (parent_id) VALUES (99)',
  );
  assert.equal(orphan.code, 'QUERY_ERROR');
  assert.match(orphan.message!, /FOREIGN KEY constraint failed/);
  // A read-only schema PRAGMA is allowed and shows the table as it was.
  const info = await runAs(ts, 'stream query', writerToken, writer, 'PRAGMA table_info(child)');
  assert.deepEqual(
    info.rows!.map((r) => r[1]),
    ['id', 'parent_id'],
  );
  assert.ok(files().includes('rustydb.sqlite-wal'), `no WAL file: ${files().join(', ')}`);
  const appeared = files().filter((f) => !filesBefore.includes(f) && f !== 'audit.log');
  assert.deepEqual(appeared, []);
  assert.deepEqual(await snapshot(ts, ['parent', 'child']), initial);
  await assertAlive(ts);
});
