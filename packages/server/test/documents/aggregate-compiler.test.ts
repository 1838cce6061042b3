/**
 * Aggregation pipelines compiled for each engine and run on it (SQLite in memory, PostgreSQL on the
 * tests' server): the same pipelines give the same documents on both, numbers included.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compileAggregate } from '../../src/documents/aggregate-compiler.ts';
import { MAX_GROUP_FIELDS } from '../../src/documents/group-compiler.ts';
import { postgresDialect } from '../../src/documents/postgres-dialect.ts';
import { sqliteDialect } from '../../src/documents/sqlite-dialect.ts';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { documentsOf, openDocumentDb, type DocumentDb } from './engine-fixture.ts';
import { assertInvalid, type Doc } from './sqlite-fixture.ts';

const DIALECTS = [sqliteDialect, postgresDialect];

const ORDERS: Doc[] = [
  {
    _id: 'o1',
    customer: 'ann',
    status: 'paid',
    total: 10,
    region: { country: 'FR', city: 'Paris' },
    items: 2,
    weight: 0.30000000000000004,
    flag: true,
  },
  { _id: 'o2', customer: 'bob', status: 'paid', total: 25.5, region: { country: 'DE' }, items: 1, flag: 'x' },
  {
    _id: 'o3',
    customer: 'ann',
    status: 'open',
    total: 0.25,
    region: { country: 'FR', city: 'Lyon' },
    items: 3,
    flag: { a: 1 },
  },
  {
    _id: 'o4',
    customer: 'cy',
    status: 'paid',
    total: 0.75,
    region: { country: 'FR', city: 'Paris' },
    items: 'n/a',
    flag: [1],
  },
  { _id: 'o5', customer: 'bob', status: 'void', total: null, flag: 3 },
  {
    _id: 'o6',
    customer: 'ann',
    status: 'paid',
    total: 7,
    region: { country: 'FR', city: 'Paris' },
    items: 1,
  },
];

/** Numbers whose sums and averages differ between naive, compensated and exact arithmetic. */
const NUMBERS: Doc[] = [
  ...Array.from({ length: 10 }, (_, i) => ({ _id: `tenth${i}`, kind: 'tenths', v: 0.1 })),
  { _id: 'a1', kind: 'pair', v: 0.1 },
  { _id: 'a2', kind: 'pair', v: 0.2 },
  { _id: 'i1', kind: 'ints', v: 1 },
  { _id: 'i2', kind: 'ints', v: 2 },
  { _id: 'i3', kind: 'ints', v: 2.5, w: 'not a number' },
  { _id: 'm1', kind: 'mixed', v: 1 },
  { _id: 'm2', kind: 'mixed', v: 0.5 },
  { _id: 'm3', kind: 'mixed', v: true },
  { _id: 'b1', kind: 'big', v: 4e18 },
  { _id: 'b2', kind: 'big', v: 4e18 },
  { _id: 'b3', kind: 'big', v: 4e18 },
  { _id: 'h1', kind: 'huge', v: 1e308 },
  { _id: 'h2', kind: 'huge', v: 1e308 },
  { _id: 's1', kind: 'strings', v: 'a' },
  { _id: 's2', kind: 'strings', v: 'B' },
  { _id: 's3', kind: 'strings', v: '\u00e9' },
  { _id: 'n1', kind: 'nulls', v: null },
  { _id: 'n2', kind: 'nulls' },
];

/** Canonical JSON: keys sorted, so documents compare whatever order an engine wrote their keys in. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** For stages whose output order MongoDB leaves undefined ($group). */
function unordered(docs: unknown[]): unknown[] {
  return [...docs].sort((a, b) => canonical(a).localeCompare(canonical(b)));
}

/** Same documents, in any order. */
function assertSameDocuments(actual: unknown[], expected: unknown[]): void {
  assert.deepEqual(unordered(actual), unordered(expected));
}

function ids(docs: unknown[]): unknown[] {
  return docs.map((doc) => (doc as { _id: unknown })._id);
}

/** `{c0: {$count: {}}, c1: …}`: `n` output fields. */
function manyCounts(n: number): Record<string, unknown> {
  return Object.fromEntries(Array.from({ length: n }, (_, i) => [`c${i}`, { $count: {} }]));
}

/** The cases that run pipelines, once per engine. */
function suite(engine: EngineName): void {
  let db: DocumentDb;
  before(async () => {
    db = await openDocumentDb(engine, { orders: ORDERS, numbers: NUMBERS, empty: [] });
  });
  after(() => db.close());

  function aggregate(pipeline: unknown, collection = 'orders'): Promise<unknown[]> {
    return documentsOf(db, compileAggregate(collection, pipeline, db.dialect));
  }

  /** One group per `kind` of NUMBERS (those `match` selects), keyed by kind. */
  async function byKind(
    accumulators: Record<string, unknown>,
    match: unknown = {},
  ): Promise<Record<string, unknown>> {
    const pipeline = [{ $match: match }, { $group: { _id: '$kind', ...accumulators } }];
    const groups = await aggregate(pipeline, 'numbers');
    return Object.fromEntries(
      groups.map((doc) => {
        const { _id, ...rest } = doc as Record<string, unknown>;
        return [String(_id), rest];
      }),
    );
  }

  describe('$match, $sort, $skip, $limit', async () => {
    it('returns every document for an empty pipeline', async () => {
      assertSameDocuments(await aggregate([]), ORDERS);
    });

    it('filters with the filter language', async () => {
      assertSameDocuments(ids(await aggregate([{ $match: { status: 'paid', total: { $gte: 7 } } }])), [
        'o1',
        'o2',
        'o6',
      ]);
    });

    it('sorts, skips and limits in pipeline order', async () => {
      assert.deepEqual(ids(await aggregate([{ $sort: { total: 1 } }])), ['o5', 'o3', 'o4', 'o6', 'o1', 'o2']);
      assert.deepEqual(ids(await aggregate([{ $sort: { total: 1 } }, { $skip: 1 }, { $limit: 3 }])), [
        'o3',
        'o4',
        'o6',
      ]);
      assert.deepEqual(ids(await aggregate([{ $sort: { total: 1 } }, { $limit: 3 }, { $skip: 1 }])), [
        'o3',
        'o4',
      ]);
    });

    it('keeps the order through later $match and $limit stages', async () => {
      assert.deepEqual(
        ids(await aggregate([{ $sort: { total: -1 } }, { $match: { status: 'paid' } }, { $limit: 2 }])),
        ['o2', 'o1'],
      );
    });

    it('sorts by several keys, and a later $sort keeps earlier order among ties', async () => {
      const expected = ['o1', 'o6', 'o3', 'o2', 'o5', 'o4'];
      assert.deepEqual(ids(await aggregate([{ $sort: { customer: 1, total: -1 } }])), expected);
      const twice = [{ $sort: { total: -1 } }, { $sort: { customer: 1 } }];
      assert.deepEqual(ids(await aggregate(twice)), expected);
    });

    it('filters the table itself with leading $match stages, using the _id column', async () => {
      const pipeline = [{ $match: { _id: 'o2' } }, { $match: { status: 'paid' } }];
      const { sql } = compileAggregate('orders', pipeline, db.dialect);
      assert.match(sql, /FROM "orders" WHERE \(\(_id = /);
      assert.deepEqual(ids(await aggregate([{ $match: { _id: 'o2' } }, { $match: { status: 'paid' } }])), [
        'o2',
      ]);
      assert.deepEqual(
        ids(await aggregate([{ $sort: { total: 1 } }, { $match: { _id: { $in: ['o2', 'o3'] } } }])),
        ['o3', 'o2'],
      );
    });
  });

  describe('$group', async () => {
    it('groups by a field with every accumulator', async () => {
      const pipeline = [
        { $match: { status: 'paid' } },
        {
          $group: {
            _id: '$customer',
            total: { $sum: '$total' },
            orders: { $sum: 1 },
            average: { $avg: '$total' },
            smallest: { $min: '$total' },
            most: { $max: '$items' },
            count: { $count: {} },
          },
        },
        { $sort: { total: -1 } },
      ];
      assert.deepEqual(await aggregate(pipeline), [
        { _id: 'bob', total: 25.5, orders: 1, average: 25.5, smallest: 25.5, most: 1, count: 1 },
        { _id: 'ann', total: 17, orders: 2, average: 8.5, smallest: 7, most: 2, count: 2 },
        { _id: 'cy', total: 0.75, orders: 1, average: 0.75, smallest: 0.75, most: 'n/a', count: 1 },
      ]);
    });

    it('groups everything under a null _id, ignoring non-numbers', async () => {
      assert.deepEqual(
        await aggregate([
          {
            $group: {
              _id: null,
              sum: { $sum: '$total' },
              n: { $count: {} },
              avg: { $avg: '$total' },
              min: { $min: '$total' },
              max: { $max: '$total' },
            },
          },
        ]),
        [{ _id: null, sum: 43.5, n: 6, avg: 8.7, min: 0.25, max: 25.5 }],
      );
    });

    it('writes integers as integers and doubles exactly', async () => {
      const [doc] = await aggregate([
        { $group: { _id: null, items: { $sum: '$items' }, w: { $sum: '$weight' } } },
      ]);
      assert.deepEqual(doc, { _id: null, items: 7, w: 0.30000000000000004 });
    });

    it('groups by a constant, summing constants', async () => {
      assert.deepEqual(
        await aggregate([{ $group: { _id: 'all', twice: { $sum: 2 }, halves: { $sum: 0.5 } } }]),
        [{ _id: 'all', twice: 12, halves: 3 }],
      );
    });

    it('groups by an object of paths, leaving missing fields out', async () => {
      const result = await aggregate([
        { $group: { _id: { country: '$region.country', city: '$region.city' }, n: { $sum: 1 } } },
      ]);
      assertSameDocuments(result, [
        { _id: {}, n: 1 },
        { _id: { country: 'DE' }, n: 1 },
        { _id: { country: 'FR', city: 'Lyon' }, n: 1 },
        { _id: { country: 'FR', city: 'Paris' }, n: 3 },
      ]);
    });

    it('groups a missing field as null, and $match works on the grouped documents', async () => {
      const pipeline = [{ $group: { _id: '$region.country', n: { $count: {} } } }];
      assertSameDocuments(await aggregate(pipeline), [
        { _id: 'DE', n: 1 },
        { _id: 'FR', n: 4 },
        { _id: null, n: 1 },
      ]);
      assert.deepEqual(await aggregate([...pipeline, { $match: { _id: null } }]), [{ _id: null, n: 1 }]);
      assert.deepEqual(await aggregate([...pipeline, { $match: { n: { $gt: 1 } } }]), [{ _id: 'FR', n: 4 }]);
      assert.deepEqual(
        await aggregate([
          { $group: { _id: { c: '$region.country', city: '$region.city' }, n: { $sum: 1 } } },
          { $match: { '_id.city': 'Paris', n: { $gte: 3 } } },
        ]),
        [{ _id: { c: 'FR', city: 'Paris' }, n: 3 }],
      );
    });

    it('gives 0 for $sum and null for $avg, $min, $max of nothing', async () => {
      assert.deepEqual(
        await aggregate([
          { $match: { status: 'void' } },
          {
            $group: {
              _id: '$customer',
              s: { $sum: '$total' },
              a: { $avg: '$total' },
              m: { $min: '$total' },
              x: { $max: '$nothing' },
            },
          },
        ]),
        [{ _id: 'bob', s: 0, a: null, m: null, x: null }],
      );
    });

    it('compares $min and $max across types in MongoDB order', async () => {
      assert.deepEqual(
        await aggregate([{ $group: { _id: null, lo: { $min: '$flag' }, hi: { $max: '$flag' } } }]),
        [{ _id: null, lo: 3, hi: true }],
      );
      assert.deepEqual(
        await aggregate([
          { $match: { flag: { $nin: [true, 3] } } },
          { $group: { _id: null, lo: { $min: '$flag' }, hi: { $max: '$flag' } } },
        ]),
        [{ _id: null, lo: 'x', hi: [1] }],
      );
    });

    it('returns no group for no input', async () => {
      assert.deepEqual(await aggregate([{ $group: { _id: null, n: { $sum: 1 } } }], 'empty'), []);
    });

    it('sorts grouped documents', async () => {
      assert.deepEqual(
        await aggregate([
          { $group: { _id: '$customer', n: { $sum: 1 } } },
          { $sort: { n: -1, _id: 1 } },
          { $limit: 2 },
        ]),
        [
          { _id: 'ann', n: 3 },
          { _id: 'bob', n: 2 },
        ],
      );
    });
  });

  describe('$project', async () => {
    it('includes, renames with "$path" and drops _id', async () => {
      assert.deepEqual(
        await aggregate([
          { $sort: { total: 1 } },
          { $skip: 1 },
          { $limit: 3 },
          { $project: { _id: 0, customer: 1, amount: '$total', city: '$region.city' } },
        ]),
        [
          { customer: 'ann', amount: 0.25, city: 'Lyon' },
          { customer: 'cy', amount: 0.75, city: 'Paris' },
          { customer: 'ann', amount: 7, city: 'Paris' },
        ],
      );
    });

    it('reshapes grouped documents', async () => {
      assertSameDocuments(
        await aggregate([
          { $group: { _id: '$customer', total: { $sum: '$total' } } },
          { $project: { _id: 0, who: '$_id', total: 1 } },
        ]),
        [
          { total: 0.75, who: 'cy' },
          { total: 17.25, who: 'ann' },
          { total: 25.5, who: 'bob' },
        ],
      );
    });

    it('excludes fields, nested ones included', async () => {
      assert.deepEqual(
        await aggregate([
          { $match: { _id: 'o1' } },
          { $project: { 'region.city': 0, weight: 0, flag: 0, items: 0 } },
        ]),
        [{ _id: 'o1', customer: 'ann', status: 'paid', total: 10, region: { country: 'FR' } }],
      );
    });

    if (engine === 'sqlite') {
      // jsonb keeps no key order: PostgreSQL writes keys in its own order (see docs/postgres.md).
      it('writes a computed _id first', async () => {
        const [doc] = await aggregate([
          { $match: { _id: 'o2' } },
          { $project: { total: 1, _id: '$customer' } },
        ]);
        assert.equal(JSON.stringify(doc), '{"_id":"bob","total":25.5}');
      });
    }

    it('leaves out computed fields whose path is missing', async () => {
      assert.deepEqual(
        await aggregate([{ $match: { _id: 'o5' } }, { $project: { city: '$region.city', total: 1 } }]),
        [{ _id: 'o5', total: null }],
      );
    });
  });

  describe('nesting limits', async () => {
    it('runs the deepest filter, projection and group key allowed inside stages', async () => {
      let filter: unknown = { 'region.city': { $not: { $nin: ['Paris', null], $regex: 's$' } } };
      for (let i = 0; i < 9; i++)
        filter = i % 2 ? { $nor: [{ b: 1 }, filter] } : { $or: [{ c: { $ne: 1 } }, filter] };
      let key: unknown = '$region.city';
      for (let i = 0; i < 4; i++) key = { k: key, c: '$customer' };
      const result = await aggregate([
        { $sort: { total: 1 } },
        { $match: filter },
        {
          $project: {
            'region.city.x': 1,
            'region.country': 1,
            customer: 1,
            who: '$customer',
            _id: '$status',
          },
        },
        { $group: { _id: key, n: { $sum: 1 } } },
        { $match: { n: { $gte: 1 } } },
      ]);
      // Every order passes the filter; the projection drops region.city (a string, not a sub-document).
      const id = (c: string) => ({ k: { k: { k: { c }, c }, c }, c });
      assertSameDocuments(result, [
        { _id: id('ann'), n: 3 },
        { _id: id('bob'), n: 2 },
        { _id: id('cy'), n: 1 },
      ]);
    });

    it('runs the widest three-level exclusion allowed', async () => {
      const paths = ['region.city.x', 'region.country.y', 'items.a.b', 'flag.a.b', 'x.y.z', 'm.n.o', '_id'];
      const result = await aggregate([
        { $match: { _id: 'o3' } },
        { $project: Object.fromEntries(paths.map((path) => [path, 0])) },
        { $skip: 0 },
      ]);
      const { _id, ...rest } = ORDERS[2]!;
      assert.deepEqual(result, [rest]);
    });

    it('refuses group keys nested deeper than four levels', async () => {
      let key: unknown = '$a';
      for (let i = 0; i < 5; i++) key = { k: key };
      assertInvalid(
        () => compileAggregate('orders', [{ $group: { _id: key } }], db.dialect),
        /objects nested deeper than 4 levels/,
      );
    });
  });

  describe('$count', async () => {
    it('counts the documents reaching it', async () => {
      assert.deepEqual(await aggregate([{ $match: { status: 'paid' } }, { $count: 'paid' }]), [{ paid: 4 }]);
    });

    it('outputs nothing for no documents, as MongoDB does', async () => {
      assert.deepEqual(await aggregate([{ $match: { status: 'lost' } }, { $count: 'n' }]), []);
    });
  });

  describe('numbers, types and missing values', () => {
    it('sums and averages as SQLite does: integers exactly, doubles compensated', async () => {
      const groups = await byKind(
        { sum: { $sum: '$v' }, avg: { $avg: '$v' }, n: { $count: {} } },
        // Its sum overflows: see below.
        { kind: { $ne: 'big' } },
      );
      assert.deepEqual(groups.tenths, { sum: 1, avg: 0.1, n: 10 });
      assert.deepEqual(groups.pair, { sum: 0.30000000000000004, avg: 0.15000000000000002, n: 2 });
      assert.deepEqual(groups.ints, { sum: 5.5, avg: 5.5 / 3, n: 3 });
      assert.deepEqual(groups.mixed, { sum: 1.5, avg: 0.75, n: 3 });
      // Infinity is written as null, as JSON.stringify writes it.
      assert.deepEqual(groups.huge, { sum: null, avg: null, n: 2 });
      assert.deepEqual(groups.strings, { sum: 0, avg: null, n: 3 });
      assert.deepEqual(groups.nulls, { sum: 0, avg: null, n: 2 });
    });

    it('averages integers as a double', async () => {
      const [doc] = await aggregate(
        [{ $match: { _id: { $in: ['i1', 'i2'] } } }, { $group: { _id: null, avg: { $avg: '$v' } } }],
        'numbers',
      );
      assert.deepEqual(doc, { _id: null, avg: 1.5 });
    });

    it('multiplies a constant $sum as a double, or exactly for an integer', async () => {
      const groups = await byKind({ tenth: { $sum: 0.1 }, seven: { $sum: 7 } });
      assert.deepEqual(groups.pair, { tenth: 0.2, seven: 14 });
      assert.deepEqual(groups.big, { tenth: 0.30000000000000004, seven: 21 });
      assert.deepEqual(groups.tenths, { tenth: 1, seven: 70 });
    });

    it('fails a $sum of integers that overflows 64 bits', async () => {
      await assert.rejects(
        aggregate([{ $match: { kind: 'big' } }, { $group: { _id: null, s: { $sum: '$v' } } }], 'numbers'),
        /integer overflow|bigint out of range/,
      );
      const [two] = await aggregate(
        [{ $match: { _id: { $in: ['b1', 'b2'] } } }, { $group: { _id: null, s: { $sum: '$v' } } }],
        'numbers',
      );
      assert.deepEqual(two, { _id: null, s: 8e18 });
    });

    it('takes $min and $max of strings byte-wise, and ignores null and missing', async () => {
      const groups = await byKind({ lo: { $min: '$v' }, hi: { $max: '$v' } });
      assert.deepEqual(groups.strings, { lo: 'B', hi: '\u00e9' });
      assert.deepEqual(groups.nulls, { lo: null, hi: null });
      assert.deepEqual(groups.mixed, { lo: 0.5, hi: true });
      assert.deepEqual(groups.big, { lo: 4e18, hi: 4e18 });
    });

    it('sorts mixed types in MongoDB order: missing and null, numbers, strings, objects, arrays, booleans', async () => {
      assert.deepEqual(ids(await aggregate([{ $sort: { flag: 1, _id: 1 } }])), [
        'o6',
        'o5',
        'o2',
        'o3',
        'o4',
        'o1',
      ]);
      assert.deepEqual(ids(await aggregate([{ $sort: { flag: -1, _id: 1 } }])), [
        'o1',
        'o4',
        'o3',
        'o2',
        'o5',
        'o6',
      ]);
      const sorted = await aggregate(
        [{ $match: { kind: { $in: ['nulls', 'strings'] } } }, { $sort: { v: 1, _id: 1 } }],
        'numbers',
      );
      assert.deepEqual(ids(sorted), ['n1', 'n2', 's2', 's1', 's3']);
    });

    it('keeps a null field and leaves out a missing one in $project', async () => {
      assert.deepEqual(
        await aggregate(
          [{ $match: { kind: 'nulls' } }, { $sort: { _id: 1 } }, { $project: { _id: 0, value: '$v' } }],
          'numbers',
        ),
        [{ value: null }, {}],
      );
    });

    it('groups null and missing together, under null', async () => {
      const groups = await aggregate(
        [{ $match: { kind: 'nulls' } }, { $group: { _id: '$v', n: { $sum: 1 } } }],
        'numbers',
      );
      assert.deepEqual(groups, [{ _id: null, n: 2 }]);
    });

    it(`builds a group of ${MAX_GROUP_FIELDS} output fields`, async () => {
      const [doc] = await aggregate([{ $group: { _id: null, ...manyCounts(MAX_GROUP_FIELDS) } }]);
      assert.deepEqual(doc, {
        _id: null,
        ...Object.fromEntries(Object.keys(manyCounts(MAX_GROUP_FIELDS)).map((k) => [k, 6])),
      });
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));

describe('compiled output', () => {
  for (const dialect of DIALECTS) {
    it(`is one SELECT with CTEs and bound parameters (${dialect.name})`, () => {
      const { sql, params } = compileAggregate(
        'orders',
        [
          { $match: { status: 'paid' } },
          { $group: { _id: '$customer', n: { $sum: 1 } } },
          { $match: { n: { $gt: 1 } } },
          { $sort: { n: -1 } },
          { $skip: 1 },
          { $limit: 5 },
        ],
        dialect,
      );
      assert.match(sql, /^WITH s0\(doc, ord\) AS \(/);
      assert.ok(!sql.includes(';'));
      assert.ok(!sql.includes('paid'));
      assert.equal(sql.split('?').length - 1, params.length);
      assert.match(sql, / SELECT doc FROM s\d+ ORDER BY ord$/);
    });
  }
});

describe('refused pipelines', () => {
  const refused: [unknown, RegExp][] = [
    [{ $match: {} }, /pipeline must be an array of stages/],
    [[{ $unwind: '$tags' }], /pipeline\[0\]: unsupported stage '\$unwind'/],
    [[{ $match: {} }, { $lookup: {} }], /pipeline\[1\]: unsupported stage '\$lookup'/],
    [[{ $match: {}, $limit: 1 }], /pipeline\[0\] must be an object with exactly one stage/],
    [[{}], /pipeline\[0\] must be an object with exactly one stage/],
    [['$match'], /pipeline\[0\] must be an object with exactly one stage/],
    [[{ $match: { a: { $bad: 1 } } }], /unsupported operator '\$bad'/],
    [[{ $sort: {} }, { $limit: 1 }], /pipeline\[0\]\.\$sort needs at least one key/],
    [[{ $limit: 0 }], /pipeline\[0\]\.\$limit must be an integer >= 1/],
    [[{ $limit: '5' }], /\$limit must be an integer >= 1/],
    [[{ $skip: -1 }], /pipeline\[0\]\.\$skip must be an integer >= 0/],
    [[{ $group: { n: { $sum: 1 } } }], /pipeline\[0\]\.\$group needs an _id/],
    [[{ $group: { _id: null, n: { $push: '$a' } } }], /unsupported accumulator '\$push'/],
    [
      [{ $group: { _id: null, n: { $sum: 'a' } } }],
      /\$group\.n\.\$sum needs a "\$field" reference or a number/,
    ],
    [[{ $group: { _id: null, n: { $avg: 3 } } }], /\$avg needs a "\$field" reference/],
    [[{ $group: { _id: null, n: { $count: { x: 1 } } } }], /\$count takes \{\}/],
    [[{ $group: { _id: null, n: { $sum: 1, $avg: '$a' } } }], /must be one accumulator/],
    [[{ $group: { _id: null, 'a.b': { $sum: 1 } } }], /output field 'a\.b' must be a name/],
    [[{ $group: { _id: { $year: '$d' } } }], /unsupported expression operator '\$year'/],
    [[{ $group: { _id: '$$ROOT' } }], /variables such as \$\$ROOT are not supported/],
    [[{ $group: { _id: ['$a'] } }], /array expressions are not supported/],
    [[{ $group: { _id: '$a..b' } }], /invalid field path 'a\.\.b'/],
    [[{ $project: {} }], /pipeline\[0\]\.\$project needs at least one field/],
    [[{ $project: { a: 1, b: 0 } }], /cannot mix inclusion and exclusion/],
    [[{ $project: { a: 0, b: '$c' } }], /computed fields cannot be combined with exclusion/],
    [[{ $project: { 'a.b': '$c' } }], /computed field 'a\.b' must be a top-level name/],
    [[{ $project: { a: 'literal' } }], /value for 'a' must be 0, 1 or a "\$field" reference/],
    [[{ $count: '' }], /\$count needs an output field name/],
    [[{ $count: '$n' }], /\$count needs an output field name/],
    [Array.from({ length: 101 }, () => ({ $limit: 1 })), /more than 100 stages/],
    [
      [{ $group: { _id: null, ...manyCounts(MAX_GROUP_FIELDS + 1) } }],
      /pipeline\[0\]\.\$group: more than 50 output fields besides _id/,
    ],
  ];
  for (const [pipeline, message] of refused) {
    const label = JSON.stringify(pipeline).slice(0, 80);
    it(`refuses ${label}`, () => {
      for (const dialect of DIALECTS)
        assertInvalid(() => compileAggregate('orders', pipeline, dialect), message);
    });
  }

  it('refuses a bad collection name', () => {
    assertInvalid(() => compileAggregate('orders; DROP TABLE orders', []), /invalid collection name/);
  });
});
