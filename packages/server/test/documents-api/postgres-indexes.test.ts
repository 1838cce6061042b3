/**
 * Documents on PostgreSQL use indexes: the SQL the compilers write for an equality and a numeric range
 * on an indexed field, and for an equality on a nested path, is planned as an index scan (EXPLAIN run
 * through the server's own query endpoint), in a find and in a `$match` leading a pipeline, and
 * answers the same as the documents API does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileAggregate } from '../../src/documents/aggregate-compiler.ts';
import { compileFind } from '../../src/documents/find-compiler.ts';
import { postgresDialect } from '../../src/documents/postgres-dialect.ts';
import { asSuperuser, dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';

const BASE = '/api/v1/documents/collections';
const DOCUMENTS = 4000;

interface PlanNode {
  'Node Type': string;
  'Index Name'?: string;
  Plans?: PlanNode[];
}

/** The names of the indexes a plan reads. */
function indexesIn(node: PlanNode): string[] {
  const own = node['Index Name'] ? [node['Index Name']] : [];
  return [...own, ...(node.Plans ?? []).flatMap(indexesIn)];
}

postgresCases('PostgreSQL index cases', () => {
  describe('document indexes on PostgreSQL', () => {
    let ts: TestServer;
    let databaseUrl: string;
    let database: string;

    const call = async (path: string, body?: unknown) => {
      const res = await ts.http(`${BASE}${path}`, body === undefined ? {} : { body });
      assert.ok(res.status < 300, JSON.stringify(res.body));
      return (res.body as { data: Record<string, unknown> }).data;
    };

    /** The indexes PostgreSQL's plan for a find reads. */
    function planIndexes(filter: unknown): Promise<string[]> {
      return indexesRead(compileFind('people', { filter }, postgresDialect));
    }

    /** The indexes PostgreSQL's plan for a compiled statement reads. */
    async function indexesRead(compiled: { sql: string; params: unknown[] }): Promise<string[]> {
      const res = await ts.http('/api/v1/query', {
        body: { sql: `EXPLAIN (FORMAT JSON) ${compiled.sql}`, params: compiled.params },
      });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const cell = (res.body as { data: { rows: unknown[][] } }).data.rows[0]![0];
      const plan = (typeof cell === 'string' ? JSON.parse(cell) : cell) as [{ Plan: PlanNode }];
      return indexesIn(plan[0].Plan);
    }

    before(async () => {
      const engine = await engineConfig('postgres');
      databaseUrl = engine.database_url!;
      database = new URL(databaseUrl).pathname.slice(1);
      ts = await startTestServer({ enable_rate_limiting: false, ...engine });
      await call('', { name: 'people' });
      // Written in one SQL statement (a collection is a table): a bulk insert of this size takes
      // seconds on a busy machine. The documents API reads them back below.
      await sql(
        ts,
        `INSERT INTO people (_id, doc, _op)
           SELECT 'p' || i, jsonb_build_object('_id', 'p' || i, 'age', i % 100, 'name', 'name ' || i,
                    'tags', CASE WHEN i % 7 = 0 THEN jsonb_build_array('seven', 't' || i % 3)
                                 ELSE jsonb_build_array('t' || i % 3) END,
                    'address', jsonb_build_object('city', 'city ' || i % 50)), 'insert'
             FROM generate_series(0, ${DOCUMENTS - 1}) AS i`,
      );
      await call('/people/indexes', { field: 'age' });
      // Statistics, as autovacuum would gather them in a while.
      await asSuperuser(['ANALYZE people'], database);
    });
    after(async () => {
      await ts.close();
      await dropCaptureSlot(databaseUrl);
    });

    test('equality on an indexed field is an index scan, and finds the same documents', async () => {
      const used = await planIndexes({ age: 42 });
      assert.ok(used.length > 0, 'the plan reads an index');
      const found = (await call('/people/find', { filter: { age: 42 } })).documents as unknown[];
      assert.equal(found.length, DOCUMENTS / 100);
    });

    test('a numeric range on an indexed field is a scan of its btree index', async () => {
      const used = await planIndexes({ age: { $gte: 98 } });
      assert.ok(used.includes('people__age'), `indexes used: ${JSON.stringify(used)}`);
      const found = (await call('/people/find', { filter: { age: { $gte: 98 } } })).documents as unknown[];
      assert.equal(found.length, (DOCUMENTS / 100) * 2);
      const below = await planIndexes({ age: { $lt: 1 } });
      assert.ok(below.includes('people__age'), `indexes used: ${JSON.stringify(below)}`);
    });

    test('a $match at the head of a pipeline is served by the indexes', async () => {
      const pipeline = (match: unknown) => [
        { $match: match },
        { $group: { _id: '$age', n: { $sum: 1 } } },
        { $sort: { _id: 1 } },
      ];
      const equal = await indexesRead(compileAggregate('people', pipeline({ age: 42 }), postgresDialect));
      assert.ok(equal.length > 0, 'the plan reads an index');
      const range = pipeline({ age: { $gte: 98 } });
      const used = await indexesRead(compileAggregate('people', range, postgresDialect));
      assert.ok(used.includes('people__age'), `indexes used: ${JSON.stringify(used)}`);
      const groups = (await call('/people/aggregate', { pipeline: range })).documents as unknown[];
      assert.deepEqual(groups, [
        { _id: 98, n: DOCUMENTS / 100 },
        { _id: 99, n: DOCUMENTS / 100 },
      ]);
    });

    test('equality on a nested path or an array element is served by the GIN index', async () => {
      const nested = await planIndexes({ 'address.city': 'city 7' });
      assert.ok(nested.length > 0 && !nested.includes('people__age'), JSON.stringify(nested));
      const count = await call('/people/count', { filter: { 'address.city': 'city 7' } });
      assert.equal(count.count, DOCUMENTS / 50);
      const element = await planIndexes({ tags: 'seven' });
      assert.ok(element.length > 0, JSON.stringify(element));
      const sevens = await call('/people/count', { filter: { tags: 'seven' } });
      assert.equal(sevens.count, Math.ceil(DOCUMENTS / 7));
    });
  });
});
