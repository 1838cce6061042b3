/**
 * SQL injection attempts through every way a client reaches the compilers: values are bound (so they
 * are matched or stored literally), and names (fields, operators, collections, outputs) are refused.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { compileAggregate } from '../../src/documents/aggregate-compiler.ts';
import { compileFilter } from '../../src/documents/filter-compiler.ts';
import { compileCount, compileFind } from '../../src/documents/find-compiler.ts';
import { compileUpdate } from '../../src/documents/update-compiler.ts';
import { PEOPLE } from './people.ts';
import { assertInvalid, documents, openDatabase, rows } from './sqlite-fixture.ts';

const db = openDatabase({ people: PEOPLE, secrets: [{ _id: 's1', password: 'hunter2' }] });
after(() => db.close());

const PAYLOADS = [
  "'; DROP TABLE people; --",
  "x' OR '1'='1",
  '") OR 1=1 --',
  "' UNION SELECT doc FROM secrets --",
  '?',
  "$.password') --",
  '%',
  '*',
  '\\',
  'a\u0000b',
];

function assertIntact(): void {
  assert.equal(Number(rows(db, 'SELECT COUNT(*) FROM people', [])[0]![0]), 8);
  assert.deepEqual(rows(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", []), [
    ['people'],
    ['secrets'],
  ]);
}

describe('values are bound, never spliced', () => {
  for (const payload of PAYLOADS) {
    it(`matches ${JSON.stringify(payload)} literally in every operator`, () => {
      const names = PEOPLE.map((doc) => doc.name).filter((name): name is string => typeof name === 'string');
      const escaped = payload.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&');
      const cases: [unknown, number][] = [
        [{ name: payload }, 0],
        [{ name: { $ne: payload } }, 8],
        [{ name: { $gt: payload } }, names.filter((name) => name > payload).length],
        [{ name: { $in: [payload, 1] } }, 0],
        [{ name: { $nin: [payload] } }, 8],
        [{ address: { city: payload } }, 0],
        [{ _id: payload }, 0],
        [{ _id: { $in: [payload] } }, 0],
        [{ $or: [{ 'orders.sku': payload }, { tags: [payload] }] }, 0],
      ];
      // A NUL would cut a GLOB/LIKE pattern short, so $regex refuses it (tested in the filter tests).
      if (!payload.includes('\0')) {
        cases.push(
          [{ name: { $regex: escaped } }, names.filter((name) => name.includes(payload)).length],
          [
            { name: { $regex: `^${escaped}`, $options: 'i' } },
            names.filter((name) => name.toLowerCase().startsWith(payload.toLowerCase())).length,
          ],
        );
      }
      for (const [filter, expected] of cases) {
        const { sql, params } = compileFilter(filter);
        if (payload.length > 1) assert.ok(!sql.includes(payload), `payload spliced into ${sql}`);
        assert.equal(sql.split('?').length - 1, params.length);
        const found = rows(db, `SELECT _id FROM people WHERE ${sql}`, params);
        assert.equal(found.length, expected, JSON.stringify(filter));
      }
      assertIntact();
    });
  }

  it('finds a document whose values are payloads', () => {
    const { sql, params } = compileUpdate({ $set: { evil: PAYLOADS[0], 'nested.q': PAYLOADS[3] } });
    rows(db, `UPDATE people SET doc = ${sql} WHERE _id = 'u6' RETURNING _id`, params);
    assert.deepEqual(
      documents(
        db,
        compileFind('people', { filter: { evil: PAYLOADS[0], 'nested.q': { $regex: "^' UNION" } } }),
      ),
      [{ _id: 'u6', evil: PAYLOADS[0], nested: { q: PAYLOADS[3] } }],
    );
    assertIntact();
  });

  it('stores payloads in $push values and replacement documents literally', () => {
    const push = compileUpdate({ $push: { list: { $each: PAYLOADS } } });
    rows(db, `UPDATE people SET doc = ${push.sql} WHERE _id = 'u6' RETURNING _id`, push.params);
    const replace = compileUpdate({ [`k${1}`]: PAYLOADS[1], "odd'key": PAYLOADS[2] });
    const [[text]] = rows(db, `SELECT ${replace.sql} FROM people WHERE _id = 'u6'`, replace.params) as [
      [string],
    ];
    assert.deepEqual(JSON.parse(text), { _id: 'u6', k1: PAYLOADS[1], "odd'key": PAYLOADS[2] });
    assert.deepEqual(
      (documents(db, compileFind('people', { filter: { _id: 'u6' } }))[0] as { list: unknown }).list,
      PAYLOADS,
    );
    assertIntact();
  });

  it('binds group constants and $count-free literals in pipelines', () => {
    assert.deepEqual(
      documents(db, compileAggregate('people', [{ $match: { name: PAYLOADS[1] } }, { $count: 'n' }])),
      [],
    );
    assert.deepEqual(
      documents(
        db,
        compileAggregate('people', [
          { $match: { _id: 'u1' } },
          { $group: { _id: PAYLOADS[0], n: { $sum: 1 } } },
        ]),
      ),
      [{ _id: PAYLOADS[0], n: 1 }],
    );
    assertIntact();
  });
});

describe('names are validated, never quoted', () => {
  const NAMES = [
    "a') OR 1=1 --",
    'a"b',
    "a'b",
    'a b',
    'a;b',
    'a]',
    'a[0]',
    '$where',
    'a.$b',
    'name--',
    'x)) UNION SELECT',
  ];

  for (const name of NAMES) {
    it(`refuses the field name ${JSON.stringify(name)} everywhere`, () => {
      assertInvalid(() => compileFilter({ [name]: 1 }), /invalid field path|unsupported top-level operator/);
      assertInvalid(
        () => compileFilter({ a: { $exists: true }, $or: [{ [name]: 1 }] }),
        /invalid field path|unsupported top-level operator/,
      );
      assertInvalid(() => compileFind('people', { sort: { [name]: 1 } }), /invalid field path/);
      assertInvalid(() => compileFind('people', { projection: { [name]: 1 } }), /invalid field path/);
      assertInvalid(
        () => compileCount('people', { [name]: { $gt: 1 } }),
        /invalid field path|unsupported top-level operator/,
      );
      assertInvalid(() => compileUpdate({ $set: { [name]: 1 } }), /invalid field path/);
      assertInvalid(() => compileUpdate({ $unset: { [name]: 1 } }), /invalid field path/);
      assertInvalid(
        () => compileAggregate('people', [{ $group: { _id: `$${name}` } }]),
        /invalid field path|variables/,
      );
      assertInvalid(
        () => compileAggregate('people', [{ $group: { _id: null, [name]: { $sum: 1 } } }]),
        /output field/,
      );
      assertInvalid(
        () => compileAggregate('people', [{ $group: { _id: { [name]: '$a' } } }]),
        /invalid field name|expression operator/,
      );
      assertInvalid(
        () => compileAggregate('people', [{ $project: { a: `$${name}` } }]),
        /invalid field path|variables/,
      );
      assertInvalid(
        () => compileAggregate('people', [{ $count: name }]),
        /\$count needs an output field name/,
      );
    });
  }

  it('refuses operator names that are not operators', () => {
    assertInvalid(() => compileFilter({ a: { "$eq') OR 1=1 --": 1 } }), /unsupported operator/);
    assertInvalid(() => compileFilter({ "$or') --": [] }), /unsupported top-level operator/);
    assertInvalid(() => compileUpdate({ "$set'": { a: 1 } }), /unsupported operator/);
    assertInvalid(() => compileAggregate('people', [{ '$match; DROP': {} }]), /unsupported stage/);
    assertInvalid(
      () => compileAggregate('people', [{ $group: { _id: null, n: { '$sum)': 1 } } }]),
      /unsupported accumulator/,
    );
  });

  it('refuses collection names that are not plain identifiers', () => {
    for (const name of [
      'people; DROP TABLE people',
      'people"',
      'people --',
      'sqlite_schema',
      '_rustydb_users',
      'main.people',
    ]) {
      assertInvalid(() => compileFind(name), /invalid collection name/);
      assertInvalid(() => compileAggregate(name, []), /invalid collection name/);
    }
  });

  it('leaves the database intact', () => {
    assertIntact();
  });
});
