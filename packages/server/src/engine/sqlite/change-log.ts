/** Reading and pruning the SQLite change log (written by the capture triggers). */
import type { ChangeLog, ChangeRecord } from '../engine.ts';
import { CHANGES_TABLE, META_TABLE } from './change-capture.ts';
import type { SyncDatabase, SyncStatement } from './driver.ts';
import { positionBeforeKept, pruneThrough, recordOfRow } from '../change-log-positions.ts';

export const FLOOR_KEY = 'changes_pruned_through';

/**
 * The change-log head, in SQL: the newest recorded change, or the floor when that is higher. The floor
 * is above every record only after a restore (see backup.ts), which moves it past every position the
 * server ever handed out, so that the positions of the history the restore undid are answered `reset`.
 */
export const CHANGE_HEAD_SQL = `max(coalesce((SELECT max(seq) FROM ${CHANGES_TABLE}), 0), coalesce((SELECT CAST(value AS INTEGER) FROM ${META_TABLE} WHERE key = '${FLOOR_KEY}'), 0))`;

/**
 * A recorded row (or key) as the wire carries it, changed in place: JSON.parse gave back what
 * json_object wrote, which differs from a SELECT's values in two ways handled here.
 */
function restoreValues(value: Record<string, unknown> | null): Record<string, unknown> | null {
  if (value === null) return null;
  // for…in rather than Object.entries: this runs for every column of every change read, and the
  // entries' arrays were a good part of the change feed's garbage.
  for (const k in value) {
    const v = value[k];
    if (v === null || typeof v !== 'object') continue;
    // Blobs are recorded as {"$hex": …}; the wire format carries them as {"$base64": …}.
    if (typeof (v as { $hex?: unknown }).$hex === 'string') {
      value[k] = { $base64: Buffer.from((v as { $hex: string }).$hex, 'hex').toString('base64') };
    } else {
      // A column value is never an object; this one was JSON text that json_object embedded because
      // it still carried SQLite's JSON subtype. Give it back as the text a SELECT would return.
      value[k] = JSON.stringify(v);
    }
  }
  return value;
}

function parseJson(text: unknown): Record<string, unknown> | null {
  if (typeof text !== 'string') return null;
  return restoreValues(JSON.parse(text) as Record<string, unknown>);
}

/**
 * A page of records whose JSON together stays under this many bytes is read as one JSON text (see
 * `read`); a larger page is read row by row, so that no text the page makes comes near the largest
 * string SQLite or V8 will build.
 */
export const BULK_READ_BYTES = 4 * 1024 * 1024;

/** The bytes of a record's JSON columns, in SQL (octet_length reads a text's size, not the text). */
const RECORD_BYTES = `coalesce(octet_length(pk), 0) + coalesce(octet_length(old_row), 0) + coalesce(octet_length(new_row), 0)`;

/**
 * A page of records as one JSON array of arrays, in sequence order. The recorded rows are JSON text
 * already (json_object wrote them), so they are spliced in as they are, not quoted.
 */
const BULK_RECORDS = `SELECT '[' || group_concat('[' || seq || ',' || json_quote(tbl) || ',' || json_quote(op) || ',' ||
    coalesce(pk, 'null') || ',' || coalesce(old_row, 'null') || ',' || coalesce(new_row, 'null') || ',' || ts || ']',
    ',' ORDER BY seq) || ']'
  FROM ${CHANGES_TABLE} WHERE seq > ? AND seq <= ?`;

type BulkRecord = [
  number,
  string,
  ChangeRecord['op'],
  ChangeRecord['key'],
  ChangeRecord['old'],
  ChangeRecord['new'],
  number,
];

const HEAD_SQL = `SELECT ${CHANGE_HEAD_SQL}`;
const PAGE_SQL = `SELECT count(*), max(seq), sum(${RECORD_BYTES}) FROM (SELECT seq, pk, old_row, new_row FROM ${CHANGES_TABLE} WHERE seq > ? ORDER BY seq LIMIT ?)`;

/**
 * The log's read statements, prepared once per connection (the inline connection may be reopened, so
 * they are kept by connection): the change feed reads after every round of commits, and compiling
 * these each time cost about as much as running them.
 */
const preparedReads = new WeakMap<SyncDatabase, Map<string, SyncStatement>>();

function preparedRead(db: SyncDatabase, sql: string): SyncStatement {
  let statements = preparedReads.get(db);
  if (!statements) preparedReads.set(db, (statements = new Map()));
  let stmt = statements.get(sql);
  if (!stmt) statements.set(sql, (stmt = db.prepare(sql).raw()));
  return stmt;
}

/** Runs a write of the server's own in its turn among the engine's writers. */
export type InTurn = <T>(work: () => T) => Promise<T>;

export class SqliteChangeLog implements ChangeLog {
  readonly #db: () => SyncDatabase;
  readonly #inTurn: InTurn;

  /**
   * @param db the connection to read on (the engine's inline connection, which may be reopened)
   * @param inTurn runs pruning, which writes, in its turn among the engine's writers
   */
  constructor(db: () => SyncDatabase, inTurn: InTurn) {
    this.#db = db;
    this.#inTurn = inTurn;
  }

  async head(): Promise<number> {
    return this.headNow();
  }

  /** Every commit is numbered as it is made: the head is what the log holds. */
  async recorded(): Promise<number> {
    return this.headNow();
  }

  /** Synchronous form for the engine's own use. */
  headNow(): number {
    const row = preparedRead(this.#db(), HEAD_SQL).get([]);
    return Number(row?.[0] ?? 0);
  }

  async floor(): Promise<number> {
    return this.floorNow();
  }

  floorNow(): number {
    const row = this.#db().prepare(`SELECT value FROM ${META_TABLE} WHERE key = ?`).raw().get([FLOOR_KEY]);
    return Number(row?.[0] ?? 0);
  }

  async sequenceBefore(ms: number): Promise<number> {
    const row = this.#db()
      .prepare(`SELECT seq FROM ${CHANGES_TABLE} WHERE ts < ? ORDER BY ts DESC LIMIT 1`)
      .raw()
      .get([ms]);
    return row ? Number(row[0]) : positionBeforeKept(this.floorNow());
  }

  /**
   * One look at the page first — how many records, the last one's sequence, their JSON's size — then,
   * when it is small (a round of changes nearly always is), the page as one JSON text: one call into
   * libsql and one JSON.parse instead of a call per record and three parses each, about half the CPU
   * of reading a page. Both reads give the same records, in the same order, with the same values.
   */
  async read(afterSeq: number, limit: number): Promise<ChangeRecord[]> {
    const db = this.#db();
    const page = preparedRead(db, PAGE_SQL).get([afterSeq, limit]);
    const count = Number(page?.[0] ?? 0);
    if (count === 0) return [];
    // The page ends at the sequence seen: a record committed since is read next time, so both reads
    // hold the very records the size was taken of.
    const through = Number(page![1]);
    if (Number(page![2] ?? 0) > BULK_READ_BYTES) return this.#readRows(afterSeq, through);
    const text = preparedRead(db, BULK_RECORDS).get([afterSeq, through])?.[0];
    if (typeof text !== 'string') return [];
    const records = JSON.parse(text) as BulkRecord[];
    const out: ChangeRecord[] = new Array(records.length);
    for (let i = 0; i < records.length; i++) {
      const [seq, table, op, key, old, row, ts] = records[i]!;
      out[i] = {
        seq,
        table,
        op,
        key: restoreValues(key),
        old: restoreValues(old),
        new: restoreValues(row),
        ts,
      };
    }
    return out;
  }

  /** The records after `afterSeq` through `throughSeq`, a row at a time. */
  #readRows(afterSeq: number, throughSeq: number): ChangeRecord[] {
    const rows = this.#db()
      .prepare(
        `SELECT seq, tbl, op, pk, old_row, new_row, ts FROM ${CHANGES_TABLE} WHERE seq > ? AND seq <= ? ORDER BY seq`,
      )
      .raw()
      .all([afterSeq, throughSeq]);
    return rows.map((row) => recordOfRow(row, parseJson));
  }

  async incarnation(table: string): Promise<number> {
    // The partial index on DDL records makes this a look at the few schema changes, not at the log.
    const row = this.#db()
      .prepare(
        `SELECT max(seq) FROM ${CHANGES_TABLE} WHERE op = 'ddl' AND lower(tbl) = lower(?) AND json_extract(new_row, '$.action') = 'create'`,
      )
      .raw()
      .get([table]);
    return Number(row?.[0] ?? 0);
  }

  prune(limits: { maxAgeMs: number; maxEntries: number }): Promise<number> {
    return this.#inTurn(() => this.#pruneNow(limits));
  }

  #pruneNow(limits: { maxAgeMs: number; maxEntries: number }): number {
    const db = this.#db();
    // ORDER BY ts … LIMIT 1 walks the ts index; max(seq) … WHERE ts < ? would scan the whole log.
    const olderSeq = Number(
      db
        .prepare(`SELECT seq FROM ${CHANGES_TABLE} WHERE ts < ? ORDER BY ts DESC LIMIT 1`)
        .raw()
        .get([Date.now() - limits.maxAgeMs])?.[0] ?? 0,
    );
    // Bounded per call (PRUNE_BATCH): this runs on the event loop.
    const through = pruneThrough(
      { head: this.headNow(), floor: this.floorNow(), olderSeq },
      limits.maxEntries,
    );
    if (through === undefined) return 0;
    const { changes } = db.prepare(`DELETE FROM ${CHANGES_TABLE} WHERE seq <= ?`).run([through]);
    db.prepare(
      `INSERT INTO ${META_TABLE} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
    ).run([FLOOR_KEY, String(through)]);
    return changes;
  }
}
