/**
 * The one source of server metrics. Surfaces (the metrics stream, GraphQL, `/api/v1/metrics`,
 * Prometheus) read it; endpoints and the engine report into it through small hooks (`messageIn`,
 * `messageOut`, `queryDone`). Totals only ever grow; each reader works out rates over its own interval
 * from two readings of the totals (`rates(previous, current)`), so a reader polling every 100 ms and one
 * polling every minute both get exact figures. Event-loop lag and query latency percentiles are kept
 * over a sliding window by a background tick.
 */
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';

/** How often the background tick runs (event-loop lag window, latency window bucket, one-shot rates). */
export const TICK_MS = 1000;
/** Query latencies are kept for this many ticks. */
const LATENCY_WINDOW_TICKS = 10;
/** Latencies kept per tick at most (a uniform sample beyond that). */
const LATENCY_SAMPLES_PER_TICK = 4096;

/** Where the sampler reads what it does not count itself. */
export interface SamplerSources {
  /** Open sockets per endpoint. */
  connections(): Record<string, number>;
  /** Active subscriptions (table, live query, change stream, GraphQL, metrics streams). */
  subscriptions(): number;
  /** The change log's head and the sequence the change feed has handed out. */
  changeLog(): Promise<{ head: number; delivered: number }>;
  /** The database's size in bytes (Engine.databaseSize). */
  databaseSize(): Promise<number>;
}

/** Counters that only grow. */
export interface Totals {
  /** performance.now() when read. */
  at: number;
  /** Process CPU time, microseconds (user + system, every thread). */
  cpuMicros: number;
  messagesIn: number;
  messagesOut: number;
  queries: number;
  queryErrors: number;
  rowsStreamed: number;
  /** Bytes read and written by the process (Linux /proc/self/io), or file-system operations elsewhere. */
  diskIo: number;
}

/** Every metric, by name: what `/api/v1/metrics` returns and the stream picks from. */
export interface MetricValues {
  cpu_percent: number;
  memory_rss_bytes: number;
  memory_heap_used_bytes: number;
  memory_heap_total_bytes: number;
  event_loop_lag_p50_ms: number;
  event_loop_lag_p99_ms: number;
  event_loop_lag_max_ms: number;
  connections_total: number;
  connections_by_endpoint: Record<string, number>;
  messages_in_per_sec: number;
  messages_out_per_sec: number;
  messages_in_total: number;
  messages_out_total: number;
  queries_per_sec: number;
  queries_total: number;
  query_errors_total: number;
  query_latency_p50_ms: number;
  query_latency_p95_ms: number;
  query_latency_p99_ms: number;
  rows_streamed_per_sec: number;
  rows_streamed_total: number;
  subscriptions_active: number;
  changelog_head: number;
  changelog_lag: number;
  database_size_bytes: number;
  disk_io_bytes_per_sec: number;
}

export type MetricName = keyof MetricValues;

export const METRIC_NAMES: readonly MetricName[] = [
  'cpu_percent',
  'memory_rss_bytes',
  'memory_heap_used_bytes',
  'memory_heap_total_bytes',
  'event_loop_lag_p50_ms',
  'event_loop_lag_p99_ms',
  'event_loop_lag_max_ms',
  'connections_total',
  'connections_by_endpoint',
  'messages_in_per_sec',
  'messages_out_per_sec',
  'messages_in_total',
  'messages_out_total',
  'queries_per_sec',
  'queries_total',
  'query_errors_total',
  'query_latency_p50_ms',
  'query_latency_p95_ms',
  'query_latency_p99_ms',
  'rows_streamed_per_sec',
  'rows_streamed_total',
  'subscriptions_active',
  'changelog_head',
  'changelog_lag',
  'database_size_bytes',
  'disk_io_bytes_per_sec',
];

export function isMetricName(name: unknown): name is MetricName {
  return typeof name === 'string' && (METRIC_NAMES as readonly string[]).includes(name);
}

/** Whether /proc/self/io can be read here (Linux); checked once. */
function readProcIo(): number | undefined {
  try {
    const text = readFileSync('/proc/self/io', 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    return field('read_bytes') + field('write_bytes');
  } catch {
    return undefined;
  }
}

function nearestRank(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

const round = (value: number, digits = 3): number => Number(value.toFixed(digits));

export class MetricsSampler {
  readonly #sources: SamplerSources;
  readonly #loop: IntervalHistogram;
  readonly #timer: NodeJS.Timeout;
  readonly #procIo = readProcIo() !== undefined;
  #messagesIn = 0;
  #messagesOut = 0;
  #queries = 0;
  #queryErrors = 0;
  #rowsStreamed = 0;
  /** Metrics streams open (they are subscriptions too, outside the hub). */
  #streams = 0;
  /** Query latencies, ms: one array per tick, newest last. */
  readonly #latencies: number[][] = [[]];
  #latencySeen = 0;
  /** The window's percentiles, recomputed each tick. */
  #latency = { p50: 0, p95: 0, p99: 0 };
  #loopLag = { p50: 0, p99: 0, max: 0 };
  #lastTotals: Totals;
  #lastRates: ReturnType<MetricsSampler['rates']>;
  #closed = false;
  /** The last database size read, reported while the engine cannot say. */
  #databaseSize = 0;

  constructor(sources: SamplerSources) {
    this.#sources = sources;
    this.#loop = monitorEventLoopDelay({ resolution: 10 });
    this.#loop.enable();
    this.#lastTotals = this.totals();
    this.#lastRates = this.rates(this.#lastTotals, this.#lastTotals);
    this.#timer = setInterval(() => this.#tick(), TICK_MS);
    this.#timer.unref();
  }

  // ---- hooks ---------------------------------------------------------------------------------------

  messageIn(): void {
    this.#messagesIn++;
  }

  messageOut(): void {
    this.#messagesOut++;
  }

  /** One statement finished (or failed) after `ms`, having returned `rows` rows. */
  queryDone(ms: number, rows: number, failed = false): void {
    this.#queries++;
    if (failed) this.#queryErrors++;
    this.#rowsStreamed += rows;
    const bucket = this.#latencies[this.#latencies.length - 1]!;
    this.#latencySeen++;
    if (bucket.length < LATENCY_SAMPLES_PER_TICK) bucket.push(ms);
    else {
      // Reservoir sampling keeps the bucket a uniform sample of the tick's queries.
      const at = Math.floor(Math.random() * this.#latencySeen);
      if (at < LATENCY_SAMPLES_PER_TICK) bucket[at] = ms;
    }
  }

  /** Counts a metrics stream as an active subscription until the returned function is called. */
  trackStream(): () => void {
    this.#streams++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#streams--;
    };
  }

  // ---- readings ------------------------------------------------------------------------------------

  totals(): Totals {
    const cpu = process.cpuUsage();
    return {
      at: performance.now(),
      cpuMicros: cpu.user + cpu.system,
      messagesIn: this.#messagesIn,
      messagesOut: this.#messagesOut,
      queries: this.#queries,
      queryErrors: this.#queryErrors,
      rowsStreamed: this.#rowsStreamed,
      diskIo: this.#procIo
        ? (readProcIo() ?? 0)
        : process.resourceUsage().fsRead + process.resourceUsage().fsWrite,
    };
  }

  /** Per-second rates between two readings of the totals (zeros when no time passed). */
  rates(
    before: Totals,
    after: Totals,
  ): {
    cpu_percent: number;
    messages_in_per_sec: number;
    messages_out_per_sec: number;
    queries_per_sec: number;
    rows_streamed_per_sec: number;
    disk_io_bytes_per_sec: number;
  } {
    const seconds = (after.at - before.at) / 1000;
    const per = (a: number, b: number): number => (seconds > 0 ? round((b - a) / seconds) : 0);
    return {
      cpu_percent: seconds > 0 ? round((after.cpuMicros - before.cpuMicros) / 1e4 / seconds, 1) : 0,
      messages_in_per_sec: per(before.messagesIn, after.messagesIn),
      messages_out_per_sec: per(before.messagesOut, after.messagesOut),
      queries_per_sec: per(before.queries, after.queries),
      rows_streamed_per_sec: per(before.rowsStreamed, after.rowsStreamed),
      disk_io_bytes_per_sec: per(before.diskIo, after.diskIo),
    };
  }

  /**
   * Every metric now. Rates are over `since` (a reader's previous totals) when given, otherwise over
   * the last background tick.
   */
  async read(since?: Totals): Promise<{ values: MetricValues; totals: Totals }> {
    const totals = this.totals();
    const rates = since ? this.rates(since, totals) : this.#lastRates;
    const memory = process.memoryUsage();
    const connections = this.#sources.connections();
    let changeLog = { head: 0, delivered: 0 };
    try {
      changeLog = await this.#sources.changeLog();
    } catch {
      // A busy or closing engine: report what the feed knows.
    }
    try {
      this.#databaseSize = await this.#sources.databaseSize();
    } catch {
      // The database unreachable: report its last known size.
    }
    const values: MetricValues = {
      ...rates,
      memory_rss_bytes: memory.rss,
      memory_heap_used_bytes: memory.heapUsed,
      memory_heap_total_bytes: memory.heapTotal,
      event_loop_lag_p50_ms: this.#loopLag.p50,
      event_loop_lag_p99_ms: this.#loopLag.p99,
      event_loop_lag_max_ms: this.#loopLag.max,
      connections_total: Object.values(connections).reduce((a, b) => a + b, 0),
      connections_by_endpoint: connections,
      messages_in_total: totals.messagesIn,
      messages_out_total: totals.messagesOut,
      queries_total: totals.queries,
      query_errors_total: totals.queryErrors,
      query_latency_p50_ms: this.#latency.p50,
      query_latency_p95_ms: this.#latency.p95,
      query_latency_p99_ms: this.#latency.p99,
      rows_streamed_total: totals.rowsStreamed,
      subscriptions_active: this.#sources.subscriptions() + this.#streams,
      changelog_head: changeLog.head,
      changelog_lag: Math.max(0, changeLog.head - changeLog.delivered),
      database_size_bytes: this.#databaseSize,
    };
    return { values, totals };
  }

  /** The query latency percentiles of the window, recomputed now (tests and one-shot readers). */
  latencyNow(): { p50: number; p95: number; p99: number } {
    this.#latency = this.#percentiles();
    return this.#latency;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#loop.disable();
  }

  #percentiles(): { p50: number; p95: number; p99: number } {
    // Up to 40k samples, every second on the event loop: a typed array's numeric sort takes a few
    // milliseconds where Array#sort with a comparator stalled every socket for tens of them.
    const all = new Float64Array(this.#latencies.reduce((n, bucket) => n + bucket.length, 0));
    let at = 0;
    for (const bucket of this.#latencies) {
      all.set(bucket, at);
      at += bucket.length;
    }
    all.sort();
    return {
      p50: round(nearestRank(all, 50)),
      p95: round(nearestRank(all, 95)),
      p99: round(nearestRank(all, 99)),
    };
  }

  #tick(): void {
    const totals = this.totals();
    this.#lastRates = this.rates(this.#lastTotals, totals);
    this.#lastTotals = totals;
    this.#latency = this.#percentiles();
    this.#latencies.push([]);
    this.#latencySeen = 0;
    if (this.#latencies.length > LATENCY_WINDOW_TICKS) this.#latencies.shift();
    // The histogram records nanoseconds; each tick reports the tick that just ended.
    const ms = (ns: number): number => (Number.isFinite(ns) ? round(ns / 1e6) : 0);
    this.#loopLag = {
      p50: ms(this.#loop.percentile(50)),
      p99: ms(this.#loop.percentile(99)),
      max: ms(this.#loop.max),
    };
    this.#loop.reset();
  }
}
