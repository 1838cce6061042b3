/**
 * GraphQL over HTTP against the real server: the schema generated from the tables (types, names),
 * queries with every `where` operator, ordering and cursor pagination, every mutation, executeSql,
 * limits, introspection and authentication.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { gql, gqlData, gqlErrorCode } from './helpers.ts';

let ts: TestServer;

before(async () => {
  ts = await startTestServer();
  await sql(
    ts,
    `CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, big INTEGER, data BLOB,
       misc, flag BOOLEAN, "first name" TEXT, "and" TEXT, "2fast" INTEGER)`,
  );
  const rows: [string, number | null, number | null][] = [
    ['ann', 1.5, 1],
    ['bob', 2, 3_000_000_000],
    ['cat', null, 7],
    ['dan', 4.25, null],
    ["o'hara", 5, 9],
  ];
  for (const [name, score, big] of rows) {
    await sql(ts, 'INSERT INTO things (name, score, big, flag) VALUES (?, ?, ?, ?)', [
      name,
      score,
      big,
      name < 'c',
    ]);
  }
});

after(async () => {
  await ts.close();
});

const ids = (rows: { id: number }[]): number[] => rows.map((r) => r.id);

describe('generated schema', () => {
  test('column types map to GraphQL scalars and names are made valid', async () => {
    const data = await gqlData<{
      __type: { fields: { name: string; type: { name: string | null; ofType: { name: string } | null } }[] };
    }>(ts, '{ __type(name: "things") { fields { name type { name ofType { name } } } } }');
    const types = Object.fromEntries(
      data.__type.fields.map((f) => [f.name, f.type.name ?? f.type.ofType?.name]),
    );
    assert.deepEqual(types, {
      id: 'BigInt',
      name: 'String',
      score: 'Float',
      big: 'BigInt',
      data: 'Base64',
      misc: 'JSON',
      flag: 'Boolean',
      first_name: 'String',
      and_: 'String',
      _2fast: 'BigInt',
    });
  });

  test('values beyond 32 bits, blobs, untyped JSON and booleans round-trip', async () => {
    const inserted = await gqlData<{ thingsInsertOne: Record<string, unknown> }>(
      ts,
      `mutation($o: thingsInsert!) { thingsInsertOne(object: $o) { id big data misc flag first_name and_ _2fast } }`,
      {
        o: {
          name: 'blobby',
          big: 9_000_000_000_000,
          data: Buffer.from([0, 1, 2, 255]).toString('base64'),
          misc: { nested: [1, 2] },
          flag: true,
          first_name: 'Bl',
          and_: 'x',
          _2fast: 2,
        },
      },
    );
    const row = inserted.thingsInsertOne;
    assert.equal(row.big, 9_000_000_000_000);
    assert.equal(row.data, 'AAEC/w==');
    assert.equal(row.misc, '{"nested":[1,2]}', 'objects are stored in untyped columns as JSON text');
    assert.equal(row.flag, true);
    assert.deepEqual([row.first_name, row.and_, row._2fast], ['Bl', 'x', 2]);
    const stored = await sql(ts, 'SELECT typeof(big), hex(data), "first name" FROM things WHERE id = ?', [
      row.id,
    ]);
    assert.deepEqual(stored.rows[0], ['integer', '000102FF', 'Bl']);
    await gqlData(ts, 'mutation($id: BigInt!) { thingsDeleteOne(where: {id: {eq: $id}}) { id } }', {
      id: row.id,
    });
  });

  test("names that collide after mapping, or with the schema's own types, get a numeric suffix", async () => {
    await sql(ts, 'CREATE TABLE "a-b" (id INTEGER PRIMARY KEY, "x y" TEXT, "x_y" TEXT)');
    await sql(ts, 'CREATE TABLE a_b (id INTEGER PRIMARY KEY)');
    await sql(ts, 'CREATE TABLE "Query" (id INTEGER PRIMARY KEY)');
    await sql(ts, 'INSERT INTO "a-b" ("x y", "x_y") VALUES (\'space\', \'underscore\')');
    const data = await gqlData<{
      a_b: { x_y: string; x_y_2: string }[];
      a_b_2: unknown[];
      Query_2: unknown[];
    }>(ts, '{ a_b { x_y x_y_2 } a_b_2 { id } Query_2 { id } }');
    assert.deepEqual(data.a_b, [{ x_y: 'space', x_y_2: 'underscore' }]);
    assert.deepEqual([data.a_b_2, data.Query_2], [[], []]);
    for (const table of ['"a-b"', 'a_b', '"Query"']) await sql(ts, `DROP TABLE ${table}`);
  });

  test('a BigInt argument refuses a fraction', async () => {
    assert.equal(await gqlErrorCode(ts, '{ things(where: {big: {eq: 1.5}}) { id } }'), 'INVALID_MESSAGE');
  });
});

describe('queries', () => {
  const cases: [string, string, number[]][] = [
    ['eq', '{name: {eq: "bob"}}', [2]],
    ['eq null', '{score: {eq: null}}', [3]],
    ['neq', '{name: {neq: "bob"}}', [1, 3, 4, 5]],
    ['lt', '{score: {lt: 2}}', [1]],
    ['lte', '{score: {lte: 2}}', [1, 2]],
    ['gt', '{big: {gt: 2147483647}}', [2]],
    ['gte', '{score: {gte: 4.25}}', [4, 5]],
    ['in', '{name: {in: ["ann", "dan", "zed"]}}', [1, 4]],
    ['empty in', '{name: {in: []}}', []],
    ['like', '{name: {like: "%a%"}}', [1, 3, 4, 5]],
    ['isNull', '{big: {isNull: true}}', [4]],
    ['and', '{and: [{score: {gt: 1}}, {score: {lt: 5}}]}', [1, 2, 4]],
    ['or', '{or: [{name: {eq: "ann"}}, {big: {eq: 7}}]}', [1, 3]],
    ['not', '{not: {name: {like: "%a%"}}}', [2]],
    [
      'nested',
      '{or: [{and: [{score: {gte: 2}}, {not: {big: {isNull: true}}}]}, {name: {eq: "cat"}}]}',
      [2, 3, 5],
    ],
    ['quote in a value is data', `{name: {eq: "o'hara"}}`, [5]],
    ['injection attempt is data', `{name: {eq: "x' OR 1=1 --"}}`, []],
  ];
  for (const [name, where, expected] of cases) {
    test(`where ${name}`, async () => {
      const data = await gqlData<{ things: { id: number }[] }>(ts, `{ things(where: ${where}) { id } }`);
      assert.deepEqual(ids(data.things), expected);
    });
  }

  test('orderBy, limit and offset', async () => {
    const data = await gqlData<{ a: { id: number }[]; b: { id: number }[] }>(
      ts,
      '{ a: things(orderBy: [{score: DESC}], limit: 3) { id } b: things(orderBy: [{flag: ASC}, {name: DESC}], limit: 2, offset: 1) { id } }',
    );
    assert.deepEqual(ids(data.a), [5, 4, 2]);
    assert.deepEqual(ids(data.b), [4, 3]);
  });

  test('an orderBy item must name exactly one column', async () => {
    assert.equal(
      await gqlErrorCode(ts, '{ things(orderBy: [{score: DESC, name: ASC}]) { id } }'),
      'INVALID_MESSAGE',
    );
  });

  test('cursor pagination walks every row once, in order, with NULLs where SQLite puts them', async () => {
    for (const [orderBy, expected] of [
      ['[{score: ASC}]', [3, 1, 2, 4, 5]],
      ['[{score: DESC}]', [5, 4, 2, 1, 3]],
      ['[{flag: DESC}, {score: ASC}]', [1, 2, 3, 4, 5]],
    ] as const) {
      const seen: number[] = [];
      let after: string | null = null;
      for (let page = 0; page < 10; page++) {
        const data: {
          thingsConnection: {
            nodes: { id: number }[];
            pageInfo: { hasNextPage: boolean; endCursor: string | null };
            totalCount: number;
          };
        } = await gqlData(
          ts,
          `query($after: String) { thingsConnection(first: 2, after: $after, orderBy: ${orderBy}) { nodes { id } pageInfo { hasNextPage endCursor } totalCount } }`,
          { after },
        );
        assert.equal(data.thingsConnection.totalCount, 5);
        seen.push(...ids(data.thingsConnection.nodes));
        if (!data.thingsConnection.pageInfo.hasNextPage) break;
        after = data.thingsConnection.pageInfo.endCursor;
      }
      assert.deepEqual(seen, [...expected], `orderBy ${orderBy}`);
    }
  });

  test('a cursor from another order is refused', async () => {
    const data = await gqlData<{ thingsConnection: { pageInfo: { endCursor: string } } }>(
      ts,
      '{ thingsConnection(first: 1) { pageInfo { endCursor } } }',
    );
    const code = await gqlErrorCode(
      ts,
      'query($a: String) { thingsConnection(first: 1, after: $a, orderBy: [{name: ASC}]) { nodes { id } } }',
      {
        a: data.thingsConnection.pageInfo.endCursor,
      },
    );
    assert.equal(code, 'INVALID_MESSAGE');
  });

  test('edges carry cursors and nodes', async () => {
    const data = await gqlData<{ thingsConnection: { edges: { cursor: string; node: { name: string } }[] } }>(
      ts,
      '{ thingsConnection(first: 2, where: {name: {in: ["ann", "bob"]}}) { edges { cursor node { name } } } }',
    );
    assert.deepEqual(
      data.thingsConnection.edges.map((e) => e.node.name),
      ['ann', 'bob'],
    );
    assert.ok(data.thingsConnection.edges.every((e) => typeof e.cursor === 'string' && e.cursor.length > 0));
  });
});

describe('mutations', () => {
  before(async () => {
    await sql(
      ts,
      'CREATE TABLE items (id INTEGER PRIMARY KEY, sku TEXT UNIQUE, qty INTEGER NOT NULL DEFAULT 0, note TEXT)',
    );
  });

  test('insertOne and insertMany (objects of different shapes, one transaction)', async () => {
    const one = await gqlData<{ itemsInsertOne: { id: number; qty: number } }>(
      ts,
      'mutation { itemsInsertOne(object: {sku: "a"}) { id qty } }',
    );
    assert.equal(one.itemsInsertOne.qty, 0);
    const many = await gqlData<{ itemsInsertMany: { affectedRows: number; returning: { sku: string }[] } }>(
      ts,
      'mutation { itemsInsertMany(objects: [{sku: "b", qty: 2}, {sku: "c"}, {sku: "d", qty: 4}]) { affectedRows returning { sku } } }',
    );
    assert.equal(many.itemsInsertMany.affectedRows, 3);
    assert.deepEqual(many.itemsInsertMany.returning.map((r) => r.sku).sort(), ['b', 'c', 'd']);
  });

  test('insertMany is all or nothing', async () => {
    const before = (await sql(ts, 'SELECT count(*) FROM items')).rows[0]![0];
    const code = await gqlErrorCode(
      ts,
      'mutation { itemsInsertMany(objects: [{sku: "e"}, {sku: "a", qty: 1}]) { affectedRows } }',
    );
    assert.equal(code, 'QUERY_ERROR');
    assert.equal((await sql(ts, 'SELECT count(*) FROM items')).rows[0]![0], before);
  });

  test('updateOne changes the first match in key order; updateMany all matches', async () => {
    const one = await gqlData<{ itemsUpdateOne: { sku: string; note: string } }>(
      ts,
      'mutation { itemsUpdateOne(where: {qty: {gte: 0}}, set: {note: "first"}) { sku note } }',
    );
    assert.deepEqual(one.itemsUpdateOne, { sku: 'a', note: 'first' });
    const many = await gqlData<{ itemsUpdateMany: { affectedRows: number } }>(
      ts,
      'mutation { itemsUpdateMany(where: {qty: {gt: 0}}, set: {note: "stocked"}) { affectedRows } }',
    );
    assert.equal(many.itemsUpdateMany.affectedRows, 2);
    const none = await gqlData<{ itemsUpdateOne: null }>(
      ts,
      'mutation { itemsUpdateOne(where: {sku: {eq: "zz"}}, set: {note: "x"}) { id } }',
    );
    assert.equal(none.itemsUpdateOne, null);
  });

  test('upsert inserts, then updates on the conflict target', async () => {
    const first = await gqlData<{ itemsUpsert: { qty: number } }>(
      ts,
      'mutation { itemsUpsert(object: {sku: "u", qty: 1}, onConflict: [sku]) { qty } }',
    );
    assert.equal(first.itemsUpsert.qty, 1);
    const second = await gqlData<{ itemsUpsert: { qty: number; note: string | null } }>(
      ts,
      'mutation { itemsUpsert(object: {sku: "u", qty: 5, note: "n"}, onConflict: [sku], update: [qty]) { qty note } }',
    );
    assert.deepEqual(second.itemsUpsert, { qty: 5, note: null });
    assert.deepEqual((await sql(ts, "SELECT count(*) FROM items WHERE sku = 'u'")).rows[0], [1]);
  });

  test('deleteOne and deleteMany return what they deleted', async () => {
    const one = await gqlData<{ itemsDeleteOne: { sku: string } }>(
      ts,
      'mutation { itemsDeleteOne(where: {}) { sku } }',
    );
    assert.equal(one.itemsDeleteOne.sku, 'a');
    const many = await gqlData<{ itemsDeleteMany: { affectedRows: number; returning: { sku: string }[] } }>(
      ts,
      'mutation { itemsDeleteMany(where: {sku: {in: ["b", "c"]}}) { affectedRows returning { sku } } }',
    );
    assert.equal(many.itemsDeleteMany.affectedRows, 2);
    assert.deepEqual((await sql(ts, 'SELECT sku FROM items ORDER BY id')).rows, [['d'], ['u']]);
  });

  test('a column that does not exist or cannot be written is refused', async () => {
    assert.equal(
      await gqlErrorCode(ts, 'mutation { itemsInsertOne(object: {nope: 1}) { id } }'),
      'INVALID_MESSAGE',
    );
  });

  test('mutations are refused over GET', async () => {
    const res = await ts.http(
      `/graphql?query=${encodeURIComponent('mutation { itemsDeleteMany(where: {}) { affectedRows } }')}`,
    );
    assert.equal(res.status, 405);
    assert.deepEqual((await sql(ts, 'SELECT count(*) FROM items')).rows[0], [2]);
  });
});

describe('executeSql', () => {
  test('Query.executeSql runs reads with bound params; writes need the mutation', async () => {
    const read = await gqlData<{ executeSql: { columns: string[]; rows: unknown[][] } }>(
      ts,
      '{ executeSql(sql: "SELECT name FROM things WHERE id = ?", params: [2]) { columns rows } }',
    );
    assert.deepEqual(read.executeSql, { columns: ['name'], rows: [['bob']] });
    assert.equal(
      await gqlErrorCode(ts, '{ executeSql(sql: "DELETE FROM things") { rowsAffected } }'),
      'INVALID_MESSAGE',
    );
    const write = await gqlData<{ executeSql: { rowsAffected: number } }>(
      ts,
      'mutation { executeSql(sql: "UPDATE things SET misc = ? WHERE id = ?", params: ["m", 1]) { rowsAffected } }',
    );
    assert.equal(write.executeSql.rowsAffected, 1);
  });

  test('SQL errors and missing tables carry the protocol codes', async () => {
    assert.equal(
      await gqlErrorCode(ts, '{ executeSql(sql: "SELECT * FROM nowhere") { rows } }'),
      'TABLE_NOT_FOUND',
    );
    assert.equal(await gqlErrorCode(ts, '{ executeSql(sql: "SELEC 1") { rows } }'), 'QUERY_ERROR');
    assert.equal(
      await gqlErrorCode(ts, '{ executeSql(sql: "SELECT * FROM _rustydb_users") { rows } }'),
      'PERMISSION_DENIED',
    );
  });
});

describe('limits and errors', () => {
  test('syntax and validation errors are INVALID_MESSAGE', async () => {
    assert.equal(await gqlErrorCode(ts, '{ things { id '), 'INVALID_MESSAGE');
    assert.equal(await gqlErrorCode(ts, '{ things { nope } }'), 'INVALID_MESSAGE');
  });

  test('an operation deeper than graphql_max_depth is refused before it runs', async () => {
    const limited = await startTestServer({ graphql_max_depth: 2 });
    try {
      await sql(limited, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
      await gqlData(limited, '{ tConnection { pageInfo { hasNextPage } } }').then(
        () => assert.fail('depth 3 should be refused'),
        () => undefined,
      );
      const res = await gql(limited, '{ tConnection { pageInfo { hasNextPage } } }');
      assert.equal(res.body.errors?.[0]?.extensions?.code, 'INVALID_MESSAGE');
      assert.equal(res.body.errors?.[0]?.extensions?.limit, 'graphql_max_depth');
      assert.equal(res.body.data, undefined);
      await gqlData(limited, '{ t { id } }');
    } finally {
      await limited.close();
    }
  });

  test('an operation over graphql_max_complexity is refused; literal limits count', async () => {
    const ok = await gql(ts, '{ things(limit: 100) { id name score } }');
    assert.equal(ok.body.errors, undefined);
    const res = await gql(ts, '{ things(limit: 1000) { id name } }');
    assert.equal(res.body.errors?.[0]?.extensions?.limit, 'graphql_max_complexity');
    assert.equal(res.body.errors?.[0]?.extensions?.actual, 2001);
  });

  test('introspection can be switched off; __typename still works', async () => {
    const closed = await startTestServer({ graphql_introspection: false });
    try {
      assert.equal(await gqlErrorCode(closed, '{ __schema { types { name } } }'), 'INVALID_MESSAGE');
      assert.deepEqual(await gqlData(closed, '{ __typename }'), { __typename: 'Query' });
    } finally {
      await closed.close();
    }
  });
});

describe('authentication', () => {
  test('no token: 401 AUTH_REQUIRED; a bad token: 401 AUTH_FAILED', async () => {
    const none = await gql(ts, '{ __typename }', undefined, null);
    assert.equal(none.status, 401);
    assert.equal(none.body.errors?.[0]?.extensions?.code, 'AUTH_REQUIRED');
    const bad = await gql(ts, '{ __typename }', undefined, 'not-a-token');
    assert.equal(bad.status, 401);
    assert.equal(bad.body.errors?.[0]?.extensions?.code, 'AUTH_FAILED');
  });

  test('with require_authentication off, a request without a token runs as the anonymous principal', async () => {
    const open = await startTestServer({ require_authentication: false });
    try {
      await sql(open, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const data = await gqlData<{ tInsertOne: { id: number } }>(
        open,
        'mutation { tInsertOne(object: {id: 7}) { id } }',
        undefined,
        null,
      );
      assert.equal(data.tInsertOne.id, 7);
    } finally {
      await open.close();
    }
  });
});
