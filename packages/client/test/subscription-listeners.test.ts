/**
 * Callbacks next to iterators, against the real server: `sub.on('change' | 'snapshot' | 'reset' |
 * 'error', fn)` with several listeners, each returning its remover; a subscription read only through
 * listeners keeps nothing for a loop (so a small highWaterMark never stalls it), and one read by both
 * gives both every event.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { RustyDBError } from '@rustydb/client';
import {
  type ChangeStreamEvent,
  type LiveDiffEvent,
  type LiveResultEvent,
  type ResetEvent,
  type TableChangeEvent,
  type TableEvent,
  type TableSnapshotEvent,
} from '@rustydb/client';
import { eventually, fixture, openClient, startTestServer } from './helpers.ts';

type Item = { id: number; n: number };

describe('subscription listeners', () => {
  test('several listeners per event, each removable; snapshot and change without a loop', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const client = await openClient(ts.server.url);
    try {
      await fixture(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      await fixture(ts, 'INSERT INTO items (n) VALUES (0)');
      // A tiny buffer: were events kept for a loop nobody runs, reading would pause after five.
      const sub = client.subscribe<Item>('items', { snapshot: true, highWaterMark: 5 });
      const snapshots: TableSnapshotEvent<Item>[] = [];
      const first: TableChangeEvent<Item>[] = [];
      const second: TableChangeEvent<Item>[] = [];
      const all: TableEvent<Item>[] = [];
      sub.on('snapshot', (event) => snapshots.push(event));
      const offFirst = sub.on('change', (event) => first.push(event));
      sub.on('change', (event) => second.push(event));
      sub.on('event', (event) => all.push(event));
      await sub.ready();
      await eventually(() => snapshots.length === 1, 'the snapshot');
      assert.deepEqual(snapshots[0]?.rows, [{ id: 1, n: 0 }]);

      for (let n = 1; n <= 50; n++) await fixture(ts, 'INSERT INTO items (n) VALUES (?)', [n]);
      await eventually(() => first.length === 50 && second.length === 50, 'fifty changes on both listeners');
      assert.deepEqual(
        first.map((e) => e.row?.n),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.equal(all.length, 51, 'the event listener saw the snapshot and every change');

      offFirst();
      await fixture(ts, 'INSERT INTO items (n) VALUES (51)');
      await eventually(() => second.length === 51, 'the change after removing one listener');
      assert.equal(first.length, 50, 'a removed listener hears nothing more');

      // A loop started later gets what happens from then on, and the listeners still hear it all.
      const looped: TableEvent<Item>[] = [];
      const loop = (async () => {
        for await (const event of sub) looped.push(event);
      })();
      await fixture(ts, 'INSERT INTO items (n) VALUES (52)');
      await eventually(() => looped.length === 1 && second.length === 52, 'the loop and the listener');
      await sub.unsubscribe();
      await loop;
    } finally {
      await client.close();
      await ts.close();
    }
  });

  test("the 'error' listener hears why a subscription failed; a reset reaches the 'reset' listener", async () => {
    const ts = await startTestServer({ enable_rate_limiting: false, changelog_max_entries: 100 });
    const client = await openClient(ts.server.url);
    try {
      const missing = client.subscribe('nowhere');
      const errors: RustyDBError[] = [];
      missing.on('error', (error) => errors.push(error));
      await assert.rejects(missing.ready());
      assert.equal(errors.length, 1);
      assert.equal(errors[0]?.code, 'TABLE_NOT_FOUND');
      assert.equal(missing.status, 'ended');

      await fixture(ts, 'CREATE TABLE churn (id INTEGER PRIMARY KEY, v INTEGER)');
      const probe = client.subscribe('churn');
      await probe.ready();
      const since = probe.lastSequence!;
      await probe.unsubscribe();
      await ts.http('/api/v1/batch', {
        body: {
          queries: Array.from({ length: 300 }, (_, i) => ({
            sql: 'INSERT INTO churn (v) VALUES (?)',
            params: [i],
          })),
        },
      });
      await ts.server.feed.prune();
      const resumed = client.subscribe('churn', { since });
      const resets: ResetEvent[] = [];
      const snapshots: TableSnapshotEvent[] = [];
      resumed.on('reset', (event) => resets.push(event));
      resumed.on('snapshot', (event) => snapshots.push(event));
      await eventually(() => snapshots.length === 1, 'the fresh snapshot after the reset');
      assert.equal(resets.length, 1);
      assert.equal(resets[0]?.lastSequence, since);
      assert.equal(snapshots[0]?.rows.length, 300);
      await resumed.unsubscribe();
    } finally {
      await client.close();
      await ts.close();
    }
  });

  test("live queries report 'snapshot' (the result) and 'change' (a diff); change streams 'change'", async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const client = await openClient(ts.server.url);
    try {
      await fixture(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      const created = await ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
      assert.equal(created.status, 201);
      const live = client.subscribe<{ total: number }>({ query: 'SELECT count(*) AS total FROM items' });
      const results: LiveResultEvent<{ total: number }>[] = [];
      const diffs: LiveDiffEvent<{ total: number }>[] = [];
      live.on('snapshot', (event) => results.push(event));
      live.on('change', (event) => diffs.push(event));
      const watch = client.watch<{ _id: string; title: string }>('notes');
      const docs: ChangeStreamEvent<{ _id: string; title: string }>[] = [];
      watch.on('change', (event) => docs.push(event));
      await Promise.all([live.ready(), watch.ready()]);
      await eventually(() => results.length === 1, 'the first result');
      assert.deepEqual(results[0]?.rows, [{ total: 0 }]);
      await fixture(ts, 'INSERT INTO items (n) VALUES (1)');
      await ts.http('/api/v1/documents/collections/notes/insert', {
        body: { document: { _id: 'a', title: 'x' } },
      });
      await eventually(() => diffs.length === 1 && docs.length === 1, 'a diff and a document event');
      assert.deepEqual(diffs[0]?.added, [{ total: 1 }]);
      assert.equal(docs[0]?.fullDocument?.title, 'x');
    } finally {
      await client.close();
      await ts.close();
    }
  });
});
