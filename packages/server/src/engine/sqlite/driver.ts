/**
 * The smallest view of the libsql driver that the engine relies on. libsql ships loose typings, so the
 * shapes the engine depends on are spelled out here, once.
 */
import { createRequire } from 'node:module';
import type { DriverValue } from './values.ts';

export interface SyncStatement {
  readonly reader: boolean;
  raw(toggle?: boolean): SyncStatement;
  columns(): { name: string }[];
  all(params: DriverValue[]): unknown[][];
  iterate(params: DriverValue[]): IterableIterator<unknown[]>;
  run(params: DriverValue[]): { changes: number; lastInsertRowid: number | bigint };
  get(params: DriverValue[]): unknown[] | undefined;
}

export interface SyncDatabase {
  prepare(sql: string): SyncStatement;
  exec(sql: string): void;
  /** False in autocommit mode: no transaction is open (also after SQLite rolled one back by itself). */
  readonly inTransaction: boolean;
  close(): void;
}

export interface AsyncStatement {
  readonly reader: boolean;
  raw(toggle?: boolean): AsyncStatement;
  columns(): { name: string }[];
  iterate(params: DriverValue[]): Promise<Iterator<unknown[]>>;
  /**
   * Runs a statement that returns no rows to its end, on the calling thread (libsql's `run` and `get`
   * do not go to its threads): for work that takes microseconds, where the thread hop would cost more.
   * `changes` counts only what this run changed (0 when it changed nothing).
   */
  run(params: DriverValue[]): { changes: number; lastInsertRowid: number | bigint };
  /** The first row (raw mode), on the calling thread, the statement then reset (see run). */
  get(params: DriverValue[]): unknown[] | undefined;
  interrupt(): void;
}

export interface AsyncDatabase {
  prepare(sql: string): Promise<AsyncStatement>;
  /**
   * The write statement this connection keeps prepared for `sql`, if it has one (see openAsync): what
   * `prepare` would resolve with, without its promise and microtask.
   */
  preparedWrite(sql: string): AsyncStatement | undefined;
  exec(sql: string): Promise<void>;
  /** False in autocommit mode: no transaction is open (also after SQLite rolled one back by itself). */
  readonly inTransaction: boolean;
  interrupt(): void;
  close(): void;
  /** Statements and result cursors held until the connection closes (see openAsync). */
  readonly retained: number;
}

interface DriverOptions {
  /** Busy timeout, milliseconds (libsql passes it to SQLite as is). */
  timeout?: number;
}

const require = createRequire(import.meta.url);
const SyncCtor = require('libsql') as new (path: string, options?: DriverOptions) => SyncDatabase;
const AsyncCtor = require('libsql/promise') as new (path: string, options?: DriverOptions) => AsyncDatabase;

/**
 * Makes `close` safe to call twice and `interrupt` a no-op once closed. libsql's native `interrupt` on
 * a closed connection unwraps an empty value, a Rust panic, and the binding is built with
 * `panic = "abort"`: it would end the whole process.
 */
function closeSafely<T extends { close(): void; interrupt?(): void }>(db: T): T {
  let closed = false;
  const close = db.close.bind(db);
  const interrupt = db.interrupt?.bind(db);
  db.close = () => {
    if (closed) return;
    closed = true;
    close();
  };
  if (interrupt) db.interrupt = () => void (closed || interrupt());
  return db;
}

export function openSync(path: string, options?: DriverOptions): SyncDatabase {
  return closeSafely(new SyncCtor(path, options));
}

/** Write statements each pooled connection keeps prepared for reuse, the most recently used. */
const REUSED_WRITES = 32;

/**
 * libsql runs every call of its connections, asynchronous ones included, on one native runtime whose
 * threads default to one per core, and a statement holds its thread for as long as it runs: on two
 * cores, two long statements made every other pooled connection wait for one of them to end, whatever
 * the pool's size and however it is shared. The runtime is built at the process's first libsql call
 * and reads TOKIO_WORKER_THREADS then; so, before that, this asks for one thread per pooled connection
 * and one more. A value set by the operator is kept; once the runtime is built nothing changes it.
 */
export function reserveNativeThreads(pooledConnections: number): void {
  process.env.TOKIO_WORKER_THREADS ??= String(pooledConnections + 1);
}

/**
 * An asynchronous connection that keeps every statement and result cursor it hands out until it is
 * closed. Its statements run on libsql's own threads, and SQLite holds the connection's mutex while one
 * runs. A statement or cursor the garbage collector frees is finalized on the event loop, and
 * finalizing takes that mutex: were it freed while a long statement of the same connection runs, the
 * event loop would wait for that statement, and the timer that should interrupt it could never fire.
 * Held until close, they are only ever finalized once the connection is idle for good. `retained`
 * says how many there are, so that the owner can close and replace a connection that has many.
 *
 * A statement holds a copy of the values last bound to it, in native memory the garbage collector
 * does not see: prepared anew for every run, each 512 KB document inserted stayed in memory until its
 * connection closed, hundreds of MB under a steady load of large writes. So a write statement (one
 * that returns no rows, and so is always run to its end at once) is prepared once per connection and
 * run again for the same SQL text, its new values replacing the old: what a connection holds is then
 * one set of values per statement it keeps, not one per run.
 */
export function openAsync(path: string, options?: DriverOptions): AsyncDatabase {
  const db = closeSafely(new AsyncCtor(path, options)) as AsyncDatabase & { retained: number };
  let kept: unknown[] = [];
  /**
   * Write statements by SQL text, each with when it was last used; the least recently used is evicted
   * (it stays in `kept`). A use only stamps its entry: moving it to the end of the map at every run
   * left a hole each time, and the map was rebuilt every few runs.
   */
  let writes = new Map<string, { stmt: AsyncStatement; used: number }>();
  let uses = 0;
  const prepare = db.prepare.bind(db);
  const close = db.close.bind(db);
  db.preparedWrite = (sql) => {
    const reused = writes.get(sql);
    if (!reused) return undefined;
    reused.used = ++uses;
    return reused.stmt;
  };
  db.prepare = async (sql) => {
    const reused = db.preparedWrite(sql);
    if (reused) return reused;
    const stmt = await prepare(sql);
    kept.push(stmt);
    const iterate = stmt.iterate.bind(stmt);
    stmt.iterate = async (params) => {
      const rows = await iterate(params);
      kept.push(rows);
      return rows;
    };
    if (!stmt.reader) {
      writes.set(sql, { stmt, used: ++uses });
      if (writes.size > REUSED_WRITES) {
        let oldest: string | undefined;
        let oldestUse = Infinity;
        for (const [text, entry] of writes) {
          if (entry.used < oldestUse) [oldest, oldestUse] = [text, entry.used];
        }
        writes.delete(oldest!);
      }
    }
    return stmt;
  };
  db.close = () => {
    close();
    kept = [];
    writes = new Map();
  };
  Object.defineProperty(db, 'retained', { get: () => kept.length });
  return db;
}
