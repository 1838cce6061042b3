import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { compileAggregate } from '../../src/documents/aggregate-compiler.ts';
import { assertInvalid, documents, openDatabase, type Doc } from './sqlite-fixture.ts';

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

const db = openDatabase({ orders: ORDERS, empty: [] });
after(() => db.close());

function aggregate(pipeline: unknown, collection = 'orders'): unknown[] {
  return documents(db, compileAggregate(collection, pipeline));
}

/** For stages whose output order MongoDB leaves undefined ($group). */
function unordered(docs: unknown[]): unknown[] {
  return [...docs].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Same documents, in any order. */
function assertSameDocuments(actual: unknown[], expected: unknown[]): void {
  assert.deepEqual(unordered(actual), unordered(expected));
}

function ids(docs: unknown[]): unknown[] {
  return docs.map((doc) => (doc as { _id: unknown })._id);
}

describe('$match, $sort, $skip, $limit', () => {
  it('returns every document for an empty pipeline', () => {
    assertSameDocuments(aggregate([]), ORDERS);
  });

  it('filters with the filter language', () => {
    assertSameDocuments(ids(aggregate([{ $match: { status: 'paid', total: { $gte: 7 } } }])), [
      'o1',
      'o2',
      'o6',
    ]);
  });

  it('sorts, skips and limits in pipeline order', () => {
    assert.deepEqual(ids(aggregate([{ $sort: { total: 1 } }])), ['o5', 'o3', 'o4', 'o6', 'o1', 'o2']);
    assert.deepEqual(ids(aggregate([{ $sort: { total: 1 } }, { $skip: 1 }, { $limit: 3 }])), [
      'o3',
      'o4',
      'o6',
    ]);
    assert.deepEqual(ids(aggregate([{ $sort: { total: 1 } }, { $limit: 3 }, { $skip: 1 }])), ['o3', 'o4']);
  });

  it('keeps the order through later $match and $limit stages', () => {
    assert.deepEqual(
      ids(aggregate([{ $sort: { total: -1 } }, { $match: { status: 'paid' } }, { $limit: 2 }])),
      ['o2', 'o1'],
    );
  });

  it('sorts by several keys, and a later $sort keeps earlier order among ties', () => {
    assert.deepEqual(ids(aggregate([{ $sort: { customer: 1, total: -1 } }])), [
      'o1',
      'o6',
      'o3',
      'o2',
      'o5',
      'o4',
    ]);
    assert.deepEqual(ids(aggregate([{ $sort: { total: -1 } }, { $sort: { customer: 1 } }])), [
      'o1',
      'o6',
      'o3',
      'o2',
      'o5',
      'o4',
    ]);
  });

  it('filters the table itself with leading $match stages, using the _id column', () => {
    const { sql } = compileAggregate('orders', [{ $match: { _id: 'o2' } }, { $match: { status: 'paid' } }]);
    assert.match(sql, /FROM "orders" WHERE \(\(_id = \?/);
    assert.deepEqual(ids(aggregate([{ $match: { _id: 'o2' } }, { $match: { status: 'paid' } }])), ['o2']);
    assert.deepEqual(ids(aggregate([{ $sort: { total: 1 } }, { $match: { _id: { $in: ['o2', 'o3'] } } }])), [
      'o3',
      'o2',
    ]);
  });
});

describe('$group', () => {
  it('groups by a field with every accumulator', () => {
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
    assert.deepEqual(aggregate(pipeline), [
      { _id: 'bob', total: 25.5, orders: 1, average: 25.5, smallest: 25.5, most: 1, count: 1 },
      { _id: 'ann', total: 17, orders: 2, average: 8.5, smallest: 7, most: 2, count: 2 },
      { _id: 'cy', total: 0.75, orders: 1, average: 0.75, smallest: 0.75, most: 'n/a', count: 1 },
    ]);
  });

  it('groups everything under a null _id, ignoring non-numbers', () => {
    assert.deepEqual(
      aggregate([
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

  it('writes integers as integers and doubles exactly', () => {
    const [doc] = documents(
      db,
      compileAggregate('orders', [
        { $group: { _id: null, items: { $sum: '$items' }, w: { $sum: '$weight' } } },
      ]),
    );
    assert.deepEqual(doc, { _id: null, items: 7, w: 0.30000000000000004 });
  });

  it('groups by a constant, summing constants', () => {
    assert.deepEqual(aggregate([{ $group: { _id: 'all', twice: { $sum: 2 }, halves: { $sum: 0.5 } } }]), [
      { _id: 'all', twice: 12, halves: 3 },
    ]);
  });

  it('groups by an object of paths, leaving missing fields out', () => {
    const result = aggregate([
      { $group: { _id: { country: '$region.country', city: '$region.city' }, n: { $sum: 1 } } },
    ]);
    assertSameDocuments(result, [
      { _id: {}, n: 1 },
      { _id: { country: 'DE' }, n: 1 },
      { _id: { country: 'FR', city: 'Lyon' }, n: 1 },
      { _id: { country: 'FR', city: 'Paris' }, n: 3 },
    ]);
  });

  it('groups a missing field as null, and $match works on the grouped documents', () => {
    const pipeline = [{ $group: { _id: '$region.country', n: { $count: {} } } }];
    assertSameDocuments(aggregate(pipeline), [
      { _id: 'DE', n: 1 },
      { _id: 'FR', n: 4 },
      { _id: null, n: 1 },
    ]);
    assert.deepEqual(aggregate([...pipeline, { $match: { _id: null } }]), [{ _id: null, n: 1 }]);
    assert.deepEqual(aggregate([...pipeline, { $match: { n: { $gt: 1 } } }]), [{ _id: 'FR', n: 4 }]);
    assert.deepEqual(
      aggregate([
        { $group: { _id: { c: '$region.country', city: '$region.city' }, n: { $sum: 1 } } },
        { $match: { '_id.city': 'Paris', n: { $gte: 3 } } },
      ]),
      [{ _id: { c: 'FR', city: 'Paris' }, n: 3 }],
    );
  });

  it('gives 0 for $sum and null for $avg, $min, $max of nothing', () => {
    assert.deepEqual(
      aggregate([
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

  it('compares $min and $max across types in MongoDB order', () => {
    assert.deepEqual(aggregate([{ $group: { _id: null, lo: { $min: '$flag' }, hi: { $max: '$flag' } } }]), [
      { _id: null, lo: 3, hi: true },
    ]);
    assert.deepEqual(
      aggregate([
        { $match: { flag: { $nin: [true, 3] } } },
        { $group: { _id: null, lo: { $min: '$flag' }, hi: { $max: '$flag' } } },
      ]),
      [{ _id: null, lo: 'x', hi: [1] }],
    );
  });

  it('returns no group for no input', () => {
    assert.deepEqual(aggregate([{ $group: { _id: null, n: { $sum: 1 } } }], 'empty'), []);
  });

  it('sorts grouped documents', () => {
    assert.deepEqual(
      aggregate([
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

describe('$project', () => {
  it('includes, renames with "$path" and drops _id', () => {
    assert.deepEqual(
      aggregate([
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

  it('reshapes grouped documents', () => {
    assertSameDocuments(
      aggregate([
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

  it('excludes fields, nested ones included', () => {
    assert.deepEqual(
      aggregate([
        { $match: { _id: 'o1' } },
        { $project: { 'region.city': 0, weight: 0, flag: 0, items: 0 } },
      ]),
      [{ _id: 'o1', customer: 'ann', status: 'paid', total: 10, region: { country: 'FR' } }],
    );
  });

  it('writes a computed _id first', () => {
    const [doc] = aggregate([{ $match: { _id: 'o2' } }, { $project: { total: 1, _id: '$customer' } }]);
    assert.equal(JSON.stringify(doc), '{"_id":"bob","total":25.5}');
  });

  it('leaves out computed fields whose path is missing', () => {
    assert.deepEqual(
      aggregate([{ $match: { _id: 'o5' } }, { $project: { city: '$region.city', total: 1 } }]),
      [{ _id: 'o5', total: null }],
    );
  });
});

describe('nesting limits', () => {
  it('runs the deepest filter, projection and group key allowed inside stages', () => {
    let filter: unknown = { 'region.city': { $not: { $nin: ['Paris', null], $regex: 's$' } } };
    for (let i = 0; i < 9; i++)
      filter = i % 2 ? { $nor: [{ b: 1 }, filter] } : { $or: [{ c: { $ne: 1 } }, filter] };
    let key: unknown = '$region.city';
    for (let i = 0; i < 4; i++) key = { k: key, c: '$customer' };
    const result = aggregate([
      { $sort: { total: 1 } },
      { $match: filter },
      {
        $project: { 'region.city.x': 1, 'region.country': 1, customer: 1, who: '$customer', _id: '$status' },
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

  it('runs the widest three-level exclusion allowed', () => {
    const paths = ['region.city.x', 'region.country.y', 'items.a.b', 'flag.a.b', 'x.y.z', 'm.n.o', '_id'];
    const result = aggregate([
      { $match: { _id: 'o3' } },
      { $project: Object.fromEntries(paths.map((path) => [path, 0])) },
      { $skip: 0 },
    ]);
    const { _id, ...rest } = ORDERS[2]!;
    assert.deepEqual(result, [rest]);
  });

  it('refuses group keys nested deeper than four levels', () => {
    let key: unknown = '$a';
    for (let i = 0; i < 5; i++) key = { k: key };
    assertInvalid(
      () => compileAggregate('orders', [{ $group: { _id: key } }]),
      /objects nested deeper than 4 levels/,
    );
  });
});

describe('$count', () => {
  it('counts the documents reaching it', () => {
    assert.deepEqual(aggregate([{ $match: { status: 'paid' } }, { $count: 'paid' }]), [{ paid: 4 }]);
  });

  it('outputs nothing for no documents, as MongoDB does', () => {
    assert.deepEqual(aggregate([{ $match: { status: 'lost' } }, { $count: 'n' }]), []);
  });
});

describe('compiled output', () => {
  it('is one SELECT with CTEs and bound parameters', () => {
    const { sql, params } = compileAggregate('orders', [
      { $match: { status: 'paid' } },
      { $group: { _id: '$customer', n: { $sum: 1 } } },
      { $match: { n: { $gt: 1 } } },
      { $sort: { n: -1 } },
      { $skip: 1 },
      { $limit: 5 },
    ]);
    assert.match(sql, /^WITH s0\(doc, ord\) AS \(/);
    assert.ok(!sql.includes(';'));
    assert.ok(!sql.includes('paid'));
    assert.equal(sql.split('?').length - 1, params.length);
    assert.match(sql, / SELECT doc FROM s\d+ ORDER BY ord$/);
  });
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
  ];
  for (const [pipeline, message] of refused) {
    const label = JSON.stringify(pipeline).slice(0, 80);
    it(`refuses ${label}`, () => assertInvalid(() => compileAggregate('orders', pipeline), message));
  }

  it('refuses a bad collection name', () => {
    assertInvalid(() => compileAggregate('orders; DROP TABLE orders', []), /invalid collection name/);
  });
});
