/** `query` over /api/v1/stream: chunked streaming, unstreamed results, parameters, blobs, writes and SQL errors. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from './helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  let c: TestClient;
  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, 'CREATE TABLE nums (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    await sql(
      ts,
      "INSERT INTO nums (id, name) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500) SELECT x, 'n' || x FROM c",
    );
    c = await ts.connectAuthed();
  });
  after(() => ts.close());

  test('a streamed result arrives in chunks of chunk_size; the last has has_more false and the total', async () => {
    const { chunks, error, rows } = await c.query('SELECT id, name FROM nums ORDER BY id', {
      chunk_size: 1000,
    });
    assert.equal(error, undefined);
    assert.deepEqual(
      chunks.map((m) => [m.type, m.payload.status, m.payload.rows?.length, m.payload.has_more]),
      [
        ['data', 'success', 1000, true],
        ['data', 'success', 1000, true],
        ['data', 'success', 500, false],
      ],
    );
    for (const m of chunks) assert.deepEqual(m.payload.columns, ['id', 'name']);
    // Totals only on the last chunk.
    assert.equal('rows_affected' in chunks[0]!.payload, false);
    assert.equal('rows_affected' in chunks[1]!.payload, false);
    assert.equal(chunks[2]!.payload.rows_affected, 2500);
    assert.equal(rows.length, 2500);
    assert.deepEqual(rows[0], [1, 'n1']);
    assert.deepEqual(rows[2499], [2500, 'n2500']);
    rows.forEach((row, i) => assert.equal(row[0], i + 1));
  });

  test('without chunk_size the server default (query_chunk_size 1000) applies', async () => {
    const { chunks } = await c.query('SELECT id FROM nums');
    assert.deepEqual(
      chunks.map((m) => m.payload.rows?.length),
      [1000, 1000, 500],
    );
  });

  test('small chunk_size on a keyed (inline) result still streams in chunks', async () => {
    const { chunks, rows } = await c.query('SELECT id FROM nums WHERE id IN (1, 2, 3, 4, 5) ORDER BY id', {
      chunk_size: 2,
    });
    assert.deepEqual(
      chunks.map((m) => [m.payload.rows, m.payload.has_more]),
      [
        [[[1], [2]], true],
        [[[3], [4]], true],
        [[[5]], false],
      ],
    );
    assert.equal(chunks[2]!.payload.rows_affected, 5);
    assert.equal(rows.length, 5);
  });

  test('keyed lookups return every row they match: one key, no key, several keys, a join of keys', async () => {
    // All of these plan as primary-key searches (SQLite turns `OR` and `IN` into one); only some are one row.
    const cases: [string, unknown[], unknown[][]][] = [
      ['SELECT name FROM nums WHERE id = ?', [7], [['n7']]],
      ['SELECT name FROM nums WHERE id = ?', [99999], []],
      ['SELECT id FROM nums WHERE id IN (?, ?, ?) ORDER BY id', [3, 1, 2], [[1], [2], [3]]],
      ['SELECT id FROM nums WHERE id = ? OR id = ? ORDER BY id', [4, 5], [[4], [5]]],
      ['SELECT a.id, b.name FROM nums a JOIN nums b ON b.id = a.id + 1 WHERE a.id = ?', [9], [[9, 'n10']]],
      ['SELECT count(*) FROM nums WHERE id = ?', [11], [[1]]],
    ];
    for (const [text, params, expected] of cases) {
      // Twice: the first run plans the statement, the second runs the kept plan.
      for (let run = 0; run < 2; run++) {
        const { rows, error } = await c.query(text, { params });
        assert.equal(error, undefined, text);
        assert.deepEqual(rows, expected, `${text} ${JSON.stringify(params)}`);
      }
    }
  });

  test('a result of exactly n*chunk_size rows ends with has_more false and the right total', async () => {
    const { chunks, rows } = await c.query('SELECT id FROM nums WHERE id <= 2000', { chunk_size: 1000 });
    assert.equal(rows.length, 2000);
    const last = chunks.at(-1)!;
    assert.equal(last.payload.has_more, false);
    assert.equal(last.payload.rows_affected, 2000);
    assert.ok(chunks.slice(0, -1).every((m) => m.payload.has_more === true));
  });

  test('streaming:false answers with one data message holding every row', async () => {
    const id = c.newId();
    c.send({
      type: 'query',
      id,
      payload: { sql: 'SELECT id FROM nums ORDER BY id', streaming: false, chunk_size: 10 },
    });
    const m = await c.reply(id);
    assert.equal(m.type, 'data');
    assert.equal(m.payload.has_more, false);
    assert.equal(m.payload.rows_affected, 2500);
    assert.equal(m.payload.rows?.length, 2500);
    assert.deepEqual(m.payload.columns, ['id']);
    // Nothing else arrives for that id.
    c.send({ type: 'ping', id: 'after-unstreamed' });
    await c.reply('after-unstreamed');
    assert.equal(
      c.pending().some((x) => x.id === id),
      false,
    );
  });

  test('streaming:false over 100000 rows is refused with QUERY_ERROR', async () => {
    const { error } = await c.query(
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100001) SELECT x FROM c',
      { streaming: false },
    );
    assert.equal(error?.type, 'error');
    assert.equal(error?.payload.code, 'QUERY_ERROR');
  });

  test('an empty result is one chunk with columns, no rows, has_more false, rows_affected 0', async () => {
    const { chunks } = await c.query('SELECT id, name FROM nums WHERE name = ?', { params: ['nobody'] });
    assert.equal(chunks.length, 1);
    assert.deepEqual(chunks[0]!.payload, {
      status: 'success',
      columns: ['id', 'name'],
      rows: [],
      has_more: false,
      rows_affected: 0,
    });
  });

  test('positional ? parameters bind values of every JSON type', async () => {
    const { chunks } = await c.query('SELECT ? AS s, ? AS i, ? AS f, ? AS t, ? AS n, ? AS b', {
      params: ['text', 42, 1.5, true, null, false],
    });
    assert.deepEqual(chunks[0]!.payload.columns, ['s', 'i', 'f', 't', 'n', 'b']);
    // SQLite keeps each value's type (booleans as 1/0); PostgreSQL types an untyped parameter as text.
    const expected =
      engine === 'sqlite' ? ['text', 42, 1.5, 1, null, 0] : ['text', '42', '1.5', 'true', null, 'false'];
    assert.deepEqual(chunks[0]!.payload.rows, [expected]);
  });

  // SQLite's typeof: whether the driver bound an INTEGER or a REAL (PostgreSQL types parameters by context).
  if (engine === 'sqlite')
    test('a whole-number parameter binds as an INTEGER, not a REAL', async () => {
      // JSON 5 is an integer: SQL must see 5, not 5.0 (integer division, text conversion, typeof).
      const { rows, error } = await c.query("SELECT typeof(?) AS t, 'id-' || ? AS s, ? / 2 AS half", {
        params: [5, 5, 7],
      });
      assert.equal(error, undefined);
      assert.deepEqual(rows, [['integer', 'id-5', 3]]);
      const real = await c.query('SELECT typeof(?), ? / 2', { params: [1.5, 7.5] });
      assert.deepEqual(real.rows, [['real', 3.75]]);
    });

  test('SQL-injection-looking strings are bound as values, never interpreted', async () => {
    await c.query(`CREATE TABLE people (id ${dialect.autoId}, name TEXT)`);
    const evil = ["x'); DROP TABLE people; --", "' OR '1'='1", 'Robert"; DELETE FROM people; --'];
    for (const name of evil) {
      const { chunks, error } = await c.query('INSERT INTO people (name) VALUES (?)', { params: [name] });
      assert.equal(error, undefined);
      assert.equal(chunks[0]!.payload.rows_affected, 1);
    }
    const all = await c.query('SELECT name FROM people ORDER BY id');
    assert.deepEqual(
      all.rows,
      evil.map((n) => [n]),
    );
    const lookup = await c.query('SELECT count(*) FROM people WHERE name = ?', { params: ["' OR '1'='1"] });
    assert.deepEqual(lookup.rows, [[1]]);
    const none = await c.query('SELECT count(*) FROM people WHERE name = ?', {
      params: ["nobody' OR 1=1 --"],
    });
    assert.deepEqual(none.rows, [[0]]);
  });

  // SQLite's blobs (typeof, rowids); PostgreSQL's bytea: test/postgres/values.test.ts.
  if (engine === 'sqlite')
    test('blob parameters {"$base64"} round-trip byte for byte', async () => {
      await c.query('CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB)');
      const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff, 0x80, 0x7f, 10, 13, 0]);
      const b64 = bytes.toString('base64');
      const ins = await c.query('INSERT INTO blobs (b) VALUES (?)', { params: [{ $base64: b64 }] });
      assert.equal(ins.error, undefined);
      const { rows } = await c.query('SELECT b, typeof(b), length(b) FROM blobs WHERE id = ?', {
        params: [ins.chunks[0]!.payload.last_insert_id!],
      });
      assert.deepEqual(rows, [[{ $base64: b64 }, 'blob', bytes.length]]);
      const eq = await c.query('SELECT count(*) FROM blobs WHERE b = ?', { params: [{ $base64: b64 }] });
      assert.deepEqual(eq.rows, [[1]]);
      // An empty blob and a direct SELECT of a bound blob.
      const direct = await c.query('SELECT ? AS b, typeof(?) AS t', {
        params: [{ $base64: '' }, { $base64: '' }],
      });
      assert.deepEqual(direct.rows, [[{ $base64: '' }, 'blob']]);
    });

  // Streamed reads are serialized to JSON on SQLite's read workers; HTTP answers from the values.
  if (engine === 'sqlite')
    test('rows serialized on a read worker are the values HTTP answers, in the envelope JSON.stringify makes', async () => {
      await c.query('CREATE TABLE mixed (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB)');
      const texts = [
        'quote " backslash \\ slash /',
        'controls \u0001\u0002\u001f\t\n\u2028',
        'ünïcødé 😀 𝄞',
        '',
      ];
      const inserted = [
        [2 ** 53 + 2, -0.0, texts[0], { $base64: Buffer.from([0, 255, 128]).toString('base64') }],
        [-(2 ** 53) - 2, 1e308, texts[1], { $base64: '' }],
        [0, 5e-324, texts[2], null],
        [null, null, texts[3], null],
        [42, 0.1 + 0.2, null, { $base64: Buffer.from('x'.repeat(300)).toString('base64') }],
      ];
      for (const params of inserted) {
        const ins = await c.query('INSERT INTO mixed (i, r, t, b) VALUES (?, ?, ?, ?)', { params });
        assert.equal(ins.error, undefined, JSON.stringify(ins.error));
      }
      // An integer no JSON number holds exactly (SQLite keeps all 64 bits).
      const big = await c.query('UPDATE mixed SET i = 9007199254740993 WHERE i = 42');
      assert.equal(big.error, undefined);
      const select = 'SELECT id, i, r, t, b, r * 2 AS twice FROM mixed ORDER BY id';
      const before = c.rawTexts.length;
      const streamed = await c.query(select, { chunk_size: 2 });
      assert.equal(streamed.error, undefined);
      assert.equal(streamed.chunks.length, 3);
      const overHttp = await ts.http('/api/v1/query', { body: { sql: select } });
      const expected = (overHttp.body as { data: { rows: unknown[][] } }).data.rows;
      assert.equal(expected.length, inserted.length);
      assert.deepEqual(streamed.rows, expected);
      // Byte for byte what JSON.stringify makes of the envelope, keys in the same order.
      const raw = c.rawTexts.slice(before).filter((text) => text.includes('"columns"'));
      assert.equal(raw.length, 3);
      for (const text of raw) {
        const parsed = JSON.parse(text) as { payload: Record<string, unknown> };
        assert.equal(text, JSON.stringify(parsed));
        assert.deepEqual(Object.keys(parsed), ['type', 'payload', 'timestamp', 'id']);
      }
      assert.deepEqual(Object.keys((JSON.parse(raw[2]!) as { payload: object }).payload), [
        'status',
        'columns',
        'rows',
        'has_more',
        'rows_affected',
      ]);
    });

  test('writes answer rows_affected and last_insert_id', async () => {
    await c.query(`CREATE TABLE items (id ${dialect.autoId}, v INTEGER)`);
    const one = await c.query('INSERT INTO items (v) VALUES (?)', { params: [10] });
    assert.deepEqual(one.chunks[0]!.payload, {
      status: 'success',
      columns: [],
      rows: [],
      has_more: false,
      rows_affected: 1,
      ...dialect.lastInsertId(1),
    });
    const three = await c.query('INSERT INTO items (v) VALUES (?), (?), (?)', { params: [20, 30, 40] });
    assert.equal(three.chunks[0]!.payload.rows_affected, 3);
    assert.equal(three.chunks[0]!.payload.last_insert_id, dialect.lastInsertId(4).last_insert_id);
    const explicit = await c.query('INSERT INTO items (id, v) VALUES (100, 50)');
    assert.equal(explicit.chunks[0]!.payload.last_insert_id, dialect.lastInsertId(100).last_insert_id);
    const upd = await c.query('UPDATE items SET v = v + 1 WHERE v >= ?', { params: [30] });
    assert.equal(upd.chunks[0]!.payload.rows_affected, 3);
    const del = await c.query('DELETE FROM items WHERE id = ?', { params: [1] });
    assert.equal(del.chunks[0]!.payload.rows_affected, 1);
    const none = await c.query('DELETE FROM items WHERE id = ?', { params: [999] });
    assert.equal(none.chunks[0]!.payload.rows_affected, 0);
    const { rows } = await c.query('SELECT id, v FROM items ORDER BY id');
    assert.deepEqual(rows, [
      [2, 20],
      [3, 31],
      [4, 41],
      [100, 51],
    ]);
  });

  test('a missing table is TABLE_NOT_FOUND naming the table', async () => {
    const { error, chunks } = await c.query('SELECT * FROM missing_table');
    assert.equal(chunks.length, 0);
    assert.equal(error?.type, 'error');
    assert.equal(error?.payload.status, 'error');
    assert.equal(error?.payload.code, 'TABLE_NOT_FOUND');
    assert.match(error!.payload.message!, /missing_table/);
    const ins = await c.query('INSERT INTO missing_table (x) VALUES (1)');
    assert.equal(ins.error?.payload.code, 'TABLE_NOT_FOUND');
  });

  test('syntax errors and constraint failures are QUERY_ERROR', async () => {
    assert.equal((await c.query('SELEC 1')).error?.payload.code, 'QUERY_ERROR');
    assert.equal((await c.query('SELECT FROM WHERE')).error?.payload.code, 'QUERY_ERROR');
    assert.equal((await c.query('SELECT no_such_column FROM nums')).error?.payload.code, 'QUERY_ERROR');
    const dup = await c.query('INSERT INTO nums (id, name) VALUES (1, ?)', { params: ['dup'] });
    assert.equal(dup.error?.payload.code, 'QUERY_ERROR');
    assert.match(dup.error!.payload.message!, /UNIQUE|unique/);
  });

  test('too few parameters for the placeholders is QUERY_ERROR', async () => {
    const few = await c.query('SELECT ? + ? AS s', { params: [1] });
    assert.equal(few.error?.payload.code, 'QUERY_ERROR', `got ${JSON.stringify(few.rows)}`);
    const none = await c.query('SELECT name FROM nums WHERE id = ?');
    assert.equal(none.error?.payload.code, 'QUERY_ERROR', `got ${JSON.stringify(none.rows)}`);
  });

  test('too many parameters for the placeholders is QUERY_ERROR', async () => {
    const many = await c.query('SELECT ? AS a', { params: [1, 2] });
    assert.equal(many.error?.payload.code, 'QUERY_ERROR', `got ${JSON.stringify(many.rows)}`);
    const noPlaceholders = await c.query('SELECT count(*) FROM nums', { params: [1] });
    assert.equal(
      noPlaceholders.error?.payload.code,
      'QUERY_ERROR',
      `got ${JSON.stringify(noPlaceholders.rows)}`,
    );
  });

  test("a statement never sees another session's parameter values", async () => {
    const other = await ts.connectAuthed();
    const mine = await other.query('SELECT name FROM nums WHERE id = ?', { params: [1234] });
    assert.deepEqual(mine.rows, [['n1234']]);
    // Same SQL from another socket without parameters: the value 1234 bound above must not be reused.
    const leaked = await c.query('SELECT name FROM nums WHERE id = ?', { params: [] });
    assert.notDeepEqual(leaked.rows, [['n1234']], "another session's bound parameter was reused");
    const overHttp = await ts.http('/api/v1/query', { body: { sql: 'SELECT name FROM nums WHERE id = ?' } });
    assert.notDeepEqual(
      (overHttp.body as { data?: { rows?: unknown } }).data?.rows,
      [['n1234']],
      "another session's bound parameter was reused over HTTP",
    );
  });

  test('the socket keeps working after errors', async () => {
    await c.query('SELEC 1');
    const { rows } = await c.query('SELECT count(*) FROM nums');
    assert.deepEqual(rows, [[2500]]);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
