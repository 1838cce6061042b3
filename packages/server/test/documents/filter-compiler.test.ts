import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { compileFilter } from '../../src/documents/filter-compiler.ts';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { openDocumentDb, type DocumentDb } from './engine-fixture.ts';
import { ALL_IDS, PEOPLE, except } from './people.ts';
import { assertInvalid } from './sqlite-fixture.ts';

const NESTED = [
  { _id: 'n1', a: [{ b: [{ c: 1 }, { c: 2 }] }] },
  { _id: 'n2', a: { b: { c: 1 } } },
  { _id: 'n3', a: [{ b: { c: 3 } }, { b: [{ c: 1 }] }] },
  { _id: 'n4', a: [[{ b: { c: 1 } }]] },
  { _id: 'n5', a: { b: [1, { c: 1 }] } },
];

const COLLECTIONS = { people: PEOPLE, nested: NESTED, numbered: [{ _id: 5, label: 'number five' }] };

/** Cases whose answer differs on PostgreSQL by design: jsonb keeps no key order in sub-documents. */
const ON_POSTGRES: Record<string, string[]> = { 'sub-document key order matters': ['u1'] };

type Case = [string, unknown, string[]];

/** The cases that run filters, once per engine. */
function suite(engine: EngineName): void {
  let db: DocumentDb;
  before(async () => {
    db = await openDocumentDb(engine, COLLECTIONS);
  });
  after(() => db.close());

  async function matching(filter: unknown, table = 'people'): Promise<string[]> {
    const { sql, params } = compileFilter(filter, { dialect: db.dialect });
    const found = await db.rows(
      `SELECT _id FROM ${table} WHERE ${sql} ORDER BY ${db.dialect.idOrder.sql}`,
      params,
    );
    return found.map((row) => String(row[0]));
  }

  function cases(title: string, list: Case[]): void {
    describe(title, () => {
      for (const [name, filter, expected] of list) {
        const answer = engine === 'postgres' ? (ON_POSTGRES[name] ?? expected) : expected;
        it(`${name}: ${JSON.stringify(filter)}`, async () =>
          assert.deepEqual(await matching(filter), answer));
      }
    });
  }

  cases('implicit equality', [
    ['empty filter matches everything', {}, ALL_IDS],
    ['string', { name: 'Alice' }, ['u1']],
    ['number does not match its text', { age: 34 }, ['u1']],
    ['text does not match the number', { age: '34' }, ['u2']],
    ['integer equals real', { age: 27.5 }, ['u3']],
    ['boolean true', { active: true }, ['u1', 'u3']],
    ['boolean false', { active: false }, ['u2']],
    ['null matches null and missing', { name: null }, ['u3', 'u6']],
    ['scalar matches the value or an array element', { tags: 'dev' }, ['u1', 'u2', 'u5']],
    ['whole array, in order', { tags: ['admin', 'dev'] }, ['u1']],
    ['whole array, other order', { tags: ['dev', 'admin'] }, []],
    ['array element that is an array', { tags: ['nested'] }, ['u4']],
    ['empty array', { tags: [] }, ['u3']],
    ['nested field', { 'address.city': 'Paris' }, ['u1', 'u5']],
    ['nested field inside an array of sub-documents', { 'address.city': 'Oslo' }, ['u2']],
    ['three levels', { 'address.geo.lat': 48.85 }, ['u1']],
    ['sub-document, exact', { address: { city: 'Lyon' } }, ['u3']],
    ['sub-document with fewer fields does not match', { address: { city: 'Paris' } }, ['u5']],
    ['sub-document key order matters', { address: { zip: '75001', city: 'Paris', geo: { lat: 48.85 } } }, []],
    ['field of any array element', { 'orders.sku': 'C3' }, ['u8']],
    ['explicit index', { 'orders.0.sku': 'A1' }, ['u7', 'u8']],
    ['explicit index, second element', { 'orders.1.qty': 5 }, ['u7']],
    ['array index of values', { 'scores.1': 72 }, ['u1']],
    ['element of an array of numbers', { scores: 100 }, ['u5']],
    ['nested object field', { 'manager.name': 'Alice' }, ['u4']],
    ['several fields are ANDed', { tags: 'dev', 'address.city': 'Paris' }, ['u1', 'u5']],
    ['missing nested path is null', { 'meta.level': null }, except('u3')],
    ['null through an array of sub-documents', { 'orders.qty': null }, except('u7')],
    ['_id through the primary key', { _id: 'u3' }, ['u3']],
  ]);

  cases('$eq and $ne', [
    ['$eq number', { age: { $eq: 34 } }, ['u1']],
    ['$eq array element', { tags: { $eq: 'ops' } }, ['u4', 'u5']],
    ['$eq with an operator-looking literal', { meta: { $eq: { level: 3 } } }, ['u3']],
    ['$ne includes other types and missing', { age: { $ne: 34 } }, except('u1')],
    ['$ne excludes arrays containing the value', { tags: { $ne: 'dev' } }, ['u3', 'u4', 'u6', 'u7', 'u8']],
    ['$ne null means present and not null', { name: { $ne: null } }, ['u1', 'u2', 'u4', 'u5', 'u7', 'u8']],
    ['$ne on _id', { _id: { $ne: 'u1' } }, except('u1')],
  ]);

  cases('comparisons', [
    ['$gt number ignores strings', { age: { $gt: 30 } }, ['u1', 'u4']],
    ['$gte', { age: { $gte: 34 } }, ['u1', 'u4']],
    ['$lt', { age: { $lt: 20 } }, ['u5', 'u7', 'u8']],
    ['$lte', { age: { $lte: 0 } }, ['u7', 'u8']],
    ['range', { age: { $gt: 18, $lt: 35 } }, ['u1', 'u3', 'u5']],
    ['$gt string (binary order) ignores numbers', { name: { $gt: 'a' } }, ['u2', 'u5', 'u7']],
    ['$gt string against a numeric-looking text', { age: { $gt: '30' } }, ['u2']],
    ['any array element', { scores: { $gt: 95 } }, ['u5']],
    ['any array element, below', { scores: { $lt: 50 } }, ['u5']],
    ['through an array of sub-documents', { 'orders.qty': { $gte: 5 } }, ['u7']],
    ['booleans', { active: { $gt: false } }, ['u1', 'u3']],
    ['$gte null is equality with null', { name: { $gte: null } }, ['u3', 'u6']],
    ['$gt null matches nothing', { name: { $gt: null } }, []],
    ['_id range through the primary key', { _id: { $gt: 'u6' } }, ['u7', 'u8']],
    ['_id $lte', { _id: { $lte: 'u2' } }, ['u1', 'u2']],
  ]);

  cases('$in and $nin', [
    ['strings', { name: { $in: ['Alice', 'bob'] } }, ['u1', 'u2']],
    ['numbers and strings keep their types', { age: { $in: [34, 19, '34'] } }, ['u1', 'u2', 'u5']],
    ['null matches missing', { name: { $in: [null, 'Dora'] } }, ['u3', 'u4', 'u6']],
    ['array elements', { tags: { $in: ['ops', 'ADMIN'] } }, ['u4', 'u5', 'u7']],
    ['booleans and strings', { active: { $in: [false, 'yes'] } }, ['u2', 'u7']],
    ['sub-documents', { address: { $in: [{ city: 'Lyon' }, 'unknown'] } }, ['u3', 'u4']],
    ['empty list matches nothing', { name: { $in: [] } }, []],
    ['_id list', { _id: { $in: ['u1', 'u3', 'zz'] } }, ['u1', 'u3']],
    ['$nin matches missing and empty arrays', { tags: { $nin: ['dev', 'ops'] } }, ['u3', 'u6', 'u7', 'u8']],
    ['$nin null', { name: { $nin: [null] } }, ['u1', 'u2', 'u4', 'u5', 'u7', 'u8']],
    ['$nin empty list matches everything', { name: { $nin: [] } }, ALL_IDS],
  ]);

  cases('$exists', [
    ['true', { email: { $exists: true } }, ['u1', 'u5']],
    ['false', { email: { $exists: false } }, except('u1', 'u5')],
    ['true counts null values', { name: { $exists: true } }, except('u6')],
    ['nested through an array of sub-documents', { 'address.zip': { $exists: true } }, ['u1', 'u2']],
    ['false through an array of sub-documents', { 'orders.qty': { $exists: false } }, except('u7', 'u8')],
    ['array index', { 'tags.0': { $exists: true } }, ['u1', 'u4', 'u5', 'u7']],
    ['1 means true', { meta: { $exists: 1 } }, ['u3']],
  ]);

  cases('logical operators', [
    ['$and', { $and: [{ tags: 'dev' }, { age: { $gte: 30 } }] }, ['u1']],
    ['$or', { $or: [{ age: { $lt: 0 } }, { name: 'Dora' }] }, ['u4', 'u8']],
    ['$nor', { $nor: [{ tags: 'dev' }, { active: true }] }, ['u4', 'u6', 'u7', 'u8']],
    [
      '$not of a comparison includes other types and missing',
      { age: { $not: { $gt: 30 } } },
      except('u1', 'u4'),
    ],
    ['$not of a regex', { name: { $not: { $regex: '^A' } } }, except('u1')],
    [
      'nested $or of $and',
      { $or: [{ $and: [{ active: true }, { 'address.city': 'Lyon' }] }, { 'orders.qty': { $gte: 5 } }] },
      ['u3', 'u7'],
    ],
    [
      '$or beside a field',
      { 'address.city': 'Paris', $or: [{ age: { $lt: 20 } }, { active: true }] },
      ['u1', 'u5'],
    ],
  ]);

  cases('$regex (literal patterns)', [
    ['prefix, case-sensitive', { name: { $regex: '^Al' } }, ['u1']],
    ['prefix, case-insensitive', { name: { $regex: '^al', $options: 'i' } }, ['u1', 'u7']],
    ['suffix with an escaped dot', { email: { $regex: '@example\\.com$' } }, ['u1', 'u5']],
    ['contains', { name: { $regex: 'o' } }, ['u2', 'u4', 'u5']],
    ['suffix, case-insensitive', { name: { $regex: 'ICE$', $options: 'i' } }, ['u1', 'u7']],
    ['anchored both ends', { name: { $regex: '^bob$' } }, ['u2']],
    ['GLOB metacharacters are literal', { name: { $regex: '100%_sure\\*' } }, ['u8']],
    ['escaped star at the end', { name: { $regex: '\\*$' } }, ['u8']],
    ['LIKE wildcards are literal', { name: { $regex: '%_S', $options: 'i' } }, ['u8']],
    ['LIKE underscore is literal', { name: { $regex: '^_', $options: 'i' } }, []],
    ['$ matches before a final newline', { motto: { $regex: 'diem$' } }, ['u3']],
    ['$ does not match before an inner newline', { note: { $regex: 'line1$' } }, []],
    ['newline escape', { note: { $regex: 'e1\\nl' } }, ['u8']],
    ['array elements', { tags: { $regex: '^ad' } }, ['u1']],
    ['array elements, case-insensitive', { tags: { $regex: '^ad', $options: 'i' } }, ['u1', 'u7']],
    ['only strings match', { age: { $regex: '3' } }, ['u2']],
    ['non-ASCII, case-sensitive', { name: { $regex: '^Él' } }, ['u5']],
    ['empty pattern matches every string', { email: { $regex: '' } }, ['u1', 'u5']],
    ['quote in the pattern is bound', { email: { $regex: "^o'hara" } }, ['u5']],
  ]);

  describe('paths through several levels of arrays', () => {
    const nested = (filter: unknown) => matching(filter, 'nested');

    it('looks into arrays of sub-documents at every level, but not into arrays of arrays', async () => {
      assert.deepEqual(await nested({ 'a.b.c': 1 }), ['n1', 'n2', 'n3', 'n5']);
      assert.deepEqual(await nested({ 'a.b.c': 2 }), ['n1']);
      assert.deepEqual(await nested({ 'a.b.c': { $gt: 2 } }), ['n3']);
      assert.deepEqual(await nested({ 'a.b.c': { $exists: false } }), ['n4']);
      assert.deepEqual(await nested({ 'a.b.c': { $ne: 1 } }), ['n4']);
    });

    it('follows explicit indexes', async () => {
      assert.deepEqual(await nested({ 'a.0.b.c': 3 }), ['n3']);
      assert.deepEqual(await nested({ 'a.1.b.0.c': 1 }), ['n3']);
      assert.deepEqual(await nested({ 'a.0.0.b.c': 1 }), ['n4']);
    });

    it('stays linear in size for long paths', async () => {
      const path = Array.from({ length: 32 }, (_, i) => `f${i}`).join('.');
      const { sql } = compileFilter({ [path]: 1 }, { dialect: db.dialect });
      assert.ok(sql.length < 40_000, `${sql.length} characters`);
      assert.deepEqual(await nested({ [path]: 1 }), []);
    });
  });

  describe('_id', () => {
    it('keeps JSON types: a numeric _id does not match its text', async () => {
      assert.deepEqual(await matching({ _id: '5' }, 'numbered'), []);
      assert.deepEqual(await matching({ _id: 5 }, 'numbered'), ['5']);
      assert.deepEqual(await matching({ _id: { $gt: 4 } }, 'numbered'), ['5']);
    });

    it('works without the column (over derived rows)', async () => {
      const { sql, params } = compileFilter(
        { _id: { $in: ['u2', 'u4'] } },
        { idColumn: false, dialect: db.dialect },
      );
      const found = await db.rows(`SELECT _id FROM people WHERE ${sql} ORDER BY _id`, params);
      assert.deepEqual(
        found.map((r) => r[0]),
        ['u2', 'u4'],
      );
    });
  });

  it('runs the deepest nesting allowed, with expensive leaves', async () => {
    let filter: unknown = { 'orders.sku': { $not: { $nin: ['A1', null], $regex: 'x$' } } };
    for (let i = 0; i < 9; i++)
      filter = i % 2 ? { $nor: [{ b: 1 }, filter] } : { $or: [{ c: { $ne: 1 } }, filter] };
    assert.deepEqual(await matching(filter), ALL_IDS);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));

describe('compiled output (SQLite)', () => {
  it('uses the primary key column for string equality and lists', () => {
    assert.match(compileFilter({ _id: 'u1' }).sql, /^\(_id = \? AND/);
    assert.match(compileFilter({ _id: { $in: ['a', 'b'] } }).sql, /^\(_id IN \(\?, \?\) AND/);
    assert.doesNotMatch(compileFilter({ _id: 'u1' }, { idColumn: false }).sql, /^\(_id/);
  });

  it('binds every value as a positional parameter', () => {
    const { sql, params } = compileFilter({ name: 'Alice', age: { $in: [1, 2] }, email: { $regex: '^x' } });
    assert.ok(!sql.includes('Alice'));
    assert.equal(sql.split('?').length - 1, params.length);
    assert.ok(params.includes('Alice') && params.includes(1) && params.includes('x*'));
  });

  it('writes validated paths as JSON path literals', () => {
    assert.match(compileFilter({ 'scores.1': 72 }).sql, /'\$\.scores\[1\]'/);
  });

  it('is a WHERE expression of 1 for an empty filter', () => {
    assert.deepEqual(compileFilter({}), { sql: '1', params: [] });
  });
});

describe('refused filters', () => {
  const refused: [unknown, RegExp][] = [
    [[], /filter must be an object/],
    ['name', /filter must be an object/],
    [null, /filter must be an object/],
    [{ $where: 'this.a > 1' }, /unsupported top-level operator '\$where'/],
    [{ $expr: { $gt: ['$a', 1] } }, /unsupported top-level operator '\$expr'/],
    [{ $not: { a: 1 } }, /'\$not'.*applies to a field/],
    [{ tags: { $size: 2 } }, /filter on 'tags': unsupported operator '\$size'/],
    [{ orders: { $elemMatch: { sku: 'A1' } } }, /unsupported operator '\$elemMatch'/],
    [{ 'a..b': 1 }, /invalid field path 'a\.\.b' \(empty segment\)/],
    [{ 'a.b-c': 1 }, /invalid field path 'a\.b-c'.*segment 'b-c'/],
    [{ '0.a': 1 }, /invalid field path '0\.a' \(it must start with a field name\)/],
    [{ '': 1 }, /invalid field path ''/],
    [{ a: { $gt: 1, b: 2 } }, /filter on 'a': cannot mix operators and field names/],
    [{ a: { $gt: { x: 1 } } }, /filter on 'a': \$gt needs a number, string, boolean or null/],
    [{ a: { $lt: [1] } }, /\$lt needs a number, string, boolean or null/],
    [{ a: { $in: 'x' } }, /filter on 'a': \$in needs an array/],
    [{ a: { $nin: { x: 1 } } }, /\$nin needs an array/],
    [{ a: { $in: [{ $gt: 1 }] } }, /\$in\[0\]: operators are not allowed here/],
    [{ a: { $exists: 'yes' } }, /\$exists needs true or false/],
    [{ a: { $not: 5 } }, /\$not needs an object of operators/],
    [{ a: { $not: {} } }, /\$not needs an object of operators/],
    [{ $and: [] }, /\$and needs a non-empty array/],
    [{ $or: {} }, /\$or needs a non-empty array/],
    [{ $or: [5] }, /filter\.\$or\[0\] must be an object/],
    [{ a: Number.NaN }, /filter on 'a': numbers must be finite/],
    [{ a: { $gt: Number.POSITIVE_INFINITY } }, /numbers must be finite/],
    [{ a: undefined }, /undefined is not a JSON value/],
    [{ a: { $options: 'i' } }, /\$options is only valid with \$regex/],
    [{ a: { $regex: 5 } }, /\$regex needs a string pattern/],
    [{ a: { $regex: 'x', $options: 'm' } }, /unsupported \$options "m"/],
    [{ a: { $regex: '.*x' } }, /\$regex \/\.\*x\/ is not supported \('\.' at position 0\)/],
    [{ a: { $regex: 'a+' } }, /'\+' at position 1/],
    [{ a: { $regex: '(a|b)' } }, /'\(' at position 0/],
    [{ a: { $regex: '[abc]' } }, /'\[' at position 0/],
    [{ a: { $regex: '\\d+' } }, /escape \\d/],
    [{ a: { $regex: 'a^b' } }, /'\^' at position 1/],
    [{ a: { $regex: 'a$b' } }, /'\$' at position 1/],
    [{ a: { $regex: 'x\\' } }, /trailing backslash/],
    [{ a: { $regex: 'é', $options: 'i' } }, /ASCII letters only/],
    [{ a: { $regex: 'a\u0000b' } }, /NUL character/],
  ];
  for (const [filter, message] of refused) {
    it(`refuses ${JSON.stringify(filter) ?? String(filter)}`, () =>
      assertInvalid(() => compileFilter(filter), message));
  }

  it('refuses paths deeper than 32 segments', () => {
    const path = Array.from({ length: 33 }, (_, i) => `f${i}`).join('.');
    assertInvalid(() => compileFilter({ [path]: 1 }), /more than 32 segments/);
  });

  it('refuses logical nesting deeper than 10 levels', () => {
    let filter: unknown = { a: 1 };
    for (let i = 0; i < 11; i++) filter = { $and: [{ b: 1 }, filter] };
    assertInvalid(() => compileFilter(filter), /nested deeper than 10 levels/);
    let negated: unknown = { $gt: 1 };
    for (let i = 0; i < 11; i++) negated = { $not: negated };
    assertInvalid(
      () => compileFilter({ a: negated }),
      /filter on 'a': \$not: filter nested deeper than 10 levels/,
    );
  });
});
