/**
 * The embedded engine: one SQLite file in WAL mode, reached through libsql.
 *
 * - one synchronous connection runs keyed statements inline (microseconds, no thread hop) and the
 *   server's internal queries;
 * - a pool of asynchronous connections runs everything else off the event loop, one statement or one
 *   transaction per connection, so an interrupt stops exactly that work.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import type { StatementFailure, StatementResult } from '@rustydb/protocol';
import { RustyError } from '../../errors/rusty-error.ts';
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
import { ConnectionPool, type PooledConnection } from './connection-pool.ts';
import { openAsync, openSync, type AsyncStatement, type SyncDatabase } from './driver.ts';
import { StatementRouter, type RoutedStatement } from './statement-router.ts';
import { StatementStopper } from './statement-stopper.ts';
import { toDriverParams, toWireRow, type DriverValue } from './values.ts';
import { CHANGE_LOG_SCHEMA, CHANGES_TABLE, recordedObjects, syncCapture } from './change-capture.ts';
import { SqliteChangeLog } from './change-log.ts';
import { ReadWorkerPool, SCHEMA_CHANGED } from './read-workers.ts';
import { readCatalog, schemaVersion } from './catalog.ts';
import { checkParameterCount, guardStatement, type GuardedStatement } from '../statement-guard.ts';
import { collect, failingAt, runEach } from '../statement-results.ts';

export interface SqliteEngineOptions {
  dataDir: string;
  poolSize: number;
  /** File name inside dataDir. */
  fileName?: string;
}

/** How long a pooled connection waits for a write lock held by another connection, seconds. */
const BUSY_TIMEOUT_S = 5;

const CONNECTION_PRAGMAS = 'PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;';

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED';
}

/** How often a statement is routed and authorized again when the schema changed before it ran. */
const SCHEMA_ATTEMPTS = 3;

/**
 * The schema changed between a statement's authorization and its run: it must be compiled and
 * authorized again. Thrown before the statement has done anything; a client sees it only when the
 * schema kept changing over every attempt.
 */
class SchemaChangedError extends RustyError {
  constructor() {
    super('QUERY_ERROR', 'the schema changed while the statement waited to run; send it again');
  }
}

/** `PRAGMA schema_version`, prepared once per pooled connection. */
const versionStatements = new WeakMap<PooledConnection, AsyncStatement>();

/**
 * Fails unless the connection's current transaction sees the schema `routed` was authorized against.
 * Inside the transaction the statement then runs in, the answer holds until it ends.
 */
async function assertSchema(conn: PooledConnection, routed: RoutedStatement): Promise<void> {
  let stmt = versionStatements.get(conn);
  if (!stmt) {
    stmt = (await conn.prepare('PRAGMA schema_version')).raw();
    versionStatements.set(conn, stmt);
  }
  const version = Number(drain(await stmt.iterate([]))[0]?.[0] ?? -1);
  if (version !== routed.schemaVersion) throw new SchemaChangedError();
}

function rowToObject<T>(columns: readonly string[], row: readonly unknown[]): T {
  const object: Record<string, unknown> = {};
  columns.forEach((name, i) => (object[name] = row[i]));
  return object as T;
}

export class SqliteEngine implements Engine {
  readonly name = 'sqlite';
  readonly changeCapture = true;
  readonly path: string;
  readonly dataFiles: readonly string[];
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
  #closed = false;

  constructor(options: SqliteEngineOptions) {
    mkdirSync(options.dataDir, { recursive: true });
    this.path = join(options.dataDir, options.fileName ?? 'rustydb.sqlite');
    this.dataFiles = [this.path, `${this.path}-wal`];
    // Kept open for the engine's life: closing the last connection checkpoints the whole WAL, which
    // after a bulk load takes seconds, and this runs on the event loop.
    this.#setup = openSync(this.path);
    this.#setup.exec('PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0');
    this.#setup.exec(CHANGE_LOG_SCHEMA);
    this.#router = new StatementRouter(() => {
      // A busy timeout of 0: a connection used on the event loop must never wait there for a lock.
      const db = openSync(this.path, { timeout: 0 });
      // No automatic checkpoints here: they would run on the event loop. Pooled connections (on worker
      // threads) checkpoint as they commit.
      db.exec(`${CONNECTION_PRAGMAS} PRAGMA wal_autocheckpoint = 0;`);
      return db;
    });
    this.#pool = new ConnectionPool(options.poolSize, async () => {
      const conn = openAsync(this.path, { timeout: BUSY_TIMEOUT_S });
      await conn.exec(CONNECTION_PRAGMAS);
      return conn;
    });
    this.internal = this.#makeInternalStore();
    this.#readers = new ReadWorkerPool(this.path, options.poolSize);
    this.#changeLog = new SqliteChangeLog(() => this.#router.inlineConnection);
    this.changes = this.#changeLog;
  }

  /** Opens the engine and brings change capture in line with the tables already in the file. */
  static async open(options: SqliteEngineOptions): Promise<SqliteEngine> {
    const engine = new SqliteEngine(options);
    try {
      await engine.#inTransaction(undefined, (conn) => syncCapture(conn, undefined));
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

  #committed(): void {
    for (const listener of this.#commitListeners) listener();
  }

  /**
   * Runs `work` in a write transaction on a pooled connection: commits and tells the commit listeners,
   * or rolls back on error. With `options`, the transaction is bound to a deadline and a signal.
   */
  async #inTransaction<T>(
    options: RunOptions | undefined,
    work: (conn: PooledConnection, stopper: StatementStopper | undefined) => Promise<T>,
  ): Promise<T> {
    const conn = await this.#pool.acquire(options?.signal);
    const stopper = options ? new StatementStopper(conn, options.timeoutMs, options.signal) : undefined;
    let clean = false;
    try {
      await conn.exec('BEGIN IMMEDIATE');
      let result: T;
      try {
        result = await work(conn, stopper);
        await conn.exec('COMMIT');
      } catch (err) {
        try {
          await conn.exec('ROLLBACK');
          clean = true;
        } catch {
          // SQLite may already have rolled back (an interrupt does); the connection is replaced below.
        }
        throw stopper ? stopper.translate(err) : err;
      }
      clean = true;
      this.#committed();
      return result;
    } finally {
      stopper?.dispose();
      if (clean) this.#pool.release(conn);
      else this.#pool.discard(conn);
    }
  }

  async snapshot(
    statement: StatementInput,
    options: RunOptions,
  ): Promise<{ sequence: number; result: StatementResult }> {
    return this.#withCurrentSchema(async () => {
      const routed = this.#router.route(statement.sql);
      options.caller?.authorize(routed.access);
      checkParameterCount(routed.guarded, statement.params?.length ?? 0);
      if (routed.access.kind !== 'read')
        throw new RustyError('QUERY_ERROR', 'only a read statement can be watched');
      const conn = await this.#pool.acquire(options.signal);
      const stopper = new StatementStopper(conn, options.timeoutMs, options.signal);
      let clean = false;
      try {
        // A read transaction: the head and the rows come from the same snapshot, which is also the
        // schema the statement was authorized against.
        await conn.exec('BEGIN');
        await assertSchema(conn, routed);
        const head = drain(
          await (await conn.prepare(`SELECT max(seq) FROM ${CHANGES_TABLE}`)).raw().iterate([]),
        );
        const result = await collect(
          this.#runOn(conn, routed, toDriverParams(statement.params), stopper, 10_000),
        );
        await conn.exec('COMMIT');
        clean = true;
        return { sequence: Number(head[0]?.[0] ?? 0), result };
      } catch (err) {
        throw stopper.translate(err);
      } finally {
        stopper.dispose();
        if (clean) this.#pool.release(conn);
        else this.#pool.discard(conn);
      }
    });
  }

  async *stream(
    statement: StatementInput,
    options: StreamOptions,
  ): AsyncGenerator<ResultChunk, void, undefined> {
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
        for await (const chunk of this.#streamPooled(routed, params, options)) {
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
    const routed = this.#router.route(statement.sql);
    if (routed.route !== 'inline') return undefined;
    caller?.authorize(routed.access);
    checkParameterCount(routed.guarded, statement.params?.length ?? 0);
    return this.#tryInline(statement.sql, routed, toDriverParams(statement.params));
  }

  async execute(statement: StatementInput, options: RunOptions): Promise<StatementResult> {
    return this.#withCurrentSchema(async () => {
      const routed = this.#router.route(statement.sql);
      options.caller?.authorize(routed.access);
      checkParameterCount(routed.guarded, statement.params?.length ?? 0);
      const params = toDriverParams(statement.params);
      if (routed.route === 'inline') {
        const result = this.#tryInline(statement.sql, routed, params);
        if (result) return result;
      }
      return collect(this.#streamPooled(routed, params, { ...options, chunkSize: 10_000 }));
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
    // see yet; such statements are held to a coarser rule (see accessAfterDdl).
    let afterDdl = false;
    const plans = statements.map((statement, index) =>
      failingAt(index, () => {
        const guarded = guardStatement(statement.sql);
        checkParameterCount(guarded, statement.params?.length ?? 0);
        const deferred = afterDdl;
        if (guarded.kind === 'ddl') afterDdl = true;
        if (deferred) return { guarded, routed: undefined };
        const routed = this.#router.route(statement.sql);
        options.caller?.authorize(routed.access);
        return { guarded, routed };
      }),
    );
    const changesSchema = afterDdl;
    if (changesSchema) this.#schemaChanging++;
    try {
      return await this.#inTransaction(options, async (conn, stopper) => {
        // Every statement checked above was compiled against the schema this transaction sees.
        for (const plan of plans) if (plan.routed) await assertSchema(conn, plan.routed);
        const results: StatementResult[] = [];
        for (let i = 0; i < statements.length; i++) {
          const plan = plans[i]!;
          const result = await failingAt(i, async () => {
            try {
              let routed = plan.routed;
              if (!routed) {
                const access = accessAfterDdl(plan.guarded);
                options.caller?.authorize(access);
                // Never compared: the coarse rule does not depend on the schema.
                routed = { guarded: plan.guarded, access, schemaVersion: -1, route: 'pooled' };
              }
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

  async healthCheck(): Promise<void> {
    await this.execute({ sql: 'SELECT 1' }, { timeoutMs: 2000 });
    const conn = await this.#pool.acquire();
    try {
      await (await conn.prepare('SELECT 1')).iterate([]);
    } finally {
      this.#pool.release(conn);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // Fold the WAL into the database off the event loop, so the next start does not have to.
    try {
      const conn = await this.#pool.acquire();
      await conn.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      this.#pool.release(conn);
    } catch {
      // Busy or already closing: the next start checkpoints instead.
    }
    this.#pool.close();
    await this.#readers.close();
    this.#router.close();
    this.#setup.close();
  }

  /** Runs a keyed statement on the event loop; undefined when it must go to the pool instead. */
  #tryInline(sql: string, routed: RoutedStatement, params: DriverValue[]): StatementResult | undefined {
    if (this.#schemaChanging > 0) return undefined;
    const stmt = routed.inline!;
    const started = performance.now();
    try {
      if (stmt.reader) {
        const rows = stmt.all(params);
        this.#router.observeInline(sql, performance.now() - started, rows.length);
        // A write with RETURNING is a reader too: its commit must still wake the change feed.
        if (routed.access.kind !== 'read') this.#committed();
        return {
          status: 'success',
          columns: stmt.columns().map((c) => c.name),
          rows: rows.map(toWireRow),
          rows_affected: rows.length,
        };
      }
      const info = stmt.run(params);
      this.#router.observeInline(sql, performance.now() - started, 0);
      this.#committed();
      return {
        status: 'success',
        columns: [],
        rows: [],
        rows_affected: info.changes,
        ...(routed.guarded.writeVerbs.has('INSERT') ? { last_insert_id: Number(info.lastInsertRowid) } : {}),
      };
    } catch (err) {
      // Another connection holds the write lock: wait for it off the loop instead of failing.
      if (isBusy(err)) return undefined;
      throw err;
    }
  }

  async *#streamPooled(
    routed: RoutedStatement,
    params: DriverValue[],
    options: StreamOptions,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    if (routed.guarded.kind === 'ddl') {
      // DDL runs in a transaction with the change-capture update and the change-log record it causes.
      this.#schemaChanging++;
      let result: StatementResult;
      try {
        result = await this.#inTransaction(options, async (conn, stopper) => {
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
    if (routed.access.kind === 'read' && !routed.guarded.returning) {
      // Reads run on a worker thread: libsql fetches rows synchronously after the first, and a sparse
      // scan between matches would otherwise stall the event loop for its whole length.
      const controller = new AbortController();
      const stopper = new StatementStopper(
        { interrupt: () => controller.abort() },
        options.timeoutMs,
        options.signal,
      );
      try {
        yield* this.#readers.stream(
          { sql: routed.guarded.text, params, schemaVersion: routed.schemaVersion },
          options.chunkSize,
          controller.signal,
          () => stopper.translate(new RustyError('QUERY_CANCELLED', 'query cancelled')),
        );
      } catch (err) {
        if ((err as { code?: unknown }).code === SCHEMA_CHANGED) throw new SchemaChangedError();
        throw err;
      } finally {
        stopper.dispose();
      }
      return;
    }
    const conn = await this.#pool.acquire(options.signal);
    const stopper = new StatementStopper(conn, options.timeoutMs, options.signal);
    let finished = false;
    try {
      // A transaction of its own, so that the schema it runs against is the one it was authorized for.
      await conn.exec('BEGIN IMMEDIATE');
      await assertSchema(conn, routed);
      yield* this.#runOn(conn, routed, params, stopper, options.chunkSize);
      await conn.exec('COMMIT');
      finished = true;
      if (routed.access.kind !== 'read') this.#committed();
    } catch (err) {
      throw stopper.translate(err);
    } finally {
      stopper.dispose();
      if (finished) this.#pool.release(conn);
      else {
        // Stopped early (error, cancel, or the consumer broke off): make sure the engine stops too.
        // Closing the connection also rolls its transaction back.
        conn.interrupt();
        this.#pool.discard(conn);
      }
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
      drain(await stmt.iterate(params));
      const totals = drain(
        await (await conn.prepare('SELECT changes(), last_insert_rowid()')).raw().iterate([]),
      );
      const [changes, lastId] = (totals[0] ?? [0, 0]) as [number, number];
      // changes() and last_insert_rowid() keep their values from earlier statements: report only
      // what this statement can have set.
      yield {
        columns: [],
        rows: [],
        done: true,
        rowsAffected: routed.guarded.kind === 'ddl' ? 0 : changes,
        ...(routed.guarded.writeVerbs.has('INSERT') ? { lastInsertId: Number(lastId) } : {}),
      };
      return;
    }
    stmt.raw();
    const columns = stmt.columns().map((c) => c.name);
    const it = await stmt.iterate(params);
    let total = 0;
    for (;;) {
      const rows: ResultChunk['rows'] = [];
      let done = false;
      while (rows.length < chunkSize) {
        const next = it.next();
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
  }

  #makeInternalStore(): InternalStore {
    const db = (): SyncDatabase => this.#router.inlineConnection;
    const query = <T>(sql: string, params: readonly unknown[] = []): T[] => {
      const stmt = db().prepare(sql);
      stmt.raw();
      const columns = stmt.columns().map((c) => c.name);
      return stmt.all(params as DriverValue[]).map((row) => rowToObject<T>(columns, row));
    };
    return {
      dialect: 'sqlite',
      get: async <T>(sql: string, params?: readonly unknown[]) => query<T>(sql, params)[0],
      all: async <T>(sql: string, params?: readonly unknown[]) => query<T>(sql, params),
      run: async (sql, params = []) => ({
        changes: db()
          .prepare(sql)
          .run(params as DriverValue[]).changes,
      }),
      exec: async (sql) => db().exec(sql),
    };
  }
}

/**
 * The access a statement is held to when it follows DDL in the same transactional batch: it cannot be
 * compiled before that DDL runs, and compiling it (EXPLAIN) inside the transaction would leave libsql
 * with a statement in progress that blocks the COMMIT. So it needs its kind of privilege on every
 * table (`*`), which leaves nothing for a per-table analysis to find.
 */
function accessAfterDdl(guarded: GuardedStatement): StatementAccess {
  const needs: AccessNeed[] = [{ privilege: 'SELECT', table: '*' }];
  if (guarded.kind === 'write') {
    for (const privilege of ['INSERT', 'UPDATE', 'DELETE'] as const) needs.push({ privilege, table: '*' });
  }
  if (guarded.kind === 'ddl')
    needs.push({
      privilege: guarded.verb === 'CREATE' ? 'CREATE' : guarded.verb === 'DROP' ? 'DROP' : 'ALTER',
    });
  return { needs, tables: [], kind: guarded.kind };
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
