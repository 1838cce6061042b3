/**
 * The client's rate limiter against the server's own, with `rate_limit_rps: 20`: a burst of 100
 * queries through the limiter meets no RATE_LIMIT_EXCEEDED at all; without it, the server refuses
 * some (so the test can fail), and the client can resend those after `retry_after_ms`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBError, type RustyDBClient } from '@rustydb/client';
import { openClient, startTestServer, type TestServer } from './helpers.ts';

const RPS = 20;
const BURST = 100;

function countRefusals(client: RustyDBClient): { refused: number } {
  const counter = { refused: 0 };
  client.on('message', (m) => {
    if (m.type === 'error' && (m.payload as { code?: string }).code === 'RATE_LIMIT_EXCEEDED')
      counter.refused++;
  });
  return counter;
}

describe('client-side rate limiting', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ rate_limit_rps: RPS });
  });
  after(async () => {
    await ts?.close();
  });

  test(
    `a burst of ${BURST} queries stays under the server's ${RPS}/s: zero RATE_LIMIT_EXCEEDED`,
    { timeout: 60_000 },
    async () => {
      const client = await openClient(ts.server.url, { retryRateLimited: false });
      try {
        assert.equal(client.session?.limits?.rate_limit_rps, RPS);
        const counter = countRefusals(client);
        const started = Date.now();
        const results = await Promise.all(
          Array.from({ length: BURST }, (_, i) => client.query('SELECT ? AS n', [i])),
        );
        const elapsed = Date.now() - started;
        assert.deepEqual(
          results.map((r) => r.rows[0]!.n),
          Array.from({ length: BURST }, (_, i) => i),
        );
        assert.equal(counter.refused, 0);
        // Paced, not lucky: the burst allowance covers ~20 messages, the rest go at under 20 a second.
        assert.ok(elapsed > ((BURST - RPS) / RPS) * 1000, `took ${elapsed} ms`);
      } finally {
        await client.close();
      }
    },
  );

  test(
    'without the limiter the same burst is refused in part (the server limit is real)',
    { timeout: 60_000 },
    async () => {
      const client = await openClient(ts.server.url, { rateLimit: false, retryRateLimited: false });
      try {
        const counter = countRefusals(client);
        const outcomes = await Promise.allSettled(
          Array.from({ length: BURST }, (_, i) => client.query('SELECT ? AS n', [i])),
        );
        const refused = outcomes.filter(
          (o) =>
            o.status === 'rejected' &&
            o.reason instanceof RustyDBError &&
            o.reason.code === 'RATE_LIMIT_EXCEEDED',
        );
        assert.ok(refused.length > 0, 'some queries were refused');
        assert.equal(counter.refused, refused.length);
        assert.ok(refused.every((o) => o.status === 'rejected' && (o.reason as RustyDBError).retryable));
      } finally {
        await client.close();
      }
    },
  );

  test(
    'refused requests are resent after retry_after_ms when retryRateLimited is on',
    { timeout: 60_000 },
    async () => {
      const client = await openClient(ts.server.url, { rateLimit: false });
      try {
        const counter = countRefusals(client);
        const results = await Promise.all(
          Array.from({ length: 40 }, (_, i) => client.query('SELECT ? AS n', [i])),
        );
        assert.deepEqual(
          results.map((r) => r.rows[0]!.n),
          Array.from({ length: 40 }, (_, i) => i),
        );
        assert.ok(counter.refused > 0, 'the server did refuse some at first');
      } finally {
        await client.close();
      }
    },
  );
});
