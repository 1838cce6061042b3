/**
 * Issue 14, point 10, by pattern: beyond the schema table and the schema PRAGMAs (catalogue.test.ts),
 * everything else SQLite offers that tells a user without ADMIN about the server (its files, build,
 * settings, health) or names tables it holds nothing on: PRAGMA statements, the other pragma_…
 * table-valued functions, SQLite's own tables that record user tables by name (sqlite_sequence,
 * sqlite_stat1), the temporary schema, and the schema table and schema functions spelt in ways a
 * rewrite of the text could miss. Each must be refused or answered from what eve may see, on every route.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import {
  assertLiveQueryHides,
  connectWith,
  createRole,
  createUser,
  ROUTES,
  runAs,
  type Outcome,
} from './helpers.ts';

let ts: TestServer;
let eve: string;
let eveSocket: TestClient;
let adminSocket: TestClient;

/** Names that must never reach eve, in any answer. */
const HIDDEN = /secret|_rustydb_/i;

before(async () => {
  // Hundreds of statements from one socket in quick succession: the rate limit (tested in floods.test.ts)
  // would answer some of them instead of the check under test.
  ts = await startTestServer({ enable_rate_limiting: false });
  for (const statement of [
    'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)',
    // AUTOINCREMENT puts the table's name in sqlite_sequence; ANALYZE puts it in sqlite_stat1.
    'CREATE TABLE secret (id INTEGER PRIMARY KEY AUTOINCREMENT, code TEXT NOT NULL)',
    'CREATE INDEX secret_code ON secret (code)',
    'CREATE INDEX public_v ON public_t (v)',
    "INSERT INTO public_t (v) VALUES ('hello')",
    "INSERT INTO secret (code) VALUES ('s3cr3t'), ('other')",
    'ANALYZE',
  ]) {
    await sql(ts, statement);
  }
  await createRole(ts, 'eve_role', [{ privilege: 'SELECT', table: 'public_t' }]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  eveSocket = await connectWith(ts, eve);
  adminSocket = await ts.connectAuthed();
});
after(() => ts.close());

/** The refusal itself must not carry what it refuses (the data directory's path, say). */
function assertRefused(outcome: Outcome, what: string): void {
  assert.equal(outcome.code, 'PERMISSION_DENIED', `${what}: ${JSON.stringify(outcome)}`);
  assert.ok(!(outcome.message ?? '').includes(ts.dataDir), `${what}: ${outcome.message}`);
}

/** Refused, or answered with nothing eve may not see. */
function assertNothingHidden(outcome: Outcome, what: string): void {
  if (outcome.code === 'ok') {
    assert.doesNotMatch(JSON.stringify(outcome.rows), HIDDEN, what);
    assert.ok(!JSON.stringify(outcome.rows).includes(ts.dataDir), what);
    return;
  }
  assertRefused(outcome, what);
}

/** Runs each statement as eve on every route and hands each outcome to `check`. */
async function asEveOnEveryRoute(
  statements: readonly string[],
  check: (outcome: Outcome, what: string) => void,
): Promise<void> {
  for (const route of ROUTES) {
    for (const statement of statements) {
      check(await runAs(ts, route, eve, eveSocket, statement), `${route}: ${statement}`);
    }
  }
}

test('PRAGMA statements about the server, its files and its health are refused on every route', async () => {
  const statements = [
    'PRAGMA database_list',
    'PRAGMA compile_options',
    'PRAGMA function_list',
    'PRAGMA module_list',
    'PRAGMA collation_list',
    'PRAGMA pragma_list',
    'PRAGMA stats',
    'PRAGMA table_list',
    'PRAGMA table_list(secret)',
    'PRAGMA data_store_directory',
    'PRAGMA temp_store_directory',
    'PRAGMA schema_version',
    'PRAGMA data_version',
    'PRAGMA page_count',
    'PRAGMA freelist_count',
    'PRAGMA journal_mode',
    'PRAGMA integrity_check',
    'PRAGMA quick_check(secret)',
    'PRAGMA foreign_key_check',
    'PRAGMA main.database_list',
    'pragma Database_List',
    '/* a comment */ PRAGMA database_list',
  ];
  await asEveOnEveryRoute(statements, assertRefused);
});

test('the pragma_… functions about the server are for ADMIN only, however they are spelt', async () => {
  const statements = [
    'SELECT * FROM pragma_foreign_key_check',
    "SELECT * FROM pragma_foreign_key_check('secret')",
    'SELECT * FROM pragma_integrity_check',
    "SELECT * FROM pragma_quick_check('secret')",
    'SELECT * FROM pragma_page_count',
    'SELECT * FROM pragma_schema_version',
    'SELECT * FROM pragma_encoding',
    'SELECT * FROM pragma_optimize',
    'SELECT * FROM pragma_freelist_count',
    'SELECT * FROM pragma_journal_mode',
    'SELECT * FROM pragma_user_version',
    'SELECT * FROM pragma_data_version',
    'SELECT * FROM pragma_function_list()',
    'SELECT name FROM pragma_module_list',
    'SELECT * FROM pragma_database_list AS d',
    'SELECT * FROM "pragma_database_list"',
    'SELECT * FROM [PRAGMA_DATABASE_LIST]',
    'SELECT * FROM main.pragma_database_list',
    'SELECT * FROM pragma_compile_options WHERE 1',
    'SELECT (SELECT group_concat(file) FROM pragma_database_list)',
    'SELECT v FROM public_t WHERE v IN (SELECT name FROM pragma_database_list)',
    'WITH d AS (SELECT * FROM pragma_database_list) SELECT file FROM d',
    'SELECT json_group_array(compile_options) FROM pragma_compile_options',
  ];
  await asEveOnEveryRoute(statements, assertRefused);
  // They exist here: the refusals above are decisions, not missing functions.
  for (const statement of [
    'SELECT count(*) FROM pragma_integrity_check',
    'SELECT count(*) FROM pragma_page_count',
  ]) {
    const { rows, error } = await adminSocket.query(statement);
    assert.equal(error, undefined, `admin: ${statement}: ${JSON.stringify(error?.payload)}`);
    assert.equal(rows!.length, 1);
  }
});

test("SQLite's own tables that record user tables by name tell eve nothing", async () => {
  // The administrator's view: both tables name `secret`.
  const { rows } = await adminSocket.query(
    "SELECT (SELECT count(*) FROM sqlite_sequence WHERE name = 'secret'), (SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'secret')",
  );
  assert.deepEqual(rows, [[1, 1]]);
  const statements = [
    'SELECT * FROM sqlite_sequence',
    'SELECT * FROM main.sqlite_sequence',
    'SELECT * FROM "sqlite_sequence"',
    'SELECT * FROM [SQLITE_SEQUENCE] AS s',
    'SELECT * FROM sqlite_stat1',
    'SELECT tbl, idx, stat FROM "main"."sqlite_stat1" s',
    "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'secret'",
    'SELECT (SELECT group_concat(name) FROM sqlite_sequence)',
    'SELECT v FROM public_t WHERE v IN (SELECT tbl FROM sqlite_stat1)',
    'WITH s AS (SELECT name, seq FROM sqlite_sequence) SELECT * FROM s',
    'SELECT * FROM public_t, sqlite_sequence',
    "SELECT * FROM pragma_table_info('sqlite_stat1')",
  ];
  await asEveOnEveryRoute(statements, assertNothingHidden);
});

test('the temporary schema shows eve nothing of another session', async () => {
  // Connections are shared by every session, so nobody may create temporary objects (they would outlive
  // the statement on a connection others use); whatever the temporary schema holds still reaches no one.
  for (const statement of [
    'CREATE TEMP TABLE secret_tmp (x INTEGER)',
    'CREATE TEMPORARY VIEW secret_tmp_v AS SELECT 1',
    'CREATE TABLE temp.secret_tmp (x INTEGER)',
  ]) {
    const { error } = await adminSocket.query(statement);
    assert.equal(error?.payload.code, 'PERMISSION_DENIED', `admin: ${statement}`);
  }
  await asEveOnEveryRoute(
    [
      'SELECT * FROM sqlite_temp_master',
      'SELECT * FROM sqlite_temp_schema',
      'SELECT name, sql FROM temp.sqlite_master',
      'SELECT name FROM "temp"."sqlite_schema"',
      "SELECT * FROM pragma_table_info('secret_tmp')",
      "SELECT * FROM pragma_table_list('secret_tmp')",
    ],
    assertNothingHidden,
  );
});

test('the schema table and schema functions spelt so that a rewrite of the text could miss them', async () => {
  const statements = [
    'SELECT name, sql FROM main . sqlite_master',
    'SELECT name, sql FROM main/**/./**/sqlite_master',
    'SELECT name, sql FROM Main.Sqlite_Master',
    'SELECT name, sql FROM "main".sqlite_master',
    'SELECT name, sql FROM sqlite_master -- trailing comment',
    'SELECT name, sql FROM\nsqlite_schema\nWHERE 1',
    'SELECT name, sql FROM sqlite_schema AS "sqlite_sequence" WHERE type = \'table\'',
    'SELECT * FROM public_t, sqlite_master',
    'SELECT v FROM public_t WHERE v NOT IN (SELECT name FROM sqlite_master)',
    'SELECT (SELECT group_concat(sql) FROM sqlite_schema)',
    'SELECT * FROM (SELECT * FROM (SELECT name, sql FROM sqlite_master))',
    'VALUES ((SELECT group_concat(name) FROM sqlite_schema))',
    "SELECT name FROM sqlite_master WHERE type = 'table' UNION ALL SELECT name FROM sqlite_schema",
    "SELECT name FROM pragma_table_info('sec' || 'ret')",
    'SELECT name FROM pragma_table_info(char(115, 101, 99, 114, 101, 116))',
    "SELECT name FROM pragma_table_info(lower('SECRET'))",
    "SELECT name FROM pragma_table_info((SELECT 'secret'))",
    "SELECT name FROM pragma_index_list(upper('secret'))",
    "SELECT name FROM pragma_index_info('secret' || '_code')",
    "SELECT p.name FROM public_t JOIN pragma_table_info('secret') p",
    "SELECT p.name FROM (SELECT 'secret' AS t) x, pragma_table_info(x.t) p",
    'SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p',
    "SELECT name FROM pragma_table_list WHERE name LIKE 'sec%'",
    'SELECT name FROM pragma_table_list((SELECT char(115, 101, 99, 114, 101, 116)))',
  ];
  await asEveOnEveryRoute(statements, assertNothingHidden);
  // What eve may see is still there through the same spellings (the answers are not simply empty).
  const { rows, error } = await eveSocket.query(
    "SELECT name FROM main/**/./**/sqlite_master WHERE type = 'table' ORDER BY name",
  );
  if (error) assert.equal(error.payload.code, 'PERMISSION_DENIED');
  else assert.deepEqual(rows, [['public_t']]);
});

test('a schema function joined on a column (how tools list every column) is served from what eve may see', async () => {
  // The web console's own catalogue queries, among others: each row for a table eve may see, none for
  // the others; an administrator gets SQLite's own answer.
  const served: [string, unknown[][]][] = [
    [
      'SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p ORDER BY 1, p.cid',
      [
        ['public_t', 'id'],
        ['public_t', 'v'],
      ],
    ],
    [
      `SELECT m.name, m.type, c.name, c.type, c."notnull", c.dflt_value, c.pk
       FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS c
       WHERE m.type IN ('table', 'view') ORDER BY m.name, c.cid`,
      [
        ['public_t', 'table', 'id', 'INTEGER', 0, null, 1],
        ['public_t', 'table', 'v', 'TEXT', 0, null, 0],
      ],
    ],
    [
      `SELECT m.name, l.name, l."unique", l.origin, i.name
       FROM sqlite_schema AS m JOIN pragma_index_list(m.name) AS l JOIN pragma_index_info(l.name) AS i
       WHERE m.type = 'table' ORDER BY m.name, l.name, i.seqno`,
      [['public_t', 'public_v', 0, 'c', 'v']],
    ],
    [
      "SELECT m.name, pragma_table_info.name FROM sqlite_master m LEFT JOIN pragma_table_info(m.name) WHERE m.type = 'table' ORDER BY 2",
      [
        ['public_t', 'id'],
        ['public_t', 'v'],
      ],
    ],
    [
      'SELECT t.name, count(*) FROM pragma_table_list t, main.pragma_table_xinfo(t.name) x GROUP BY 1',
      [['public_t', 2]],
    ],
    ["SELECT p.name FROM (SELECT 'secret' AS t) x JOIN pragma_table_info(x.t) AS p", []],
    ["SELECT p.name FROM (SELECT 'SECRET' AS t) x, pragma_index_list(x.t) p", []],
  ];
  for (const route of ROUTES) {
    for (const [statement, expected] of served) {
      const outcome = await runAs(ts, route, eve, eveSocket, statement);
      assert.equal(outcome.code, 'ok', `${route}: ${statement}: ${JSON.stringify(outcome)}`);
      assert.deepEqual(outcome.rows, expected, `${route}: ${statement}`);
    }
  }
  const { rows, error } = await adminSocket.query(served[0]![0]);
  assert.equal(error, undefined, JSON.stringify(error?.payload));
  assert.ok(rows!.some((r) => r[0] === 'secret' && r[1] === 'code'));
});

test('other forms of a schema function given a column or a subquery are refused with the reason', async () => {
  // Never "no such column", which would say nothing of why.
  const statements = [
    'SELECT p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p ON p.pk = 1',
    "SELECT p.name FROM sqlite_master m, pragma_table_info(m.name, 'main') p",
    'SELECT (SELECT count(*) FROM pragma_table_info(m.name)) FROM sqlite_master m',
    "SELECT name FROM pragma_index_list((SELECT 'secret'))",
  ];
  await asEveOnEveryRoute(statements, (outcome, what) => {
    assertRefused(outcome, what);
    assert.match(outcome.message!, /requires ADMIN/, what);
  });
});

test('a live query over the server-describing functions and SQLite tables is refused', async () => {
  // The data directory's path is hidden too.
  const hidden = new RegExp(`${HIDDEN.source}|${ts.dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'i');
  for (const query of [
    'SELECT * FROM pragma_database_list',
    'SELECT * FROM sqlite_sequence',
    'SELECT * FROM sqlite_stat1',
    'SELECT * FROM pragma_integrity_check',
  ]) {
    await assertLiveQueryHides(eveSocket, query, hidden);
  }
});
