/**
 * Prometheus exposition of the sampler's figures (prom-client, its own registry): Node's default
 * process metrics plus `rustydb_*` ones. Values are brought up to date from one sampler reading per
 * scrape.
 */
import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';
import type { MetricValues } from './sampler.ts';

export class PrometheusExporter {
  readonly registry = new Registry();
  readonly #connections: Gauge;
  readonly #gauges: [Gauge, (v: MetricValues) => number][];
  readonly #counters: [Counter, (v: MetricValues) => number][];
  readonly #quantiles: [Gauge, (v: MetricValues) => [string, number][]][];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    const gauge = (name: string, help: string, read: (v: MetricValues) => number): [Gauge, typeof read] => [
      new Gauge({ name, help, registers }),
      read,
    ];
    const counter = (
      name: string,
      help: string,
      read: (v: MetricValues) => number,
    ): [Counter, typeof read] => [new Counter({ name, help, registers }), read];
    this.#connections = new Gauge({
      name: 'rustydb_connections',
      help: 'Open WebSocket connections per endpoint',
      labelNames: ['endpoint'],
      registers,
    });
    this.#gauges = [
      gauge(
        'rustydb_cpu_percent',
        'Process CPU over the last second, percent of one core',
        (v) => v.cpu_percent,
      ),
      gauge(
        'rustydb_subscriptions_active',
        'Active subscriptions (table, live query, change stream, GraphQL, metrics)',
        (v) => v.subscriptions_active,
      ),
      gauge('rustydb_changelog_head', 'Highest sequence in the change log', (v) => v.changelog_head),
      gauge(
        'rustydb_changelog_lag',
        'Change-log records committed but not yet handed to subscriptions',
        (v) => v.changelog_lag,
      ),
      gauge(
        'rustydb_database_size_bytes',
        'Size of the database files (with the WAL)',
        (v) => v.database_size_bytes,
      ),
      gauge(
        'rustydb_queries_per_second',
        'Statements finished per second (last second)',
        (v) => v.queries_per_sec,
      ),
      gauge(
        'rustydb_messages_in_per_second',
        'WebSocket messages received per second (last second)',
        (v) => v.messages_in_per_sec,
      ),
      gauge(
        'rustydb_messages_out_per_second',
        'WebSocket messages sent per second (last second)',
        (v) => v.messages_out_per_sec,
      ),
    ];
    this.#counters = [
      counter('rustydb_messages_received_total', 'WebSocket messages received', (v) => v.messages_in_total),
      counter('rustydb_messages_sent_total', 'WebSocket messages sent', (v) => v.messages_out_total),
      counter('rustydb_queries_total', 'Statements finished, every surface', (v) => v.queries_total),
      counter('rustydb_query_errors_total', 'Statements that failed', (v) => v.query_errors_total),
      counter('rustydb_rows_streamed_total', 'Rows returned by statements', (v) => v.rows_streamed_total),
    ];
    const quantiles = (
      name: string,
      help: string,
      read: (v: MetricValues) => [string, number][],
    ): [Gauge, typeof read] => [new Gauge({ name, help, labelNames: ['quantile'], registers }), read];
    this.#quantiles = [
      quantiles('rustydb_query_latency_seconds', 'Statement latency over the last 10 seconds', (v) => [
        ['0.5', v.query_latency_p50_ms / 1000],
        ['0.95', v.query_latency_p95_ms / 1000],
        ['0.99', v.query_latency_p99_ms / 1000],
      ]),
      quantiles('rustydb_event_loop_lag_seconds', 'Event-loop delay over the last second', (v) => [
        ['0.5', v.event_loop_lag_p50_ms / 1000],
        ['0.99', v.event_loop_lag_p99_ms / 1000],
        ['1', v.event_loop_lag_max_ms / 1000],
      ]),
    ];
  }

  /** The Prometheus text for a reading of the sampler. */
  async render(values: MetricValues): Promise<string> {
    this.#connections.reset();
    for (const [endpoint, n] of Object.entries(values.connections_by_endpoint))
      this.#connections.set({ endpoint }, n);
    for (const [gauge, read] of this.#gauges) gauge.set(read(values));
    for (const [counter, read] of this.#counters) {
      // The sampler holds the totals; the counter is set to them (reset, then one increment).
      counter.reset();
      counter.inc(read(values));
    }
    for (const [gauge, read] of this.#quantiles)
      for (const [quantile, value] of read(values)) gauge.set({ quantile }, value);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
