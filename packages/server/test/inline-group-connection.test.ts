/**
 * A commit group on the inline connection (durability normal) runs BEGIN, its writes and COMMIT without
 * yielding: no other work of the event loop (a microtask, such as a read that was waiting for writes
 * ahead of it) can run on that connection while the group's transaction is open, and so none can read
 * writes not yet committed. Run on a real SQLite connection, with the engine's own CommitGroups and
 * InlineGroupConnection.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommitGroups } from '../src/engine/sqlite/commit-groups.ts';
import { openSync } from '../src/engine/sqlite/driver.ts';
import { InlineGroupConnection, LockHeldElsewhere } from '../src/engine/sqlite/inline-group-connection.ts';
import { WriteGate } from '../src/engine/sqlite/write-gate.ts';

const neverStopped = { stoppedError: undefined, onStop: () => () => {} };
const isBusy = (err: unknown): boolean => /^SQLITE_BUSY/.test(String((err as { code?: unknown }).code));

test('no microtask meets a synchronous group transaction open, and every write commits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'inline-group-'));
  const db = openSync(join(dir, 'db.sqlite'));
  try {
    db.exec('PRAGMA journal_mode = WAL; CREATE TABLE w (id INTEGER PRIMARY KEY, v TEXT)');
    const connection = new InlineGroupConnection(() => db, isBusy);
    let committedCalls = 0;
    const groups = new CommitGroups<InlineGroupConnection>({
      gate: new WriteGate(),
      onConnection: async (_user, work) => work(connection),
      committed: () => committedCalls++,
    });
    const seenFromMicrotasks: boolean[] = [];
    const insert = db.prepare('INSERT INTO w (v) VALUES (?)');
    const results = await Promise.all(
      ['a', 'b', 'c', 'd'].map((v) =>
        groups.submit('user', neverStopped, () => {
          // What a read queued now would find when it runs: the transaction must be over by then.
          queueMicrotask(() => seenFromMicrotasks.push(db.inTransaction));
          return insert.run([v]).changes;
        }),
      ),
    );
    assert.deepEqual(results, [1, 1, 1, 1]);
    assert.deepEqual(groups.committed, { groups: 1, writes: 4 });
    assert.equal(committedCalls, 1);
    assert.deepEqual(seenFromMicrotasks, [false, false, false, false]);
    assert.equal(db.inTransaction, false);
    assert.deepEqual(db.prepare('SELECT v FROM w ORDER BY id').raw().all([]), [['a'], ['b'], ['c'], ['d']]);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('BEGIN that finds the write lock held elsewhere says so before anything ran', () => {
  const dir = mkdtempSync(join(tmpdir(), 'inline-group-'));
  const db = openSync(join(dir, 'db.sqlite'), { timeout: 0 });
  const outsider = openSync(join(dir, 'db.sqlite'));
  try {
    db.exec('PRAGMA journal_mode = WAL');
    outsider.exec('BEGIN IMMEDIATE');
    const connection = new InlineGroupConnection(() => db, isBusy);
    assert.throws(() => connection.exec('BEGIN IMMEDIATE'), LockHeldElsewhere);
    assert.equal(connection.inTransaction, false);
    outsider.exec('ROLLBACK');
    connection.exec('BEGIN IMMEDIATE');
    assert.equal(connection.inTransaction, true);
    connection.exec('COMMIT');
  } finally {
    outsider.close();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
