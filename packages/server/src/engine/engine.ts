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
  /**
   * The statement reads the engine's catalogue itself (SQLite's schema table, a schema PRAGMA): it would
   * see every table, so only ADMIN may run it as it is.
   */
  catalog?: boolean;
}

/** Throws PERMISSION_DENIED when the caller may not do what `access` describes. */
export type Authorize = (access: StatementAccess) => void;

/**
 * Who runs a statement. Engines differ in who enforces privileges: SQLite's engine checks what the
 * compiled statement touches against the server's record of the caller's grants (`authorize`), while
 * PostgreSQL's runs the statement under database roles made from the caller's `roles` and lets the
 * database refuse it. A caller carries what either needs.
 */
export interface Caller {
  /** The user, as the audit log names them. */
  readonly user: string;
  /** The caller's RustyDB roles (the anonymous caller of a server without authentication: admin). */
  readonly roles: readonly string[];
  /** The server's own check of an access description against the caller's current grants. */
  readonly authorize: Authorize;
}

/**
 * A request's cancellation without an AbortSignal: a signal and its listener table cost about a
 * kilobyte per request, and most requests are never cancelled (see RequestCancel).
 */
export interface CancelSource {
  readonly cancelled: boolean;
  /** Calls `listener` once when the request is cancelled; the returned function forgets it. */
  onCancel(listener: () => void): () => void;
  /** An AbortSignal that aborts with it, made at the first ask, for a wait that takes one. */
  readonly signal: AbortSignal;
}

export interface RunOptions {
  /** The caller the statement runs for; omitted only for the server's own statements. */
  caller?: Caller;
  /** Aborting stops the engine's work (the statement is interrupted, not merely abandoned). */
  signal?: AbortSignal;
  /** Cancelling stops the engine's work as aborting `signal` does (for callers that make no signal). */
  cancel?: CancelSource;
  /** Milliseconds before the statement is interrupted with QUERY_TIMEOUT. */
  timeoutMs: number;
  /**
   * The server compiled the statement (the documents API) rather than taking it from a client. The
   * PostgreSQL engine runs it without JIT: its nested jsonb set-returning functions make PostgreSQL
   * overestimate its cost by orders of magnitude, and JIT-compiling a statement that runs in
   * milliseconds took seconds to minutes.
   */
  serverCompiled?: boolean;
}

/**
 * The AbortSignal that stops a request: its `signal`, or its `cancel`'s for a wait that takes a signal
 * (rare: the engines' own waits listen to the cancellation through StatementStopper).
 */
export function requestSignal(options: {
  signal?: AbortSignal | undefined;
  cancel?: CancelSource | undefined;
}): AbortSignal | undefined {
  return options.signal ?? options.cancel?.signal;
}

export interface StreamOptions extends RunOptions {
  chunkSize: number;
  /**
   * The consumer only sends the rows on as JSON: the engine may hand them over as JSON text made off
   * the main thread (`ResultChunk.json`) instead of as values.
   */
  asJson?: boolean;
}

/** Rows handed over as the JSON text of their array (see StreamOptions.asJson). */
export interface JsonRows {
  text: string;
  count: number;
}

/** One piece of a streamed result. The last has `done: true` and the totals. */
export interface ResultChunk {
  columns: string[];
  /** The rows, unless `json` carries them (then this is empty): count them with `chunkRowCount`. */
  rows: SqlValue[][];
  /** The rows as JSON text, from engines that can make it off the main thread when asked to. */
  json?: JsonRows;
  done: boolean;
  rowsAffected?: number;
  lastInsertId?: number;
}

/** How many rows a chunk carries, whether as values or as JSON text. */
export function chunkRowCount(chunk: ResultChunk): number {
  return chunk.json ? chunk.json.count : chunk.rows.length;
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
  /**
   * The highest sequence recorded (0 when none), covering every change committed before the call: an
   * engine whose capture runs behind its commits waits for it.
   */
  head(): Promise<number>;
  /**
   * The highest sequence the log holds now, as `read` would reach it, without waiting for commits the
   * capture has not numbered yet: cheaper than `head` (the change feed moves past records no listener
   * needs with it).
   */
  recorded(): Promise<number>;
  /** Sequences at or below this have been pruned: a resume from before it cannot be served. */
  floor(): Promise<number>;
  /** The last sequence committed before `ms` (milliseconds since the epoch). */
  sequenceBefore(ms: number): Promise<number>;
  /** Records with seq > afterSeq, in order, at most `limit`. */
  read(afterSeq: number, limit: number): Promise<ChangeRecord[]>;
  /** Drops records older than maxAgeMs or beyond the newest maxEntries; returns how many went. */
  prune(limits: { maxAgeMs: number; maxEntries: number }): Promise<number>;
  /**
   * Where the table's current incarnation begins: the sequence of the record of its latest creation
   * still in the log (a table dropped and created again under the same name is another table), 0 when
   * the log holds none.
   */
  incarnation(table: string): Promise<number>;
}

/** A column of a user table, as the engine's catalog describes it. */
export interface ColumnInfo {
  /** The column's name in SQL. */
  name: string;
  /** The declared type, as written in CREATE TABLE ('' when untyped). */
  declaredType: string;
  notNull: boolean;
  hasDefault: boolean;
  /** 1-based position in the primary key; 0 when not part of it. */
  primaryKey: number;
  /** A generated column: readable, never written. */
  generated: boolean;
}

/** A user table, as the engine's catalog describes it. */
export interface TableInfo {
  /** The table's name in SQL. */
  name: string;
  columns: ColumnInfo[];
  /** Primary key columns in key order (empty when the table has none). */
  primaryKey: string[];
  /** Rows have no `rowid` to key them by (SQLite's WITHOUT ROWID; every table on PostgreSQL). */
  withoutRowid: boolean;
}

/**
 * The last statement an engine ran through runInline (or its inline run): when its run ended and how
 * long it took, in performance.now() milliseconds. The engine sets both as the run ends; what wraps a
 * runInline that returned a result reads them at once instead of reading the clock again: the metrics
 * (the query's latency) and the session (the answer's timestamp). A keyed query read the clock six
 * times; on this virtual machine, under load, each read cost ~0.8% of the server's CPU per query
 * (bench/RESULTS.md, section (b)).
 */
export const lastInlineRun = { endedAt: 0, ms: 0 };

export interface Engine {
  readonly name: string;
  /**
   * The database's size in bytes, for the metrics (read up to every 100 ms by a metrics stream): an
   * engine for which measuring it is costly reuses a recent measure.
   */
  databaseSize(): Promise<number>;
  readonly internal: InternalStore;
  /**
   * Runs one statement and yields its rows in chunks. The consumer pulls: no further rows are read
   * until it asks for the next chunk. Breaking out of the loop stops the statement.
   */
  stream(statement: StatementInput, options: StreamOptions): AsyncGenerator<ResultChunk, void, undefined>;
  /**
   * Runs a statement synchronously if the engine knows it to be a cheap keyed lookup or single-row
   * write; undefined when it must take the asynchronous path. A result it returns was run just now,
   * and lastInlineRun says when that run ended and how long it took. Optional: engines without such a
   * path leave it out.
   */
  runInline?(statement: StatementInput, caller: Caller | undefined): StatementResult | undefined;
  /**
   * Whether the engine answers `sql` later than runInline would have: a keyed write that runInline
   * declines because it commits in a group with the writes that arrive meanwhile (group commit). A
   * connection's later requests must then wait for its answer to see its effect (see WritesAhead);
   * later deferred writes need not, as the engine commits them in their order of arrival. Cheap,
   * synchronous, never throws (false for a statement it cannot classify). Optional: engines without
   * such writes leave it out.
   */
  deferredWrite?(sql: string): boolean;
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
  /**
   * Whether `changes` records every committed change. Subscriptions, live queries and change streams
   * are refused on an engine without capture rather than left silent.
   */
  readonly changeCapture: boolean;
  /**
   * What a statement would touch (throws for a refused or invalid statement), without running it. With
   * a caller, engines that enforce privileges in the database compile it as that caller, so a statement
   * the caller may not run is refused here already.
   */
  describe(sql: string, caller?: Caller): Promise<StatementAccess>;
  /**
   * Whether the caller holds each of `needs` now, as this engine enforces privileges (the server's grants
   * on SQLite, the database's own on PostgreSQL): one answer per need, in order.
   */
  holds(caller: Caller, needs: readonly AccessNeed[]): Promise<boolean[]>;
  /** The user tables and their columns, from the database's own catalog (the introspector). */
  readCatalog(): Promise<TableInfo[]>;
  /** A number that moves whenever the schema may have changed; cheap to read. */
  schemaVersion(): Promise<number>;
  /**
   * Engines that enforce privileges in the database itself bring them in line with the server's roles
   * and grants; called at start and after every change to users, roles or grants.
   */
  syncPrivileges?(): Promise<void>;
  /**
   * Engines whose database may be shared by several nodes forget what they cached of the privileges
   * (another node changed users, roles or grants; see NodeEvents).
   */
  forgetPrivileges?(): void;
  /**
   * Runs `work` while no other node sharing the database runs its own: the server's start-up (its
   * tables, the first admin user, the signing secret) is safe when nodes start at the same moment.
   * Engines whose database one process owns leave it out.
   */
  exclusively?<T>(work: () => Promise<T>): Promise<T>;
  /** Events between the nodes sharing this database; absent where one node owns the database. */
  readonly nodeEvents?: NodeEvents;
  /** Called after every commit that may have changed data or schema. */
  onCommit(listener: () => void): () => void;
  /**
   * Writes a consistent copy of the whole database (the server's own tables and the change log
   * included) to `toFile`, a new file, while writers go on; answers the change-log position the copy
   * holds. Engines whose database has its own backup tools (PostgreSQL: pg_dump) leave it out.
   */
  backup?(toFile: string): Promise<{ sequence: number }>;
  /** Resolves when the engine answers a trivial statement; used by readiness. */
  healthCheck(): Promise<void>;
  close(): Promise<void>;
}

/** An event from one node to the others: small, JSON. */
export type NodeEvent = Record<string, unknown>;

/**
 * Events between the nodes that share one database (revocations, privilege changes), carried by the
 * database itself: no other coordination service. Each node receives every event of the others once, in
 * the order they were published; its own are not given back to it.
 */
export interface NodeEvents {
  /** Resolves once the event is recorded; the other nodes receive it a moment later. */
  publish(event: NodeEvent): Promise<void>;
  onEvent(listener: (event: NodeEvent) => void): () => void;
  /** How many other nodes receive events now (for a request that waits for each one's answer). */
  peers(): Promise<number>;
}

/**
 * What `InternalStore.changeHead` records where the change-log position of a write is not known until
 * after it commits (PostgreSQL): larger than any position, so that a reader never takes it for one.
 */
export const PENDING_POSITION = Number.MAX_SAFE_INTEGER;

/**
 * Access to the server's own tables (users, secrets): never reachable by client SQL, never guarded.
 * Kept small so the auth store does not depend on one engine's driver.
 */
export interface InternalStore {
  /** The SQL dialect the statements are written in; `?` placeholders work in both. */
  readonly dialect: 'sqlite' | 'postgres';
  /**
   * An SQL expression for the change log's position of the write it appears in: the server's own
   * writes that must record where in the log they happened (when a privilege was given) use it. On
   * SQLite it is the log's head, read in the write's own transaction, so the position and the write are
   * one atomic step. On PostgreSQL the log is numbered by the change capture after transactions commit,
   * so no expression in the write can know it: it is PENDING_POSITION, which `settlePending` replaces.
   */
  readonly changeHead: string;
  /**
   * Replaces PENDING_POSITION in `column` of the rows of `table` that hold it (each named by `keys`)
   * with a position at or after every change committed before them. Absent where `changeHead` is exact
   * (SQLite). Called after such a write, and by a reader that finds one not yet replaced.
   */
  settlePending?(table: string, column: string, keys: readonly string[]): Promise<void>;
  get<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T | undefined>;
  /**
   * `get`, answered in this tick: for stores that read synchronously (SQLite's, a step of microseconds).
   * Absent where a read must wait (PostgreSQL's, over the network).
   */
  getNow?<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): T | undefined;
  all<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  run(sql: string, params?: readonly unknown[]): Promise<{ changes: number }>;
  exec(sql: string): Promise<void>;
}
