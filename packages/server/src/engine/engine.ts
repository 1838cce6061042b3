/**
 * The storage engine seen by the rest of the server. The protocol layer only speaks to this interface,
 * so another engine (PostgreSQL) can sit behind it without the endpoints changing.
 */
import type { SqlValue, StatementResult, StatementFailure } from '@rustydb/protocol';

export interface StatementInput {
  sql: string;
  params?: readonly SqlValue[];
}

/** Privileges on a table. WRITE is "any of INSERT, UPDATE, DELETE" (a table a trigger writes to). */
export type TablePrivilege = 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE' | 'WRITE';
/** Privileges on the schema or the server as a whole. */
export type GlobalPrivilege = 'CREATE' | 'DROP' | 'ALTER' | 'MONITOR' | 'ADMIN';

export type AccessNeed =
  { privilege: TablePrivilege; table: string } | { privilege: GlobalPrivilege; table?: undefined };

/** What a statement touches, as reported by the engine (not guessed from its text). */
export interface StatementAccess {
  needs: readonly AccessNeed[];
  /** Tables the statement reads, writes or changes the shape of (for change tracking). */
  tables: readonly string[];
  kind: 'read' | 'write' | 'ddl';
}

/** Throws PERMISSION_DENIED when the caller may not do what `access` describes. */
export type Authorize = (access: StatementAccess) => void;

export interface RunOptions {
  /** Checked before the statement runs; omitted only for the server's own statements. */
  authorize?: Authorize;
  /** Aborting stops the engine's work (the statement is interrupted, not merely abandoned). */
  signal?: AbortSignal;
  /** Milliseconds before the statement is interrupted with QUERY_TIMEOUT. */
  timeoutMs: number;
}

export interface StreamOptions extends RunOptions {
  chunkSize: number;
}

/** One piece of a streamed result. The last has `done: true` and the totals. */
export interface ResultChunk {
  columns: string[];
  rows: SqlValue[][];
  done: boolean;
  rowsAffected?: number;
  lastInsertId?: number;
}

export interface BatchOptions extends RunOptions {
  /** All or nothing: on the first failure nothing is applied and that failure is thrown. */
  transaction: boolean;
}

/** One committed change, as recorded in the change log inside the same transaction as the change. */
export interface ChangeRecord {
  /** Strictly increasing, in commit order. */
  seq: number;
  table: string;
  /** `ddl`: the table was created, altered or dropped (`new` holds `{ action, sql }`). */
  op: 'insert' | 'update' | 'delete' | 'ddl';
  /** Primary key columns (or `rowid`) of the row. */
  key: Record<string, unknown> | null;
  old: Record<string, unknown> | null;
  new: Record<string, unknown> | null;
  /** Commit time, milliseconds since the epoch. */
  ts: number;
}

export interface ChangeLog {
  /** The highest sequence recorded so far (0 when none). */
  head(): Promise<number>;
  /** Sequences at or below this have been pruned: a resume from before it cannot be served. */
  floor(): Promise<number>;
  /** The last sequence committed before `ms` (milliseconds since the epoch). */
  sequenceBefore(ms: number): Promise<number>;
  /** Records with seq > afterSeq, in order, at most `limit`. */
  read(afterSeq: number, limit: number): Promise<ChangeRecord[]>;
  /** Drops records older than maxAgeMs or beyond the newest maxEntries; returns how many went. */
  prune(limits: { maxAgeMs: number; maxEntries: number }): Promise<number>;
}

export interface Engine {
  readonly name: string;
  readonly internal: InternalStore;
  /**
   * Runs one statement and yields its rows in chunks. The consumer pulls: no further rows are read
   * until it asks for the next chunk. Breaking out of the loop stops the statement.
   */
  stream(statement: StatementInput, options: StreamOptions): AsyncGenerator<ResultChunk, void, undefined>;
  /**
   * Runs a statement synchronously if the engine knows it to be a cheap keyed lookup or single-row
   * write; undefined when it must take the asynchronous path. Optional: engines without such a path
   * leave it out.
   */
  runInline?(statement: StatementInput, authorize: Authorize | undefined): StatementResult | undefined;
  /** Runs one statement and returns its whole result. */
  execute(statement: StatementInput, options: RunOptions): Promise<StatementResult>;
  batch(
    statements: readonly StatementInput[],
    options: BatchOptions,
  ): Promise<(StatementResult | StatementFailure)[]>;
  /**
   * Runs a read statement and reads the change-log head in one snapshot: the result reflects exactly
   * the changes up to and including `sequence`.
   */
  snapshot(
    statement: StatementInput,
    options: RunOptions,
  ): Promise<{ sequence: number; result: StatementResult }>;
  readonly changes: ChangeLog;
  /** What a statement would touch (throws for a refused or invalid statement), without running it. */
  describe(sql: string): StatementAccess;
  /** Called after every commit that may have changed data or schema. */
  onCommit(listener: () => void): () => void;
  /** Resolves when the engine answers a trivial statement; used by readiness. */
  healthCheck(): Promise<void>;
  close(): Promise<void>;
}

/**
 * Access to the server's own tables (users, secrets): never reachable by client SQL, never guarded.
 * Kept small so the auth store does not depend on one engine's driver.
 */
export interface InternalStore {
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  exec(sql: string): Promise<void>;
}
