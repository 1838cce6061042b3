/**
 * Change capture on PostgreSQL: logical decoding with the built-in `pgoutput` plugin, read by one node
 * at a time, numbered densely into `rustydb.changes`.
 *
 * - Every node runs a ChangeCapture; each tries to stream from the database's replication slot, and
 *   PostgreSQL lets exactly one connection do so (SQLSTATE 55006 for the others, which try again every
 *   second). When the reading node dies its connection closes, the slot is free, and another node takes
 *   it over within a second. No other coordination is needed.
 * - Transactions arrive in commit order (the order of their commit records in the WAL). The reader
 *   writes their row changes, each numbered one above the last, to `rustydb.changes`, and in the same
 *   transaction moves `rustydb.capture.applied_lsn` to the end of the last one applied, under a row lock
 *   on `rustydb.capture`. A transaction ending at or before `applied_lsn` is skipped: a reader that
 *   dies after its commit and before PostgreSQL learnt of it, or two readers overlapping for a moment
 *   while one loses the slot, never number a transaction twice. Only then is the position confirmed to
 *   the slot, so PostgreSQL never drops WAL that was not applied.
 * - The same transaction sends NOTIFY rustydb_changes: every node's change feed reads the new records
 *   from the log by sequence, as on SQLite, so every node delivers each change with the same sequence.
 * - A reader that must know the sequence of everything committed so far (a snapshot, a new subscription)
 *   emits a logical message in a transaction of its own; its arrival moves `applied_lsn` past it even
 *   on an idle database (see PgChangeLog.head).
 */
import { describeError, type Logger } from '../../core/logger.ts';
import type { ConnectionSettings, PgClient } from './driver.ts';
import { formatLsn, parseLsn, type PgoutputMessage, type TupleValue } from './pgoutput.ts';
import { ReplicationStream } from './replication-stream.ts';
import { parserFor } from './values.ts';

export const CHANGES_CHANNEL = 'rustydb_changes';
export const PUBLICATION = 'rustydb_capture';
/** Prefix of the logical messages snapshots send to move the applied position along. */
export const TICK_PREFIX = 'rustydb_tick';

/** How often a node that does not hold the slot tries to take it. */
const RETRY_MS = 1000;
/** Records applied in one transaction at most (several decoded transactions share one when they queue). */
const APPLY_BATCH = 5000;
/** Status updates to PostgreSQL at least this often, so the slot releases WAL on an idle database. */
const CONFIRM_EVERY_MS = 5000;
/**
 * And at most this often while changes flow: each update wakes the walsender, and one per applied batch
 * was hundreds a second at 1,000 changes/s. A position applied but not yet confirmed costs nothing but
 * WAL kept a moment longer: a reader that takes the slot over is sent those transactions again, and
 * apply_changes skips what the capture row says is applied already.
 */
const CONFIRM_GAP_MS = 100;

interface Relation {
  schema: string;
  name: string;
  columns: { name: string; parse: (text: string) => unknown }[];
  key: string[];
}

interface Pending {
  table: string;
  op: 'insert' | 'update' | 'delete' | 'ddl';
  key: Record<string, unknown> | null;
  old: Record<string, unknown> | null;
  new: Record<string, unknown> | null;
}

interface Transaction {
  xid: number;
  endLsn: bigint;
  ts: number;
  records: Pending[];
}

export interface ChangeCaptureOptions {
  /** Connections as the login role of `database_url`. */
  settings: ConnectionSettings;
  slot: string;
  /** A connection of the login role, for applying (held only while the node reads the slot). */
  connect: () => Promise<PgClient>;
  logger: Logger;
}

function rowOf(
  relation: Relation,
  tuple: TupleValue[],
  fallback: TupleValue[] | null,
): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  relation.columns.forEach((column, i) => {
    let value = tuple[i];
    // An unchanged TOASTed value is not sent again: with REPLICA IDENTITY FULL the old row has it.
    if (value !== null && typeof value === 'object') value = fallback?.[i] ?? null;
    if (value !== null && typeof value === 'object') return;
    row[column.name] = value === null || value === undefined ? null : column.parse(value);
  });
  return row;
}

function keyOf(relation: Relation, row: Record<string, unknown>): Record<string, unknown> | null {
  if (relation.key.length === 0) return null;
  return Object.fromEntries(relation.key.map((name) => [name, row[name] ?? null]));
}

export class ChangeCapture {
  readonly #options: ChangeCaptureOptions;
  #stream: ReplicationStream | undefined;
  #closed = false;
  #leader = false;
  #running: Promise<void> | undefined;
  #sleep: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(options: ChangeCaptureOptions) {
    this.#options = options;
  }

  /** Whether this node holds the slot now. */
  get leader(): boolean {
    return this.#leader;
  }

  start(): void {
    this.#running ??= this.#run();
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#sleep) {
      clearTimeout(this.#sleep.timer);
      this.#sleep.resolve();
    }
    await this.#stream?.close();
    await this.#running;
  }

  async #run(): Promise<void> {
    while (!this.#closed) {
      let client: PgClient | undefined;
      try {
        client = await this.#options.connect();
        // A broken connection (PostgreSQL stopping, say) ends this turn as a failed stream does.
        client.on('error', () => void this.#stream?.close());
        const applied = await client.query({
          text: 'SELECT applied_lsn::text FROM rustydb.capture WHERE id = 1',
          rowMode: 'array',
        });
        this.#stream = await ReplicationStream.start(
          this.#options.settings,
          this.#options.slot,
          PUBLICATION,
          parseLsn(String(applied.rows[0]![0])),
        );
        if (this.#closed) break;
        this.#leader = true;
        this.#options.logger.info('change capture: this node reads the replication slot');
        await this.#follow(this.#stream, client);
      } catch (err) {
        const inUse = (err as { code?: unknown }).code === '55006';
        if (!this.#closed && !inUse) this.#options.logger.warn('change capture stopped', describeError(err));
      } finally {
        if (this.#leader) this.#options.logger.info('change capture: this node no longer reads the slot');
        this.#leader = false;
        await this.#stream?.close();
        this.#stream = undefined;
        await client?.end().catch(() => undefined);
      }
      if (!this.#closed) {
        await new Promise<void>((resolve) => {
          this.#sleep = { timer: setTimeout(resolve, RETRY_MS), resolve };
        });
        this.#sleep = undefined;
      }
    }
  }

  /** Reads the stream until it fails or the capture closes, applying transactions as they commit. */
  async #follow(stream: ReplicationStream, client: PgClient): Promise<void> {
    const relations = new Map<number, Relation>();
    let open: Transaction | undefined;
    let queued: Transaction[] = [];
    let queuedRecords = 0;
    /** The stream position everything before which has been applied (or carried nothing). */
    let through = 0n;
    let confirmed = 0n;
    let lastConfirm = Date.now();
    /** A snapshot asked for the applied position to move: write it even with no records. */
    let tick = false;

    const apply = async (): Promise<void> => {
      if (queued.length > 0 || tick) {
        await this.#apply(client, queued, through);
        queued = [];
        queuedRecords = 0;
        tick = false;
      }
      const sinceConfirm = Date.now() - lastConfirm;
      if ((through > confirmed && sinceConfirm >= CONFIRM_GAP_MS) || sinceConfirm > CONFIRM_EVERY_MS) {
        stream.confirm(through);
        confirmed = through;
        lastConfirm = Date.now();
      }
    };

    for (;;) {
      const event = await stream.next();
      if (event.kind === 'keepalive') {
        // Everything before walEnd has been sent; with nothing half-read, it is all received.
        if (!open && event.walEnd > through) through = event.walEnd;
        // The walsender asks for a word when it has heard none for half its timeout
        // (REPLICATION_SENDER_TIMEOUT): answer at once, even inside a long transaction or before a batch is
        // applied, or it ends the connection. The position sent is the last one confirmed.
        if (event.replyRequested) stream.confirm(confirmed);
      } else {
        const message = event.message;
        switch (message.tag) {
          case 'relation':
            relations.set(message.relationOid, await this.#describe(client, message));
            break;
          case 'begin':
            open = {
              xid: message.xid,
              endLsn: 0n,
              ts: message.commitTimeMs,
              records: [],
            };
            break;
          case 'insert':
          case 'update':
          case 'delete':
          case 'truncate':
            if (open) this.#record(open, relations, message);
            break;
          case 'commit':
            if (open) {
              open.endLsn = message.endLsn;
              open.ts = message.commitTimeMs;
              if (open.records.length > 0) {
                queued.push(open);
                queuedRecords += open.records.length;
              }
            }
            open = undefined;
            if (message.endLsn > through) through = message.endLsn;
            break;
          case 'message':
            // A tick makes the position be written even when no record comes with it.
            if (message.prefix === TICK_PREFIX) {
              tick = true;
              if (!open && message.lsn > through) through = message.lsn;
            }
            break;
          default:
            break;
        }
      }
      // Between transactions: what queued up while this one was read is applied together, once the
      // stream has nothing more waiting (or the batch is full); a lone transaction is applied at once.
      if (!open && (stream.pending === 0 || queuedRecords >= APPLY_BATCH)) await apply();
    }
  }

  /** The relation's columns with their readers, and its primary key (from the catalog). */
  async #describe(
    client: PgClient,
    message: Extract<PgoutputMessage, { tag: 'relation' }>,
  ): Promise<Relation> {
    const key = await client.query({
      text: `SELECT a.attname FROM pg_index i
               JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) ON true
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.n`,
      values: [message.relationOid],
      rowMode: 'array',
    });
    return {
      schema: message.schema,
      name: message.name,
      columns: message.columns.map((c) => ({ name: c.name, parse: parserFor(c.typeOid) })),
      key: key.rows.map((row) => String(row[0])),
    };
  }

  #record(
    tx: Transaction,
    relations: Map<number, Relation>,
    message: Extract<PgoutputMessage, { tag: 'insert' | 'update' | 'delete' | 'truncate' }>,
  ): void {
    if (message.tag === 'truncate') {
      for (const oid of message.relationOids) {
        const relation = relations.get(oid);
        // A table emptied at once: no row events exist for it; subscribers learn its content was replaced.
        if (relation?.schema === 'public') {
          tx.records.push({
            table: relation.name,
            op: 'ddl',
            key: null,
            old: null,
            new: { action: 'alter', sql: `TRUNCATE "${relation.name.replaceAll('"', '""')}"` },
          });
        }
      }
      return;
    }
    const relation = relations.get(message.relationOid);
    if (!relation) return;
    if (relation.schema === 'rustydb') {
      // Schema changes are recorded by rustydb_api.after_ddl() as rows of rustydb.schema_events, so they
      // come in commit order with the rows. The same transaction deletes them again (the table stays
      // empty): only the inserts mean anything.
      if (relation.name !== 'schema_events' || message.tag !== 'insert') return;
      const row = rowOf(relation, message.newTuple, null);
      tx.records.push({
        table: String(row.tbl),
        op: 'ddl',
        key: null,
        old: null,
        new: { action: row.action, sql: row.sql ?? null },
      });
      return;
    }
    if (relation.schema !== 'public') return;
    if (message.tag === 'insert') {
      const row = rowOf(relation, message.newTuple, null);
      tx.records.push({ table: relation.name, op: 'insert', key: keyOf(relation, row), old: null, new: row });
    } else if (message.tag === 'update') {
      const old = message.oldTuple ? rowOf(relation, message.oldTuple, null) : null;
      const row = rowOf(relation, message.newTuple, message.oldTuple);
      tx.records.push({ table: relation.name, op: 'update', key: keyOf(relation, row), old, new: row });
    } else {
      const old = rowOf(relation, message.oldTuple, null);
      tx.records.push({ table: relation.name, op: 'delete', key: keyOf(relation, old), old, new: null });
    }
  }

  /**
   * Numbers the records of `transactions` after the current head and writes them with the new applied
   * position, in one transaction under the capture row's lock (rustydb.apply_changes, database-setup.ts);
   * transactions already applied (by this node before a reconnect, or by another that held the slot)
   * are skipped. Up to APPLY_BATCH records that is one statement, so one round trip to PostgreSQL; more
   * go in chunks of one explicit transaction, the applied position moving with the last.
   */
  async #apply(client: PgClient, transactions: Transaction[], through: bigint): Promise<void> {
    const records: unknown[][] = [[], [], [], [], [], [], [], []];
    for (const tx of transactions) {
      const end = formatLsn(tx.endLsn);
      for (const record of tx.records) {
        const values = [
          end,
          tx.xid >>> 0,
          tx.ts,
          record.table,
          record.op,
          record.key && JSON.stringify(record.key),
          record.old && JSON.stringify(record.old),
          record.new && JSON.stringify(record.new),
        ];
        values.forEach((value, i) => records[i]!.push(value));
      }
    }
    const count = records[0]!.length;
    const call = (from: number, to: number, position: string) =>
      client.query({
        name: 'rustydb_apply_changes',
        text: 'SELECT rustydb.apply_changes($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        values: [...records.map((values) => values.slice(from, to)), position],
      });
    if (count <= APPLY_BATCH) {
      await call(0, count, formatLsn(through));
      return;
    }
    await client.query('BEGIN');
    try {
      for (let at = 0; at < count; at += APPLY_BATCH) {
        const last = at + APPLY_BATCH >= count;
        // The position moves only with the last chunk: the earlier ones must not make it skip the rest.
        await call(at, Math.min(count, at + APPLY_BATCH), last ? formatLsn(through) : '0/0');
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }
}
