/**
 * Typed data against the real server: rows are objects by default and arrays when asked, in every call
 * that returns rows (query, stream, batch, table events, live-query results and diffs), with the same
 * shape for a table's events and a live query's diffs; the row and document types given to the calls
 * are the types of what comes back; errors narrow by code, with details typed per code. The type
 * assertions are checked by `npm run typecheck`, the values at run time.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RustyDBError,
  isRustyDBError,
  type ArrayRow,
  type ChangeStreamEvent,
  type LiveQueryEvent,
  type ObjectRow,
  type RustyDBClient,
  type TableEvent,
} from '@rustydb/client';
import { eventually, fixture, openClient, startTestServer, type TestServer } from './helpers.ts';

/** True when A and B are the same type (not merely assignable). */
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
/** Compiles only when its type argument is `true`. */
function assertType<T extends true>(..._: T extends true ? [] : [never]): void {}

interface Item {
  id: number;
  name: string;
  price: number | null;
}

interface Note {
  _id: string;
  title: string;
  tags?: string[];
}

function collect<E>(iterable: AsyncIterable<E>): E[] {
  const events: E[] = [];
  void (async () => {
    for await (const event of iterable) events.push(event);
  })().catch(() => {});
  return events;
}

describe('typed data', () => {
  let ts: TestServer;
  let client: RustyDBClient;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
    await fixture(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL)');
    await fixture(ts, "INSERT INTO items (name, price) VALUES ('pen', 1.5), ('book', 12)");
    client = await openClient(ts.server.url);
  });
  after(async () => {
    await client?.close();
    await ts?.close();
  });

  test('query<Row>(): rows are objects of the given type, or arrays with rowMode: array', async () => {
    const items = await client.query<Item>('SELECT id, name, price FROM items ORDER BY id');
    assertType<Equals<typeof items.rows, Item[]>>();
    assert.deepEqual(items.rows, [
      { id: 1, name: 'pen', price: 1.5 },
      { id: 2, name: 'book', price: 12 },
    ]);
    assert.equal(items.rows[1]?.name, 'book');

    const untyped = await client.query('SELECT id FROM items ORDER BY id');
    assertType<Equals<typeof untyped.rows, ObjectRow[]>>();
    assert.deepEqual(untyped.rows, [{ id: 1 }, { id: 2 }]);

    const arrays = await client.query('SELECT id, name FROM items ORDER BY id', [], { rowMode: 'array' });
    assertType<Equals<typeof arrays.rows, ArrayRow[]>>();
    assert.deepEqual(arrays.rows, [
      [1, 'pen'],
      [2, 'book'],
    ]);
    const tuples = await client.query<[number, string]>('SELECT id, name FROM items ORDER BY id', [], {
      rowMode: 'array',
    });
    assertType<Equals<typeof tuples.rows, [number, string][]>>();
    assert.equal(tuples.rows[0]?.[1], 'pen');

    // Arrays keep apart two columns of the same name; objects keep the last.
    const twice = await client.query('SELECT 1 AS a, 2 AS a', [], { rowMode: 'array' });
    assert.deepEqual(twice.rows, [[1, 2]]);
    assert.deepEqual((await client.query('SELECT 1 AS a, 2 AS a')).rows, [{ a: 2 }]);
  });

  test('stream<Row>() and batch<Row>() follow the same choice', async () => {
    const names: string[] = [];
    for await (const chunk of client.stream<Item>('SELECT * FROM items ORDER BY id', [], { chunkSize: 1 })) {
      assertType<Equals<typeof chunk.rows, Item[]>>();
      for (const row of chunk.rows) names.push(row.name);
    }
    assert.deepEqual(names, ['pen', 'book']);
    const ids: number[] = [];
    for await (const row of client
      .stream('SELECT id FROM items ORDER BY id', [], { rowMode: 'array' })
      .rows()) {
      assertType<Equals<typeof row, ArrayRow>>();
      ids.push(row[0] as number);
    }
    assert.deepEqual(ids, [1, 2]);

    const [objects] = await client.batch<{ n: number }>(['SELECT count(*) AS n FROM items']);
    assert.ok(objects?.ok);
    if (objects?.ok) assert.deepEqual(objects.rows, [{ n: 2 }]);
    const [arrays] = await client.batch(['SELECT count(*) AS n FROM items'], { rowMode: 'array' });
    if (arrays?.ok) assert.deepEqual(arrays.rows, [[2]]);
    else assert.fail('the batch failed');
  });

  test('table events and live-query diffs have the same row shape: objects, or arrays in column order', async () => {
    await fixture(
      ts,
      'CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL, done INTEGER NOT NULL)',
    );
    type Task = { id: number; title: string; done: number };
    const objects = client.subscribe<Task>('tasks', { snapshot: true });
    const arrays = client.subscribe('tasks', { snapshot: true, rowMode: 'array' });
    const live = client.subscribe<Task>({ query: 'SELECT id, title, done FROM tasks ORDER BY id' });
    const liveArrays = client.subscribe({ query: 'SELECT id, title, done FROM tasks', rowMode: 'array' });
    await Promise.all([objects.ready(), arrays.ready(), live.ready(), liveArrays.ready()]);
    const seen = {
      objects: collect<TableEvent<Task>>(objects),
      arrays: collect<TableEvent<ArrayRow>>(arrays),
      live: collect<LiveQueryEvent<Task>>(live),
      liveArrays: collect<LiveQueryEvent<ArrayRow>>(liveArrays),
    };
    await eventually(() => seen.live.length === 1 && seen.liveArrays.length === 1, 'the first results');
    await fixture(ts, "INSERT INTO tasks (title, done) VALUES ('write', 0)");
    // A live query may fold changes that come close together into one diff: one at a time here.
    await eventually(() => seen.live.length === 2 && seen.liveArrays.length === 2, 'the insert');
    await fixture(ts, "UPDATE tasks SET done = 1 WHERE title = 'write'");
    await eventually(
      () =>
        seen.objects.length === 3 &&
        seen.arrays.length === 3 &&
        seen.live.length === 3 &&
        seen.liveArrays.length === 3,
      'a snapshot and two changes on each',
    );

    const [, insert, update] = seen.objects;
    assert.equal(insert?.type, 'change');
    if (insert?.type === 'change' && update?.type === 'change') {
      assertType<Equals<typeof insert.row, Task | null>>();
      assert.deepEqual(insert.row, { id: 1, title: 'write', done: 0 });
      assert.deepEqual(insert.columns, ['id', 'title', 'done']);
      assert.deepEqual(update.oldRow, { id: 1, title: 'write', done: 0 });
      assert.deepEqual(update.row, { id: 1, title: 'write', done: 1 });
      assert.deepEqual(update.key, { id: 1 });
    }
    const [snapshot, insertArray, updateArray] = seen.arrays;
    assert.ok(snapshot?.type === 'snapshot' && snapshot.rows.length === 0);
    if (insertArray?.type === 'change' && updateArray?.type === 'change') {
      assert.deepEqual(insertArray.row, [1, 'write', 0]);
      assert.deepEqual(updateArray.oldRow, [1, 'write', 0]);
      assert.deepEqual(updateArray.row, [1, 'write', 1]);
      assert.deepEqual(updateArray.key, { id: 1 }, 'a key stays an object');
    } else assert.fail(JSON.stringify(seen.arrays));

    const [result, added, changed] = seen.live;
    assert.ok(result?.type === 'result' && result.rows.length === 0);
    if (added?.type === 'diff' && changed?.type === 'diff') {
      assertType<Equals<typeof added.added, Task[]>>();
      // The same row, in the same shape, as the table's insert event.
      assert.deepEqual(added.added, [insert?.type === 'change' ? insert.row : undefined]);
      assert.deepEqual(changed.changed, [
        { old: { id: 1, title: 'write', done: 0 }, new: { id: 1, title: 'write', done: 1 } },
      ]);
    } else assert.fail(JSON.stringify(seen.live));
    const [, addedArray, changedArray] = seen.liveArrays;
    if (addedArray?.type === 'diff' && changedArray?.type === 'diff') {
      assert.deepEqual(addedArray.added, [[1, 'write', 0]]);
      assert.deepEqual(changedArray.changed, [{ old: [1, 'write', 0], new: [1, 'write', 1] }]);
    } else assert.fail(JSON.stringify(seen.liveArrays));
    await Promise.all([objects, arrays, live, liveArrays].map((s) => s.unsubscribe()));
  });

  test('watch<Doc>(): change events carry the document type', async () => {
    const created = await ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
    assert.equal(created.status, 201);
    const stream = client.watch<Note>('notes');
    await stream.ready();
    const events = collect(stream);
    await ts.http('/api/v1/documents/collections/notes/insert', {
      body: { document: { _id: 'n1', title: 'hello', tags: ['a'] } },
    });
    await eventually(() => events.length === 1, 'the insert event');
    const event = events[0] as ChangeStreamEvent<Note>;
    assertType<Equals<typeof event.fullDocument, Note | undefined>>();
    assertType<Equals<NonNullable<typeof event.documentKey>['_id'], string>>();
    assert.equal(event.fullDocument?.title, 'hello');
    assert.deepEqual(event.documentKey, { _id: 'n1' });
    await stream.unsubscribe();
  });

  test('isRustyDBError narrows the code, and details are typed per code', async () => {
    const err = await client.query('SELECT * FROM nowhere').catch((e: unknown) => e);
    assert.ok(isRustyDBError(err, 'TABLE_NOT_FOUND'));
    assertType<Equals<typeof err.code, 'TABLE_NOT_FOUND'>>();
    assertType<Equals<NonNullable<typeof err.details>['table'], string | undefined>>();
    assert.equal(err.details?.table, 'nowhere');

    // Without a code, checking err.code narrows the details.
    const other: unknown = err;
    if (isRustyDBError(other)) {
      switch (other.code) {
        case 'RATE_LIMIT_EXCEEDED':
          assertType<Equals<NonNullable<typeof other.details>['retry_after_ms'], number | undefined>>();
          break;
        case 'TABLE_NOT_FOUND':
          assert.equal(other.details?.table, 'nowhere');
          break;
        default:
          assert.fail(`unexpected ${other.code}`);
      }
    }
    // Several codes at once.
    assert.ok(isRustyDBError(err, ['TABLE_NOT_FOUND', 'PERMISSION_DENIED']));
    assert.ok(!isRustyDBError(err, 'QUERY_ERROR'));

    const failed = await client
      .batch(['INSERT INTO items (name) VALUES (NULL)'], { transaction: true })
      .catch((e: unknown) => e);
    assert.ok(isRustyDBError(failed, 'QUERY_ERROR'));
    assertType<Equals<NonNullable<typeof failed.details>['sqlite_code'], string | undefined>>();
    assert.equal(failed.details?.index, 0);
    assert.match(String(failed.details?.sqlite_code), /CONSTRAINT/);
    assert.ok(err instanceof RustyDBError);
  });
});
