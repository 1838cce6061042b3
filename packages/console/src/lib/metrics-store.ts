/**
 * Server metrics kept in the browser: one subscription to `/api/v1/metrics/stream` per session,
 * started when the dashboard is first opened and kept while the session lasts, so the last 15
 * minutes of samples are there whichever window the dashboard shows.
 */
import type { MetricsSample, MetricsSubscription, RustyDBClient } from '@rustydb/client';

export const KEEP_MS = 15 * 60_000;

export interface Sample {
  /** Seconds since the epoch (uPlot's x unit). */
  t: number;
  metrics: MetricsSample['metrics'];
}

export class MetricsStore {
  readonly samples: Sample[] = [];
  error: unknown;
  #subscription: MetricsSubscription | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(client: RustyDBClient) {
    this.#subscription = client.metrics({ intervalMs: 1000 });
    void this.#read(this.#subscription);
  }

  async #read(subscription: MetricsSubscription): Promise<void> {
    try {
      for await (const sample of subscription) {
        const t = (Date.parse(sample.timestamp) || Date.now()) / 1000;
        this.samples.push({ t, metrics: sample.metrics });
        const oldest = t - KEEP_MS / 1000;
        while (this.samples.length > 0 && this.samples[0]!.t < oldest) this.samples.shift();
        this.#emit();
      }
    } catch (err) {
      this.error = err;
      this.#emit();
    }
  }

  #emit(): void {
    for (const listener of this.#listeners) listener();
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}

const stores = new WeakMap<RustyDBClient, MetricsStore>();

export function metricsStoreOf(client: RustyDBClient): MetricsStore {
  let store = stores.get(client);
  if (!store) stores.set(client, (store = new MetricsStore(client)));
  return store;
}
