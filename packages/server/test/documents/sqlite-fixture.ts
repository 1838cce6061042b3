/**
 * A real in-memory SQLite database (through libsql, as the server uses) holding collections in the
 * document store's layout, so every compiled statement is checked by actually running it.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { RustyError } from '../../src/errors/rusty-error.ts';
import type { SqlParam } from '../../src/documents/sql-fragment.ts';

interface Statement {
  raw(toggle?: boolean): Statement;
  all(params: readonly SqlParam[]): unknown[][];
  run(params: readonly SqlParam[]): { changes: number };
}

export interface TestDatabase {
  prepare(sql: string): Statement;
  exec(sql: string): void;
  close(): void;
}

const Database = createRequire(import.meta.url)('libsql') as new (path: string) => TestDatabase;

export type Doc = Record<string, unknown> & { _id: unknown };

/** A fresh database with one collection table per entry, seeded with the given documents. */
export function openDatabase(collections: Record<string, readonly Doc[]>): TestDatabase {
  const db = new Database(':memory:');
  for (const [name, docs] of Object.entries(collections)) {
    db.exec(`CREATE TABLE "${name}" (_id TEXT PRIMARY KEY, doc TEXT NOT NULL)`);
    const insert = db.prepare(`INSERT INTO "${name}" (_id, doc) VALUES (?, ?)`);
    for (const doc of docs) insert.run([String(doc._id), JSON.stringify(doc)]);
  }
  return db;
}

/** Runs a query and returns its rows as arrays (raw: non-raw rows carry libsql's _metadata key). */
export function rows(db: TestDatabase, sql: string, params: readonly SqlParam[]): unknown[][] {
  return db.prepare(sql).raw().all(params);
}

/** The first column of each row, parsed as JSON (the documents a find or aggregate returns). */
export function documents(db: TestDatabase, compiled: { sql: string; params: SqlParam[] }): unknown[] {
  return rows(db, compiled.sql, compiled.params).map((row) => JSON.parse(String(row[0])) as unknown);
}

/** Asserts that `fn` throws the INVALID_MESSAGE error a bad client request deserves. */
export function assertInvalid(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof RustyError, `expected a RustyError, got ${String(err)}`);
    assert.equal(err.code, 'INVALID_MESSAGE');
    assert.match(err.message, message);
    return true;
  });
}
