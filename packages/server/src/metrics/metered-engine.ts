/**
 * Counts every statement clients run, whatever the surface (WebSocket, HTTP, GraphQL, documents):
 * the endpoints are handed this view of the engine, as they are the audited one. A statement counts
 * once it has finished — its whole result read, or failed — with its latency and the rows it returned.
 */
import { chunkRowCount, lastInlineRun, type Engine } from '../engine/engine.ts';
import type { MetricsSampler } from './sampler.ts';
import { overrideEngine } from '../engine/engine-view.ts';

export function meteredEngine(engine: Engine, metrics: MetricsSampler): Engine {
  const overrides: Partial<Engine> = {
    async *stream(statement, options) {
      const started = performance.now();
      let rows = 0;
      let failed = true;
      try {
        for await (const chunk of engine.stream(statement, options)) {
          rows += chunkRowCount(chunk);
          yield chunk;
        }
        failed = false;
      } finally {
        // Also when the consumer stops early (cancel, close): the statement is over either way.
        metrics.queryDone(performance.now() - started, rows, failed);
      }
    },
    async execute(statement, options) {
      const started = performance.now();
      try {
        const result = await engine.execute(statement, options);
        metrics.queryDone(performance.now() - started, result.rows.length);
        return result;
      } catch (err) {
        metrics.queryDone(performance.now() - started, 0, true);
        throw err;
      }
    },
    async batch(statements, options) {
      const started = performance.now();
      try {
        const results = await engine.batch(statements, options);
        const elapsed = (performance.now() - started) / Math.max(1, results.length);
        for (const result of results) {
          metrics.queryDone(
            elapsed,
            result.status === 'success' ? result.rows.length : 0,
            result.status !== 'success',
          );
        }
        return results;
      } catch (err) {
        metrics.queryDone(performance.now() - started, 0, true);
        throw err;
      }
    },
    async snapshot(statement, options) {
      const started = performance.now();
      try {
        const taken = await engine.snapshot(statement, options);
        metrics.queryDone(performance.now() - started, taken.result.rows.length);
        return taken;
      } catch (err) {
        metrics.queryDone(performance.now() - started, 0, true);
        throw err;
      }
    },
  };
  const runInline = engine.runInline;
  if (typeof runInline === 'function') {
    overrides.runInline = (statement, caller) => {
      try {
        const result = runInline.call(engine, statement, caller);
        // Undefined: the statement was not run here; it goes down the asynchronous path and counts there.
        // Its latency is its run's, as the engine timed it (lastInlineRun): no clock reads of our own.
        if (result) metrics.queryDone(lastInlineRun.ms, result.rows.length);
        return result;
      } catch (err) {
        // Failed in its run (as long as the engine timed it), or refused before it (no time at all).
        metrics.queryDone(lastInlineRun.ms, 0, true);
        throw err;
      }
    };
  }
  return overrideEngine(engine, overrides);
}
