/**
 * LiveTable fed by a real filtered subscription: after inserts, updates that make rows enter and leave
 * the filter, a primary-key change and deletes, its rows equal what the database holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LiveTable, type Row } from '@rustydb/client';
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
