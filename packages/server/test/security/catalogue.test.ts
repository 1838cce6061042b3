/**
 * What a user may learn about the database itself. A user sees the tables it holds a privilege on (and
 * the views it may read); ADMIN sees everything. That holds for SQL — SQLite's schema table in every
 * spelling, the schema PRAGMAs and their table-valued functions, catalogue reads hidden in a view or in
 * CREATE TABLE … AS — on every route, and for GraphQL introspection, the collection list and the CLI's
 * `\dt`. What describes the server rather than the data (its files, functions, modules, compile options)
 * is for ADMIN only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { CLI, REPO_ROOT, cleanEnv } from '../helpers/cli.ts';
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

/** What eve may see: the tables she holds a privilege on, and the view over one of them. */
const VISIBLE = ['insert_only', 'public_docs', 'public_t', 'pv'];
/** Names that must never reach her, in any answer. */
const HIDDEN = /secret|\bsv\b|_rustydb_|schema_v/i;

before(async () => {
  ts = await startTestServer();
  for (const statement of [
    'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)',
    'CREATE TABLE secret (id INTEGER PRIMARY KEY, code TEXT NOT NULL, owner INTEGER)',
    'CREATE INDEX secret_code ON secret (code)',
    'CREATE TABLE insert_only (id INTEGER PRIMARY KEY, note TEXT)',
    'CREATE VIEW pv AS SELECT id, v FROM public_t',
    'CREATE VIEW sv AS SELECT code FROM secret',
    'CREATE TRIGGER secret_touch AFTER INSERT ON secret BEGIN UPDATE secret SET owner = 0 WHERE id = new.id; END',
    // An administrator's view over the catalogue: reading it must not bypass the rules.
    'CREATE VIEW schema_v AS SELECT name FROM sqlite_master',
    "INSERT INTO public_t (v) VALUES ('hello')",
    "INSERT INTO secret (code) VALUES ('s3cr3t')",
  ]) {
    await sql(ts, statement);
  }
  for (const name of ['public_docs', 'secret_docs']) {
    const res = await ts.http('/api/v1/documents/collections', { body: { name } });
    assert.equal(res.status, 201);
  }
  await createRole(ts, 'eve_role', [
    { privilege: 'SELECT', table: 'public_t' },
    { privilege: 'SELECT', table: 'pv' },
    { privilege: 'SELECT', table: 'public_docs' },
    { privilege: 'INSERT', table: 'insert_only' },
    { privilege: 'SELECT', table: 'schema_v' },
  ]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  eveSocket = await connectWith(ts, eve);
  adminSocket = await ts.connectAuthed();
});
after(() => ts.close());

function rowsOf(outcome: Outcome, what: string): unknown[][] {
  assert.equal(outcome.code, 'ok', `${what}: ${outcome.code} ${outcome.message ?? ''}`);
  return outcome.rows!;
}

describe('SQLite schema table', () => {
  const SPELLINGS = [
    'sqlite_schema',
    'sqlite_master',
    'main.sqlite_master',
    '"sqlite_schema"',
    '[sqlite_master]',
    '`SQLITE_MASTER`',
    '"main"."sqlite_schema"',
  ];
  for (const route of ROUTES) {
    test(`${route}: every spelling shows eve only what she may see`, async () => {
      for (const spelling of SPELLINGS) {
        const rows = rowsOf(
          await runAs(
            ts,
            route,
            eve,
            eveSocket,
            `SELECT type, name, tbl_name, sql FROM ${spelling} ORDER BY name`,
          ),
          spelling,
        );
        const names = rows.filter((r) => r[0] === 'table' || r[0] === 'view').map((r) => r[1]);
        assert.deepEqual(names, VISIBLE, spelling);
        assert.doesNotMatch(JSON.stringify(rows), HIDDEN, spelling);
      }
    });
  }

  test('aggregates, subqueries, joins and aliases see the same rows', async () => {
    const checks: [string, unknown[][]][] = [
      ["SELECT count(*) FROM sqlite_schema WHERE type IN ('table', 'view')", [[VISIBLE.length]]],
      ["SELECT count(*) FROM sqlite_master WHERE name = 'secret'", [[0]]],
      ["SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE sql LIKE '%secret%')", [[0]]],
      [
        "SELECT s.name FROM sqlite_schema AS s JOIN sqlite_master m ON m.name = s.name WHERE s.type = 'view' ORDER BY 1",
        [['pv']],
      ],
      ["SELECT sqlite_master.name FROM sqlite_master WHERE sqlite_master.name = 'pv'", [['pv']]],
      ["SELECT x.name FROM main.sqlite_schema x WHERE x.type = 'view'", [['pv']]],
      ["SELECT name FROM sqlite_schema WHERE name LIKE 'sec%' UNION SELECT 'none'", [['none']]],
      ["WITH t AS (SELECT name FROM sqlite_master) SELECT count(*) FROM t WHERE name = 'sv'", [[0]]],
    ];
    for (const [statement, expected] of checks) {
      const { rows, error } = await eveSocket.query(statement);
      assert.equal(error, undefined, `${statement}: ${JSON.stringify(error?.payload)}`);
      assert.deepEqual(rows, expected, statement);
    }
  });

  test('the catalogue read through a view is refused, not served whole', async () => {
    const { error } = await eveSocket.query('SELECT name FROM schema_v');
    assert.equal(error?.payload.code, 'PERMISSION_DENIED');
    // The administrator reads it.
    const { rows } = await adminSocket.query("SELECT count(*) FROM schema_v WHERE name = 'secret'");
    assert.deepEqual(rows, [[1]]);
  });

  test('CREATE TABLE … AS SELECT copies only what its author may see', async () => {
    await createRole(ts, 'builder', [{ privilege: 'CREATE' }, { privilege: 'SELECT', table: 'public_t' }]);
    const mallory = await createUser(ts, 'mallory', ['builder']);
    const c = await connectWith(ts, mallory);
    const made = await c.query('CREATE TABLE copied AS SELECT name, sql FROM sqlite_master');
    if (made.error) {
      assert.equal(made.error.payload.code, 'PERMISSION_DENIED', JSON.stringify(made.error.payload));
    } else {
      const { rows } = await adminSocket.query('SELECT name, sql FROM copied');
      assert.doesNotMatch(JSON.stringify(rows), HIDDEN);
      assert.ok(rows!.some((r) => r[0] === 'public_t'));
    }
    const viaPragma = await c.query("CREATE TABLE copied2 AS SELECT name FROM pragma_table_info('secret')");
    if (!viaPragma.error) {
      assert.deepEqual((await adminSocket.query('SELECT count(*) FROM copied2')).rows, [[0]]);
    }
    c.close();
  });

  test('a live query over the catalogue never delivers what eve cannot see', async () => {
    for (const query of ['SELECT name FROM sqlite_schema', "SELECT name FROM pragma_table_info('secret')"]) {
      await assertLiveQueryHides(eveSocket, query, HIDDEN);
    }
    // A table created afterwards reaches eve's live queries no more than her statements.
    await sql(ts, 'CREATE TABLE secret_later (x INTEGER)');
    const after = eveSocket.received.filter((m) => m.id?.startsWith('live'));
    assert.doesNotMatch(JSON.stringify(after), HIDDEN);
  });

  test('an administrator sees everything', async () => {
    const { rows } = await adminSocket.query(
      "SELECT name FROM sqlite_schema WHERE name IN ('secret', 'sv', 'secret_code')",
    );
    assert.deepEqual(rows!.map((r) => r[0]).sort(), ['secret', 'secret_code', 'sv']);
  });
});

describe('schema PRAGMAs and their functions', () => {
  const EMPTY_FOR_EVE = [
    'PRAGMA table_info(secret)',
    "PRAGMA table_info('secret')",
    'PRAGMA main.table_info(secret)',
    'PRAGMA table_xinfo(SECRET)',
    'PRAGMA index_list(secret)',
    'PRAGMA index_info(secret_code)',
    'PRAGMA index_xinfo(secret_code)',
    'PRAGMA foreign_key_list(secret)',
    'PRAGMA table_info(sv)',
    "SELECT * FROM pragma_table_info('secret')",
    "SELECT name FROM pragma_table_xinfo('Secret')",
    "SELECT name FROM main.pragma_table_info('secret')",
    "SELECT * FROM pragma_index_list('secret')",
    "SELECT * FROM pragma_index_info('secret_code')",
    "SELECT * FROM pragma_foreign_key_list('secret')",
    "SELECT * FROM pragma_table_info('secret', 'main')",
    "SELECT p.name FROM pragma_table_info('secret') AS p",
    "SELECT name FROM pragma_table_info('_rustydb_' || 'users')",
  ];
  for (const route of ROUTES) {
    test(`${route}: nothing about tables eve cannot see`, async () => {
      for (const statement of EMPTY_FOR_EVE) {
        const outcome = await runAs(ts, route, eve, eveSocket, statement);
        // Either empty (as for a table that does not exist) or refused: never the columns.
        if (outcome.code !== 'ok') {
          assert.equal(outcome.code, 'PERMISSION_DENIED', `${statement}: ${outcome.message}`);
          continue;
        }
        assert.deepEqual(outcome.rows, [], statement);
      }
      const bound = await runAs(ts, route, eve, eveSocket, 'SELECT name FROM pragma_table_info(?)', [
        'secret',
      ]);
      if (bound.code === 'ok') assert.deepEqual(bound.rows, []);
      else assert.equal(bound.code, 'PERMISSION_DENIED');
    });
  }

  test('the same PRAGMAs describe the tables eve may see, as for anyone', async () => {
    const pairs: [string, unknown[][]][] = [
      [
        'PRAGMA table_info(public_t)',
        [
          [0, 'id', 'INTEGER', 0, null, 1],
          [1, 'v', 'TEXT', 0, null, 0],
        ],
      ],
      [
        "SELECT name, type FROM pragma_table_info('PUBLIC_T') ORDER BY cid",
        [
          ['id', 'INTEGER'],
          ['v', 'TEXT'],
        ],
      ],
      ["SELECT name FROM pragma_table_info('pv')", [['id'], ['v']]],
      ["SELECT count(*) FROM pragma_index_list('public_docs')", [[1]]],
    ];
    for (const [statement, expected] of pairs) {
      const { rows, error } = await eveSocket.query(statement);
      assert.equal(error, undefined, `${statement}: ${JSON.stringify(error?.payload)}`);
      assert.deepEqual(rows, expected, statement);
      // An administrator gets the same answer from SQLite itself.
      assert.deepEqual((await adminSocket.query(statement)).rows, expected, `admin: ${statement}`);
    }
    const { chunks } = await eveSocket.query('PRAGMA table_info(public_t)');
    assert.deepEqual(chunks[0]!.payload.columns, ['cid', 'name', 'type', 'notnull', 'dflt_value', 'pk']);
    const list = await eveSocket.query(
      "SELECT name FROM pragma_table_list WHERE schema = 'main' ORDER BY name",
    );
    assert.deepEqual(
      list.rows!.map((r) => r[0]),
      VISIBLE,
    );
  });

  test('what describes the server is for ADMIN only', async () => {
    const serverInfo = [
      'SELECT * FROM pragma_database_list',
      'SELECT file FROM pragma_database_list()',
      'SELECT * FROM pragma_function_list',
      'SELECT * FROM pragma_compile_options',
      'SELECT * FROM pragma_module_list',
      'SELECT * FROM pragma_collation_list',
      'SELECT * FROM pragma_pragma_list',
      'SELECT sqlite_compileoption_get(0)',
      "SELECT sqlite_compileoption_used('THREADSAFE')",
      // Named like a harmless function by a CTE: what is opened decides, not the name.
      'WITH pragma_table_info(x) AS (SELECT 1) SELECT * FROM pragma_database_list',
    ];
    for (const route of ROUTES) {
      for (const statement of serverInfo) {
        const outcome = await runAs(ts, route, eve, eveSocket, statement);
        assert.equal(outcome.code, 'PERMISSION_DENIED', `${route}: ${statement}: ${JSON.stringify(outcome)}`);
        assert.doesNotMatch(outcome.message ?? '', new RegExp(ts.dataDir.replaceAll('/', '\\/')));
      }
    }
    const { rows, error } = await adminSocket.query('SELECT count(*) > 0 FROM pragma_database_list');
    assert.equal(error, undefined);
    assert.deepEqual(rows, [[1]]);
  });
});

describe('outside SQL', () => {
  test('GraphQL introspection names only what eve may see', async () => {
    const res = await ts.http('/graphql', {
      token: eve,
      body: { query: '{ __schema { types { name fields { name args { name } } enumValues { name } } } }' },
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const text = JSON.stringify(res.body);
    assert.doesNotMatch(text, HIDDEN);
    assert.match(text, /public_t|publicT|PublicT/);
  });

  test('GET /api/v1/documents/collections lists only the collections eve holds a privilege on', async () => {
    const res = await ts.http('/api/v1/documents/collections', { token: eve });
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as { data: { collections: string[] } }).data.collections, ['public_docs']);
    const admin = await ts.http('/api/v1/documents/collections');
    assert.deepEqual((admin.body as { data: { collections: string[] } }).data.collections, [
      'public_docs',
      'secret_docs',
    ]);
  });

  test('GET /api/v1/schema describes only what eve may read', async () => {
    const res = await ts.http('/api/v1/schema', { token: eve });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.doesNotMatch(JSON.stringify(res.body), HIDDEN);
    const data = (res.body as { data: { tables: { name: string }[]; collections: { name: string }[] } }).data;
    // Tables only: views are not described here.
    assert.deepEqual(data.tables.map((t) => t.name).sort(), ['public_t']);
    assert.deepEqual(
      data.collections.map((c) => c.name),
      ['public_docs'],
    );
    const admin = await ts.http('/api/v1/schema');
    assert.match(JSON.stringify(admin.body), /"secret"/);
  });

  test('a collection eve holds nothing on is not described to her by name', async () => {
    for (const [path, body] of [
      ['/api/v1/documents/collections/secret_docs', undefined],
      ['/api/v1/documents/collections/secret_docs/count', {}],
      ['/api/v1/documents/collections/secret_docs/find', {}],
    ] as const) {
      const res = await ts.http(path, body === undefined ? { token: eve } : { token: eve, body });
      assert.equal(res.status, 403, `${path}: ${JSON.stringify(res.body)}`);
      // The refusal names the collection she asked for, and nothing about it (its indexes, its count).
      assert.doesNotMatch(JSON.stringify(res.body), /index|"count"|documents"/i, path);
    }
  });

  test("the CLI's \\dt and \\d show eve only her tables", async () => {
    const child = spawn(process.execPath, [CLI, 'shell'], {
      cwd: REPO_ROOT,
      env: cleanEnv({ RUSTYDB_URL: ts.server.url, RUSTYDB_TOKEN: eve, RUSTYDB_HISTORY: '' }),
      stdio: 'pipe',
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.end('\\dt\n\\d secret\n\\d public_t\n');
    const code = await new Promise<number | null>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`CLI did not exit\nstdout: ${stdout}\nstderr: ${stderr}`));
      }, 30_000);
      child.once('exit', (exitCode) => {
        clearTimeout(timer);
        resolve(exitCode);
      });
    });
    assert.match(stdout, /public_t/, stdout);
    assert.match(stdout, /\bid\b.*INTEGER/, stdout);
    // The shell repeats the name it was asked about; nothing else may name what eve cannot see.
    const answers = (stdout + stderr).replace('Did not find any table named "secret".', '');
    assert.match(stdout + stderr, /Did not find any table named "secret"/);
    assert.doesNotMatch(answers, HIDDEN, stdout + stderr);
    assert.ok(code === 0 || code === 1, `exit ${code}`);
  });
});
