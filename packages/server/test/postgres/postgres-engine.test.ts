/**
 * What only the PostgreSQL engine has: its configuration and start-up checks, how `?` and `$n`
 * placeholders are read, how PostgreSQL's values and errors reach the wire, and that cancel and
 * timeout stop the statement inside PostgreSQL itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, ConfigError } from '../../src/config/config.ts';
import { parseStatement } from '../../src/engine/postgres/sql-text.ts';
import { parseArray, parserFor } from '../../src/engine/postgres/values.ts';
import { startServer } from '../../src/server.ts';
import { silentLogger } from '../../src/core/logger.ts';
import { freshDataDir, sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import {
  asSuperuser,
  dropCaptureSlot,
  engineConfig,
  postgresUrl,
  postgresCases,
} from '../helpers/engines.ts';
import { roundTripProxy, type RoundTripProxy } from '../helpers/pg-round-trips.ts';
import type { Caller } from '../../src/engine/engine.ts';

describe('configuration', () => {
  test('engine postgres needs a postgres:// database_url; sqlite takes none; other engines are refused', () => {
    assert.throws(() => loadConfig({ overrides: { engine: 'postgres' } }), /database_url: is required/);
    assert.throws(
      () => loadConfig({ overrides: { engine: 'postgres', database_url: 'mysql://x@y/z' } }),
      /database_url: must be a postgres/,
    );
    assert.throws(
      () => loadConfig({ overrides: { engine: 'postgres', database_url: 'not a url' } }),
      /database_url: not a URL/,
    );
    assert.throws(() => loadConfig({ overrides: { database_url: 'postgres://a@b/c' } }), ConfigError);
    assert.throws(
      () => loadConfig({ overrides: { engine: 'oracle' } }),
      /engine: must be sqlite or postgres/,
    );
    const fromEnv = loadConfig({
      env: { RUSTYDB_ENGINE: 'postgres', RUSTYDB_DATABASE_URL: 'postgresql://u:p@h:5432/d' },
    });
    assert.equal(fromEnv.engine, 'postgres');
    assert.equal(fromEnv.database_url, 'postgresql://u:p@h:5432/d');
    const fromFlags = loadConfig({ flags: { engine: 'postgres', database_url: 'postgres://u@h/d' } });
    assert.equal(fromFlags.database_url, 'postgres://u@h/d');
  });
});

describe('placeholders', () => {
  test('? becomes $n outside constants, comments and dollar-quoted bodies', () => {
    const s = parseStatement(
      "SELECT ?, '?', E'it\\'s ?', \"col?\", $$ ? $$, $tag$ ? $$ ? $tag$ /* ? /* ? */ ? */ -- ?\n, ?",
    );
    assert.equal(s.parameterCount, 2);
    assert.match(s.text, /^SELECT \$1, '\?'/);
    assert.match(s.text, /, \$2$/);
  });

  test("PostgreSQL's own $1 placeholders are accepted; with them ? is jsonb's operator", () => {
    const s = parseStatement("SELECT doc ? 'a', $2::int + $1::int FROM t");
    assert.equal(s.parameterCount, 2);
    assert.equal(s.text, "SELECT doc ? 'a', $2::int + $1::int FROM t");
    assert.equal(parseStatement("SELECT doc ?| array['a'], ?").parameterCount, 1);
  });

  test('several statements, transaction control and unterminated constants are refused', () => {
    assert.throws(() => parseStatement('SELECT 1; SELECT 2'), /one statement per query/);
    assert.doesNotThrow(() => parseStatement('SELECT 1; -- trailing\n'));
    for (const verb of ['BEGIN', 'COMMIT', 'ROLLBACK', 'SAVEPOINT a', 'START TRANSACTION']) {
      assert.throws(() => parseStatement(verb), /transaction control/);
    }
    assert.throws(() => parseStatement("SELECT 'open"), /unterminated/);
    assert.throws(() => parseStatement('SELECT $x$ open'), /unterminated/);
  });

  test('statement kinds: reads run read-only; writes and everything else do not', () => {
    assert.equal(parseStatement('SELECT 1').kind, 'read');
    assert.equal(parseStatement('WITH a AS (SELECT 1) SELECT * FROM a').kind, 'read');
    assert.equal(parseStatement('WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a').kind, 'write');
    assert.equal(parseStatement('SELECT * FROM t FOR UPDATE').kind, 'write');
    assert.equal(parseStatement('EXPLAIN ANALYZE DELETE FROM t').kind, 'write');
    assert.equal(parseStatement('INSERT INTO t VALUES (1)').kind, 'write');
    assert.equal(parseStatement('CREATE TABLE t (x int)').kind, 'ddl');
    assert.equal(parseStatement('DO $$ BEGIN END $$').kind, 'ddl');
  });

  test('rowless: only data-changing statements with no RETURNING (they commit with the statement)', () => {
    const rowless = (sql: string): boolean => parseStatement(sql).rowless;
    assert.equal(rowless('INSERT INTO t VALUES (1)'), true);
    assert.equal(rowless('UPDATE t SET note = \'returning\' WHERE "returning" = 1'), true);
    assert.equal(rowless('DELETE FROM t WHERE x = ?'), true);
    assert.equal(rowless('INSERT INTO t VALUES (1) RETURNING x'), false);
    assert.equal(rowless('delete from t returning *'), false);
    assert.equal(rowless('WITH a AS (DELETE FROM t RETURNING *) SELECT * FROM a'), false);
    assert.equal(rowless('WITH a AS (SELECT 1) INSERT INTO t SELECT * FROM a'), false);
    assert.equal(rowless('SELECT 1'), false);
    assert.equal(rowless('CREATE TABLE t (x int)'), false);
  });
});

describe('value parsing', () => {
  test('text-format values by type', () => {
    assert.equal(parserFor(20)('9007199254740993'), '9007199254740993');
    assert.equal(parserFor(20)('42'), 42);
    assert.equal(parserFor(1700)('0.1000000000000000000001'), '0.1000000000000000000001');
    assert.equal(parserFor(701)('NaN'), 'NaN');
    assert.equal(parserFor(1184)('2024-05-01 12:00:00.5+00'), '2024-05-01T12:00:00.5Z');
    assert.equal(parserFor(1114)('2024-05-01 12:00:00'), '2024-05-01T12:00:00');
    assert.deepEqual(parserFor(17)('\\x00ff'), { $base64: 'AP8=' });
    assert.deepEqual(parseArray('{{1,2},{3,NULL}}', Number), [
      [1, 2],
      [3, null],
    ]);
    assert.deepEqual(
      parseArray('{"a,b","c\\"d",NULL,"NULL"}', (t) => t),
      ['a,b', 'c"d', null, 'NULL'],
    );
    assert.deepEqual(parseArray('[0:1]={7,8}', Number), [7, 8]);
  });
});

postgresCases('PostgreSQL cases', () => {
  describe('start-up checks', () => {
    const start = async (overrides: Record<string, unknown>): Promise<unknown> => {
      const dataDir = freshDataDir();
      const config = loadConfig({
        overrides: { port: 0, data_dir: dataDir, admin_password: 'x', ...overrides },
      });
      try {
        const server = await startServer(config, { logger: silentLogger });
        await server.close();
        return undefined;
      } catch (err) {
        return err;
      }
    };

    test('an unreachable database stops the start with a message naming database_url', async () => {
      const err = await start({ engine: 'postgres', database_url: 'postgres://u:p@127.0.0.1:1/none' });
      assert.match(String(err), /database_url: cannot connect to PostgreSQL/);
    });

    test('a superuser login role is refused', async () => {
      const err = await start({ engine: 'postgres', database_url: await postgresUrl() });
      assert.match(String(err), /is a superuser/);
    });

    test('a login role without CREATEROLE, or not owning the database, is refused', async () => {
      const noCreateRole = await engineConfig('postgres', 'LOGIN');
      assert.match(String(await start(noCreateRole)), /needs CREATEROLE/);
      const notOwner = await engineConfig('postgres', 'LOGIN CREATEROLE', false);
      assert.match(String(await start(notOwner)), /must own the database/);
    });

    test('a login role without REPLICATION is refused: change capture needs it', async () => {
      const noReplication = await engineConfig('postgres', 'LOGIN CREATEROLE');
      const err = String(await start(noReplication));
      assert.match(err, /needs REPLICATION for change capture/);
      assert.match(err, /rds_replication/);
    });

    test('membership in rds_replication passes the REPLICATION check, as on Amazon RDS and Aurora', async () => {
      // Outside RDS the membership gives no replication, so the start goes on to the slot and stops
      // there, with its own message: what shows is that the check let the role through.
      await asSuperuser([
        `DO $$ BEGIN
           IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rds_replication') THEN
             CREATE ROLE rds_replication NOLOGIN;
           END IF;
         END $$`,
      ]);
      const member = await engineConfig('postgres', 'LOGIN CREATEROLE');
      await asSuperuser([`GRANT rds_replication TO ${new URL(member.database_url!).username}`]);
      const err = String(await start(member));
      assert.doesNotMatch(err, /needs REPLICATION for change capture/);
      assert.match(err, /may not create a replication slot: change capture needs REPLICATION/);
    });
  });

  describe('describing a statement (what it reads, before a subscription to it)', () => {
    // The server's connections go through a proxy that counts round trips; those of the session roles
    // (`rdb<oid>_s_<hash>`), on which describe() runs, are told apart from the server's own.
    const SESSION_ROLE = /_s_[0-9a-f]{24}$/;
    let ts: TestServer;
    let proxy: RoundTripProxy;
    let databaseUrl: string;
    const caller: Caller = { user: 'reader', roles: ['readonly'], authorize: () => {} };
    const sessionRoundTrips = (): number[] =>
      proxy
        .counts()
        .filter((connection) => SESSION_ROLE.test(connection.user))
        .map((connection) => connection.roundTrips);
    before(async () => {
      const engine = await engineConfig('postgres');
      databaseUrl = engine.database_url!;
      const target = new URL(databaseUrl);
      proxy = await roundTripProxy(target.hostname, Number(target.port));
      ts = await startTestServer({ ...engine, database_url: proxy.url(databaseUrl) });
      await sql(ts, 'CREATE TABLE described (id int PRIMARY KEY, v text)');
    });
    after(async () => {
      await ts.close();
      await proxy.close();
      await dropCaptureSlot(databaseUrl);
    });

    test('takes one round trip: BEGIN and its settings, PREPARE, EXPLAIN, DEALLOCATE and COMMIT in one write', async () => {
      const engine = ts.server.engine;
      const text = 'SELECT v FROM described WHERE id > ?';
      // The first one makes the caller's session role and opens a connection under it.
      await engine.describe(text, caller);
      for (let i = 0; i < 3; i++) {
        proxy.reset();
        const access = await engine.describe(text, caller);
        assert.deepEqual(sessionRoundTrips(), [1]);
        assert.deepEqual(access, {
          needs: [{ privilege: 'SELECT', table: 'described' }],
          tables: ['described'],
          kind: 'read',
        });
      }
    });

    test('a statement PostgreSQL refuses is an error, and its connection is not lent again', async () => {
      const engine = ts.server.engine;
      for (const text of [
        'SELECT nope FROM described',
        'SELECT v FROM described WHERE',
        'SELECT 1; DROP TABLE described',
      ]) {
        await assert.rejects(engine.describe(text, caller), text);
        // Left in a failed transaction, a connection lent again would fail the next one.
        const access = await engine.describe('SELECT * FROM described', caller);
        assert.deepEqual(access.tables, ['described']);
      }
    });
  });

  describe('values, placeholders and errors end to end', () => {
    let ts: TestServer;
    let c: TestClient;
    before(async () => {
      ts = await startTestServer({}, { engine: 'postgres' });
      c = await ts.connectAuthed();
    });
    after(() => ts.close());

    test('bigint, numeric, json, timestamps, bytea, arrays and NULL reach the wire as documented', async () => {
      const { rows, error } = await c.query(
        `SELECT 9007199254740993::bigint, 42::bigint, 12345678901234567890.0123456789::numeric,
                '{"a":[1,{"b":null}]}'::jsonb, '[1,"x"]'::json, '2024-05-01 12:34:56.789+02'::timestamptz,
                '2024-05-01 12:34:56'::timestamp, '2024-05-01'::date, '\\x00ff10'::bytea,
                ARRAY[1,2,NULL]::int[], ARRAY['a,b','c"d'], ARRAY[[1.5,2],[3,4]]::numeric[],
                NULL::text, true, 1.5::float8, 'NaN'::float8`,
      );
      assert.equal(error, undefined, JSON.stringify(error));
      assert.deepEqual(rows, [
        [
          '9007199254740993',
          42,
          '12345678901234567890.0123456789',
          { a: [1, { b: null }] },
          [1, 'x'],
          '2024-05-01T10:34:56.789Z',
          '2024-05-01T12:34:56',
          '2024-05-01',
          { $base64: 'AP8Q' },
          [1, 2, null],
          ['a,b', 'c"d'],
          [
            ['1.5', '2'],
            ['3', '4'],
          ],
          null,
          true,
          1.5,
          'NaN',
        ],
      ]);
    });

    test('parameters: bytes as {"$base64"}, big integers as strings, with ? or $1', async () => {
      await c.query('CREATE TABLE vals (id bigint PRIMARY KEY, b bytea, n numeric, j jsonb)');
      const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0, 10]).toString('base64');
      const ins = await c.query('INSERT INTO vals VALUES (?, ?, ?, ?)', {
        params: ['9007199254740993', { $base64: bytes }, '0.30000000000000000001', '{"k": [true]}'],
      });
      assert.equal(ins.error, undefined, JSON.stringify(ins.error));
      assert.equal(ins.chunks[0]!.payload.rows_affected, 1);
      const back = await c.query('SELECT id, b, n, j FROM vals WHERE id = $1', {
        params: ['9007199254740993'],
      });
      assert.deepEqual(back.rows, [
        ['9007199254740993', { $base64: bytes }, '0.30000000000000000001', { k: [true] }],
      ]);
      const literal = await c.query("SELECT '?' AS q, ? AS p, $x$ ? $x$ AS d", { params: ['v'] });
      assert.deepEqual(literal.rows, [['?', 'v', ' ? ']]);
    });

    test('exact parameter counts, for ? and for $n', async () => {
      assert.equal((await c.query('SELECT ?::int', { params: [] })).error?.payload.code, 'QUERY_ERROR');
      assert.equal((await c.query('SELECT $2::int', { params: [1] })).error?.payload.code, 'QUERY_ERROR');
      assert.deepEqual((await c.query('SELECT $2::int - $1::int', { params: [1, 5] })).rows, [[4]]);
    });

    test('errors carry the SQLSTATE: missing table, syntax, constraint, several statements', async () => {
      const missing = await c.query('SELECT * FROM nowhere');
      assert.equal(missing.error?.payload.code, 'TABLE_NOT_FOUND');
      assert.equal(missing.error?.payload.details?.sqlstate, '42P01');
      assert.equal(missing.error?.payload.details?.table, 'nowhere');
      const syntax = await c.query('SELEC 1');
      assert.equal(syntax.error?.payload.code, 'QUERY_ERROR');
      assert.equal(syntax.error?.payload.details?.sqlstate, '42601');
      await c.query('CREATE TABLE uniq (k text PRIMARY KEY)');
      await c.query("INSERT INTO uniq VALUES ('a')");
      const dup = await c.query("INSERT INTO uniq VALUES ('a')");
      assert.equal(dup.error?.payload.code, 'QUERY_ERROR');
      assert.equal(dup.error?.payload.details?.sqlstate, '23505');
      const two = await c.query('SELECT 1; SELECT 2');
      assert.match(two.error!.payload.message!, /one statement per query/);
      const stack = JSON.stringify([missing, syntax, dup, two]);
      assert.doesNotMatch(stack, /\bat [A-Za-z.]+ \(/, 'no stack trace reaches the client');
    });

    test('a read statement cannot write, even through a function (READ ONLY transaction)', async () => {
      await c.query('CREATE TABLE sink (x int)');
      await c.query(
        'CREATE FUNCTION sneaky() RETURNS int LANGUAGE sql AS $$ INSERT INTO sink VALUES (1) RETURNING x $$',
      );
      const out = await c.query('SELECT sneaky()');
      assert.equal(out.error?.payload.code, 'QUERY_ERROR');
      assert.equal(out.error?.payload.details?.sqlstate, '25006');
      assert.deepEqual((await c.query('SELECT count(*) FROM sink')).rows, [[0]]);
    });

    test('settings a statement changes for its session do not reach the next statement on the same connection', async () => {
      // Statements here run one after another, so the pool lends each the connection the last gave back.
      await c.query("SET TimeZone = 'America/New_York'");
      const changed = await c.query(
        "SELECT set_config('DateStyle', 'SQL, DMY', false), set_config('bytea_output', 'escape', false), set_config('extra_float_digits', '0', false)",
      );
      assert.equal(changed.error, undefined, JSON.stringify(changed.error));
      const { rows, error } = await c.query(
        `SELECT '2024-05-01 12:00:00+00'::timestamptz, '\\x00ff'::bytea, 0.1::float8 + 0.2::float8,
                current_setting('TimeZone'), current_setting('DateStyle')`,
      );
      assert.equal(error, undefined, JSON.stringify(error));
      assert.deepEqual(rows, [
        ['2024-05-01T12:00:00Z', { $base64: 'AP8=' }, 0.30000000000000004, 'UTC', 'ISO, YMD'],
      ]);
    });

    // An autocommit statement's COMMIT travels with the messages that end its cursor (driver.ts): what
    // the COMMIT answers must be the statement's outcome, and a statement not read to its end must
    // commit nothing.
    test('a COMMIT that fails (a deferred foreign key) is the statement’s error, with its SQLSTATE, and leaves nothing', async () => {
      await c.query('CREATE TABLE parents (id int PRIMARY KEY)');
      await c.query(
        'CREATE TABLE children (parent int REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)',
      );
      const orphan = await c.query('INSERT INTO children VALUES (7)');
      assert.equal(orphan.error?.payload.code, 'QUERY_ERROR', JSON.stringify(orphan));
      assert.equal(orphan.error?.payload.details?.sqlstate, '23503');
      const streamed = await c.query(
        'INSERT INTO children SELECT g FROM generate_series(1, 30) g RETURNING parent',
        {
          chunk_size: 10,
        },
      );
      assert.equal(streamed.error?.payload.details?.sqlstate, '23503', JSON.stringify(streamed.error));
      assert.deepEqual((await c.query('SELECT count(*)::int FROM children')).rows, [[0]]);
      await c.query('INSERT INTO parents VALUES (7)');
      const adopted = await c.query('INSERT INTO children VALUES (7)');
      assert.equal(adopted.error, undefined, JSON.stringify(adopted.error));
      assert.deepEqual((await c.query('SELECT parent FROM children')).rows, [[7]]);
    });

    test('a write streamed in chunks commits once read to its end, and not when its client leaves part-way', async () => {
      await c.query('CREATE TABLE streamed_rows (g int, pad text)');
      const whole = await c.query(
        "INSERT INTO streamed_rows SELECT g, 'x' FROM generate_series(1, 2500) g RETURNING g",
        { chunk_size: 1000 },
      );
      assert.deepEqual(
        whole.chunks.map((m) => [m.payload.rows?.length, m.payload.has_more]),
        [
          [1000, true],
          [1000, true],
          [500, false],
        ],
      );
      assert.deepEqual((await c.query('SELECT count(*)::int FROM streamed_rows')).rows, [[2500]]);
      // ~20 MB of answer: more than the sockets hold, so the server is still streaming when the client
      // goes away after the first chunk.
      const leaving = await ts.connectAuthed();
      leaving.send({
        type: 'query',
        id: 'left',
        payload: {
          sql: "INSERT INTO streamed_rows SELECT g, repeat('y', 1000) FROM generate_series(1, 20000) g RETURNING g, pad",
          chunk_size: 100,
        },
      });
      assert.equal((await leaving.next((m) => m.id === 'left', 10_000)).type, 'data');
      leaving.terminate();
      await sleep(500);
      assert.deepEqual((await c.query('SELECT count(*)::int FROM streamed_rows')).rows, [[2500]]);
    });

    /** Statements of the test server's session roles PostgreSQL is running now, matching `text`. */
    async function running(text: string): Promise<number> {
      const [result] = (await asSuperuser([
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%${text}%' AND pid <> pg_backend_pid()`,
      ])) as { rows: { n: number }[] }[];
      return result!.rows[0]!.n;
    }

    test('cancel stops the statement inside PostgreSQL', async () => {
      c.send({ type: 'query', id: 'sleepy', payload: { sql: 'SELECT pg_sleep(30), 1 AS cancel_me' } });
      await sleep(300);
      assert.equal(await running('cancel_me'), 1);
      c.send({ type: 'cancel', id: 'stop-sleepy', payload: { id: 'sleepy' } });
      assert.equal((await c.reply('sleepy', 3000)).payload.code, 'QUERY_CANCELLED');
      await sleep(200);
      assert.equal(await running('cancel_me'), 0);
    });

    test('statement_timeout stops the statement inside PostgreSQL', async () => {
      const short = await startTestServer({ statement_timeout: 0.3 }, { engine: 'postgres' });
      try {
        const sc = await short.connectAuthed();
        const { error } = await sc.query('SELECT pg_sleep(30), 1 AS time_me_out', {}, 5000);
        assert.equal(error?.payload.code, 'QUERY_TIMEOUT');
        await sleep(200);
        assert.equal(await running('time_me_out'), 0);
      } finally {
        await short.close();
      }
    });

    // A transactional batch's BEGIN travels with its first statement and its COMMIT with the end of its
    // last (driver.ts): a failing COMMIT, a stop in the last statement and a failure anywhere must still
    // leave nothing, and a COMMIT's failure is the batch's, not its last statement's.
    async function transactionalBatch(id: string, queries: { sql: string }[]): Promise<ServerMsg> {
      c.send({ type: 'batch', id, payload: { queries, transaction: true } });
      return c.reply(id, 5000);
    }

    test('a transactional batch whose COMMIT fails (a deferred foreign key) is the batch’s error, at no statement, and leaves nothing', async () => {
      await c.query('CREATE TABLE batch_parents (id int PRIMARY KEY)');
      await c.query(
        'CREATE TABLE batch_children (parent int REFERENCES batch_parents (id) DEFERRABLE INITIALLY DEFERRED)',
      );
      for (const last of [
        'INSERT INTO batch_children VALUES (8)',
        'INSERT INTO batch_children VALUES (8) RETURNING parent',
      ]) {
        const m = await transactionalBatch('deferred', [
          { sql: 'INSERT INTO batch_parents VALUES (1)' },
          { sql: last },
        ]);
        assert.equal(m.type, 'error', JSON.stringify(m));
        assert.equal(m.payload.code, 'QUERY_ERROR');
        assert.equal(m.payload.details?.sqlstate, '23503');
        assert.equal(m.payload.details?.index, undefined, JSON.stringify(m.payload));
        assert.deepEqual((await c.query('SELECT count(*)::int FROM batch_parents')).rows, [[0]]);
      }
      const fine = await transactionalBatch('adopted', [
        { sql: 'INSERT INTO batch_parents VALUES (8)' },
        { sql: 'INSERT INTO batch_children VALUES (8)' },
      ]);
      assert.equal(fine.type, 'data', JSON.stringify(fine));
      assert.deepEqual((await c.query('SELECT parent FROM batch_children')).rows, [[8]]);
    });

    test('a transactional batch cancelled in its last statement commits nothing, with rows or without', async () => {
      await c.query('CREATE TABLE batch_sink (n int)');
      for (const last of [
        'SELECT pg_sleep(30), 1 AS cancel_last_rows',
        'INSERT INTO batch_sink SELECT 2 FROM pg_sleep(30) WHERE 1 <> 0 /* cancel_last_rowless */',
      ]) {
        c.send({
          type: 'batch',
          id: 'stopped',
          payload: {
            queries: [{ sql: 'INSERT INTO batch_sink VALUES (1)' }, { sql: last }],
            transaction: true,
          },
        });
        await sleep(300);
        assert.equal(await running('cancel_last_row'), 1);
        c.send({ type: 'cancel', id: 'stop-stopped', payload: { id: 'stopped' } });
        const m = await c.reply('stopped', 3000);
        assert.equal(m.payload.code, 'QUERY_CANCELLED', JSON.stringify(m.payload));
        assert.deepEqual((await c.query('SELECT count(*)::int FROM batch_sink')).rows, [[0]]);
      }
    });

    test('a transactional batch that begins or ends with DDL commits it all, published for change capture', async () => {
      const first = await transactionalBatch('ddl-first', [
        { sql: 'CREATE TABLE batch_made_first (id int PRIMARY KEY)' },
        { sql: 'INSERT INTO batch_made_first VALUES (1)' },
      ]);
      assert.equal(first.type, 'data', JSON.stringify(first));
      const lastDdl = await transactionalBatch('ddl-last', [
        { sql: 'INSERT INTO batch_made_first VALUES (2)' },
        { sql: 'CREATE TABLE batch_made_last (id int PRIMARY KEY)' },
      ]);
      assert.equal(lastDdl.type, 'data', JSON.stringify(lastDdl));
      assert.deepEqual((await c.query('SELECT id FROM batch_made_first ORDER BY id')).rows, [[1], [2]]);
      // Published (after_ddl) before it committed: a live query on it is told of a write to it.
      await c.subscribed('made-last', { query: 'SELECT id FROM batch_made_last' });
      assert.deepEqual((await liveData('made-last')).payload.rows, []);
      await c.query('INSERT INTO batch_made_last VALUES (5)');
      const [change] = await c.changes<{ added: unknown[] }>('made-last', 1);
      assert.deepEqual(change!.added, [[5]]);
      await unsubscribe('made-last');
    });

    const liveData = (id: string): Promise<ServerMsg> =>
      c.next((m) => m.id === id && m.type === 'data', 5000);
    async function unsubscribe(id: string): Promise<void> {
      c.send({ type: 'unsubscribe', id });
      await c.next((m) => m.id === id && m.type === 'unsubscribed');
    }

    // A live query's snapshot on PostgreSQL sends BEGIN, its settings and the position query with its
    // statement, and COMMIT with the statement's end.
    test('a live query runs with the session settings, whatever a statement before it on its connection set', async () => {
      await c.query("SET TimeZone = 'America/New_York'");
      await c.subscribed('settings', {
        query:
          "SELECT current_setting('TimeZone'), current_setting('transaction_isolation'), '2024-05-01 12:00:00+00'::timestamptz",
      });
      assert.deepEqual((await liveData('settings')).payload.rows, [
        ['UTC', 'repeatable read', '2024-05-01T12:00:00Z'],
      ]);
      await unsubscribe('settings');
    });

    test('a live query whose statement fails answers its error and leaves no connection in a failed transaction', async () => {
      // More failures than the pool has connections: a failed connection lent again would fail the next.
      for (let i = 0; i < 12; i++) {
        const failed = await c.subscribe(`failing${i}`, { query: 'SELECT 1 / (random() * 0)::int' });
        assert.equal(failed.type, 'error', JSON.stringify(failed));
        assert.equal(failed.payload.details?.sqlstate, '22012', JSON.stringify(failed.payload));
      }
      await c.subscribed('fine', { query: 'SELECT 42' });
      assert.deepEqual((await liveData('fine')).payload.rows, [[42]]);
      await unsubscribe('fine');
    });

    test('GraphQL queries and mutations over a PostgreSQL table', async () => {
      await c.query('CREATE TABLE books (id int PRIMARY KEY, title text NOT NULL, note text)');
      await c.query("INSERT INTO books VALUES (1, 'a', NULL), (2, 'b', 'x')");
      const gql = async (query: string): Promise<unknown> =>
        (await ts.http('/graphql', { body: { query } })).body;
      assert.deepEqual(await gql('{ books(orderBy: {id: DESC}) { id title } }'), {
        data: {
          books: [
            { id: 2, title: 'b' },
            { id: 1, title: 'a' },
          ],
        },
      });
      assert.deepEqual(await gql('{ books(where: {note: {eq: null}}) { id } }'), {
        data: { books: [{ id: 1 }] },
      });
      assert.deepEqual(await gql('{ books(where: {or: [], title: {in: []}}) { id } }'), {
        data: { books: [] },
      });
      assert.deepEqual(await gql('mutation { booksInsertOne(object: {id: 3, title: "c"}) { id title } }'), {
        data: { booksInsertOne: { id: 3, title: 'c' } },
      });
      assert.deepEqual(
        await gql('mutation { booksUpdateMany(where: {id: {eq: 3}}, set: {title: "cc"}) { affectedRows } }'),
        { data: { booksUpdateMany: { affectedRows: 1 } } },
      );
      assert.deepEqual(await gql('mutation { booksDeleteMany(where: {id: {neq: 1}}) { affectedRows } }'), {
        data: { booksDeleteMany: { affectedRows: 2 } },
      });
      const readOnly = (await gql('{ executeSql(sql: "DELETE FROM books") { rows } }')) as {
        errors: { extensions: { code: string } }[];
      };
      assert.equal(readOnly.errors[0]!.extensions.code, 'INVALID_MESSAGE');
    });
  });
});
