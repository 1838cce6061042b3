import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compileCount, compileFind, type FindOptions } from '../../src/documents/find-compiler.ts';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { documentsOf, openDocumentDb, type DocumentDb } from './engine-fixture.ts';
import { ALL_IDS, PEOPLE } from './people.ts';
import { assertInvalid } from './sqlite-fixture.ts';

const COLLECTIONS = {
  people: PEOPLE,
  nested: [{ _id: 'd1', a: [{ b: [{ c: 1, d: 2 }, 5], e: 1 }], x: { y: { z: 1, w: 2 } } }],
};

/** The cases that run finds and counts, once per engine. */
function suite(engine: EngineName): void {
  let db: DocumentDb;
  before(async () => {
    db = await openDocumentDb(engine, COLLECTIONS);
  });
  after(() => db.close());

  function find(options: FindOptions, collection = 'people'): Promise<unknown[]> {
    return documentsOf(db, compileFind(collection, options, db.dialect));
  }

  async function findIds(options: FindOptions): Promise<string[]> {
    return (await find(options)).map((doc) => (doc as { _id: string })._id);
  }

  async function count(filter?: unknown, options?: { limit?: unknown; skip?: unknown }): Promise<number> {
    const { sql, params } = compileCount('people', filter, options, db.dialect);
    return Number((await db.rows(sql, params))[0]![0]);
  }

  describe('find', () => {
    it('returns whole documents, exactly as stored', async () => {
      assert.deepEqual(await find({ filter: { _id: { $in: ['u1', 'u8'] } }, sort: { _id: 1 } }), [
        PEOPLE[0],
        PEOPLE[7],
      ]);
    });

    it('returns everything without options', async () => {
      assert.deepEqual((await findIds({})).sort(), ALL_IDS);
    });

    it('sorts by MongoDB type order: missing, numbers, strings', async () => {
      assert.deepEqual(await findIds({ sort: { age: 1 } }), ['u6', 'u8', 'u7', 'u5', 'u3', 'u1', 'u4', 'u2']);
      assert.deepEqual(await findIds({ sort: { age: -1 } }), [
        'u2',
        'u4',
        'u1',
        'u3',
        'u5',
        'u7',
        'u8',
        'u6',
      ]);
    });

    it('sorts by several keys, booleans after strings', async () => {
      assert.deepEqual(await findIds({ sort: { active: -1, _id: 1 } }), [
        'u1',
        'u3',
        'u2',
        'u7',
        'u4',
        'u5',
        'u6',
        'u8',
      ]);
      // u2's address is an array: sort paths are read directly, so its city counts as missing.
      assert.deepEqual(await findIds({ sort: { 'address.city': 1, age: -1 } }), [
        'u2',
        'u4',
        'u7',
        'u8',
        'u6',
        'u3',
        'u1',
        'u5',
      ]);
    });

    it('breaks ties by _id, so pages are stable', async () => {
      assert.deepEqual(await findIds({ sort: { email: 1 } }), [
        'u2',
        'u3',
        'u4',
        'u6',
        'u7',
        'u8',
        'u1',
        'u5',
      ]);
    });

    it('applies filter, sort, skip and limit together', async () => {
      assert.deepEqual(await findIds({ filter: { age: { $gte: 0 } }, sort: { age: 1 }, skip: 1, limit: 2 }), [
        'u5',
        'u3',
      ]);
      assert.deepEqual(await findIds({ sort: { _id: -1 }, limit: 3 }), ['u8', 'u7', 'u6']);
      assert.deepEqual(await findIds({ sort: { _id: 1 }, skip: 6 }), ['u7', 'u8']);
      assert.deepEqual(await findIds({ sort: { _id: 1 }, skip: 20 }), []);
    });

    it('treats a limit of 0 as no limit, as MongoDB does', async () => {
      assert.equal((await findIds({ limit: 0 })).length, 8);
    });
  });

  describe('find projections', () => {
    const one = async (projection: unknown, id = 'u1') =>
      (await find({ filter: { _id: id }, projection }))[0];

    it('includes fields in document order, with _id', async () => {
      assert.deepEqual(await one({ tags: 1, name: 1 }), { _id: 'u1', name: 'Alice', tags: ['admin', 'dev'] });
      // jsonb keeps no key order: only SQLite returns the fields in the document's order.
      if (engine === 'sqlite') {
        assert.equal(
          JSON.stringify(await one({ tags: 1, name: 1 })),
          '{"_id":"u1","name":"Alice","tags":["admin","dev"]}',
        );
      }
    });

    it('includes nested fields, in sub-documents and in arrays of sub-documents', async () => {
      assert.deepEqual(await one({ 'address.city': 1, 'address.geo.lat': 1 }), {
        _id: 'u1',
        address: { city: 'Paris', geo: { lat: 48.85 } },
      });
      assert.deepEqual(await one({ 'address.zip': 1, _id: 0 }, 'u2'), { address: [{}, { zip: '0150' }] });
      assert.deepEqual(await one({ 'orders.qty': 1 }, 'u8'), { _id: 'u8', orders: [{ qty: 1 }, {}] });
    });

    it('drops a nested inclusion whose parent is not a sub-document, and missing fields', async () => {
      assert.deepEqual(await one({ 'address.city': 1, email: 1, nothing: 1 }, 'u4'), { _id: 'u4' });
    });

    it('keeps values exactly (null, booleans, precision)', async () => {
      assert.deepEqual(await one({ name: 1, active: 1, _id: 0 }, 'u3'), { name: null, active: true });
    });

    it('excludes fields, nested ones and _id', async () => {
      assert.deepEqual(await one({ address: 0, scores: 0, tags: 0, email: 0 }), {
        _id: 'u1',
        name: 'Alice',
        age: 34,
        active: true,
      });
      assert.deepEqual(
        await one({ _id: 0, 'address.city': 0, name: 0, age: 0, tags: 0, scores: 0, active: 0 }, 'u2'),
        {
          address: [{}, { zip: '0150' }],
        },
      );
      assert.deepEqual(await one({ 'orders.sku': 0, _id: 0, name: 0, age: 0, note: 0 }, 'u8'), {
        orders: [{ qty: 1 }, {}],
      });
    });

    it('handles _id alone', async () => {
      assert.deepEqual(await one({ _id: 1 }), { _id: 'u1' });
      assert.deepEqual(await one({ _id: 0 }, 'u6'), {});
    });

    it('sorts by fields the projection removes', async () => {
      assert.deepEqual(
        await find({ filter: { age: { $gte: 30 } }, projection: { _id: 0, name: 1 }, sort: { age: -1 } }),
        [{ name: 'Dora' }, { name: 'Alice' }],
      );
    });
  });

  describe('deep projections', () => {
    const wide = { 'a.b.c': 1, 'a.b.d': 1, 'a.e.f': 1, 'x.y.z': 1, 'x.w.q': 1, 'm.n.o': 1 };

    it('projects several three-level paths through arrays', async () => {
      assert.deepEqual(await find({ projection: wide, filter: { 'a.b.c': { $nin: [3] } } }, 'nested'), [
        { _id: 'd1', a: [{ b: [{ c: 1, d: 2 }] }], x: { y: { z: 1 } } },
      ]);
      const excluded = Object.fromEntries([...Object.keys(wide), '_id'].map((path) => [path, 0]));
      assert.deepEqual(await find({ projection: excluded }, 'nested'), [
        { a: [{ b: [{}, 5], e: 1 }], x: { y: { w: 2 } } },
      ]);
    });

    it('refuses paths deeper than three levels', async () => {
      assertInvalid(
        () => compileFind('nested', { projection: { 'a.b.c.d': 1 } }),
        /path 'a\.b\.c\.d' is deeper than 3 levels/,
      );
    });
  });

  describe('count', () => {
    it('counts matching documents', async () => {
      assert.equal(await count(), 8);
      assert.equal(await count({ tags: 'dev' }), 3);
      assert.equal(await count({ 'orders.sku': 'A1' }), 2);
      assert.equal(await count({ nothing: 1 }), 0);
    });

    it('honours skip and limit', async () => {
      assert.equal(await count({}, { skip: 5 }), 3);
      assert.equal(await count({}, { limit: 2 }), 2);
      assert.equal(await count({ tags: 'dev' }, { skip: 1, limit: 5 }), 2);
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));

describe('compiled paging (SQLite)', () => {
  it('binds limit and skip', () => {
    const { sql, params } = compileFind('people', { limit: 2, skip: 3 });
    assert.match(sql, /LIMIT CAST\(\? AS INTEGER\) OFFSET CAST\(\? AS INTEGER\)$/);
    assert.deepEqual(params, [2, 3]);
  });
});

describe('refused finds', () => {
  const refused: [FindOptions, RegExp][] = [
    [{ projection: { a: 1, b: 0 } }, /projection: cannot mix inclusion and exclusion \(at 'b'\)/],
    [{ projection: { a: '$b' } }, /projection: value for 'a' must be 0 or 1/],
    [{ projection: { a: 1, 'a.b': 1 } }, /projection: path collision at 'a\.b'/],
    [{ projection: { 'a.b': 1, a: 1 } }, /projection: path collision at 'a'/],
    [{ projection: { 'tags.0': 1 } }, /array indexes are not supported here/],
    [{ projection: [] }, /projection must be an object/],
    [{ sort: { age: 0 } }, /sort: direction for 'age' must be 1 or -1/],
    [{ sort: { age: 'asc' } }, /direction for 'age' must be 1 or -1/],
    [{ sort: { 'a;b': 1 } }, /sort: invalid field path 'a;b'/],
    [{ sort: 'age' }, /sort must be an object/],
    [{ limit: -1 }, /limit must be a non-negative integer/],
    [{ limit: 1.5 }, /limit must be a non-negative integer/],
    [{ skip: '1' }, /skip must be a non-negative integer/],
    [{ filter: { a: { $foo: 1 } } }, /unsupported operator '\$foo'/],
  ];
  for (const [options, message] of refused) {
    it(`refuses ${JSON.stringify(options)}`, () =>
      assertInvalid(() => compileFind('people', options), message));
  }

  it('refuses bad collection names', () => {
    for (const name of [
      '',
      '1abc',
      'a-b',
      'sqlite_master',
      'SQLite_x',
      '_rustydb_users',
      'a'.repeat(64),
      'x"y',
    ]) {
      assertInvalid(() => compileFind(name), /invalid collection name/);
      assertInvalid(() => compileCount(name), /invalid collection name/);
    }
  });
});
