/**
 * LiveTable fed by a real filtered subscription: after inserts, updates that make rows enter and leave
 * the filter, a primary-key change and deletes, its rows equal what the database holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveResult, LiveTable, type Row, type TableChangeEvent } from '@rustydb/client';
import { eventually, fixture, openClient, startTestServer } from './helpers.ts';

const byId = (rows: readonly Row[]): Row[] => [...rows].sort((a, b) => Number(a.id) - Number(b.id));

test('a LiveTable equals the filtered table after every kind of change', async () => {
  const ts = await startTestServer({ enable_rate_limiting: false });
  const client = await openClient(ts.server.url);
  try {
    await fixture(ts, 'CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, status TEXT)');
    await fixture(ts, "INSERT INTO tasks (title, status) VALUES ('a', 'open'), ('b', 'done'), ('c', 'open')");
    const table = new LiveTable();
    const subscription = client.subscribe('tasks', { filter: { status: 'open' }, snapshot: true });
    let applied = 0;
    const reading = (async () => {
      for await (const event of subscription) {
        table.apply(event);
        applied++;
      }
    })();
    const expectMatch = async (what: string): Promise<void> => {
      const stored = await client.query("SELECT id, title, status FROM tasks WHERE status = 'open'");
      const expected = stored.rows;
      await eventually(
        () => JSON.stringify(byId(table.rows)) === JSON.stringify(byId(expected)),
        `${what}: ${JSON.stringify(expected)}, have ${JSON.stringify(table.rows)}`,
      );
    };
    await expectMatch('the snapshot');
    await fixture(ts, "INSERT INTO tasks (title, status) VALUES ('d', 'open'), ('e', 'done')");
    await fixture(ts, "UPDATE tasks SET status = 'open' WHERE title = 'b'"); // enters
    await fixture(ts, "UPDATE tasks SET status = 'done' WHERE title = 'a'"); // leaves
    await fixture(ts, "UPDATE tasks SET title = 'c2' WHERE title = 'c'");
    await fixture(ts, "UPDATE tasks SET id = 100 WHERE title = 'd'"); // the key changes
    await fixture(ts, "DELETE FROM tasks WHERE title = 'c2'");
    await expectMatch('after the changes');
    assert.deepEqual(
      byId(table.rows).map((r) => r.title),
      ['b', 'd'],
    );
    assert.ok(applied >= 7);
    await subscription.unsubscribe();
    await reading;
  } finally {
    await client.close();
    await ts.close();
  }
});

/** A row whose `id` and `name` count how often they are read. */
function countedRow(id: number, name: string, reads: { count: number }): Row {
  const row = {} as Row;
  Object.defineProperty(row, 'id', { enumerable: true, get: () => (reads.count++, id) });
  Object.defineProperty(row, 'name', { enumerable: true, get: () => (reads.count++, name) });
  return row;
}

function change(
  op: 'insert' | 'update' | 'delete',
  id: number,
  row: Row | null,
  oldRow: Row | null,
): TableChangeEvent {
  return {
    type: 'change',
    sequence: id,
    table: 't',
    op,
    key: { id },
    row,
    oldRow,
    columns: ['id', 'name'],
    timestamp: '',
  };
}

const SIZE = 10_000;

test('one change to a live table of 10,000 rows reads a handful of rows, not all of them', () => {
  for (const options of [{}, { order: { name: 'desc' } as const, limit: 20 }]) {
    const reads = { count: 0 };
    const table = new LiveTable({ keyColumns: ['id'], ...options });
    const model = new Map<number, string>();
    const rows: Row[] = [];
    for (let id = 1; id <= SIZE; id++) {
      const name = `n${(id * 7919) % SIZE}`;
      rows.push(countedRow(id, name, reads));
      model.set(id, name);
    }
    table.apply({ type: 'snapshot', sequence: 0, columns: ['id', 'name'], rows });
    reads.count = 0;
    const CHANGES = 300;
    for (let i = 0; i < CHANGES; i++) {
      const id = 1 + ((i * 104_729) % SIZE);
      const name = `m${i}`;
      if (i % 3 === 0) {
        const insertId = SIZE + 1 + i;
        table.apply(change('insert', insertId, { id: insertId, name }, null));
        model.set(insertId, name);
      } else if (i % 3 === 1 && model.has(id)) {
        table.apply(change('update', id, { id, name }, { id, name: model.get(id)! }));
        model.set(id, name);
      } else if (model.has(id)) {
        table.apply(change('delete', id, null, { id, name: model.get(id)! }));
        model.delete(id);
      }
    }
    // Without an order a change touches no other row; with one, a binary search reads about log2(n).
    const perChange = reads.count / CHANGES;
    assert.ok(perChange < 60, `${perChange} row reads per change (${JSON.stringify(options)})`);
    assert.equal(table.size, model.size);
    const expected = [...model.entries()].map(([id, name]) => ({ id, name }));
    if ('order' in options) {
      expected.sort((a, b) => (a.name < b.name ? 1 : a.name > b.name ? -1 : b.id - a.id));
      assert.deepEqual(
        table.rows.map((r) => ({ id: r.id, name: r.name })),
        expected.slice(0, 20),
      );
    } else {
      assert.deepEqual(
        byId(table.rows).map((r) => ({ id: r.id, name: r.name })),
        expected.sort((a, b) => a.id - b.id),
      );
    }
  }
});

test('a LiveResult follows diffs: rows with an id are matched by it, rows without one by value', () => {
  const withId = new LiveResult<{ id: number; v: string }>();
  withId.apply({
    type: 'result',
    sequence: 1,
    columns: ['id', 'v'],
    rows: [
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
    ],
  });
  const first = withId.rows;
  withId.apply({
    type: 'diff',
    sequence: 2,
    columns: ['id', 'v'],
    added: [{ id: 3, v: 'c' }],
    removed: [{ id: 1, v: 'a' }],
    changed: [{ old: { id: 2, v: 'b' }, new: { id: 2, v: 'B' } }],
  });
  assert.deepEqual(
    withId.rows,
    [
      { id: 2, v: 'B' },
      { id: 3, v: 'c' },
    ],
    'changed rows keep their place',
  );
  assert.notEqual(withId.rows, first);

  // Equal rows without an id are interchangeable: removing one leaves the other.
  const counts = new LiveResult<[string, number]>({ order: { n: 'desc' } });
  counts.apply({
    type: 'result',
    sequence: 1,
    columns: ['s', 'n'],
    rows: [
      ['x', 1],
      ['x', 1],
      ['y', 5],
    ],
  });
  assert.deepEqual(counts.rows, [
    ['y', 5],
    ['x', 1],
    ['x', 1],
  ]);
  counts.apply({
    type: 'diff',
    sequence: 2,
    columns: ['s', 'n'],
    added: [['z', 3]],
    removed: [['x', 1]],
    changed: [],
  });
  assert.deepEqual(counts.rows, [
    ['y', 5],
    ['z', 3],
    ['x', 1],
  ]);
});
