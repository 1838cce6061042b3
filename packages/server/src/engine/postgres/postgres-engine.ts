/**
 * The PostgreSQL engine: RustyDB's protocol over a PostgreSQL 15+ database reached with node-postgres.
 *
 * - The login role of `database_url` (not a superuser: LOGIN, CREATEROLE, owner of the database) runs
 *   only the server's own statements, on a small pool of its own.
 * - A client's statement runs on a connection logged in as the session role of the caller's set of
 *   RustyDB roles (see database-setup.ts), in a transaction of its own: PostgreSQL itself decides what
 *   it may do. A session role can switch to nothing but roles it already holds, so `SET ROLE`,
 *   `RESET ROLE` or `SET SESSION AUTHORIZATION` in a statement reach no further privilege.
 * - Results stream from a portal (pg-cursor): rows are fetched one chunk at a time, when the consumer
 *   asks for the next, so a slow reader leaves the rest in PostgreSQL. Cancel and timeout send
 *   PostgreSQL's cancel request for the connection; statement_timeout is set in every transaction too.
 */
import type { StatementFailure, StatementResult } from '@rustydb/protocol';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { RustyError } from '../../errors/rusty-error.ts';
import { PENDING_POSITION, requestSignal } from '../engine.ts';
import type {
  AccessNeed,
  BatchOptions,
  CancelSource,
  Caller,
  ChangeLog,
  Engine,
  InternalStore,
  NodeEvents,
  ResultChunk,
  RunOptions,
  StatementAccess,
  StatementInput,
  StreamOptions,
  TableInfo,
} from '../engine.ts';
import { StatementStopper } from '../sqlite/statement-stopper.ts';
import { PgConnectionPool } from './connection-pool.ts';
import {
  cancelBackend,
  openClient,
  openCursor,
  closeCursor,
  type CursorLike,
  type CursorTransaction,
  SESSION_SETTINGS,
  type ConnectionSettings,
  type PgClient,
} from './driver.ts';
import { translatePgError } from './errors.ts';
import { checkParameterCount, parseStatement, type PgStatement } from './sql-text.ts';
import { toDriverParams, type DriverValue } from './values.ts';
import { setupSql } from './database-setup.ts';
import { readPgCatalog, pgSchemaVersion } from './catalog.ts';
import { collect, failingAt, runEach } from '../statement-results.ts';
import type { Logger } from '../../core/logger.ts';
import { describeError } from '../../core/logger.ts';
import { ChangeCapture, CHANGES_CHANNEL } from './change-capture.ts';
import { PgChangeLog, type OwnerQuery } from './change-log.ts';
import { NODE_EVENTS_CHANNEL, PgNodeEvents } from './node-events.ts';

export interface PostgresEngineOptions {
  databaseUrl: string;
  /** Connections per session role, and for the server's own statements. */
  poolSize: number;
  logger: Logger;
}

const APPLICATION_NAME = 'rustydb';
/** Where the start-up messages about replication send the reader. */
const REPLICATION_HINT =
  'or, on Amazon RDS and Aurora, membership in rds_replication; see docs/postgres.md and docs/deploy.md';
/**
 * Serializes schema set-up and migrations of nodes starting at once: a table of the private schema,
 * locked for the transaction. Not an advisory lock: any role may take any advisory lock, and a client
 * holding it would stall every node's start.
 */
const SETUP_LOCK = 'LOCK TABLE rustydb.setup_lock IN EXCLUSIVE MODE';
/**
 * Makes the private schema and the lock table where they are missing. Nodes starting at once on an empty
 * database race to make them; the loser's statement fails with a duplicate (the winner committed first)
 * and is run again, finding them. (A new schema grants nothing to PUBLIC; the set-up, under the lock,
 * revokes it all the same: grants on one object by two transactions at once fail.)
 */
const SETUP_LOCK_TABLE =
  'CREATE SCHEMA IF NOT EXISTS rustydb; CREATE TABLE IF NOT EXISTS rustydb.setup_lock ()';
/** unique_violation, duplicate_schema, duplicate_table: what the loser of that race is told. */
const CREATION_RACE = new Set(['23505', '42P06', '42P07']);
/** How often a snapshot whose transactions were not a prefix of the sequence is taken again. */
const SNAPSHOT_ATTEMPTS = 5;
/** The first statement of a snapshot's transaction: its snapshot, and the WAL position it lies before. */
const SNAPSHOT_POSITION = 'SELECT pg_current_snapshot()::text, pg_current_wal_insert_lsn()::text';
/** How long a client is told to wait before watching again when no attempt matched. */
const SNAPSHOT_RETRY_AFTER_MS = 100;
/** How long a measure of the database's size is reused (see databaseSize). */
const SIZE_REUSED_MS = 5000;
/** How long the listening connection waits before connecting again after it broke. */
const LISTEN_RETRY_MS = 500;

function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * How a transaction runs: its time limit, whether the server compiled its statements, and whether its
 * prepared statements are planned generically (describe: see there).
 */
type TransactionOptions = Pick<RunOptions, 'timeoutMs' | 'serverCompiled'> & { genericPlans?: boolean };

/** `set_config(name, value, true)`: SET LOCAL, as an expression. */
function setLocal(name: string, value: string): string {
  return `set_config(${quoteLiteral(name)}, ${quoteLiteral(value)}, true)`;
}

/** The settings every transaction makes whatever its options, written out once. */
const SESSION_SET_LOCALS = Object.entries(SESSION_SETTINGS)
  .map(([name, value]) => setLocal(name, value))
  .join(', ');

/**
 * BEGIN, then the settings the value mapping relies on, all in one statement: `set_config(…, true)` is
 * SET LOCAL, and one statement is parsed, run and answered once where eight SET LOCALs were each.
 */
function beginStatements(mode: 'read' | 'write' | 'snapshot', options: TransactionOptions): string[] {
  const begin =
    mode === 'read'
      ? 'BEGIN READ ONLY'
      : mode === 'snapshot'
        ? 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY'
        : 'BEGIN';
  const settings = [
    SESSION_SET_LOCALS,
    setLocal('statement_timeout', `${Math.ceil(options.timeoutMs)}`),
    ...(options.serverCompiled ? [setLocal('jit', 'off')] : []),
    ...(options.genericPlans ? [setLocal('plan_cache_mode', 'force_generic_plan')] : []),
  ];
  return [begin, `SELECT ${settings.join(', ')}`];
}

export class PostgresEngine implements Engine {
  readonly name = 'postgres';
  readonly changeCapture = true;
  readonly internal: InternalStore;
  readonly changes: ChangeLog;
  readonly #changeLog: PgChangeLog;
  readonly #nodeEvents: PgNodeEvents;
  readonly #url: string;
  readonly #poolSize: number;
  readonly #logger: Logger;
  readonly #owner: PgConnectionPool;
  #capture: ChangeCapture | undefined;
  /** The connection that LISTENs for the capture's NOTIFY (reopened when it breaks). */
  #listener: PgClient | undefined;
  #listenRetry: NodeJS.Timeout | undefined;
  /** Called at the next NOTIFY of the capture. */
  readonly #applyWaiters = new Set<() => void>();
  /** Session role name → its pool. */
  readonly #sessions = new Map<string, PgConnectionPool>();
  /** Sorted role list (joined) → session role name, once it exists. */
  readonly #sessionRoles = new Map<string, Promise<string>>();
  readonly #commitListeners = new Set<() => void>();
  #prefix = '';
  #secret = '';
  #closed = false;
  /** The last measure of the database's size (or its failure), and when it was started. */
  #size: { at: number; bytes: Promise<number> } | undefined;

  private constructor(options: PostgresEngineOptions) {
    this.#url = options.databaseUrl;
    this.#poolSize = options.poolSize;
    this.#logger = options.logger;
    this.#owner = new PgConnectionPool(options.poolSize, () => openClient(this.#ownerSettings()));
    this.internal = this.#makeInternalStore();
    const ownerQuery: OwnerQuery = (text, values, name) =>
      this.#onOwner(
        async (client) =>
          (await client.query({ ...(name ? { name } : {}), text, values: values ?? [], rowMode: 'array' }))
            .rows,
      );
    this.#changeLog = new PgChangeLog(ownerQuery, (ms) => this.#nextApply(ms));
    this.changes = this.#changeLog;
    this.#nodeEvents = new PgNodeEvents(ownerQuery, (err) =>
      this.#logger.warn('reading the events of other nodes failed', describeError(err)),
    );
  }

  get nodeEvents(): NodeEvents {
    return this.#nodeEvents;
  }

  #ownerSettings(): ConnectionSettings {
    return {
      connectionString: this.#url,
      applicationName: `${APPLICATION_NAME} (server)`,
      // The internal store names its tables without a schema.
      searchPath: 'rustydb',
    };
  }

  /**
   * Connects, checks what RustyDB needs of the database and its login role, and sets up the server's
   * schema and roles. Fails with a message that says what is missing.
   */
  static async open(options: PostgresEngineOptions): Promise<PostgresEngine> {
    const engine = new PostgresEngine(options);
    try {
      await engine.#setUp();
      await engine.#nodeEvents.start();
      engine.#startCapture();
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  async #setUp(): Promise<void> {
    let client: PgClient;
    try {
      client = await this.#owner.acquire(undefined);
    } catch (err) {
      throw new Error(
        `invalid configuration: database_url: cannot connect to PostgreSQL (${(err as Error).message})`,
      );
    }
    try {
      const facts = (
        await client.query({
          text: `SELECT current_setting('server_version_num')::int AS version, r.rolsuper, r.rolcreaterole,
                   d.oid::text AS db_oid, pg_has_role(d.datdba, 'USAGE') AS owns_db,
                   -- Amazon RDS and Aurora give replication by membership in rds_replication instead of
                   -- the attribute (which their administrators cannot grant).
                   r.rolreplication OR EXISTS (SELECT FROM pg_roles g WHERE g.rolname = 'rds_replication'
                                                 AND pg_has_role(r.oid, g.oid, 'MEMBER')) AS replication,
                   current_setting('wal_level') AS wal_level
                 FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = current_database()`,
          rowMode: 'array',
        })
      ).rows[0] as [number, boolean, boolean, string, boolean, boolean, string];
      const [version, superuser, createRole, dbOid, ownsDb, replication, walLevel] = facts;
      if (version < 150000) {
        throw new Error(
          `invalid configuration: database_url: PostgreSQL 15 or later is required (found ${version})`,
        );
      }
      if (superuser) {
        throw new Error(
          'invalid configuration: database_url: the login role is a superuser; use a role with LOGIN and CREATEROLE that owns the database (see docs/postgres.md)',
        );
      }
      if (!createRole) {
        throw new Error(
          'invalid configuration: database_url: the login role needs CREATEROLE (see docs/postgres.md)',
        );
      }
      if (!ownsDb) {
        throw new Error(
          'invalid configuration: database_url: the login role must own the database (see docs/postgres.md)',
        );
      }
      if (!replication) {
        throw new Error(
          `invalid configuration: database_url: the login role needs REPLICATION for change capture (${REPLICATION_HINT})`,
        );
      }
      if (walLevel !== 'logical') {
        throw new Error(
          `invalid configuration: database_url: PostgreSQL's wal_level is '${walLevel}'; change capture needs wal_level = logical (see docs/postgres.md)`,
        );
      }
      this.#prefix = `rdb${dbOid}_`;
      await this.#makeSetupLock(client);
      await client.query(`BEGIN; ${SETUP_LOCK}`);
      await client.query(setupSql(this.#prefix));
      await client.query({
        text: `INSERT INTO rustydb.meta (key, value) VALUES ('session_role_secret', $1) ON CONFLICT (key) DO NOTHING`,
        values: [randomBytes(32).toString('hex')],
      });
      const secret = await client.query({
        text: `SELECT value FROM rustydb.meta WHERE key = 'session_role_secret'`,
        rowMode: 'array',
      });
      await client.query('COMMIT');
      this.#secret = String(secret.rows[0]![0]);
      // After the publication exists (a slot that predates it could not decode with it), and outside any
      // transaction that wrote (PostgreSQL refuses to create a logical slot in one).
      await this.#createSlot(client);
      this.#owner.release(client);
    } catch (err) {
      this.#owner.discard(client);
      throw err instanceof Error && err.message.startsWith('invalid configuration')
        ? err
        : translatePgError(err);
    }
  }

  async #makeSetupLock(client: PgClient): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        // Several statements in one query string run in one transaction.
        await client.query(SETUP_LOCK_TABLE);
        return;
      } catch (err) {
        if (attempt >= 3 || !CREATION_RACE.has(String((err as { code?: unknown }).code))) throw err;
      }
    }
  }

  get #slot(): string {
    return `${this.#prefix}capture`;
  }

  async #createSlot(client: PgClient): Promise<void> {
    try {
      await client.query({
        text: `SELECT pg_create_logical_replication_slot($1, 'pgoutput')
                WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`,
        values: [this.#slot],
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      // Another node made it at the same moment.
      if (code === '42710') return;
      // The role passed the start-up check but PostgreSQL does not let it replicate (a membership in a
      // role named rds_replication gives nothing outside RDS and Aurora).
      if (code === '42501') {
        throw new Error(
          `invalid configuration: database_url: the login role may not create a replication slot: change capture needs REPLICATION (${REPLICATION_HINT})`,
        );
      }
      throw err;
    }
  }

  /** Starts reading changes (this node takes the slot when no other holds it) and listening for them. */
  #startCapture(): void {
    this.#capture = new ChangeCapture({
      settings: this.#ownerSettings(),
      slot: this.#slot,
      connect: () => openClient(this.#ownerSettings()),
      logger: this.#logger,
    });
    this.#capture.start();
    void this.#listen();
  }

  /** Whether this node reads the replication slot now (one node of those sharing the database does). */
  get capturing(): boolean {
    return this.#capture?.leader ?? false;
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    let client: PgClient | undefined;
    try {
      client = await openClient({ ...this.#ownerSettings(), applicationName: this.#nodeEvents.listenerName });
      const retry = (): void => {
        if (this.#listener !== client) return;
        this.#listener = undefined;
        void client!.end().catch(() => undefined);
        this.#listenRetry = setTimeout(() => void this.#listen(), LISTEN_RETRY_MS);
      };
      client.on('error', retry);
      client.on('end', retry);
      client.on('notification', ({ channel }) =>
        channel === NODE_EVENTS_CHANNEL ? this.#nodeEvents.read() : this.#applied(),
      );
      await client.query(`LISTEN ${CHANGES_CHANNEL}; LISTEN ${NODE_EVENTS_CHANNEL}`);
      if (this.#closed) {
        await client.end();
        return;
      }
      this.#listener = client;
      // Anything applied or published while this node was not listening is read now.
      this.#applied();
      this.#nodeEvents.read();
    } catch (err) {
      await client?.end().catch(() => undefined);
      if (this.#closed) return;
      this.#logger.debug('listening for changes failed; trying again', describeError(err));
      this.#listenRetry = setTimeout(() => void this.#listen(), LISTEN_RETRY_MS);
    }
  }

  /** The capture applied records (on this node or another): the change feeds read them. */
  #applied(): void {
    for (const waiter of [...this.#applyWaiters]) waiter();
    this.#committed();
  }

  #nextApply(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#applyWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#applyWaiters.add(done);
    });
  }

  /**
   * Makes PostgreSQL's roles and privileges match RustyDB's roles and grants (at start and after any
   * change to them). Tables made outside RustyDB (before it started, by the login role) are adopted
   * like those made through it.
   */
  async syncPrivileges(): Promise<void> {
    await this.#onOwner((client) => client.query('SELECT rustydb_api.after_ddl()'));
    this.forgetPrivileges();
  }

  async exclusively<T>(work: () => Promise<T>): Promise<T> {
    // A connection of its own holds the lock: `work` uses the pool, which may have one connection only.
    // The lock is held by an open transaction (it takes no transaction id, so it holds nothing back).
    const client = await openClient(this.#ownerSettings());
    try {
      await client.query('BEGIN; LOCK TABLE rustydb.startup_lock IN EXCLUSIVE MODE');
      return await work();
    } finally {
      // Closing the connection ends the transaction and releases the lock.
      await client.end().catch(() => undefined);
    }
  }

  forgetPrivileges(): void {
    // Session roles hold memberships granted when they were made; roles made since need granting.
    this.#sessionRoles.clear();
  }

  async describe(sql: string, caller?: Caller): Promise<StatementAccess> {
    const statement = parseStatement(sql);
    if (statement.kind === 'ddl' || !caller) return { needs: [], tables: [], kind: statement.kind };
    // The plan names every table the statement reads or writes (views expanded); compiling it as the
    // caller refuses what the caller may not touch.
    // The generic plan of a prepared statement: one planned with the parameters' values (NULL here)
    // folds `col > NULL` to nothing and names no table. One round trip: BEGIN with its settings and
    // the PREPARE go with the EXPLAIN, and DEALLOCATE and COMMIT with its end (its one read takes its
    // one row). Each is a Parse of its own in the extended protocol, which takes one statement only:
    // the caller's text cannot bring a second one, as the caller's own statements cannot. The
    // connection is discarded if any of it fails (the rest is skipped, the transaction left open).
    const options = { timeoutMs: 5000, genericPlans: true };
    const nulls = new Array<string>(statement.parameterCount).fill('NULL').join(', ');
    const explain: PgStatement = {
      ...parseStatement(`EXPLAIN (FORMAT JSON) EXECUTE rustydb_describe${nulls ? `(${nulls})` : ''}`),
      rowless: true,
    };
    const plan = await this.#onSessionConnection(caller, options, (client, stopper) =>
      collect(
        this.#runOn(client, explain, [], stopper, 10_000, {
          begin: [...beginStatements('read', options), `PREPARE rustydb_describe AS ${statement.text}`],
          rowless: true,
          end: ['DEALLOCATE rustydb_describe'],
          commitAtEnd: true,
        }),
      ),
    );
    const tables = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object') {
        const record = node as Record<string, unknown>;
        if (typeof record['Relation Name'] === 'string') tables.add(record['Relation Name']);
        Object.values(record).forEach(walk);
      }
    };
    walk(plan.rows[0]?.[0]);
    const needs: AccessNeed[] = [...tables].map((table) => ({ privilege: 'SELECT', table }));
    return { needs, tables: [...tables], kind: statement.kind };
  }

  async holds(caller: Caller, needs: readonly AccessNeed[]): Promise<boolean[]> {
    if (needs.length === 0) return [];
    const role = await this.#sessionRole(caller);
    const tablesRole = `${this.#prefix}tables`;
    const answers = await this.#onOwner((client) =>
      client.query({
        text: `SELECT CASE
                 WHEN n.tbl IS NULL THEN CASE n.priv
                   WHEN 'CREATE' THEN has_schema_privilege($1, 'public', 'CREATE')
                   WHEN 'ALTER' THEN pg_has_role($1, $2, 'USAGE')
                   WHEN 'DROP' THEN pg_has_role($1, $2, 'USAGE') END
                 WHEN to_regclass(format('public.%I', n.tbl)) IS NULL THEN false
                 WHEN n.priv = 'WRITE' THEN has_table_privilege($1, format('public.%I', n.tbl), 'INSERT,UPDATE,DELETE')
                 ELSE has_table_privilege($1, format('public.%I', n.tbl), n.priv) END
               FROM unnest($3::text[], $4::text[]) WITH ORDINALITY AS n(priv, tbl, i) ORDER BY n.i`,
        values: [role, tablesRole, needs.map((n) => n.privilege), needs.map((n) => n.table ?? null)],
        rowMode: 'array',
      }),
    );
    // ADMIN and MONITOR are the server's own privileges, not PostgreSQL's.
    return needs.map((need, i) => {
      if (need.privilege === 'ADMIN' || need.privilege === 'MONITOR') {
        try {
          caller.authorize({ needs: [need], tables: [], kind: 'read' });
          return true;
        } catch {
          return false;
        }
      }
      return answers.rows[i]?.[0] === true;
    });
  }

  readCatalog(): Promise<TableInfo[]> {
    return this.#onOwner((client) => readPgCatalog(client));
  }

  schemaVersion(): Promise<number> {
    return this.#onOwner((client) => pgSchemaVersion(client));
  }

  onCommit(listener: () => void): () => void {
    this.#commitListeners.add(listener);
    return () => this.#commitListeners.delete(listener);
  }

  #committed(): void {
    for (const listener of this.#commitListeners) listener();
  }

  async *stream(
    statement: StatementInput,
    options: StreamOptions,
  ): AsyncGenerator<ResultChunk, void, undefined> {
    const parsed = parseStatement(statement.sql);
    checkParameterCount(parsed, statement.params?.length ?? 0);
    const params = toDriverParams(statement.params);
    const caller = this.#requireCaller(options.caller);
    const pool = await this.#poolFor(caller);
    const client = await pool.acquire(caller.user, requestSignal(options));
    const stopper = new StatementStopper(options.timeoutMs, options);
    stopper.attach({ interrupt: () => void cancelBackend(client) });
    let clean = false;
    try {
      // BEGIN travels with the statement, and COMMIT with the end of its cursor: two round trips, one
      // for a statement without rows. DDL is published (after_ddl) before its commit, by itself.
      const commitAtEnd = parsed.kind !== 'ddl';
      const transaction = {
        begin: beginStatements(parsed.kind === 'read' ? 'read' : 'write', options),
        commitAtEnd,
        rowless: parsed.rowless,
      };
      // The last chunk goes out only once the transaction has committed: a client that sends its next
      // statement on seeing it must find this one's effects.
      let last: ResultChunk | undefined;
      for await (const chunk of this.#runOn(
        client,
        parsed,
        params,
        stopper,
        options.chunkSize,
        transaction,
      )) {
        if (chunk.done) last = chunk;
        else yield chunk;
      }
      if (!commitAtEnd) {
        await client.query('SELECT rustydb_api.after_ddl()');
        await commit(client);
      }
      // A stop that came too late to stop the statement may still have its cancel on the way: the
      // connection is not lent again.
      clean = !stopper.stopped;
      // Change feeds wake when the capture has numbered this commit (NOTIFY), not now.
      if (last) yield last;
    } catch (err) {
      throw stopper.translate(translatePgError(err));
    } finally {
      stopper.dispose();
      // Stopped, failed or abandoned by the consumer: the connection's state is unknown (a cancel may
      // still be on its way), so it is closed, which also rolls the transaction back.
      if (clean) pool.release(client);
      else pool.discard(client);
    }
  }

  async execute(statement: StatementInput, options: RunOptions): Promise<StatementResult> {
    return collect(this.stream(statement, { ...options, chunkSize: 10_000 }));
  }

  async batch(
    statements: readonly StatementInput[],
    options: BatchOptions,
  ): Promise<(StatementResult | StatementFailure)[]> {
    if (!options.transaction)
      return runEach(statements, options, (statement) => this.execute(statement, options));
    // Every statement is read before any runs: a malformed one must not leave half a transaction.
    const parsed = statements.map((statement, index) =>
      failingAt(
        index,
        () => {
          const p = parseStatement(statement.sql);
          checkParameterCount(p, statement.params?.length ?? 0);
          return p;
        },
        translatePgError,
      ),
    );
    const caller = this.#requireCaller(options.caller);
    return this.#onSessionConnection(caller, options, async (client, stopper) => {
      const results: StatementResult[] = [];
      const last = statements.length - 1;
      for (let i = 0; i <= last; i++) {
        const statement = parsed[i]!;
        // BEGIN travels with the first statement, and COMMIT with the end of the last one unless that
        // one is DDL, which is published (after_ddl) before its commit. One statement's COMMIT failing
        // (a deferred constraint) is the batch's error, not that statement's: it is told apart by the
        // statement having run to its end.
        const commitAtEnd = i === last && statement.kind !== 'ddl';
        const transaction: CursorTransaction = {
          ...(i === 0 ? { begin: beginStatements('write', options) } : {}),
          commitAtEnd,
          rowless: statement.rowless,
        };
        const watched: { cursor?: CursorLike } = {};
        let commitFailure: unknown;
        const result = await failingAt(i, async () => {
          try {
            const result = await collect(
              this.#runOn(
                client,
                statement,
                toDriverParams(statements[i]!.params),
                stopper,
                10_000,
                transaction,
                watched,
              ),
            );
            // At once, not at the end: the statements after it write to the tables it made, and those
            // must be published (for change capture) before they do.
            if (statement.kind === 'ddl') await client.query('SELECT rustydb_api.after_ddl()');
            return result;
          } catch (err) {
            if (commitAtEnd && watched.cursor?.statementEnded) {
              commitFailure = err;
              return undefined;
            }
            throw stopper.translate(translatePgError(err));
          }
        });
        if (commitFailure !== undefined) throw commitFailure;
        results.push(result!);
      }
      if (parsed[last]!.kind === 'ddl') await commit(client);
      return results;
    });
  }

  async snapshot(
    statement: StatementInput,
    options: RunOptions,
  ): Promise<{ sequence: number; result: StatementResult }> {
    const parsed = parseStatement(statement.sql);
    checkParameterCount(parsed, statement.params?.length ?? 0);
    if (parsed.kind !== 'read') throw new RustyError('QUERY_ERROR', 'only a read statement can be watched');
    const caller = this.#requireCaller(options.caller);
    for (let attempt = 1; ; attempt++) {
      const taken = await this.#onSessionConnection(caller, options, async (client, stopper) => {
        // The position query is the transaction's first statement, which fixes its snapshot: what it
        // sees, and a WAL position that every commit it sees lies before. It travels with BEGIN and the
        // statement's opening, and COMMIT with the statement's end: two round trips in all.
        const transaction: CursorTransaction = {
          begin: [...beginStatements('snapshot', options), SNAPSHOT_POSITION],
          commitAtEnd: true,
        };
        const watched: { cursor?: CursorLike } = {};
        const result = await collect(
          this.#runOn(
            client,
            parsed,
            toDriverParams(statement.params),
            stopper,
            10_000,
            transaction,
            watched,
          ),
        );
        const position = watched.cursor!.beginRows!.at(-1)![0];
        if (!position) throw new RustyError('INTERNAL_ERROR', 'the snapshot position was not answered');
        const [snapshot, lsn] = position as [string, string];
        return { result, snapshot, lsn };
      });
      const sequence = await this.#changeLog.sequenceOfSnapshot(taken.snapshot, taken.lsn, options.timeoutMs);
      if (sequence !== undefined) return { sequence, result: taken.result };
      if (attempt >= SNAPSHOT_ATTEMPTS) {
        // Retryable, and said so by its code (QUERY_ERROR is documented as never worth sending again).
        throw new RustyError('BUSY', 'the snapshot could not be matched to the change log; try again', {
          retry_after_ms: SNAPSHOT_RETRY_AFTER_MS,
        });
      }
    }
  }

  /**
   * pg_database_size of this database, measured at most every SIZE_REUSED_MS: PostgreSQL stats every
   * file of the database for it, which on a database of many tables is too much for every read of a
   * metrics stream. A failed measure (the database unreachable) is reused as long, so that readers
   * do not pile connection attempts on a database that is down.
   */
  databaseSize(): Promise<number> {
    const now = performance.now();
    if (!this.#size || now - this.#size.at >= SIZE_REUSED_MS) {
      const bytes = this.#onOwner(async (client) => {
        const { rows } = await client.query({
          text: 'SELECT pg_database_size(current_database())::text',
          rowMode: 'array',
        });
        return Number(rows[0]![0]);
      });
      // Readers that come while it is reused see the failure; none is left unhandled.
      bytes.catch(() => {});
      this.#size = { at: now, bytes };
    }
    return this.#size.bytes;
  }

  async healthCheck(): Promise<void> {
    await this.#onOwner((client) => client.query('SELECT 1'));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#listenRetry);
    const listener = this.#listener;
    this.#listener = undefined;
    await Promise.all([this.#capture?.close(), listener?.end().catch(() => undefined)]);
    await Promise.all([this.#owner.close(), ...[...this.#sessions.values()].map((pool) => pool.close())]);
  }

  #requireCaller(caller: Caller | undefined): Caller {
    // Every statement of a client runs under a session role; the server's own go through `internal`.
    if (!caller) throw new RustyError('INTERNAL_ERROR', 'a statement without a caller');
    return caller;
  }

  /** The session role of the caller's set of roles, created the first time the set is seen. */
  #sessionRole(caller: Caller): Promise<string> {
    const key = caller.roles.join('\u0000');
    let role = this.#sessionRoles.get(key);
    if (!role) {
      role = this.#onOwner(async (client) => {
        const sorted = [...caller.roles].sort();
        const name = `${this.#prefix}s_${sha256Hex(sorted.join('\n')).slice(0, 24)}`;
        const result = await client.query({
          text: 'SELECT rustydb_api.session_role($1::text[], $2)',
          values: [sorted, this.#passwordOf(name)],
          rowMode: 'array',
        });
        return String(result.rows[0]![0]);
      });
      role.catch(() => this.#sessionRoles.delete(key));
      this.#sessionRoles.set(key, role);
    }
    return role;
  }

  #passwordOf(role: string): string {
    return createHmac('sha256', this.#secret).update(role).digest('base64url');
  }

  async #poolFor(caller: Caller): Promise<PgConnectionPool> {
    const role = await this.#sessionRole(caller);
    let pool = this.#sessions.get(role);
    if (!pool) {
      pool = new PgConnectionPool(this.#poolSize, () =>
        openClient({
          connectionString: this.#url,
          user: role,
          password: this.#passwordOf(role),
          applicationName: APPLICATION_NAME,
        }),
      );
      this.#sessions.set(role, pool);
    }
    return pool;
  }

  /**
   * Runs `work` on a session connection of the caller; `work` begins and ends its transaction itself
   * (with its statements: see CursorTransaction). Failed or stopped, the connection's state is unknown
   * (a cancel may still be on its way, a transaction still open): it is closed, which rolls back.
   */
  async #onSessionConnection<T>(
    caller: Caller,
    options: { timeoutMs: number; signal?: AbortSignal | undefined; cancel?: CancelSource | undefined },
    work: (client: PgClient, stopper: StatementStopper) => Promise<T>,
  ): Promise<T> {
    const pool = await this.#poolFor(caller);
    const client = await pool.acquire(caller.user, requestSignal(options));
    const stopper = new StatementStopper(options.timeoutMs, options);
    stopper.attach({ interrupt: () => void cancelBackend(client) });
    let clean = false;
    try {
      const result = await work(client, stopper);
      clean = !stopper.stopped;
      return result;
    } catch (err) {
      throw stopper.translate(translatePgError(err));
    } finally {
      stopper.dispose();
      if (clean) pool.release(client);
      else pool.discard(client);
    }
  }

  /** Runs one statement on a connection inside the caller's transaction, yielding its rows in chunks. */
  async *#runOn(
    client: PgClient,
    statement: PgStatement,
    params: DriverValue[],
    stopper: StatementStopper,
    chunkSize: number,
    transaction: CursorTransaction = {},
    /** Told the cursor, for what it knows once the statement is over (its beginRows, statementEnded). */
    watched?: { cursor?: CursorLike },
  ): AsyncGenerator<ResultChunk, void, undefined> {
    const { cursor, first } = openCursor(client, statement.text, params, chunkSize, transaction);
    if (watched) watched.cursor = cursor;
    try {
      let total = 0;
      for (let read = first; ; read = cursor.read(chunkSize)) {
        const rows = (await read) as ResultChunk['rows'];
        const ended = rows.length < chunkSize;
        if (ended && transaction.commitAtEnd) {
          // Committed (or rolled back) already: a stop that comes now is too late to undo it.
          if (cursor.commitTag !== 'COMMIT') throw rolledBack();
        } else stopper.throwIfStopped();
        const result = cursor._result;
        const columns = (result?.fields ?? []).map((f) => f.name);
        total += rows.length;
        if (ended) {
          const returnsRows = (result?.fields.length ?? 0) > 0;
          yield {
            columns,
            rows,
            done: true,
            rowsAffected: returnsRows && statement.kind === 'read' ? total : (result?.rowCount ?? total),
          };
          return;
        }
        yield { columns, rows, done: false };
      }
    } finally {
      await closeCursor(client, cursor);
    }
  }

  async #onOwner<T>(work: (client: PgClient) => Promise<T>): Promise<T> {
    const client = await this.#owner.acquire(undefined);
    let clean = false;
    try {
      const result = await work(client);
      clean = true;
      return result;
    } catch (err) {
      throw translatePgError(err);
    } finally {
      if (clean) this.#owner.release(client);
      else this.#owner.discard(client);
    }
  }

  /** The server's own tables live in schema `rustydb`, which no client statement can reach. */
  #makeInternalStore(): InternalStore {
    const query = <T>(sql: string, params: readonly unknown[] = []): Promise<T[]> =>
      this.#onOwner(async (client) => {
        const result = await client.query({ text: parseStatement(sql).text, values: params as unknown[] });
        return result.rows as T[];
      });
    return {
      dialect: 'postgres',
      changeHead: String(PENDING_POSITION),
      settlePending: async (table, column, keys) => {
        // Only rows committed before the look at the head begins: the head then covers every change
        // committed before them. (A row committed during the look may follow changes it does not cover,
        // so it is left for the next call.)
        const pending = await query<Record<string, unknown>>(
          `SELECT ${keys.join(', ')} FROM ${table} WHERE ${column} = ${PENDING_POSITION}`,
        );
        if (pending.length === 0) return;
        const head = await this.#changeLog.head();
        const where = keys.map((key) => `${key} = ?`).join(' AND ');
        for (const row of pending) {
          await query(
            `UPDATE ${table} SET ${column} = ? WHERE ${column} = ${PENDING_POSITION} AND ${where}`,
            [head, ...keys.map((key) => row[key])],
          );
        }
      },
      get: async <T>(sql: string, params?: readonly unknown[]) => (await query<T>(sql, params))[0],
      all: query,
      run: (sql, params = []) =>
        this.#onOwner(async (client) => {
          const result = await client.query({ text: parseStatement(sql).text, values: params as unknown[] });
          return { changes: result.rowCount ?? 0 };
        }),
      exec: (sql) =>
        this.#onOwner(async (client) => {
          // Migrations: one node at a time, all or nothing.
          await client.query(`BEGIN; ${SETUP_LOCK}; ${sql}; COMMIT`);
        }),
    };
  }
}

/** COMMIT of a transaction that failed silently answers ROLLBACK: that is an error, not a success. */
async function commit(client: PgClient): Promise<void> {
  const result = await client.query('COMMIT');
  if (result.command === 'ROLLBACK') throw rolledBack();
}

function rolledBack(): RustyError {
  return new RustyError('QUERY_ERROR', 'the transaction failed and was rolled back');
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
