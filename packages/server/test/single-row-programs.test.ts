/**
 * Which inline statements run as one native step (`get`): only those whose compiled program can yield
 * one row at most. The query plan cannot tell them apart (`k = ?` and `k IN (?, ?)` plan alike); a
 * statement wrongly taken for one would lose rows, so the rows themselves are checked in query.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSync } from '../src/engine/sqlite/driver.ts';
import { yieldsAtMostOneRow } from '../src/engine/sqlite/statement-router.ts';

test('a program yields one row at most only when it emits once and never jumps back', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-single-row-'));
  const db = openSync(join(dir, 'db.sqlite'));
  try {
    db.exec('CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT)');
    db.exec('CREATE TABLE pair (a INTEGER, b INTEGER, c TEXT, PRIMARY KEY (a, b)) WITHOUT ROWID');
    const single = (sql: string): boolean =>
      yieldsAtMostOneRow(
        db
          .prepare(`EXPLAIN ${sql}`)
          .raw()
          .all([])
          .map((row) => ({ opcode: String(row[1]), p2: Number(row[3]) })),
      );
    for (const sql of [
      'SELECT v FROM kv WHERE k = ?',
      'SELECT v FROM kv WHERE k = 5',
      'SELECT v FROM kv WHERE k = ? AND v = ?',
      'SELECT upper(v) || ? AS x, k + 1 FROM kv WHERE k = ?',
      'SELECT count(*) FROM kv WHERE k = ?',
      'SELECT a.v FROM kv a JOIN kv b ON b.k = a.k WHERE a.k = ?',
      'SELECT c FROM pair WHERE a = ? AND b = ?',
      'SELECT v FROM kv WHERE k = ? LIMIT 1',
    ]) {
      assert.equal(single(sql), true, sql);
    }
    for (const sql of [
      'SELECT v FROM kv WHERE k IN (?, ?)',
      'SELECT v FROM kv WHERE k = ? OR k = ?',
      'SELECT v FROM kv WHERE k IN (SELECT value FROM json_each(?))',
      'SELECT c FROM pair WHERE a = ?',
      'SELECT v FROM kv WHERE k > ?',
      'SELECT v FROM kv',
      'SELECT v FROM kv WHERE k = ? UNION ALL SELECT v FROM kv WHERE k = ?',
      'SELECT value FROM kv, json_each(kv.v) WHERE k = ?',
    ]) {
      assert.equal(single(sql), false, sql);
    }
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
