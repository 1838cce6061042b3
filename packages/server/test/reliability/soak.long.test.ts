/**
 * The soak of `npm run bench` (g), shorter: 200 subscribed connections, 50 query connections and 5
 * writers, 1,700 requests a second offered for 15 s over four client processes, against the real server
 * with its default configuration (rate limits on). What must hold on any machine, however busy: every
 * change delivered to every subscriber once and in order, no subscription ended, no wrong answer or
 * unexpected message, every request answered, and a request refused only with a code that tells the
 * client to retry (the 16-running-requests cap or the statement timeout, which a machine busy with other
 * work reaches). Latency, the share of the load achieved and "no refusal at all" are performance
 * targets: the bench measures them (bench/RESULTS.md); this test times nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureSoak } from '../../../../bench/soak.ts';
import { stopAllChildren } from '../../../../bench/lib/children.ts';

const SOAK_SECONDS = 15;

test(
  `the soak, ${SOAK_SECONDS} s: every change delivered once and in order, every request answered, only retryable refusals`,
  { timeout: 600_000 },
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-soak-test-'));
    try {
      const { figures } = await measureSoak(
        { dataDir, log: (line) => t.diagnostic(line) },
        { soakSeconds: SOAK_SECONDS, referenceSeconds: 3 },
      );
      t.diagnostic(
        `achieved ${(100 * figures.achieved).toFixed(1)}% of ${figures.offered} requests, keyed reads p99 ` +
          `${figures.readP99.toFixed(1)} ms, RSS ${(figures.rssBaseline / 2 ** 20).toFixed(0)} -> peak ` +
          `${(figures.rssPeak / 2 ** 20).toFixed(0)} MB`,
      );
      t.diagnostic(`refused: ${JSON.stringify(figures.refused)}`);
      assert.equal(figures.subscribers, 200);
      assert.ok(figures.expectedPerSubscriber > 0, 'no row was inserted during the soak');
      const { missing, extra, disorder, subscriptionErrors, wrong, unexpected, unanswered } = figures;
      assert.deepEqual(
        { missing, extra, disorder, subscriptionErrors, wrong, unexpected, unanswered },
        { missing: 0, extra: 0, disorder: 0, subscriptionErrors: 0, wrong: 0, unexpected: 0, unanswered: 0 },
        figures.samples.join('; '),
      );
      const retryable = new Set(['RATE_LIMIT_EXCEEDED', 'QUERY_TIMEOUT']);
      assert.deepEqual(
        Object.keys(figures.refused).filter((code) => !retryable.has(code)),
        [],
        figures.samples.join('; '),
      );
    } finally {
      await stopAllChildren();
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
