/**
 * The embedded engine: one SQLite file in WAL mode, reached through libsql.
 *
 * - one synchronous connection runs keyed statements inline (microseconds, no thread hop) and the
 *   server's internal queries;
 * - a pool of asynchronous connections runs everything else off the event loop, one statement or one
 *   transaction per connection, so an interrupt stops exactly that work.
 */
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { SqlValue, StatementFailure, StatementResult } from '@rustydb/protocol';
import type { Durability } from '../../config/config.ts';
import { RustyError, storageFullError } from '../../errors/rusty-error.ts';
import type {
  AccessNeed,
  Caller,
  StatementAccess,
  BatchOptions,
  ChangeLog,
  Engine,
  InternalStore,
  ResultChunk,
  RunOptions,
  StatementInput,
  StreamOptions,
  TableInfo,
} from '../engine.ts';
import { lastInlineRun } from '../engine.ts';
import { ConnectionPool, type PooledConnection } from './connection-pool.ts';
import {
  openAsync,
  openSync,
  reserveNativeThreads,
  type AsyncStatement,
  type SyncDatabase,
  type SyncStatement,
} from './driver.ts';
import { StatementRouter, type RoutedStatement } from './statement-router.ts';
import { StatementStopper } from './statement-stopper.ts';
import { SchemaReplica, copySchema } from './schema-replica.ts';
import { WriteGate } from './write-gate.ts';
import { CommitGroups, type GroupTransaction } from './commit-groups.ts';
import { InlineGroupConnection, LockHeldElsewhere } from './inline-group-connection.ts';
import { Checkpointer } from './checkpointer.ts';
import { DiskSpace } from './disk-space.ts';
import { toDriverParams, toWireRow, type DriverValue } from './values.ts';
import { CHANGE_LOG_SCHEMA, recordedObjects, syncCapture } from './change-capture.ts';
import { CHANGE_HEAD_SQL, SqliteChangeLog } from './change-log.ts';
import { changeHead } from './backup.ts';
import { ReadWorkerPool, SCHEMA_CHANGED } from './read-workers.ts';
import { readCatalog, schemaVersion } from './catalog.ts';
import { checkParameterCount, guardStatement, type GuardedStatement } from '../statement-guard.ts';
import { collect, failingAt, runEach } from '../statement-results.ts';

export interface SqliteEngineOptions {
  dataDir: string;
  poolSize: number;
  /** File name inside dataDir. */
  fileName?: string;
  /** Told of failures of background work (checkpoints), for the server log. */
  onBackgroundError?: (what: string, err: unknown) => void;
  /** Bytes kept in reserve for a full disk (see DiskSpace); default 16 MiB, 0 for none. */
  storageReserveBytes?: number;
  /** Told when the disk becomes full (writes refused) and when it has room again. */
  onStorageChange?: (full: boolean) => void;
  /** How long a read worker beyond the one kept may stay idle before it ends (tests shorten it). */
  readWorkerIdleMs?: number;
  /** What an acknowledged commit survives (see Durability); default full. */
  durability?: Durability;
}

/** The database's file name in the data directory. */
export const DATABASE_FILE = 'rustydb.sqlite';

const DEFAULT_STORAGE_RESERVE_BYTES = 16 * 1024 * 1024;

/**
 * How long a pooled connection lets SQLite wait for a lock held by another process, milliseconds.
 * Writers of this server never meet each other's locks: they take turns at the write gate.
 */
const BUSY_TIMEOUT_MS = 5000;

/** The WAL size past which a checkpoint runs. */
const WAL_CHECKPOINT_BYTES = 1024 * 1024;
/**
 * The WAL size past which writers wait for the running checkpoint (see Checkpointer): the WAL's peak
 * during sustained writes is about this plus what the writers already queued at the gate commit.
 */
const WAL_BRAKE_BYTES = 3 * 1024 * 1024;
/** The size a WAL file is cut back to when it starts over, so that its size tells how much it holds. */
const WAL_KEEP_BYTES = 64 * 1024;

/**
 * SQLite's `synchronous` level for each durability. In WAL mode, FULL flushes the log to the disk at
 * every commit, before the commit is acknowledged or visible to any reader; NORMAL writes the log at
 * every commit but flushes it only at checkpoints, so a process crash loses nothing and a power loss
 * may undo the last commits (never a part of one, never the file's consistency).
 */
const SYNCHRONOUS: Record<Durability, 'FULL' | 'NORMAL'> = { full: 'FULL', normal: 'NORMAL' };

/**
 * Every connection: the durability's `synchronous` level, no automatic checkpoints (they would run
 * inside a commit, on the event loop for the inline connection; the Checkpointer runs them instead),
 * and a restarted WAL is cut back to size.
 */
function connectionPragmas(durability: Durability): string {
  return `PRAGMA foreign_keys = ON; PRAGMA synchronous = ${SYNCHRONOUS[durability]}; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = ${WAL_KEEP_BYTES};`;
}

/** SQLite's numbers for `PRAGMA synchronous`, as read back. */
const SYNCHRONOUS_LEVELS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'] as const;

/** SQLite's result code behind an error, also once it is wrapped in a RustyError. */
function sqliteCode(err: unknown): string | undefined {
  const e = (err ?? {}) as { code?: unknown; details?: { sqlite_code?: unknown } };
  if (typeof e.code === 'string' && e.code.startsWith('SQLITE_')) return e.code;
  return typeof e.details?.sqlite_code === 'string' ? e.details.sqlite_code : undefined;
}

function isBusy(err: unknown): boolean {
  return /^SQLITE_(BUSY|LOCKED)/.test(sqliteCode(err) ?? '');
}

/** What a transaction may do: a read-only one takes no write lock and never blocks a writer. */
type TransactionMode = 'write' | 'read';

/** How often a statement is routed and authorized again when the schema changed before it ran. */
const SCHEMA_ATTEMPTS = 3;
/** How long a client is told to wait before sending such a statement again. */
const SCHEMA_RETRY_AFTER_MS = 100;

/**
 * The schema changed between a statement's authorization and its run: it must be compiled and
 * authorized again. Thrown before the statement has done anything; a client sees it only when the
 * schema kept changing over every attempt.
 */
class SchemaChangedError extends RustyError {
  constructor() {
    // Retryable, and said so by its code: QUERY_ERROR is documented as never worth sending again.
    super('BUSY', 'the schema kept changing while the statement waited to run; try again', {
      retry_after_ms: SCHEMA_RETRY_AFTER_MS,
    });
  }
}

/** `PRAGMA schema_version`, prepared once per pooled connection. */
const versionStatements = new WeakMap<PooledConnection, AsyncStatement>();

/**
 * Fails unless the connection's current transaction sees the schema `routed` was authorized against.
 * Inside the transaction the statement then runs in, the answer holds until it ends.
 */
async function assertSchema(
  conn: PooledConnection,
  routed: Pick<RoutedStatement, 'schemaVersion'>,
): Promise<void> {
  if ((await schemaVersionOn(conn)) !== routed.schemaVersion) throw new SchemaChangedError();
}

/** The connection's `PRAGMA schema_version` statement, prepared once. */
async function versionStatementOf(conn: PooledConnection): Promise<AsyncStatement> {
  let stmt = versionStatements.get(conn);
  if (!stmt) {
    stmt = (await conn.prepare('PRAGMA schema_version')).raw();
    versionStatements.set(conn, stmt);
  }
  return stmt;
}

/** The schema version the connection's current transaction sees. */
async function schemaVersionOn(conn: PooledConnection): Promise<number> {
  return Number(drain(await (await versionStatementOf(conn)).iterate([]))[0]?.[0] ?? -1);
}

/** The schema version a group transaction sees, read once for all its writes (see CommitGroups). */
const groupSchemaVersions = new WeakMap<GroupTransaction, number>();

/**
 * The schema version a write transaction sees, read on the calling thread: the transaction holds
 * its snapshot and the write lock already, so the read waits for nothing.
 */
async function schemaVersionInWrite(conn: PooledConnection): Promise<number> {
  return Number((await versionStatementOf(conn)).get([])?.[0] ?? -1);
}

/** The connection's own counters: the rows changed by its last statement and its last inserted rowid. */
const COUNTERS_SQL = 'SELECT changes(), last_insert_rowid()';
const pooledCounterStatements = new WeakMap<PooledConnection, AsyncStatement>();
const inlineCounterStatements = new WeakMap<SyncDatabase, SyncStatement>();

/**
 * Whom the server's own work (no caller: capture, checkpoints, backups, health checks) counts as when
 * read workers and pooled connections are shared between users: one more user.
 */
const SERVER_USER = '';

interface Counters {
  changes: number;
  lastRowid: number;
}

function countersOf(row: unknown[] | undefined): Counters {
  const [changes, lastRowid] = (row ?? [0, 0]) as [number | bigint, number | bigint];
  return { changes: Number(changes), lastRowid: Number(lastRowid) };
}

async function pooledCounterStatement(conn: PooledConnection): Promise<AsyncStatement> {
  let stmt = pooledCounterStatements.get(conn);
  if (!stmt) pooledCounterStatements.set(conn, (stmt = (await conn.prepare(COUNTERS_SQL)).raw()));
  return stmt;
}

/** Read to the end: a statement left active on a connection blocks its COMMIT (see drain). */
async function pooledCounters(conn: PooledConnection): Promise<Counters> {
  return countersOf(drain(await (await pooledCounterStatement(conn)).iterate([]))[0]);
}

const inlineVersionStatements = new WeakMap<SyncDatabase, SyncStatement>();

/** The schema version the inline connection sees now (inside a group's transaction: that one's). */
function inlineSchemaVersion(db: SyncDatabase): number {
  let stmt = inlineVersionStatements.get(db);
  if (!stmt) inlineVersionStatements.set(db, (stmt = db.prepare('PRAGMA schema_version').raw()));
  return Number(stmt.all([])[0]?.[0] ?? -1);
}

function inlineCounters(db: SyncDatabase): Counters {
  let stmt = inlineCounterStatements.get(db);
  if (!stmt) inlineCounterStatements.set(db, (stmt = db.prepare(COUNTERS_SQL).raw()));
  return countersOf(stmt.all([])[0]);
}

/**
 * What a statement reports of its own data change. Connections are shared by every session and keep
 * their counters from whatever ran last, so a count is reported only for a data change (never for
 * DDL, ANALYZE or REINDEX), and an inserted rowid only when the statement inserted a row. An INSERT
 * without an upsert clause that changed rows inserted them (whatever rowid the connection's previous
 * insert had: it may be the same number, in another table); an upsert may have updated instead, so it
 * reports a rowid only when the rowid moved. An upsert that updated, an INSERT OR IGNORE that ignored,
 * an insert of no rows report none.
 */
function ownTotals(
  guarded: GuardedStatement,
  before: Counters | undefined,
  after: Counters,
): { rowsAffected: number; lastInsertId?: number } {
  const rowsAffected = guarded.writeVerbs.size > 0 ? after.changes : 0;
  const inserted =
    guarded.writeVerbs.has('INSERT') &&
    rowsAffected > 0 &&
    (!isUpsert(guarded) || after.lastRowid !== before?.lastRowid);
  return inserted ? { rowsAffected, lastInsertId: after.lastRowid } : { rowsAffected };
}

/** The answer to a write that returns no rows, from what its run reported (see ownTotals). */
function writeAnswer(
  guarded: GuardedStatement,
  before: Counters | undefined,
  run: { changes: number; lastInsertRowid: number | bigint },
): StatementResult {
  const totals = ownTotals(guarded, before, {
    changes: run.changes,
    lastRowid: Number(run.lastInsertRowid),
  });
  return {
    status: 'success',
    columns: [],
    rows: [],
    rows_affected: totals.rowsAffected,
    ...(totals.lastInsertId !== undefined ? { last_insert_id: totals.lastInsertId } : {}),
  };
}

/** An INSERT that may update instead (ON CONFLICT … DO UPDATE): only it needs the rowid from before. */
/**
 * Whether a statement (not DDL, which has its own path) runs as a write: one that changes rows, or a
 * read with RETURNING. Such a statement is run whole on the writer before its result is returned.
 */
function runsAsWrite(routed: RoutedStatement): boolean {
  return routed.guarded.kind !== 'ddl' && (routed.access.kind !== 'read' || routed.guarded.returning);
}

function isUpsert(guarded: GuardedStatement): boolean {
  return guarded.writeVerbs.has('INSERT') && guarded.writeVerbs.has('UPDATE');
}

function rowToObject<T>(columns: readonly string[], row: readonly unknown[]): T {
  const object: Record<string, unknown> = {};
  columns.forEach((name, i) => (object[name] = row[i]));
  return object as T;
}

/**
 * The milliseconds since `started` (performance.now()) of an inline run that ends now (with its result
 * or its error), recorded in lastInlineRun for what wraps the run (its metrics, its answer's
 * timestamp): one clock read for all.
 */
function ranFor(started: number): number {
  const ended = performance.now();
  lastInlineRun.endedAt = ended;
  return (lastInlineRun.ms = ended - started);
}
export class SqliteEngine implements Engine {
  readonly name = 'sqlite';

  /**
   * Read worker threads started now: none until the first read that needs one, then one while idle, up
   * to engine_pool_size while reads run.
   */
  get readWorkers(): number {
    return this.#readers.started;
  }

  /** Streamed chunks whose rows the main thread serialized from their worker's packed values. */
  get chunksSerializedOnLoop(): number {
    return this.#readers.serializedHere;
  }
  readonly changeCapture = true;
  readonly path: string;
  /** The database file and its WAL, whose sizes add up to the database's. */
  readonly #dataFiles: readonly string[];
  /** What an acknowledged commit survives: the `synchronous` level of every connection that writes. */
  readonly durability: Durability;
  readonly #router: StatementRouter;
  readonly #pool: ConnectionPool;
  readonly internal: InternalStore;
  readonly changes: ChangeLog;
  readonly #setup: SyncDatabase;
  readonly #readers: ReadWorkerPool;
  readonly #changeLog: SqliteChangeLog;
  readonly #commitListeners = new Set<() => void>();
  /**
   * DDL transactions under way. While one may commit, statements do not run inline: a DDL commit is
   * visible to the inline connection before the router has forgotten the programs it compiled, and
   * an inline statement has no transaction to check the schema version in.
   */
  #schemaChanging = 0;
  /** Every write of this process takes its turn here (see WriteGate). */
  readonly #gate = new WriteGate();
  /**
   * Keyed writes that do not run inline commit in groups (see CommitGroups). With durability full every
   * keyed write does, on a pooled connection: a commit then waits for the disk, which must not happen on
   * the event loop, and one flush serves many. With durability normal a commit waits for nothing, but
   * each one still appends its own copy of every page it changed to the WAL (a single-row INSERT with
   * its change-log record: about four pages, 17 KB) and the WAL is checkpointed all the sooner: so the
   * first keyed write of a turn of the event loop runs inline (a lone writer waits for nothing), and
   * the writes that arrive with it in the same turn (a pipelining client, many clients at once) commit
   * together at the turn's end, on the inline connection (see #mayCommitInline and
   * InlineGroupConnection).
   */
  readonly #groups: CommitGroups<PooledConnection | InlineGroupConnection>;
  /** The inline connection as a group's connection (durability normal). */
  readonly #inlineGroupConnection = new InlineGroupConnection(() => this.#router.inlineConnection, isBusy);
  /**
   * Keyed writes of this turn of the event loop that ran inline or joined a commit group (durability
   * normal): the first may run inline, the rest join a group.
   */
  #writesThisTurn = 0;
  /** Whether the last turn that had keyed writes had several (see #mayCommitInline). */
  #burst = false;
  readonly #endTurn = (): void => {
    this.#burst = this.#writesThisTurn > 1;
    this.#writesThisTurn = 0;
  };
  readonly #checkpointer: Checkpointer;
  readonly #space: DiskSpace;
  /** Pooled connections in use, and the work on them: close interrupts the one and waits for the other. */
  readonly #leased = new Map<PooledConnection, Promise<unknown>>();
  #closed = false;

  constructor(options: SqliteEngineOptions) {
    // Before this process's first libsql connection: the pool's statements each need a native thread.
    reserveNativeThreads(options.poolSize);
    mkdirSync(options.dataDir, { recursive: true });
    this.path = join(options.dataDir, options.fileName ?? DATABASE_FILE);
    this.#dataFiles = [this.path, `${this.path}-wal`];
    this.durability = options.durability ?? 'full';
    const pragmas = connectionPragmas(this.durability);
    // Kept open for the engine's life: closing the last connection checkpoints the whole WAL, which
    // after a bulk load takes seconds, and this runs on the event loop.
    this.#setup = openSync(this.path);
    this.#setup.exec(`PRAGMA journal_mode = WAL; ${pragmas}`);
    this.#setup.exec(CHANGE_LOG_SCHEMA);
    this.#router = new StatementRouter(() => {
      // A busy timeout of 0: a connection used on the event loop must never wait there for a lock.
      const db = openSync(this.path, { timeout: 0 });
      db.exec(pragmas);
      return db;
    });
    this.#pool = new ConnectionPool(options.poolSize, async () => {
      const conn = openAsync(this.path, { timeout: BUSY_TIMEOUT_MS });
      await conn.exec(pragmas);
      return conn;
    });
    this.#groups = new CommitGroups<PooledConnection | InlineGroupConnection>({
      gate: this.#gate,
      onConnection: async (user, work) => {
        if (this.durability === 'normal') {
          // Holding the gate: the writes read in this turn join the group until its end.
          await yieldToLoop();
          try {
            return await work(this.#inlineGroupConnection);
          } catch (err) {
            this.#space.noteFailure(err);
            if (!(err instanceof LockHeldElsewhere)) throw err;
            // libsql may leave the busy statement in progress: the router opens fresh connections.
            this.#router.invalidate();
          }
        }
        await this.#onPooled(undefined, { user, urgent: true }, async (conn) => {
          try {
            await work(conn);
          } catch (err) {
            this.#space.noteFailure(err);
            throw err;
          }
        });
      },
      // A group of keyed writes changed a few pages for each: counted as that many inline commits.
      committed: (writes) => this.#committed(false, writes),
    });
    this.internal = this.#makeInternalStore();
    this.#readers = new ReadWorkerPool(this.path, options.poolSize, {
      ...(options.readWorkerIdleMs !== undefined ? { idleMs: options.readWorkerIdleMs } : {}),
    });
    this.#changeLog = new SqliteChangeLog(
      () => this.#router.inlineConnection,
      (work) => this.#gate.hold(work),
    );
    this.changes = this.#changeLog;
    this.#checkpointer = new Checkpointer({
      walPath: `${this.path}-wal`,
      thresholdBytes: WAL_CHECKPOINT_BYTES,
      brakeBytes: WAL_BRAKE_BYTES,
      pass: (urgent) => this.#checkpointPass('PASSIVE', urgent),
      exclusive: (work) => this.#gate.hold(work),
      onError: (err) => {
        this.#space.noteFailure(err);
        options.onBackgroundError?.('checkpoint', err);
      },
    });
    this.#space = new DiskSpace(
      options.dataDir,
      `${this.path}-reserve`,
      options.storageReserveBytes ?? DEFAULT_STORAGE_RESERVE_BYTES,
      (full) => {
        // With the reserve given back, a checkpoint lets the WAL start over in the room it makes.
        if (full) void this.#checkpointer.run();
        options.onStorageChange?.(full);
      },
    );
  }

  /**
   * One checkpoint pass on a pooled connection, off the event loop (see Checkpointer for the passes).
   * `urgent`: the pass holds the write gate, so it goes first for a connection.
   */
  #checkpointPass(mode: 'PASSIVE' | 'TRUNCATE', urgent: boolean): Promise<void> {
    return this.#onPooled(undefined, { user: SERVER_USER, urgent }, (conn) =>
      conn.exec(`PRAGMA wal_checkpoint(${mode})`),
    );
  }

  /** Opens the engine and brings change capture in line with the tables already in the file. */
  static async open(options: SqliteEngineOptions): Promise<SqliteEngine> {
    const engine = new SqliteEngine(options);
    try {
      await engine.#inTransaction(undefined, 'write', (conn) => syncCapture(conn, undefined));
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  async describe(sql: string): Promise<StatementAccess> {
    return this.#router.route(sql).access;
  }

  /** SQLite has no users of its own: privileges are the server's grants, checked need by need. */
  async holds(caller: Caller, needs: readonly AccessNeed[]): Promise<boolean[]> {
    return needs.map((need) => {
      try {
        caller.authorize({
          needs: [need],
          tables: need.table === undefined ? [] : [need.table],
          kind: 'read',
        });
        return true;
      } catch {
        return false;
      }
    });
  }

  readCatalog(): Promise<TableInfo[]> {
    return readCatalog(this.internal);
  }

  schemaVersion(): Promise<number> {
    return schemaVersion(this.internal);
  }

  onCommit(listener: () => void): () => void {
    this.#commitListeners.add(listener);
    return () => this.#commitListeners.delete(listener);
  }

  /**
   * After every commit. `large`: it may have written many pages (a pooled write or transaction);
   * otherwise it carried `keyedWrites` keyed writes (a commit group: several).
   */
  #committed(large: boolean, keyedWrites = 1): void {
    this.#checkpointer.committed(large, keyedWrites);
    for (const listener of this.#commitListeners) listener();
  }

  /**
   * Runs `work` in a transaction on a pooled connection: commits (and tells the commit listeners after
   * a write) or rolls back on error. A write transaction first waits for its turn at the write gate.
   * With `options`, every wait and the work itself are bound to its deadline and signal.
   */
  async #inTransaction<T>(
    options: RunOptions | undefined,
    mode: TransactionMode,
    work: (conn: PooledConnection, stopper: StatementStopper | undefined) => Promise<T>,
  ): Promise<T> {
    const stopper = options ? new StatementStopper(options.timeoutMs, options) : undefined;
    try {
      const user = options?.caller?.user ?? SERVER_USER;
      if (mode === 'read') return await this.#transactionOn(stopper, user, 'read', work);
      return await this.#holdingWriteLock(stopper, async () => {
        const result = await this.#transactionOn(stopper, user, 'write', work);
        this.#committed(true);
        return result;
      });
    } finally {
      stopper?.dispose();
    }
  }

  /**
   * The transaction itself, on a pooled connection; a write transaction's caller holds the write gate.
   * BEGIN IMMEDIATE takes the write lock at once, so no statement of the transaction can meet it taken;
   * a plain BEGIN reads one snapshot and takes no lock that a writer would wait for. `user` is whom it
   * runs for: pooled connections are shared fairly between users, and the gate holder goes first.
   */
  #transactionOn<T>(
    stopper: StatementStopper | undefined,
    user: string,
    mode: TransactionMode,
    work: (conn: PooledConnection, stopper: StatementStopper | undefined) => Promise<T>,
  ): Promise<T> {
    return this.#onPooled(stopper, { user, urgent: mode === 'write' }, async (conn, lease) => {
      await conn.exec(mode === 'write' ? 'BEGIN IMMEDIATE' : 'BEGIN');
      try {
        const result = await work(conn, stopper);
        await conn.exec('COMMIT');
        return result;
      } catch (err) {
        try {
          await conn.exec('ROLLBACK');
          // Rolled back by this connection itself: nothing of the transaction is left on it, unless a
          // statement failed busy and so is still in progress.
          lease.reusable = !stopper?.stopped && !isBusy(err);
        } catch {
          // SQLite may already have rolled back (an interrupt does): the connection is replaced.
        }
        throw err;
      }
    });
  }

  /**
   * Runs `work` holding the write lock, taken in its turn (bound to the stopper's deadline): a failure
   * is shown to the disk-space watch, and the lock is left however the work ends.
   */
  async #holdingWriteLock<T>(stopper: StatementStopper | undefined, work: () => Promise<T>): Promise<T> {
    await this.#waitFor(stopper, 'the write lock', (signal) => this.#gate.enter(signal));
    try {
      return await work();
    } catch (err) {
      this.#space.noteFailure(err);
      throw err;
    } finally {
      this.#gate.leave();
    }
  }

  /** Runs a wait that the request's deadline and signal may end. */
  #waitFor<T>(
    stopper: StatementStopper | undefined,
    what: string,
    wait: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    return stopper ? stopper.waitFor(what, wait) : wait(undefined);
  }

  /**
   * Runs `work` on a pooled connection bound to the stopper. The connection goes back to the pool when
   * the work succeeded, or when it failed but says the connection is clean (`lease.reusable`); any
   * other failure may have left a statement in progress on it (libsql does not reset a statement that
   * failed with SQLITE_BUSY, and such a statement keeps its snapshot and blocks COMMIT), so it is
   * closed and replaced. `turn` says whom the work runs for and whether it holds the write gate (see
   * ConnectionPool.acquire).
   */
  async #onPooled<T>(
    stopper: StatementStopper | undefined,
    turn: { user: string; urgent: boolean },
    work: (conn: PooledConnection, lease: { reusable: boolean }) => Promise<T>,
  ): Promise<T> {
    const conn = await this.#waitFor(stopper, 'a database connection', (signal) =>
      this.#pool.acquire(turn.user, signal, turn.urgent),
    );
    stopper?.attach(conn);
    const lease = { reusable: false };
    const running = work(conn, lease);
    this.#leased.set(conn, running);
    try {
      const result = await running;
      lease.reusable = true;
      return result;
    } catch (err) {
      throw stopper ? stopper.translate(err) : err;
    } finally {
      this.#leased.delete(conn);
      stopper?.detach();
      if (lease.reusable) this.#pool.release(turn.user, conn);
      else this.#pool.discard(turn.user, conn);
    }
  }

  async snapshot(
    statement: StatementInput,
    options: RunOptions,
  ): Promise<{ sequence: number; result: StatementResult }> {
    this.#assertOpen();
    return this.#withCurrentSchema(async () => {
      const routed = this.#router.route(statement.sql);
      options.caller?.authorize(routed.access);
      checkParameterCount(routed.guarded, statement.params?.length ?? 0);
      if (routed.access.kind !== 'read')
        throw new RustyError('QUERY_ERROR', 'only a read statement can be watched');
      // A read transaction: the head and the rows come from the same snapshot, which is also the
      // schema the statement was authorized against.
      return this.#inTransaction(options, 'read', async (conn, stopper) => {
        await assertSchema(conn, routed);
        const head = drain(await (await conn.prepare(`SELECT ${CHANGE_HEAD_SQL}`)).raw().iterate([]));
        const result = await collect(
          this.#runOn(conn, routed, toDriverParams(statement.params), stopper!, 10_000),
        );
        return { sequence: Number(head[0]?.[0] ?? 0), result };
      });
    });
  }

  /** New work is refused once the engine is closing. */
  #assertOpen(): void {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'engine is closed');
  }

  async *stream(
    statement: StatementInput,
    options: StreamOptions,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    this.#assertOpen();
    for (let attempt = 1; ; attempt++) {
      const routed = this.#router.route(statement.sql);
      options.caller?.authorize(routed.access);
      // Inline statements are prepared once and shared: a short params array would leave another
      // caller's values bound. Exact counts are required on every path.
      checkParameterCount(routed.guarded, statement.params?.length ?? 0);
      const params = toDriverParams(statement.params);
      if (routed.route === 'inline') {
        const result = this.#tryInline(statement.sql, routed, params);
        if (result) {
          yield* chunksOf(result, options.chunkSize);
          return;
        }
      }
      // The schema check comes before the first chunk: nothing was sent when it fails.
      let started = false;
      try {
        for await (const chunk of this.#streamPooled(statement.sql, routed, params, options)) {
          started = true;
          yield chunk;
        }
        return;
      } catch (err) {
        if (started || !this.#retryAfter(err, attempt)) throw err;
      }
    }
  }

  runInline(statement: StatementInput, caller: Caller | undefined): StatementResult | undefined {
    this.#assertOpen();
    // A statement refused before its run (routing, privileges, parameters) ran for no time.
    lastInlineRun.ms = 0;
    const routed = this.#router.route(statement.sql);
    if (routed.route !== 'inline') return undefined;
    caller?.authorize(routed.access);
    checkParameterCount(routed.guarded, statement.params?.length ?? 0);
    return this.#tryInline(statement.sql, routed, toDriverParams(statement.params));
  }

  deferredWrite(sql: string): boolean {
    if (this.#closed) return false;
    try {
      // The router's cache answers for a statement just offered to runInline.
      const routed = this.#router.route(sql);
      return routed.route === 'inline' && routed.access.kind !== 'read';
    } catch {
      // Refused or invalid: its request fails at once, before anything it could be waited for.
      return false;
    }
  }

  async execute(statement: StatementInput, options: RunOptions): Promise<StatementResult> {
    this.#assertOpen();
    return this.#withCurrentSchema(async () => {
      const routed = this.#router.route(statement.sql);
      options.caller?.authorize(routed.access);
      checkParameterCount(routed.guarded, statement.params?.length ?? 0);
      const params = toDriverParams(statement.params);
      if (routed.route === 'inline') {
        const result = this.#tryInline(statement.sql, routed, params);
        if (result) return result;
      }
      const streamOptions = { ...options, chunkSize: 10_000 };
      // A write is run whole before its result is returned: no stream of chunks to gather.
      if (runsAsWrite(routed)) return this.#write(statement.sql, routed, params, streamOptions);
      return collect(this.#streamPooled(statement.sql, routed, params, streamOptions));
    });
  }

  /**
   * Runs `attempt` (which routes, authorizes and runs a statement) again, from the routing on, when
   * the schema changed between its authorization and its run.
   */
  async #withCurrentSchema<T>(attempt: () => Promise<T>): Promise<T> {
    for (let n = 1; ; n++) {
      try {
        return await attempt();
      } catch (err) {
        if (!this.#retryAfter(err, n)) throw err;
      }
    }
  }

  /** True when a run refused for a changed schema may be tried again; the router then starts afresh. */
  #retryAfter(err: unknown, attempt: number): boolean {
    if (!(err instanceof SchemaChangedError) || attempt >= SCHEMA_ATTEMPTS) return false;
    this.#router.invalidate();
    return true;
  }

  async batch(
    statements: readonly StatementInput[],
    options: BatchOptions,
  ): Promise<(StatementResult | StatementFailure)[]> {
    this.#assertOpen();
    if (!options.transaction)
      return runEach(statements, options, (statement) => this.execute(statement, options));
    return this.#withCurrentSchema(() => this.#transactionalBatch(statements, options));
  }

  async #transactionalBatch(
    statements: readonly StatementInput[],
    options: BatchOptions,
  ): Promise<StatementResult[]> {
    // Check every statement before any of them runs: a refused one must not leave a partial transaction.
    // A statement after DDL in the same batch may name what that DDL creates, which the planner cannot
    // see yet: it is compiled on a replica of the schema to which the batch's DDL is applied (see
    // accessAfterDdl).
    let replica: SchemaReplica | undefined;
    let plans: { guarded: GuardedStatement; routed: RoutedStatement | undefined; access: StatementAccess }[];
    try {
      plans = statements.map((statement, index) =>
        failingAt(index, () => {
          const guarded = guardStatement(statement.sql);
          checkParameterCount(guarded, statement.params?.length ?? 0);
          const routed = replica ? undefined : this.#router.route(statement.sql);
          const access = routed?.access ?? accessAfterDdl(guarded, replica!);
          options.caller?.authorize(access);
          if (guarded.kind === 'ddl') {
            replica ??= new SchemaReplica(copySchema(this.#router.inlineConnection));
            replica.apply(guarded);
          }
          return { guarded, routed, access };
        }),
      );
    } finally {
      replica?.close();
    }
    const changesSchema = replica !== undefined;
    // A batch of reads only needs one snapshot: it must not take the write lock from the writers.
    const mode: TransactionMode =
      !changesSchema && plans.every((plan) => plan.routed?.access.kind === 'read') ? 'read' : 'write';
    if (mode === 'write') for (const plan of plans) this.#space.check(plan.guarded);
    if (changesSchema) this.#schemaChanging++;
    try {
      return await this.#inTransaction(options, mode, async (conn, stopper) => {
        // Every statement checked above was compiled against the schema this transaction sees.
        for (const plan of plans) if (plan.routed) await assertSchema(conn, plan.routed);
        // The replica later statements were compiled on was copied from this schema too.
        if (replica) await assertSchema(conn, { schemaVersion: replica.version });
        const results: StatementResult[] = [];
        for (let i = 0; i < statements.length; i++) {
          const plan = plans[i]!;
          const result = await failingAt(i, async () => {
            try {
              // Authorized above; compiled on the replica, whose version was compared above.
              const routed = plan.routed ?? {
                guarded: plan.guarded,
                access: plan.access,
                schemaVersion: -1,
                route: 'pooled',
              };
              // Capture must follow each DDL statement at once: the statements after it write to its tables.
              const before = routed.guarded.kind === 'ddl' ? await recordedObjects(conn) : undefined;
              const result = await collect(
                this.#runOn(conn, routed, toDriverParams(statements[i]!.params), stopper!, 10_000),
              );
              if (before) await syncCapture(conn, before);
              return result;
            } catch (err) {
              throw stopper!.translate(err);
            }
          });
          results.push(result);
        }
        return results;
      });
    } finally {
      if (changesSchema) {
        this.#router.invalidate();
        this.#schemaChanging--;
      }
    }
  }

  async backup(toFile: string): Promise<{ sequence: number }> {
    this.#assertOpen();
    // VACUUM INTO reads one snapshot, as any reader does, on a pooled connection off the event loop:
    // it takes no write lock, and the copy holds exactly what had committed when it began.
    await this.#onPooled(undefined, { user: SERVER_USER, urgent: false }, async (conn) => {
      drain(await (await conn.prepare('VACUUM INTO ?')).iterate([toFile]));
    });
    const copy = openSync(toFile, { timeout: 0 });
    try {
      return { sequence: changeHead(copy) };
    } finally {
      copy.close();
    }
  }

  /** The group commits so far, and the writes they acknowledged (see CommitGroups). */
  get groupCommits(): { groups: number; writes: number } {
    return { ...this.#groups.committed };
  }

  /**
   * The `synchronous` level SQLite reports on the connections that commit writes: the inline one and
   * a pooled one (all are opened alike). What the durability setting really does, for tests and
   * diagnostics.
   */
  async synchronousInEffect(): Promise<{ inline: string; pooled: string }> {
    this.#assertOpen();
    const level = (value: unknown): string => SYNCHRONOUS_LEVELS[Number(value)] ?? String(value);
    const inline = this.#router.inlineConnection.prepare('PRAGMA synchronous').raw().get([])?.[0];
    const pooled = await this.#onPooled(undefined, { user: SERVER_USER, urgent: false }, async (conn) =>
      drain(await (await conn.prepare('PRAGMA synchronous')).raw().iterate([])),
    );
    return { inline: level(inline), pooled: level(pooled[0]?.[0]) };
  }

  /** A stat of two files: cheap enough for every read. */
  async databaseSize(): Promise<number> {
    let size = 0;
    for (const file of this.#dataFiles) {
      try {
        size += statSync(file).size;
      } catch {
        // A WAL file that does not exist (yet) counts as empty.
      }
    }
    return size;
  }

  async healthCheck(): Promise<void> {
    // Not ready while writes cannot commit.
    if (this.#space.full) throw storageFullError();
    await this.execute({ sql: 'SELECT 1' }, { timeoutMs: 2000 });
    // Read to its end: a statement left with a row pending keeps the connection's snapshot open.
    await this.#onPooled(undefined, { user: SERVER_USER, urgent: false }, async (conn) =>
      drain(await (await conn.prepare('SELECT 1')).iterate([])),
    );
  }

  /**
   * Stops what runs and closes every connection, waiting for each native call to return first: the
   * process may exit right after, and libsql aborts it if a call completes while it tears down.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const readers = this.#readers.close();
    for (const conn of this.#leased.keys()) conn.interrupt();
    await readers;
    await Promise.allSettled(this.#leased.values());
    await this.#checkpointer.close();
    // Fold the WAL into the database off the event loop, so the next start does not have to.
    try {
      await this.#gate.hold(() => this.#checkpointPass('TRUNCATE', true));
    } catch {
      // Busy or already closing: the next start checkpoints instead.
    }
    this.#space.close();
    this.#pool.close();
    await this.#readers.close();
    this.#router.close();
    this.#setup.close();
  }

  /**
   * Runs a keyed statement on the event loop if it can run now; undefined when it must wait its turn
   * (a write while another runs) or go to the pool.
   */
  #tryInline(sql: string, routed: RoutedStatement, params: DriverValue[]): StatementResult | undefined {
    if (this.#schemaChanging > 0) return undefined;
    const writes = routed.access.kind !== 'read';
    // A commit that waits for the disk never runs on the event loop; nor do writes that can share one.
    if (writes && !this.#mayCommitInline()) return undefined;
    if (writes) this.#space.check(routed.guarded);
    // A write runs inline only when no other write of this server is running or waiting: it would
    // meet a held lock (or jump the queue) otherwise. Checked before trying: a write that finds the gate
    // taken is no arrival at it, and may still join the commit group that holds it (see CommitGroups).
    if (writes && !(this.#gate.free && this.#gate.tryEnter())) return undefined;
    try {
      const result = this.#runInlineOrYield(sql, routed, params);
      if (writes && result) this.#countWrite();
      return result;
    } finally {
      if (writes) this.#gate.leave();
    }
  }

  /**
   * Whether a keyed write offered now may commit on the event loop: never with durability full; with
   * normal, when it is the first keyed write of this turn of the event loop and the last turn that had
   * any had only one. The others join a commit group, where one transaction's commit writes each
   * changed page once for them all.
   * - With 16 INSERTs on the wire (bench/tools/insert-cpu.ts) committing each inline cost the server
   *   117–157 µs of CPU per row, grouping every write on a pooled connection 68–83 µs.
   * - A lone writer (one write at a time) paid twice the CPU in a group there, for the thread hops of
   *   its BEGIN and COMMIT: it commits inline here as before.
   * - The first write of a turn of a burst (the last turn had several) joins the group of the writes
   *   read with it: committed inline, its pages went to the WAL twice in the turn, once in its own
   *   commit and again in the group's. 78 → 66 µs per row with 16 on the wire, rows/s 1.22× (medians
   *   of six alternated pairs of builds); a lone writer's CPU unchanged (200 against 230 µs, within
   *   noise). A burst's end costs one group of one.
   */
  #mayCommitInline(): boolean {
    return this.durability === 'normal' && this.#writesThisTurn === 0 && !this.#burst;
  }

  /** Counts a keyed write that ran inline or joined a commit group in this turn (durability normal). */
  #countWrite(): void {
    if (this.durability === 'full') return;
    if (this.#writesThisTurn++ === 0) setImmediate(this.#endTurn);
  }

  /**
   * Runs an inline statement; undefined if another process holds a lock (the inline connection never
   * waits for one: it would wait on the event loop).
   */
  #runInlineOrYield(
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
  ): StatementResult | undefined {
    try {
      return this.#runInline(sql, routed, params);
    } catch (err) {
      this.#space.noteFailure(err);
      if (!isBusy(err)) throw err;
      // libsql leaves the failed statement in progress on the inline connection (it never resets
      // after SQLITE_BUSY): open fresh connections, and let the pool wait for the lock instead.
      this.#router.invalidate();
      return undefined;
    }
  }

  #runInline(sql: string, routed: RoutedStatement, params: DriverValue[]): StatementResult {
    const result = this.#runInlineStatement(sql, routed, params);
    // A write with RETURNING is a reader too: its commit must still wake the change feed.
    if (routed.access.kind !== 'read') this.#committed(false);
    return result;
  }

  /** Runs an inline statement on the inline connection, in its transaction if one is open. */
  #runInlineStatement(sql: string, routed: RoutedStatement, params: DriverValue[]): StatementResult {
    const stmt = routed.inline!;
    const columns = routed.inlineColumns!;
    const started = performance.now();
    if (columns.length > 0) {
      // A program that yields one row at most is one native step; a cursor costs three times as much.
      // Rows from the driver are fresh arrays, converted to wire values in place (toWireRow).
      let rows: SqlValue[][];
      try {
        if (routed.singleRow) {
          const row = stmt.get(params);
          rows = row === undefined ? [] : [toWireRow(row)];
        } else {
          const all = stmt.all(params);
          for (const row of all) toWireRow(row);
          rows = all as SqlValue[][];
        }
      } catch (err) {
        ranFor(started);
        throw err;
      }
      this.#router.observeInline(sql, routed, ranFor(started), rows.length);
      // A copy of the columns: the result is the caller's to keep or change.
      return {
        status: 'success',
        columns: columns.slice(),
        rows,
        rows_affected: rows.length,
      };
    }
    const before = isUpsert(routed.guarded) ? inlineCounters(this.#router.inlineConnection) : undefined;
    let run;
    try {
      run = stmt.run(params);
    } catch (err) {
      ranFor(started);
      throw err;
    }
    this.#router.observeInline(sql, routed, ranFor(started), 0);
    return writeAnswer(routed.guarded, before, run);
  }

  /**
   * Runs a write in its turn, bound to the deadline: a keyed write (one the inline path declined) joins
   * a commit group; any other waits at the write gate (off the loop) and runs in a transaction of its
   * own on a pooled connection. It runs to its end before its rows (RETURNING) go out, so a slow reader
   * never holds the write lock.
   */
  async #write(
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
    options: StreamOptions,
  ): Promise<StatementResult> {
    this.#space.check(routed.guarded);
    const stopper = new StatementStopper(options.timeoutMs, options);
    try {
      if (routed.route === 'inline') {
        this.#countWrite();
        return await stopper.waitOn('the write lock', () =>
          this.#groups.submit(options.caller?.user ?? SERVER_USER, stopper, (conn, transaction) =>
            conn === this.#inlineGroupConnection
              ? this.#runGroupedInline(transaction, sql, routed, params)
              : this.#runGrouped(
                  conn as PooledConnection,
                  transaction,
                  sql,
                  routed,
                  params,
                  stopper,
                  options.chunkSize,
                ),
          ),
        );
      }
      return await this.#holdingWriteLock(stopper, async () => {
        // A transaction of its own, so that the schema it runs against is the one it was authorized for.
        const result = await this.#transactionOn(
          stopper,
          options.caller?.user ?? SERVER_USER,
          'write',
          async (conn) => {
            await assertSchema(conn, routed);
            return collect(this.#runOn(conn, routed, params, stopper, options.chunkSize));
          },
        );
        this.#committed(true);
        return result;
      });
    } finally {
      stopper.dispose();
    }
  }

  /** One keyed write in a group transaction (see CommitGroups), against the schema it was authorized for. */
  async #runGrouped(
    conn: PooledConnection,
    transaction: GroupTransaction,
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
    stopper: StatementStopper,
    chunkSize: number,
  ): Promise<StatementResult> {
    let version = groupSchemaVersions.get(transaction);
    if (version === undefined)
      groupSchemaVersions.set(transaction, (version = await schemaVersionInWrite(conn)));
    if (version !== routed.schemaVersion) throw new SchemaChangedError();
    try {
      // Rows to return (RETURNING) come through a cursor, off the event loop.
      if (routed.inlineColumns!.length > 0)
        return await collect(this.#runOn(conn, routed, params, stopper, chunkSize));
      return await this.#runKeyedWrite(conn, sql, routed, params);
    } catch (err) {
      this.#space.noteFailure(err);
      throw err;
    }
  }

  /**
   * A keyed write in a group transaction on the inline connection (durability normal), run as it would
   * run inline, against the schema it was authorized for. Its program is the router's current one: the
   * router may have opened a new inline connection since the write was routed (see
   * InlineGroupConnection), and a program of the old one must not run.
   */
  #runGroupedInline(
    transaction: GroupTransaction,
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
  ): StatementResult {
    let version = groupSchemaVersions.get(transaction);
    if (version === undefined) {
      version = inlineSchemaVersion(this.#router.inlineConnection);
      groupSchemaVersions.set(transaction, version);
    }
    if (version !== routed.schemaVersion) throw new SchemaChangedError();
    const current = this.#router.route(sql);
    if (current.route !== 'inline' || current.schemaVersion !== version) throw new SchemaChangedError();
    try {
      return this.#runInlineStatement(sql, current, params);
    } catch (err) {
      this.#space.noteFailure(err);
      throw err;
    }
  }

  /**
   * A keyed write that returns no rows, in a group transaction, run on the event loop as it would run
   * inline under `durability normal`: it takes microseconds, less than a hop to libsql's threads and
   * back (the group's BEGIN and COMMIT, which may wait for a lock or the disk, still go there). It
   * holds no lock to wait for: the transaction holds the write lock already. A run over the inline
   * budget counts against the statement as an inline one does (see StatementRouter.observeInline).
   */
  async #runKeyedWrite(
    conn: PooledConnection,
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
  ): Promise<StatementResult> {
    // Prepared once per connection: a hop the first time only (see openAsync).
    const stmt = conn.preparedWrite(routed.guarded.text) ?? (await conn.prepare(routed.guarded.text));
    const counters = isUpsert(routed.guarded) ? await pooledCounterStatement(conn) : undefined;
    const started = performance.now();
    const before = counters && countersOf(counters.get([]));
    const run = stmt.run(params);
    this.#router.observeInline(sql, routed, ranFor(started), 0);
    return writeAnswer(routed.guarded, before, run);
  }

  async *#streamPooled(
    sql: string,
    routed: RoutedStatement,
    params: DriverValue[],
    options: StreamOptions,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    if (routed.guarded.kind === 'ddl') {
      this.#space.check(routed.guarded);
      // DDL runs in a transaction with the change-capture update and the change-log record it causes.
      this.#schemaChanging++;
      let result: StatementResult;
      try {
        result = await this.#inTransaction(options, 'write', async (conn, stopper) => {
          await assertSchema(conn, routed);
          const before = await recordedObjects(conn);
          const result = await collect(this.#runOn(conn, routed, params, stopper!, options.chunkSize));
          await syncCapture(conn, before);
          return result;
        });
      } finally {
        this.#router.invalidate();
        this.#schemaChanging--;
      }
      yield* chunksOf(result, options.chunkSize);
      return;
    }
    if (runsAsWrite(routed)) {
      yield* chunksOf(await this.#write(sql, routed, params, options), options.chunkSize);
      return;
    }
    // Reads run on a worker thread: libsql fetches rows synchronously after the first, and a sparse
    // scan between matches would otherwise stall the event loop for its whole length.
    const stopper = new StatementStopper(options.timeoutMs, options);
    try {
      yield* this.#readers.stream(
        options.caller?.user ?? SERVER_USER,
        { sql: routed.guarded.text, params, schemaVersion: routed.schemaVersion },
        { chunkSize: options.chunkSize, asJson: options.asJson ?? false },
        stopper.signal,
        () => stopper.translate(new RustyError('QUERY_CANCELLED', 'query cancelled')),
      );
    } catch (err) {
      if ((err as { code?: unknown }).code === SCHEMA_CHANGED) throw new SchemaChangedError();
      throw err;
    } finally {
      stopper.dispose();
    }
  }

  /** Runs one statement on a connection the caller holds, yielding its rows in chunks. */
  async *#runOn(
    conn: PooledConnection,
    routed: RoutedStatement,
    params: DriverValue[],
    stopper: StatementStopper,
    chunkSize: number,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    const stmt = await conn.prepare(routed.guarded.text);
    stopper.throwIfStopped();
    if (!stmt.reader) {
      // A round trip to libsql's thread saved for every write but an upsert (see ownTotals).
      const before = isUpsert(routed.guarded) ? await pooledCounters(conn) : undefined;
      drain(await stmt.iterate(params));
      const totals = ownTotals(routed.guarded, before, await pooledCounters(conn));
      yield { columns: [], rows: [], done: true, ...totals };
      return;
    }
    stmt.raw();
    const columns = stmt.columns().map((c) => c.name);
    const it = await stmt.iterate(params);
    let total = 0;
    let done = false;
    /** Between rows: the last step gave a row. (After a failed step, stepping again would restart it.) */
    let betweenRows = true;
    try {
      for (;;) {
        const rows: ResultChunk['rows'] = [];
        while (rows.length < chunkSize) {
          betweenRows = false;
          const next = it.next();
          betweenRows = true;
          if (next.done) {
            done = true;
            break;
          }
          rows.push(toWireRow(next.value));
        }
        total += rows.length;
        if (done) {
          yield { columns, rows, done: true, rowsAffected: total };
          return;
        }
        yield { columns, rows, done: false };
        // Let other sockets' work run between chunks, however fast the consumer is.
        await yieldToLoop();
        stopper.throwIfStopped();
      }
    } finally {
      if (!done && betweenRows) halt(conn, it);
    }
  }

  /** Runs a write of the server's own, noting a full disk should it fail for want of space. */
  #noting<T>(write: () => T): T {
    try {
      return write();
    } catch (err) {
      this.#space.noteFailure(err);
      throw err;
    }
  }

  #makeInternalStore(): InternalStore {
    const statements = new InternalStatements(() => this.#router.inlineConnection);
    const query = <T>(sql: string, params: readonly unknown[] = []): T[] => {
      const { stmt, columns } = statements.reader(sql);
      const rows = statements.using(sql, () => stmt.all(params as DriverValue[]));
      return rows.map((row) => rowToObject<T>(columns, row));
    };
    // One step, not a cursor: most of the server's lookups (every connect makes two) are by key.
    const getNow = <T>(sql: string, params: readonly unknown[] = []): T | undefined => {
      const { stmt, columns } = statements.reader(sql);
      const row = statements.using(sql, () => stmt.get(params as DriverValue[]));
      return row === undefined ? undefined : rowToObject<T>(columns, row as unknown[]);
    };
    return {
      dialect: 'sqlite',
      changeHead: `(SELECT ${CHANGE_HEAD_SQL})`,
      get: async <T>(sql: string, params?: readonly unknown[]) => getNow<T>(sql, params),
      getNow,
      all: async <T>(sql: string, params?: readonly unknown[]) => query<T>(sql, params),
      // The server's own writes take their turn with every other write (they run on the inline
      // connection, which must never meet a lock: it would fail at once rather than wait).
      run: (sql, params = []) =>
        this.#gate.hold(() =>
          this.#noting(() => {
            const stmt = statements.writer(sql);
            return { changes: statements.using(sql, () => stmt.run(params as DriverValue[])).changes };
          }),
        ),
      exec: (sql) => this.#gate.hold(() => this.#noting(() => this.#router.inlineConnection.exec(sql))),
    };
  }
}

/** Internal statements kept prepared at most; the server's own SQL is a small fixed set. */
const INTERNAL_STATEMENTS_KEPT = 128;

/**
 * The server's own statements (users, revocations, roles: several per connect), prepared once per
 * inline connection instead of on every call. Forgotten when the router opens a new connection; SQLite
 * prepares a kept statement again by itself when the schema changes under it.
 */
class InternalStatements {
  readonly #connection: () => SyncDatabase;
  #owner: SyncDatabase | undefined;
  readonly #readers = new Map<string, { stmt: SyncStatement; columns: string[] }>();
  readonly #writers = new Map<string, SyncStatement>();

  constructor(connection: () => SyncDatabase) {
    this.#connection = connection;
  }

  /** A raw-mode statement returning rows, with its column names. */
  reader(sql: string): { stmt: SyncStatement; columns: string[] } {
    const db = this.#current();
    let entry = this.#readers.get(sql);
    if (!entry) {
      const stmt = db.prepare(sql);
      stmt.raw();
      entry = { stmt, columns: stmt.columns().map((c) => c.name) };
      this.#keep(this.#readers, sql, entry);
    }
    return entry;
  }

  writer(sql: string): SyncStatement {
    const db = this.#current();
    let stmt = this.#writers.get(sql);
    if (!stmt) {
      stmt = db.prepare(sql);
      this.#keep(this.#writers, sql, stmt);
    }
    return stmt;
  }

  /** Runs a kept statement; one that failed is not kept (libsql may leave it mid-step). */
  using<T>(sql: string, run: () => T): T {
    try {
      return run();
    } catch (err) {
      this.#readers.delete(sql);
      this.#writers.delete(sql);
      throw err;
    }
  }

  #current(): SyncDatabase {
    const db = this.#connection();
    if (db !== this.#owner) {
      this.#owner = db;
      this.#readers.clear();
      this.#writers.clear();
    }
    return db;
  }

  #keep<T>(map: Map<string, T>, sql: string, value: T): void {
    if (map.size >= INTERNAL_STATEMENTS_KEPT) map.delete(map.keys().next().value!);
    map.set(sql, value);
  }
}

/**
 * The access a statement is held to when it follows DDL in the same transactional batch. It cannot be
 * compiled before that DDL runs, and compiling it (EXPLAIN) inside the transaction would leave libsql
 * with a statement in progress that blocks the COMMIT. So it needs its kind of privilege on every table
 * (`*`), and it is compiled on a replica of the schema the batch will have made by then: what no table
 * privilege covers — a virtual table, the connection's state, the catalogue read through a view — is
 * found in that program as in any other. A statement that does not compile there does not in the batch
 * either: its error is reported as such.
 */
function accessAfterDdl(guarded: GuardedStatement, replica: SchemaReplica): StatementAccess {
  const needs: AccessNeed[] = [{ privilege: 'SELECT', table: '*' }];
  if (guarded.kind === 'write') {
    for (const privilege of ['INSERT', 'UPDATE', 'DELETE'] as const) needs.push({ privilege, table: '*' });
  }
  const compiled = replica.analyze(guarded);
  const seen = new Set(needs.map((need) => `${need.privilege} ${need.table ?? ''}`));
  for (const need of compiled.needs) {
    const key = `${need.privilege} ${need.table ?? ''}`;
    if (!seen.has(key)) needs.push(need);
    seen.add(key);
  }
  return {
    needs,
    tables: compiled.tables,
    kind: guarded.kind,
    ...(compiled.catalog ? { catalog: true } : {}),
  };
}

/**
 * Ends a statement left between rows (stopped, or its consumer gone): after the interrupt its next
 * step fails and SQLite ends it there. Dropped unfinished, libsql would keep it running, with its
 * snapshot, until the garbage collector frees it. Never for a statement whose last step failed: SQLite
 * resets such a statement, a further step would run it again from the start, and the interrupt does
 * not reach a statement that is not running.
 */
function halt(conn: PooledConnection, it: Iterator<unknown[]>): void {
  conn.interrupt();
  try {
    while (!it.next().done);
  } catch {
    // SQLITE_INTERRUPT (or the error that stopped it already): the statement is over.
  }
}

/**
 * Reads an iterator to its end. A statement left unfinished stays active on its connection, and while
 * any statement is active SQLite cannot autocommit that connection's writes.
 */
function drain(it: Iterator<unknown[]>): unknown[][] {
  const rows: unknown[][] = [];
  for (let next = it.next(); !next.done; next = it.next()) rows.push(next.value);
  return rows;
}

function* chunksOf(result: StatementResult, chunkSize: number): Generator<ResultChunk> {
  const { columns, rows } = result;
  let at = 0;
  for (; rows.length - at > chunkSize; at += chunkSize) {
    yield { columns, rows: rows.slice(at, at + chunkSize), done: false };
  }
  yield {
    columns,
    rows: at === 0 ? rows : rows.slice(at),
    done: true,
    rowsAffected: result.rows_affected,
    ...(result.last_insert_id !== undefined ? { lastInsertId: result.last_insert_id } : {}),
  };
}
