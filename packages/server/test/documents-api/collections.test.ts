/** The document store's REST API against the real server: collections, CRUD, aggregate, grants. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';

const BASE = '/api/v1/documents/collections';
type Body = { success: boolean; data: Record<string, unknown>; error?: { code: string; message: string } };

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  describe('document collections over REST', () => {
    let ts: TestServer;
    const call = async (path: string, body?: unknown, method?: string, token?: string | null) => {
      const res = await ts.http(`${BASE}${path}`, {
        ...(body !== undefined ? { body } : {}),
        ...(method ? { method } : {}),
        ...(token !== undefined ? { token } : {}),
      });
      return { status: res.status, body: res.body as Body };
    };
    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine });
    });
    after(async () => {
      await ts.close();
    });

    test('create, list, info and drop a collection', async () => {
      assert.equal((await call('', { name: 'books' })).status, 201);
      const again = await call('', { name: 'books' });
      assert.equal(again.status, 200);
      assert.equal(again.body.data.created, false);
      assert.deepEqual((await call('')).body.data.collections, ['books']);
      const info = await call('/books');
      assert.deepEqual(info.body.data, { name: 'books', count: 0, indexes: [] });
      assert.equal((await call('/books', undefined, 'DELETE')).status, 200);
      assert.equal((await call('/books')).status, 404);
      assert.equal((await call('/books')).body.error?.code, 'NOT_FOUND');
    });

    test('invalid collection names are refused', async () => {
      for (const name of ['_rustydb_users', 'sqlite_master', '1abc', 'a-b', 'x'.repeat(64), 'a"b']) {
        const res = await call('', { name });
        assert.equal(res.status, 400, name);
        assert.equal(res.body.error?.code, 'INVALID_MESSAGE');
      }
    });

    test('insert, find with filter/projection/sort/limit/skip, count', async () => {
      await call('', { name: 'people' });
      const one = await call('/people/insert', {
        document: { _id: 'ann', name: 'Ann', age: 31, tags: ['x', 'y'], address: { city: 'Oslo' } },
      });
      assert.equal(one.status, 201);
      assert.equal(one.body.data.inserted_id, 'ann');
      const many = await call('/people/bulk-insert', {
        documents: [
          { name: 'Bob', age: 25, tags: ['y'] },
          { name: 'Cid', age: 40, address: { city: 'Rome' } },
          { name: 'Dee', age: 35 },
        ],
      });
      assert.equal(many.body.data.inserted_count, 3);
      assert.equal((many.body.data.inserted_ids as string[]).length, 3);
      const dup = await call('/people/insert', { document: { _id: 'ann', name: 'Other' } });
      assert.equal(dup.status, 400);
      assert.match(dup.body.error!.message, /duplicate key/);

      const older = await call('/people/find', {
        filter: { age: { $gte: 31 } },
        sort: { age: -1 },
        projection: { name: 1, _id: 0 },
      });
      assert.deepEqual(older.body.data.documents, [{ name: 'Cid' }, { name: 'Dee' }, { name: 'Ann' }]);
      const paged = await call('/people/find', {
        sort: { age: 1 },
        skip: 1,
        limit: 2,
        projection: { name: 1, _id: 0 },
      });
      assert.deepEqual(paged.body.data.documents, [{ name: 'Ann' }, { name: 'Dee' }]);
      const tagged = await call('/people/find', {
        filter: { tags: 'y' },
        sort: { name: 1 },
        projection: { name: 1, _id: 0 },
      });
      assert.deepEqual(tagged.body.data.documents, [{ name: 'Ann' }, { name: 'Bob' }]);
      const nested = await call('/people/find', {
        filter: { 'address.city': 'Rome' },
        projection: { name: 1, _id: 0 },
      });
      assert.deepEqual(nested.body.data.documents, [{ name: 'Cid' }]);
      const either = await call('/people/count', {
        filter: { $or: [{ age: { $lt: 30 } }, { name: { $in: ['Dee'] } }] },
      });
      assert.equal(either.body.data.count, 2);
      const exists = await call('/people/count', { filter: { address: { $exists: false } } });
      assert.equal(exists.body.data.count, 2);
      const regex = await call('/people/count', { filter: { name: { $regex: '^a', $options: 'i' } } });
      assert.equal(regex.body.data.count, 1);
    });

    test('update operators, replacement, upsert, multi; delete one and many', async () => {
      await call('', { name: 'stock' });
      await call('/stock/bulk-insert', {
        documents: [
          { _id: 'a', qty: 1, kind: 'bolt' },
          { _id: 'b', qty: 5, kind: 'bolt' },
          { _id: 'c', qty: 9, kind: 'nut' },
        ],
      });
      const inc = await call('/stock/update', {
        filter: { kind: 'bolt' },
        update: { $inc: { qty: 10 }, $push: { log: 'restock' } },
        multi: true,
      });
      assert.equal(inc.body.data.matched_count, 2);
      const bolts = await call('/stock/find', { filter: { kind: 'bolt' }, sort: { _id: 1 } });
      assert.deepEqual(bolts.body.data.documents, [
        { _id: 'a', qty: 11, kind: 'bolt', log: ['restock'] },
        { _id: 'b', qty: 15, kind: 'bolt', log: ['restock'] },
      ]);
      const unset = await call('/stock/update', {
        filter: { _id: 'a' },
        update: { $unset: { log: '' }, $set: { 'meta.checked': true } },
      });
      assert.equal(unset.body.data.matched_count, 1);
      assert.deepEqual((await call('/stock/find', { filter: { _id: 'a' } })).body.data.documents, [
        { _id: 'a', qty: 11, kind: 'bolt', meta: { checked: true } },
      ]);
      const replaced = await call('/stock/update', { filter: { _id: 'c' }, update: { kind: 'washer' } });
      assert.equal(replaced.body.data.matched_count, 1);
      assert.deepEqual((await call('/stock/find', { filter: { _id: 'c' } })).body.data.documents, [
        { _id: 'c', kind: 'washer' },
      ]);
      const upsert = await call('/stock/update', {
        filter: { kind: 'screw' },
        update: { $set: { qty: 3 } },
        upsert: true,
      });
      assert.equal(upsert.body.data.matched_count, 0);
      const upsertedId = upsert.body.data.upserted_id as string;
      assert.deepEqual((await call('/stock/find', { filter: { _id: upsertedId } })).body.data.documents, [
        { kind: 'screw', _id: upsertedId, qty: 3 },
      ]);
      const upsertAgain = await call('/stock/update', {
        filter: { kind: 'screw' },
        update: { $set: { qty: 4 } },
        upsert: true,
      });
      assert.equal(upsertAgain.body.data.matched_count, 1);
      assert.equal(upsertAgain.body.data.upserted_id, undefined);
      const badInc = await call('/stock/update', { filter: { _id: 'c' }, update: { $inc: { kind: 1 } } });
      assert.equal(badInc.status, 400);
      assert.equal(badInc.body.error?.code, 'INVALID_MESSAGE');
      const idChange = await call('/stock/update', { filter: { _id: 'c' }, update: { $set: { _id: 'z' } } });
      assert.equal(idChange.status, 400);
      const empty = await call('/stock/update', { filter: { _id: 'c' }, update: {} });
      assert.equal(empty.status, 400);
      assert.deepEqual((await call('/stock/find', { filter: { _id: 'c' } })).body.data.documents, [
        { _id: 'c', kind: 'washer' },
      ]);

      const one = await call('/stock/delete', { filter: { kind: 'bolt' } });
      assert.equal(one.body.data.deleted_count, 1);
      const rest = await call('/stock/delete', { filter: {}, multi: true });
      assert.equal(rest.body.data.deleted_count, 3);
      assert.equal((await call('/stock/count', {})).body.data.count, 0);
    });

    test('aggregate: $match, $group with accumulators, $sort, $project, $limit', async () => {
      await call('', { name: 'sales' });
      await call('/sales/bulk-insert', {
        documents: [
          { region: 'north', amount: 10 },
          { region: 'north', amount: 30 },
          { region: 'south', amount: 5 },
          { region: 'east', amount: 100, void: true },
        ],
      });
      const pipeline = [
        { $match: { void: { $exists: false } } },
        {
          $group: {
            _id: '$region',
            total: { $sum: '$amount' },
            avg: { $avg: '$amount' },
            most: { $max: '$amount' },
            n: { $count: {} },
          },
        },
        { $sort: { total: -1 } },
        { $limit: 5 },
      ];
      const res = await call('/sales/aggregate', { pipeline });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.data.documents, [
        { _id: 'north', total: 40, avg: 20, most: 30, n: 2 },
        { _id: 'south', total: 5, avg: 5, most: 5, n: 1 },
      ]);
      const bad = await call('/sales/aggregate', { pipeline: [{ $lookup: {} }] });
      assert.equal(bad.status, 400);
    });

    test('the largest pipeline allowed runs: 100 stages, the deepest filter, projection and group', async () => {
      await call('', { name: 'orders' });
      await call('/orders/bulk-insert', {
        documents: [
          { customer: 'ann', total: 3, region: { country: 'FR', city: 'Paris' } },
          { customer: 'bob', total: 4.5, region: { country: 'DE', city: 'Berlin' } },
        ],
      });
      let filter: unknown = { 'region.city': { $not: { $nin: ['Paris', null], $regex: 's$' } } };
      for (let i = 0; i < 9; i++) {
        filter = i % 2 ? { $nor: [{ b: 1 }, filter] } : { $or: [{ c: { $ne: 1 } }, filter] };
      }
      const project = { 'region.city.x': 1, 'region.country': 1, customer: 1, total: 1, who: '$customer' };
      const stages: unknown[] = Array.from(
        { length: 96 },
        (_, i) =>
          [
            { $match: filter },
            { $project: project },
            { $sort: { 'region.country': 1, total: -1, customer: 1 } },
          ][i % 3],
      );
      let key: unknown = '$region.country';
      for (let i = 0; i < 4; i++) key = { k: key, c: '$customer' };
      const operators = ['$min', '$max', '$sum', '$avg'];
      const accumulators = Array.from({ length: 50 }, (_, i) => [`a${i}`, { [operators[i % 4]!]: '$total' }]);
      stages.push(
        { $group: { _id: key, ...Object.fromEntries(accumulators) } },
        { $sort: { a2: -1 } },
        { $project: { _id: 0, who: '$_id.c', sum: '$a2', avg: '$a3' } },
        { $limit: 1 },
      );
      // On PostgreSQL the statement's estimated cost is far beyond jit_above_cost: compiled with JIT,
      // it took minutes.
      const res = await call('/orders/aggregate', { pipeline: stages });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(res.body.data.documents, [{ who: 'bob', sum: 4.5, avg: 4.5 }]);
      const tooLong = await call('/orders/aggregate', { pipeline: [...stages, { $skip: 0 }] });
      assert.equal(tooLong.status, 400);
      assert.match(tooLong.body.error!.message, /more than 100 stages/);
    });

    test('field indexes are created and listed', async () => {
      await call('', { name: 'indexed' });
      const created = await call('/indexed/indexes', { field: 'address.city' });
      assert.equal(created.status, 201);
      assert.deepEqual((await call('/indexed')).body.data.indexes, ['indexed__address$city']);
      const bad = await call('/indexed/indexes', { field: "x'); DROP TABLE indexed; --" });
      assert.equal(bad.status, 400);
      assert.equal((await call('/indexed')).status, 200);
    });

    test('grants apply to collections as to tables', async () => {
      await call('', { name: 'private_docs' });
      await call('', { name: 'public_docs' });
      await call('/private_docs/insert', { document: { secret: true } });
      await call('/public_docs/insert', { document: { hello: 'world' } });
      await ts.http('/api/v1/roles', {
        body: { name: 'doc_reader', grants: [{ privilege: 'SELECT', table: 'public_docs' }] },
      });
      await ts.http('/api/v1/users', {
        body: { username: 'reader', password: 'reader-password', roles: ['doc_reader'] },
      });
      const login = await ts.http('/api/v1/auth/login', {
        body: { username: 'reader', password: 'reader-password' },
        token: null,
      });
      const token = (login.body as Body).data.token as string;
      const ok = await call('/public_docs/find', {}, undefined, token);
      assert.equal(ok.status, 200);
      // A pipeline runs with the reader's privileges too (on PostgreSQL, as its session role).
      const summed = await call(
        '/public_docs/aggregate',
        {
          pipeline: [{ $group: { _id: null, n: { $sum: 1 }, avg: { $avg: '$x' }, low: { $min: '$hello' } } }],
        },
        undefined,
        token,
      );
      assert.equal(summed.status, 200, JSON.stringify(summed.body));
      assert.deepEqual(summed.body.data.documents, [{ _id: null, n: 1, avg: null, low: 'world' }]);
      const hidden = await call('/private_docs/aggregate', { pipeline: [] }, undefined, token);
      assert.equal(hidden.status, 403);
      const denied = await call('/private_docs/find', {}, undefined, token);
      assert.equal(denied.status, 403);
      assert.equal(denied.body.error?.code, 'PERMISSION_DENIED');
      const noWrite = await call('/public_docs/insert', { document: { x: 1 } }, undefined, token);
      assert.equal(noWrite.status, 403);
      const noCreate = await call('', { name: 'mine' }, undefined, token);
      assert.equal(noCreate.status, 403);
      const anonymous = await call('/public_docs/find', {}, undefined, null);
      assert.equal(anonymous.status, 401);
      assert.equal((await call('/public_docs/count', {})).body.data.count, 1);
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
