/**
 * Reading and pruning PostgreSQL's change log (`rustydb.changes`, written by change-capture.ts), and
 * naming the sequence a snapshot reflects.
 *
 * A snapshot's sequence: the records are numbered in commit-record order, but a transaction becomes
 * visible to other snapshots a moment after its commit record is written, so a snapshot taken in that
 * moment can see a later transaction and not an earlier one. The snapshot is therefore checked against
 * the log: the transactions it sees must be exactly those of a prefix of the sequence, and that prefix's
 * last sequence is the answer. A snapshot that fails the check (rare: it needs two commits within
 * microseconds) is taken again.
 */
import type { ChangeLog, ChangeRecord } from '../engine.ts';
import { RustyError } from '../../errors/rusty-error.ts';
import { formatLsn, parseLsn } from './pgoutput.ts';
import { positionBeforeKept, pruneThrough, recordOfRow } from '../change-log-positions.ts';

/** How long head() waits for the capture before it reports that none runs. */
const HEAD_WAIT_MS = 10_000;
/** The applied position, and a tick when it is behind $1 (rustydb.applied_or_tick, database-setup.ts). */
const APPLIED_OR_TICK = 'SELECT rustydb.applied_or_tick($1::pg_lsn)::text';

/**
 * The records of transactions not finished before a snapshot whose xmin is $1: from it up to the
 * reading statement's own snapshot's xmax (see sequenceOfSnapshot). pg_current_snapshot() assigns the
 * statement no xid; xid8 casts to bigint only through text.
 */
const SINCE_XMIN = 'xid >= $1 AND xid < pg_snapshot_xmax(pg_current_snapshot())::text::bigint';

/**
 * Runs a statement as the login role and returns its rows as arrays; with a `name`, prepared once per
 * connection (for the statements run after every change).
 */
export type OwnerQuery = (text: string, values?: unknown[], name?: string) => Promise<unknown[][]>;

const settled = (): void => undefined;

function parseJson(text: unknown): Record<string, unknown> | null {
  return typeof text === 'string' ? (JSON.parse(text) as Record<string, unknown>) : null;
}

/** `xmin:xmax:xip,…` (pg_snapshot's text form), as 64-bit transaction ids. */
function parseSnapshot(text: string): { xmin: bigint; xmax: bigint; running: Set<bigint> } {
  const [xmin, xmax, xip] = text.split(':') as [string, string, string];
  return {
    xmin: BigInt(xmin),
    xmax: BigInt(xmax),
    running: new Set(xip === '' ? [] : xip.split(',').map(BigInt)),
  };
}

export class PgChangeLog implements ChangeLog {
  readonly #query: OwnerQuery;
  /** Resolves at the next NOTIFY of the capture (or after `ms`). */
  readonly #nextApply: (ms: number) => Promise<void>;
  /** The look under way (see head), and the one that waits for it to end, shared by the calls since. */
  #runningLook: Promise<number> | undefined;
  #nextLook: Promise<number> | undefined;

  constructor(query: OwnerQuery, nextApply: (ms: number) => Promise<void>) {
    this.#query = query;
    this.#nextApply = nextApply;
  }

  /**
   * Waits until the capture has numbered every commit before the call (see ChangeLog.head).
   *
   * Callers at once share one look (each look costs a logical message, its WAL flush and the capture's
   * apply, and three round trips on an idle database): a look reads the WAL position first, so it covers
   * exactly the calls made before it began. A call while one runs therefore never joins it (its WAL
   * position may predate the call); it joins the next, which begins when the running one ends and serves
   * every call made meanwhile.
   */
  head(): Promise<number> {
    if (this.#nextLook) return this.#nextLook;
    const running = this.#runningLook;
    if (!running) return this.#look();
    const next = running.then(settled, settled).then(() => {
      this.#nextLook = undefined;
      return this.#look();
    });
    this.#nextLook = next;
    return next;
  }

  #look(): Promise<number> {
    const look = this.#headNow();
    this.#runningLook = look;
    const done = (): void => {
      if (this.#runningLook === look) this.#runningLook = undefined;
    };
    look.then(done, done);
    return look;
  }

  async #headNow(): Promise<number> {
    const [position] = await this.#query('SELECT pg_current_wal_insert_lsn()::text');
    const row = await this.#onceApplied(parseLsn(String(position![0])), HEAD_WAIT_MS, async () => {
      const [applied] = await this.#query('SELECT applied_lsn::text, head FROM rustydb.capture WHERE id = 1');
      return applied!;
    });
    return Number(row[1]);
  }

  recorded(): Promise<number> {
    return this.#recordedHead();
  }

  async #recordedHead(): Promise<number> {
    const rows = await this.#query('SELECT head FROM rustydb.capture WHERE id = 1');
    return Number(rows[0]?.[0] ?? 0);
  }

  async floor(): Promise<number> {
    const rows = await this.#query('SELECT floor FROM rustydb.capture WHERE id = 1');
    return Number(rows[0]?.[0] ?? 0);
  }

  async sequenceBefore(ms: number): Promise<number> {
    const rows = await this.#query(
      'SELECT seq FROM rustydb.changes WHERE ts < $1 ORDER BY ts DESC, seq DESC LIMIT 1',
      [ms],
    );
    return rows[0] ? Number(rows[0][0]) : positionBeforeKept(await this.floor());
  }

  /**
   * The entries after `afterSeq`. The upper bound changes no answer (the capture raises `head` in the
   * transaction that adds the entries up to it) but is what makes PostgreSQL read them by index: until
   * autovacuum first analyzes the log, an open-ended `seq > $1` is planned as a scan and sort of the whole
   * log, which every node ran after every NOTIFY (0.7 ms a read at 11,000 entries).
   */
  async read(afterSeq: number, limit: number): Promise<ChangeRecord[]> {
    const rows = await this.#query(
      `SELECT seq, tbl, op, pk, old_row, new_row, ts FROM rustydb.changes
        WHERE seq > $1 AND seq <= (SELECT head FROM rustydb.capture WHERE id = 1) ORDER BY seq LIMIT $2`,
      [afterSeq, limit],
      'rustydb_read_changes',
    );
    return rows.map((row) => recordOfRow(row, parseJson));
  }

  async incarnation(table: string): Promise<number> {
    const rows = await this.#query(
      `SELECT max(seq) FROM rustydb.changes
        WHERE op = 'ddl' AND tbl = $1 AND new_row::jsonb ->> 'action' = 'create'`,
      [table],
    );
    return Number(rows[0]?.[0] ?? 0);
  }

  async prune(limits: { maxAgeMs: number; maxEntries: number }): Promise<number> {
    const [state] = await this.#query('SELECT head, floor FROM rustydb.capture WHERE id = 1');
    const olderSeq = Number(
      (
        await this.#query('SELECT seq FROM rustydb.changes WHERE ts < $1 ORDER BY ts DESC LIMIT 1', [
          Date.now() - limits.maxAgeMs,
        ])
      )[0]?.[0] ?? 0,
    );
    const floor = Number(state?.[1] ?? 0);
    const through = pruneThrough({ head: Number(state?.[0] ?? 0), floor, olderSeq }, limits.maxEntries);
    if (through === undefined) return 0;
    // Several nodes may prune at once: the floor only moves up. The lower bound changes no answer (the
    // entries up to a floor are deleted by the statement that raises it, so those up to the floor read
    // above are gone) but makes a range, which PostgreSQL deletes by index: until autovacuum first
    // analyzes the log, an open-ended `seq <= $1` was planned as a scan of the whole log.
    const [deleted] = await this.#query(
      `WITH gone AS (DELETE FROM rustydb.changes WHERE seq > $2 AND seq <= $1 RETURNING 1),
            moved AS (UPDATE rustydb.capture SET floor = greatest(floor, $1) WHERE id = 1)
       SELECT count(*) FROM gone`,
      [through, floor],
    );
    return Number(deleted?.[0] ?? 0);
  }

  /**
   * The sequence a snapshot reflects, given what it recorded as its first statement (its
   * `pg_current_snapshot()` and `pg_current_wal_insert_lsn()`); undefined when the transactions it sees
   * are not a prefix of the sequence, and it must be taken again.
   */
  async sequenceOfSnapshot(
    snapshotText: string,
    lsnText: string,
    timeoutMs: number,
  ): Promise<number | undefined> {
    const { xmin, xmax, running } = parseSnapshot(snapshotText);
    const visible = (xid: bigint): boolean => xid < xmin || (xid < xmax && !running.has(xid));
    // Records of transactions that had finished before the snapshot (xid < xmin) are visible to it; only
    // the others need a look. The upper bound (see SINCE_XMIN) changes no answer: this statement sees
    // only records of apply_changes transactions committed before its snapshot, so with ids below the
    // snapshot's xmax, and apply_changes stores only xids below its own transaction's. It is what makes
    // PostgreSQL read them by index: until autovacuum first analyzes the log, an open-ended
    // `xid >= $1` was planned as a scan and sort of the whole log, which live queries ran on every
    // refresh (from a few hundred entries to a few thousand).
    // The log is read with the applied position, by one statement and so at one snapshot: read once
    // that position has passed the snapshot's, it holds every transaction the snapshot sees.
    const row = await this.#onceApplied(parseLsn(lsnText), timeoutMs, async () => {
      const [read] = await this.#query(
        `SELECT applied_lsn::text, head,
                ARRAY(SELECT seq FROM rustydb.changes WHERE ${SINCE_XMIN} AND seq <= c.head ORDER BY seq)::text[],
                ARRAY(SELECT xid FROM rustydb.changes WHERE ${SINCE_XMIN} AND seq <= c.head ORDER BY seq)::text[]
           FROM rustydb.capture c WHERE id = 1`,
        [xmin.toString()],
      );
      return read!;
    });
    const head = Number(row[1]);
    const seqs = (row[2] as string[]).map(Number);
    const xids = (row[3] as string[]).map(BigInt);
    const firstUnseen = seqs.find((_, i) => !visible(xids[i]!));
    if (firstUnseen === undefined) return head;
    if (seqs.some((seq, i) => seq > firstUnseen && visible(xids[i]!))) return undefined;
    const [later] = await this.#query(
      'SELECT EXISTS (SELECT 1 FROM rustydb.changes WHERE seq > $1 AND seq <= $2 AND xid < $3)',
      [firstUnseen, head, xmin.toString()],
    );
    return later?.[0] === true ? undefined : firstUnseen - 1;
  }

  /**
   * The row of `read` (a query of rustydb.capture whose first column is the applied position) once the
   * capture has applied everything up to `lsn`. A logical message written now (a tick) moves the
   * capture past `lsn` even when no transaction follows. The first look at the applied position writes
   * the tick itself when the position is behind, in the same round trip: on an idle database it always
   * is, by the capture's own last apply (written after the position it records). Once woken by an
   * apply, `read` looks again itself: when its position has passed `lsn`, its row is the answer.
   */
  async #onceApplied(lsn: bigint, timeoutMs: number, read: () => Promise<unknown[]>): Promise<unknown[]> {
    const deadline = Date.now() + timeoutMs;
    const [first] = await this.#query(APPLIED_OR_TICK, [formatLsn(lsn)]);
    if (parseLsn(String(first![0])) >= lsn) return read();
    for (;;) {
      if (Date.now() > deadline) {
        throw new RustyError(
          'INTERNAL_ERROR',
          'change capture is not running: no node reads the change stream',
        );
      }
      await this.#nextApply(100);
      const row = await read();
      if (parseLsn(String(row[0])) >= lsn) return row;
    }
  }
}
