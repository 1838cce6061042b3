import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { compileFilter } from '../../src/documents/filter-compiler.ts';
import { failureMessage } from '../../src/documents/json-sql.ts';
import type { JsonObject } from '../../src/documents/json-values.ts';
import { compileReplacement, compileUpdate, describeUpdate } from '../../src/documents/update-compiler.ts';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { openDocumentDb, type DocumentDb } from './engine-fixture.ts';
import { PEOPLE } from './people.ts';
import { assertInvalid, openDatabase, rows } from './sqlite-fixture.ts';

/** A stored document as the engine hands it back: JSON text (SQLite) or parsed jsonb (PostgreSQL). */
function parsed(value: unknown): unknown {
  return typeof value === 'string' ? (JSON.parse(value) as unknown) : value;
}

/** The cases that run updates, once per engine. */
function suite(engine: EngineName): void {
  let db: DocumentDb;
  before(async () => {
    db = await openDocumentDb(engine, { people: PEOPLE });
  });
  beforeEach(() => db.reset());
  after(() => db.close());

  /** Applies the update to one document with a real UPDATE … RETURNING; returns the stored document. */
  async function updated(id: string, update: unknown): Promise<unknown> {
    const { sql, params } = compileUpdate(update, db.dialect);
    const result = await db.rows(`UPDATE people SET doc = ${sql} WHERE _id = ? RETURNING doc`, [
      ...params,
      id,
    ]);
    assert.equal(result.length, 1);
    return parsed(result[0]![0]);
  }

  async function stored(id: string): Promise<unknown> {
    return parsed((await db.rows('SELECT doc FROM people WHERE _id = ?', [id]))[0]![0]);
  }

  /** The message of the failure an update raises while running, as the dialect recovers it. */
  async function runFailure(id: string, update: unknown): Promise<string | undefined> {
    try {
      await updated(id, update);
    } catch (err) {
      return db.dialect.failureMessage(err) ?? `unexpected: ${(err as Error).message}`;
    }
    return undefined;
  }

  describe('$set', () => {
    it('sets top-level and nested fields, creating missing parents', async () => {
      assert.deepEqual(
        await updated('u3', { $set: { name: 'Cleo', 'address.zip': '69001', 'prefs.theme.color': 'dark' } }),
        {
          _id: 'u3',
          name: 'Cleo',
          age: 27.5,
          tags: [],
          address: { city: 'Lyon', zip: '69001' },
          active: true,
          meta: { level: 3 },
          motto: 'carpe diem\n',
          prefs: { theme: { color: 'dark' } },
        },
      );
    });

    it('stores values of every JSON type exactly', async () => {
      const values = {
        o: { a: [1, { b: null }] },
        n: null,
        t: true,
        f: false,
        r: 0.30000000000000004,
        s: "it's",
      };
      const doc = (await updated('u6', { $set: values })) as Record<string, unknown>;
      assert.deepEqual(doc, { _id: 'u6', ...values });
    });

    it('replaces an array element by index and appends at the index equal to the length', async () => {
      assert.deepEqual(
        ((await updated('u1', { $set: { 'scores.0': 91, 'scores.2': 80 } })) as { scores: number[] }).scores,
        [91, 72, 80],
      );
    });

    it('sets a field of an array element', async () => {
      const doc = (await updated('u7', { $set: { 'orders.1.qty': 6 } })) as { orders: unknown[] };
      assert.deepEqual(doc.orders, [
        { sku: 'A1', qty: 2 },
        { sku: 'B2', qty: 6 },
      ]);
    });

    it('fails, while running, on a path through a scalar or past the end of an array', async () => {
      assert.equal(
        await runFailure('u4', { $set: { 'address.city': 'X' } }),
        "cannot update 'address.city': 'address' is not an object",
      );
      assert.equal(
        await runFailure('u1', { $set: { 'scores.5': 1 } }),
        "cannot update 'scores.5': index 5 is past the end of 'scores'",
      );
      assert.equal(
        await runFailure('u6', { $set: { 'scores.0': 1 } }),
        "cannot update 'scores.0': 'scores' is not an array",
      );
      assert.equal(
        await runFailure('u2', { $set: { 'address.city': 'X' } }),
        "cannot update 'address.city': 'address' is not an object",
      );
      assert.deepEqual(await stored('u4'), PEOPLE[3]);
    });
  });

  describe('$unset', () => {
    it('removes top-level and nested fields; missing ones are ignored', async () => {
      const doc = await updated('u1', {
        $unset: { email: '', 'address.geo': 1, nothing: '', 'address.nothing.deeper': '' },
      });
      assert.deepEqual(doc, {
        _id: 'u1',
        name: 'Alice',
        age: 34,
        tags: ['admin', 'dev'],
        address: { city: 'Paris', zip: '75001' },
        scores: [90, 72],
        active: true,
      });
    });

    it('sets an array element to null instead of shifting the array', async () => {
      assert.deepEqual(
        ((await updated('u5', { $unset: { 'scores.1': '', 'scores.9': '' } })) as { scores: unknown }).scores,
        [100, null, 40],
      );
    });
  });

  describe('$inc', () => {
    it('adds to integers and keeps them integers', async () => {
      assert.deepEqual(await updated('u1', { $inc: { age: 1, 'address.geo.lat': 0.05 } }), {
        ...PEOPLE[0],
        age: 35,
        address: { city: 'Paris', zip: '75001', geo: { lat: 48.9 } },
      });
    });

    it('keeps full double precision', async () => {
      await updated('u6', { $set: { x: 0.1 } });
      assert.deepEqual(await updated('u6', { $inc: { x: 0.2 } }), { _id: 'u6', x: 0.1 + 0.2 });
      await updated('u6', { $set: { y: 0.1 } });
      assert.equal(((await updated('u6', { $inc: { y: 0.7 } })) as { y: number }).y, 0.1 + 0.7);
    });

    it('sets a missing field (and missing parents) to the increment', async () => {
      assert.deepEqual(await updated('u6', { $inc: { visits: 1, 'stats.score': -2.5 } }), {
        _id: 'u6',
        visits: 1,
        stats: { score: -2.5 },
      });
    });

    it('increments a real by a negative integer and an integer by a real', async () => {
      assert.deepEqual(await updated('u3', { $inc: { age: -2, 'meta.level': 0.5 } }), {
        ...PEOPLE[2],
        age: 25.5,
        meta: { level: 3.5 },
      });
    });

    it('fails, while running, on a non-number', async () => {
      assert.equal(await runFailure('u2', { $inc: { age: 1 } }), "$inc needs a number at 'age'");
      assert.equal(await runFailure('u3', { $inc: { name: 1 } }), "$inc needs a number at 'name'");
      assert.equal(await runFailure('u1', { $inc: { tags: 1 } }), "$inc needs a number at 'tags'");
      assert.deepEqual(await stored('u2'), PEOPLE[1]);
    });
  });

  describe('$push', () => {
    it('appends one value', async () => {
      assert.deepEqual(((await updated('u1', { $push: { tags: 'ops' } })) as { tags: unknown }).tags, [
        'admin',
        'dev',
        'ops',
      ]);
    });

    it('appends several values with $each, objects and arrays included', async () => {
      const doc = await updated('u7', { $push: { orders: { $each: [{ sku: 'D4', qty: 1 }, [1, 2], 'x'] } } });
      assert.deepEqual((doc as { orders: unknown }).orders, [
        { sku: 'A1', qty: 2 },
        { sku: 'B2', qty: 5 },
        { sku: 'D4', qty: 1 },
        [1, 2],
        'x',
      ]);
    });

    it('pushes an object that is not a modifier as one value', async () => {
      assert.deepEqual(((await updated('u3', { $push: { tags: { a: 1 } } })) as { tags: unknown }).tags, [
        { a: 1 },
      ]);
    });

    it('creates a missing array, even from an empty $each', async () => {
      assert.deepEqual(await updated('u6', { $push: { 'log.entries': 'first', empty: { $each: [] } } }), {
        _id: 'u6',
        log: { entries: ['first'] },
        empty: [],
      });
    });

    it('fails, while running, on a non-array', async () => {
      assert.equal(await runFailure('u2', { $push: { tags: 'x' } }), "$push needs an array at 'tags'");
    });
  });

  describe('combined operators and whole-collection updates', () => {
    it('applies several operators in one expression', async () => {
      assert.deepEqual(
        await updated('u5', {
          $set: { name: 'Eloise' },
          $unset: { email: '' },
          $inc: { age: 1 },
          $push: { scores: 70 },
        }),
        {
          _id: 'u5',
          name: 'Eloise',
          age: 20,
          tags: ['dev', 'ops'],
          address: { city: 'Paris' },
          scores: [100, 100, 40, 70],
        },
      );
    });

    it('runs in an UPDATE … WHERE <compiled filter> with parameters in order', async () => {
      const update = compileUpdate({ $set: { 'address.country': 'FR' }, $inc: { visits: 1 } }, db.dialect);
      const filter = compileFilter({ 'address.city': 'Paris' }, { dialect: db.dialect });
      const changed = (
        await db.rows(`UPDATE people SET doc = ${update.sql} WHERE ${filter.sql} RETURNING _id, doc`, [
          ...update.params,
          ...filter.params,
        ])
      )
        .map(([id, doc]) => [id, parsed(doc) as { address: { country: string }; visits: number }])
        .map(([id, doc]) => [
          id,
          (doc as { address: { country: string } }).address.country,
          (doc as { visits: number }).visits,
        ])
        .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
      assert.deepEqual(changed, [
        ['u1', 'FR', 1],
        ['u5', 'FR', 1],
      ]);
    });

    it('is an empty change for empty operator objects', async () => {
      assert.deepEqual(await updated('u4', { $set: {} }), PEOPLE[3]);
    });
  });

  describe('replacement', () => {
    it('replaces everything but _id', async () => {
      assert.deepEqual(await updated('u1', { name: 'Al', nested: { list: [1, 2] } }), {
        _id: 'u1',
        name: 'Al',
        nested: { list: [1, 2] },
      });
    });

    it('accepts the same _id and fails, while running, on another', async () => {
      assert.deepEqual(await updated('u2', { _id: 'u2', name: 'Bobby' }), { _id: 'u2', name: 'Bobby' });
      assert.equal(
        await runFailure('u3', { _id: 'other', name: 'X' }),
        'the replacement document cannot change _id',
      );
      assert.deepEqual(await stored('u3'), PEOPLE[2]);
    });

    it('is also available on its own, where an empty document is allowed', async () => {
      const { sql, params } = compileReplacement({}, db.dialect);
      const found = await db.rows(`SELECT ${sql} FROM people WHERE _id = ?`, [...params, 'u4']);
      assert.deepEqual(
        found.map((row) => parsed(row[0])),
        [{ _id: 'u4' }],
      );
    });
  });

  describe('describeUpdate of a compiled update', () => {
    it('matches what a compiled update did', async () => {
      const before = (await stored('u1')) as Record<string, never>;
      const after = await updated('u1', {
        $set: { 'address.city': 'Nice' },
        $unset: { email: '' },
        $push: { tags: 'x' },
      });
      assert.deepEqual(describeUpdate(before, after as Record<string, never>), {
        updatedFields: { 'tags.2': 'x', 'address.city': 'Nice' },
        removedFields: ['email'],
      });
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));

/** What SQLite stores as text: integers stay integers, `_id` stays first. */
describe('stored JSON text (SQLite)', () => {
  const db = openDatabase({ people: PEOPLE });
  after(() => db.close());
  function updateText(id: string, update: unknown): string {
    const { sql, params } = compileUpdate(update);
    const result = rows(db, `UPDATE people SET doc = ${sql} WHERE _id = ? RETURNING doc`, [...params, id]);
    assert.equal(result.length, 1);
    return String(result[0]![0]);
  }

  it('adds to integers and keeps them integers in the stored JSON', () => {
    const text = updateText('u1', { $inc: { age: 1, 'address.geo.lat': 0.05 } });
    assert.match(text, /"age":35,/);
    assert.deepEqual((JSON.parse(text) as { address: unknown }).address, {
      city: 'Paris',
      zip: '75001',
      geo: { lat: 48.9 },
    });
  });

  it('runs in an UPDATE … WHERE <compiled filter> with parameters in order', () => {
    const update = compileUpdate({ $set: { 'address.country': 'FR' }, $inc: { visits: 1 } });
    const filter = compileFilter({ 'address.city': 'Paris' });
    const changed = rows(
      db,
      `UPDATE people SET doc = ${update.sql} WHERE ${filter.sql} RETURNING _id, doc -> '$.address.country', doc -> '$.visits'`,
      [...update.params, ...filter.params],
    ).sort((a, b) => String(a[0]).localeCompare(String(b[0])));
    assert.deepEqual(changed, [
      ['u1', '"FR"', '1'],
      ['u5', '"FR"', '1'],
    ]);
  });

  it('replaces everything but _id, which stays first', () => {
    const text = updateText('u1', { name: 'Al', nested: { list: [1, 2] } });
    assert.equal(text, '{"_id":"u1","name":"Al","nested":{"list":[1,2]}}');
  });

  it('is also available on its own, where an empty document is allowed', () => {
    const { sql, params } = compileReplacement({});
    assert.deepEqual(rows(db, `SELECT ${sql} FROM people WHERE _id = ?`, [...params, 'u4']), [
      ['{"_id":"u4"}'],
    ]);
  });
});

describe('failureMessage', () => {
  it('recognises only the failures compiled updates raise', () => {
    assert.equal(failureMessage(new Error("bad JSON path: 'x'")), undefined);
    assert.equal(failureMessage(new Error('no such table: people')), undefined);
    assert.equal(failureMessage('text'), undefined);
    assert.equal(failureMessage(null), undefined);
  });
});

describe('refused updates', () => {
  const refused: [unknown, RegExp][] = [
    [{}, /update document is empty/],
    [[], /update must be an object/],
    ['x', /update must be an object/],
    [{ $set: { a: 1 }, b: 2 }, /cannot mix update operators and fields/],
    [{ $rename: { a: 'b' } }, /unsupported operator '\$rename'/],
    [{ $addToSet: { tags: 'x' } }, /unsupported operator '\$addToSet'/],
    [{ $set: 5 }, /\$set needs an object of fields/],
    [{ $set: { _id: 'x' } }, /\$set '_id': _id cannot be updated/],
    [{ $unset: { _id: '' } }, /\$unset '_id': _id cannot be updated/],
    [{ $inc: { '_id.n': 1 } }, /_id cannot be updated/],
    [
      { $set: { address: {}, 'address.city': 'x' } },
      /'address\.city': conflicts with another update of 'address'/,
    ],
    [{ $set: { a: 1 }, $inc: { a: 1 } }, /\$inc 'a': conflicts with another update of 'a'/],
    [{ $set: { 'a.b': 1 }, $unset: { a: '' } }, /conflicts with another update of 'a\.b'/],
    [{ $inc: { a: '1' } }, /\$inc 'a': \$inc needs a number/],
    [{ $inc: { a: Number.NaN } }, /\$inc needs a number/],
    [{ $push: { a: { $each: [1], $slice: 2 } } }, /unsupported \$push modifier '\$slice'/],
    [{ $push: { a: { $each: 'x' } } }, /\$each needs an array/],
    [{ $set: { 'a b': 1 } }, /invalid field path 'a b'/],
    [{ $set: { a: Number.POSITIVE_INFINITY } }, /numbers must be finite/],
    [{ $set: { a: { b: undefined } } }, /undefined is not a JSON value/],
    [{ name: 'x', 'a.b': 1 }, /field name 'a\.b' cannot start with \$ or contain a dot/],
  ];
  for (const [update, message] of refused) {
    it(`refuses ${JSON.stringify(update)}`, () => assertInvalid(() => compileUpdate(update), message));
  }

  it('refuses a replacement that is not an object', () => {
    assertInvalid(() => compileReplacement([1]), /replacement must be an object/);
  });
});

describe('describeUpdate', () => {
  it('reports top-level and nested changes with dotted paths', () => {
    const before = { _id: 1, a: 1, b: { c: 1, d: 2 }, gone: true, same: { x: [1] } };
    const after = { _id: 1, a: 2, b: { c: 1, e: 3 }, same: { x: [1] }, added: null };
    assert.deepEqual(describeUpdate(before, after), {
      updatedFields: { a: 2, 'b.e': 3, added: null },
      removedFields: ['b.d', 'gone'],
    });
  });

  it('reports pushed elements by index and changed elements by path', () => {
    const before: JsonObject = { _id: 1, tags: ['a'], items: [{ q: 1 }, { q: 2 }] };
    const after: JsonObject = { _id: 1, tags: ['a', 'b', 'c'], items: [{ q: 1 }, { q: 3, r: 1 }] };
    assert.deepEqual(describeUpdate(before, after), {
      updatedFields: { 'tags.1': 'b', 'tags.2': 'c', 'items.1.q': 3, 'items.1.r': 1 },
      removedFields: [],
    });
  });

  it('reports a shrunk array or a changed type whole', () => {
    const before = { _id: 1, tags: ['a', 'b'], v: { x: 1 }, w: 5 };
    const after = { _id: 1, tags: ['a'], v: 'flat', w: { y: 1 } };
    assert.deepEqual(describeUpdate(before, after), {
      updatedFields: { tags: ['a'], v: 'flat', w: { y: 1 } },
      removedFields: [],
    });
  });

  it('is empty for equal documents, whatever the key order', () => {
    assert.deepEqual(describeUpdate({ _id: 1, a: { b: 1, c: 2 } }, { _id: 1, a: { c: 2, b: 1 } }), {
      updatedFields: {},
      removedFields: [],
    });
  });

  it('keeps a __proto__ field as data', () => {
    const after = JSON.parse('{"_id":1,"__proto__":{"polluted":true}}') as Record<string, never>;
    const { updatedFields } = describeUpdate({ _id: 1 }, after);
    assert.deepEqual(Object.keys(updatedFields), ['__proto__']);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});
