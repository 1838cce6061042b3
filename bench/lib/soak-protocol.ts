/** What bench/soak.ts and its client processes (bench/lib/soak-process.ts) say to each other. */

/** The table every subscriber watches and the writers insert into. */
export const SOAK_EVENTS = 'soak_events';
/** The table keyed reads and scans read. */
export const SOAK_KV = 'soak_kv';

/** The value stored under `key` in SOAK_KV, so that every keyed read's answer can be checked. */
export function kvValue(key: number): string {
  return `value-${key}`;
}

/**
 * Creates both tables, SOAK_KV holding keys 1..`keys`, on a connection that runs SQL (the bench's and the
 * memory probe's, bench/tools/soak-memory-probe.ts).
 */
export async function createSoakTables(
  setup: { query(sql: string, params?: unknown[]): Promise<unknown> },
  keys: number,
): Promise<void> {
  await setup.query(`CREATE TABLE ${SOAK_KV} (k INTEGER PRIMARY KEY, v TEXT NOT NULL)`);
  for (let from = 1; from <= keys; from += 500) {
    const rows = Array.from({ length: Math.min(500, keys - from + 1) }, (_, i) => from + i);
    await setup.query(
      `INSERT INTO ${SOAK_KV} (k, v) VALUES ${rows.map(() => '(?, ?)').join(', ')}`,
      rows.flatMap((k) => [k, kvValue(k)]),
    );
  }
  await setup.query(
    `CREATE TABLE ${SOAK_EVENTS} (id INTEGER PRIMARY KEY, writer INTEGER NOT NULL, sent_at REAL NOT NULL, note TEXT)`,
  );
}

export type SoakCommand =
  /**
   * Open `subscribers` connections (not yet subscribed), `queryConnections` query connections and
   * `writers` writers, all authenticated. `indexBase` numbers this process's loaders apart from others'.
   */
  | {
      cmd: 'open';
      streamUrl: string;
      token: string;
      subscribers: number;
      queryConnections: number;
      writers: number;
      indexBase: number;
    }
  /** Every subscriber subscribes to SOAK_EVENTS; answers with the sequences acknowledged. */
  | { cmd: 'subscribe' }
  /**
   * Offer the load for `seconds`: each query connection `queryRate` requests a second (every
   * `scanEvery`-th a scan, the others keyed reads over keys 1..`keys`), each writer `writeRate` inserts
   * a second. Then wait up to `drainMs` for answers still due.
   */
  | {
      cmd: 'run';
      seconds: number;
      queryRate: number;
      writeRate: number;
      scanEvery: number;
      keys: number;
      drainMs: number;
    }
  /** Wait (at most `waitMs`) until each subscriber has `expected` changes, then report. */
  | { cmd: 'subscribers'; expected: number; waitMs: number }
  | { cmd: 'close' };

export type RequestKind = 'read' | 'scan' | 'write';

/** One process's account of a load run. Times are on the clock all processes share, ms. */
export interface LoadReport {
  windowStart: number;
  windowEnd: number;
  offered: Record<RequestKind, number>;
  /** Answered successfully (and, for reads, with the right value), whenever. */
  answered: Record<RequestKind, number>;
  /** Answered successfully before the end of the load window. */
  answeredInWindow: Record<RequestKind, number>;
  /** Send-to-answer times of the successful requests, ms. */
  latencies: Record<RequestKind, number[]>;
  /** Error answers by code. */
  errors: Record<string, number>;
  errorSample?: string;
  /** Keyed reads answered with another value than the one stored. */
  wrong: number;
  wrongSample?: string;
  /** Messages that answered nothing this process had sent. */
  unexpected: number;
  unexpectedSample?: string;
  /** Requests still unanswered when the drain time ran out. */
  unanswered: number;
  /** Requests sent after the window's end (the client process could not keep up with its schedule). */
  lateSends: number;
}

export interface SubscriberReport {
  received: number;
  /** Changes whose sequence was not above the previous one's. */
  outOfOrder: number;
  /** Rows received twice. */
  duplicates: number;
  /** Messages of the subscription other than its changes (errors, unsubscribed). */
  errors: number;
  errorSample?: string;
  /** Write-to-receipt delays, ms (kept by one subscriber in ten). */
  delays: number[];
}
