/**
 * Decides where each statement runs. A keyed lookup or single-row write costs a few microseconds and
 * runs inline on the event loop (a thread hop would cost more than the work); anything that may scan,
 * sort, recurse or change the schema runs on a pooled connection off the loop, where it can be
 * interrupted. The query plan decides first; an inline statement that turns out large is moved off the
 * loop for good, one that turns out slow for a while (it is tried again: the machine may have been slow).
 */
import type { SyncDatabase, SyncStatement } from './driver.ts';
import type { StatementAccess } from '../engine.ts';
import { AccessAnalyzer } from './access-analyzer.ts';
import { guardStatement, type GuardedStatement } from '../statement-guard.ts';

export type Route = 'inline' | 'pooled';

export interface RoutedStatement {
  guarded: GuardedStatement;
  /** What the statement touches, from its compiled program. */
  access: StatementAccess;
  /**
   * The database's schema version (`PRAGMA schema_version`) the program was compiled against. The
   * statement may run only against this version: a view or table redefined in between could read
   * what the authorization never saw, so the engine compares it inside the transaction that runs it.
   */
  schemaVersion: number;
  route: Route;
  /** Prepared on the inline connection, when the route is inline. */
  inline?: SyncStatement;
  /**
   * The inline statement's result columns (empty for a statement that returns no rows), read once: a
   * program's columns are fixed until the schema changes, and then the router prepares it anew.
   */
  inlineColumns?: string[];
  /**
   * True when the inline statement's program can yield one row at most (see yieldsAtMostOneRow): it is
   * then run with one native step (`get`) instead of a cursor read to its end.
   */
  singleRow?: boolean;
  /** Consecutive inline runs over the time budget. */
  slowRuns?: number;
  /**
   * On an inline statement moved off the loop for slow runs before: how long it stays off next time
   * (see #demoteSlow). Unset until then.
   */
  offLoopMs?: number;
  /**
   * On a pooled entry that replaced an inline one for slow runs: that inline entry, and the time
   * (performance.now()) from which it is tried inline again. A slow run may have been the machine's
   * (another process on the core, a GC pause), not the statement's.
   */
  demoted?: { inline: RoutedStatement; retryAt: number };
}

/** Inline runs slower than this, or returning more rows than this, move the statement off the loop. */
export const INLINE_BUDGET_MS = 2;
export const INLINE_MAX_ROWS = 256;
/** Consecutive slow inline runs after which a statement moves off the loop. */
export const INLINE_SLOW_RUNS = 3;
/**
 * How long a statement moved off the loop for slow runs stays there before it is tried inline again;
 * each time it is found slow again on its return, twice as long, up to INLINE_RETRY_MAX_MS. A statement
 * slow by nature (a keyed read of a very large value, a costly function) then stalls the loop for one
 * run every ten minutes, where a few stalls of the machine cost a hot lookup a second off the loop.
 */
export const INLINE_RETRY_MS = 1000;
export const INLINE_RETRY_MAX_MS = 600_000;
const CACHE_LIMIT = 512;

/** True when every step of the plan is a lookup by equality (no scan, sort, range or recursion). */
export function planIsKeyed(details: readonly string[]): boolean {
  for (const detail of details) {
    if (detail.startsWith('SCAN') && detail !== 'SCAN CONSTANT ROW') return false;
    if (
      /TEMP B-TREE|CO-ROUTINE|MATERIALIZE|RECURSIVE|MULTI-INDEX|COMPOUND|CORRELATED|LIST SUBQUERY/.test(
        detail,
      )
    ) {
      return false;
    }
    if (detail.startsWith('SEARCH') && /[<>]/.test(detail)) return false;
  }
  return true;
}

/** One instruction of a compiled program, as `EXPLAIN` lists it. */
export interface Instruction {
  opcode: string;
  /** The jump target of the opcodes that jump. */
  p2: number;
}

/** A set of opcode names from a list separated by white space. */
const opcodes = (names: string): Set<string> => new Set(names.trim().split(/\s+/));

/**
 * Opcodes a straight-line lookup is made of. Those in JUMPS jump forward to p2 (a miss, a failed
 * comparison); the others never jump. Anything else (a loop's Next, a coroutine, an ephemeral table, a
 * subroutine) makes a program that may yield more rows.
 */
const STRAIGHT = opcodes(`
  OpenRead Variable Column Rowid IdxRowid DeferredSeek ResultRow Null Integer Int64 Real
  String8 String Copy SCopy Affinity RealAffinity Function PureFunc Concat Add Subtract
  Multiply Divide Remainder Cast BitAnd BitOr BitNot ShiftLeft ShiftRight Not And Or AggStep
  AggFinal TableLock
`);
const JUMPS = opcodes(`
  Goto SeekRowid NotExists IsNull NotNull SeekGE SeekGT SeekLE SeekLT IdxGT IdxGE IdxLT IdxLE
  Eq Ne Lt Le Gt Ge If IfNot MustBeInt DecrJumpZero
`);
/** What SQLite places after the program's Halt: opened once, from Init, before the program proper. */
const PROLOGUE = opcodes(`
  Transaction TableLock Variable Integer Int64 Real String8 String Null Function PureFunc Goto
`);

/**
 * True when a program yields one row at most: it emits rows at one place only, and nothing in it jumps
 * back, so every instruction runs once at most. A query plan cannot tell this: `k = ?`, `k IN (?, ?)` and
 * `k = ? OR k = ?` all plan as the same primary-key search, and only the first is one row.
 */
export function yieldsAtMostOneRow(program: readonly Instruction[]): boolean {
  if (program[0]?.opcode !== 'Init') return false;
  let results = 0;
  let at = 1;
  for (; at < program.length && program[at]!.opcode !== 'Halt'; at++) {
    const { opcode, p2 } = program[at]!;
    if (opcode === 'ResultRow') results++;
    if (JUMPS.has(opcode)) {
      // MustBeInt's p2 is 0 when a non-integer is an error rather than a jump.
      if (p2 <= at && !(opcode === 'MustBeInt' && p2 === 0)) return false;
    } else if (!STRAIGHT.has(opcode)) return false;
  }
  if (results !== 1 || at === program.length) return false;
  for (at++; at < program.length; at++) if (!PROLOGUE.has(program[at]!.opcode)) return false;
  return true;
}

/** The pooled route of a statement routed inline before (its prepared statement left behind). */
function pooledEntry(entry: RoutedStatement): RoutedStatement {
  return {
    guarded: entry.guarded,
    access: entry.access,
    schemaVersion: entry.schemaVersion,
    route: 'pooled',
  };
}

export class StatementRouter {
  readonly #open: () => SyncDatabase;
  #db: SyncDatabase;
  #planner: SyncDatabase;
  #analyzer: AccessAnalyzer;
  #cache = new Map<string, RoutedStatement>();
  /** The entry last placed at the end of the LRU order (see route). */
  #newest: RoutedStatement | undefined;

  /**
   * @param open opens a synchronous connection. The router keeps two: one that inline statements are
   *   prepared on, and one used only for EXPLAIN. libsql never resets a finished EXPLAIN statement,
   *   and SQLite counts it as running until then: any real read on that connection would keep its
   *   snapshot, and with it the whole WAL, until the garbage collector frees the EXPLAIN.
   */
  constructor(open: () => SyncDatabase) {
    this.#open = open;
    this.#db = open();
    this.#planner = open();
    this.#analyzer = new AccessAnalyzer(this.#planner, this.#db);
  }

  /** The connection inline statements run on. */
  get inlineConnection(): SyncDatabase {
    return this.#db;
  }

  /** Guards and routes a statement; throws the guard's error for a refused statement. */
  route(sql: string): RoutedStatement {
    let cached = this.#cache.get(sql);
    if (cached?.demoted && performance.now() >= cached.demoted.retryAt) cached = this.#restore(sql, cached);
    if (cached) {
      // Refresh its place in the LRU order, unless it is the newest already: a client repeating one
      // statement would otherwise delete and re-add it on every run, and the map's table fills with
      // deleted slots that V8 compacts into a new table (garbage) every few runs.
      if (cached !== this.#newest) {
        this.#cache.delete(sql);
        this.#cache.set(sql, cached);
        this.#newest = cached;
      }
      return cached;
    }
    const guarded = guardStatement(sql);
    const routed = this.#classify(sql, guarded);
    if (this.#cache.size >= CACHE_LIMIT) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(sql, routed);
    this.#newest = routed;
    return routed;
  }

  /**
   * Records an inline run of `routed` (what route(sql) returned); a large one sends the statement off
   * the loop from now on, a few slow ones in a row for a while (see #demoteSlow). Only the statement's
   * current entry counts: one the cache has dropped or replaced since (DDL, a demotion) is left alone.
   * The fast run, by far the most common, is told apart without a second lookup of the statement's text.
   */
  observeInline(sql: string, routed: RoutedStatement, elapsedMs: number, rows: number): void {
    if (rows <= INLINE_MAX_ROWS && elapsedMs <= INLINE_BUDGET_MS) {
      if (routed.slowRuns) {
        routed.slowRuns = 0;
        // Fast again (after a return from off the loop too): the next stalls start the count afresh.
        routed.offLoopMs = undefined;
      }
      return;
    }
    const entry = this.#cache.get(sql);
    if (entry !== routed) return;
    // A large result is a property of the statement: move it for good, at once. A slow run may be the
    // machine (a GC pause, a busy core): move only after several in a row, and for a while.
    if (rows > INLINE_MAX_ROWS) this.#cache.set(sql, pooledEntry(entry));
    else {
      entry.slowRuns = (entry.slowRuns ?? 0) + 1;
      if (entry.slowRuns >= INLINE_SLOW_RUNS) this.#demoteSlow(sql, entry);
    }
  }

  /**
   * Moves a statement whose inline runs were slow off the loop for a while: a hot keyed lookup that met
   * a few stalls of a loaded machine would otherwise pay a thread hop on every run for the life of the
   * process. Back on the loop it is on probation: one slow run sends it off again, for twice as long
   * (a statement slow by nature costs the loop one run per period, at most ten minutes); a fast one
   * clears the record.
   */
  #demoteSlow(sql: string, entry: RoutedStatement): void {
    const offMs = entry.offLoopMs ?? INLINE_RETRY_MS;
    entry.offLoopMs = Math.min(offMs * 2, INLINE_RETRY_MAX_MS);
    const pooled = pooledEntry(entry);
    pooled.demoted = { inline: entry, retryAt: performance.now() + offMs };
    this.#cache.set(sql, pooled);
  }

  /** Puts a statement moved off the loop for slow runs back on it (see #demoteSlow). */
  #restore(sql: string, pooled: RoutedStatement): RoutedStatement {
    const inline = pooled.demoted!.inline;
    inline.slowRuns = INLINE_SLOW_RUNS - 1;
    this.#cache.delete(sql);
    this.#cache.set(sql, inline);
    this.#newest = inline;
    return inline;
  }

  /**
   * Plans depend on the schema; forget them all after DDL. The synchronous connections are opened
   * anew as well: libsql can leave a finished statement holding its read snapshot, and a connection
   * inside an old snapshot keeps seeing the old schema.
   */
  invalidate(): void {
    this.#cache.clear();
    const [db, planner] = [this.#db, this.#planner];
    this.#db = this.#open();
    this.#planner = this.#open();
    this.#analyzer = new AccessAnalyzer(this.#planner, this.#db);
    db.close();
    planner.close();
  }

  close(): void {
    this.#cache.clear();
    this.#db.close();
    this.#planner.close();
  }

  /** The statement's compiled program, on the planner's connection (EXPLAIN, like the plan above). */
  #program(sql: string): Instruction[] {
    return this.#planner
      .prepare(`EXPLAIN ${sql}`)
      .raw()
      .all([])
      .map((row) => ({ opcode: String(row[1]), p2: Number(row[3]) }));
  }

  #classify(sql: string, guarded: GuardedStatement): RoutedStatement {
    // Read before compiling: a change committed in between makes the recorded version older than the
    // program, which the engine then refuses to run (never the other way round). Read on the inline
    // connection: on the planner's, among its EXPLAINs, the read would keep its snapshot (see above).
    const schemaVersion = Number(this.#db.prepare('PRAGMA schema_version').raw().get([])?.[0] ?? 0);
    // Throws for a statement that does not compile (syntax error, missing table): reported as such.
    const access = this.#analyzer.analyze(guarded);
    if (guarded.kind === 'ddl' || guarded.verb === 'ANALYZE' || guarded.verb === 'REINDEX') {
      return { guarded, access, schemaVersion, route: 'pooled' };
    }
    let details: string[];
    try {
      details = this.#planner
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .raw()
        .all([])
        .map((row) => String(row[3]));
    } catch {
      // Let the pooled path report the real error with the real statement.
      return { guarded, access, schemaVersion, route: 'pooled' };
    }
    if (!planIsKeyed(details)) return { guarded, access, schemaVersion, route: 'pooled' };
    try {
      const inline = this.#db.prepare(sql);
      const reader = inline.reader;
      if (reader) inline.raw();
      const inlineColumns = reader ? inline.columns().map((c) => c.name) : [];
      const singleRow = reader && access.kind === 'read' && yieldsAtMostOneRow(this.#program(sql));
      return { guarded, access, schemaVersion, route: 'inline', inline, inlineColumns, singleRow };
    } catch {
      return { guarded, access, schemaVersion, route: 'pooled' };
    }
  }
}
