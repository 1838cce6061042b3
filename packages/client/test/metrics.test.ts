/**
 * `client.metrics()` against the real `ws /api/v1/metrics/stream`: samples at the asked interval, the
 * MONITOR privilege enforced, and samples continuing after the server restarts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBError, type MetricsSample } from '@rustydb/client';
import { RestartableServer, eventually, openClient, within } from './helpers.ts';

describe('metrics()', () => {
  test(
    'samples of the chosen metrics arrive at the interval, and continue after a restart',
    { timeout: 60_000 },
    async () => {
      const server = await RestartableServer.start({ enable_rate_limiting: false });
      const client = await openClient(server.url);
      try {
        const metrics = client.metrics({ metrics: ['queries_total', 'connections_total'], intervalMs: 100 });
        await within(metrics.ready(), 10_000, 'the metrics subscription');
        const samples: MetricsSample[] = [];
        const reading = (async () => {
          for await (const sample of metrics) samples.push(sample);
        })().catch((err: unknown) => err);
        await client.query('SELECT 1');
        await eventually(() => samples.length >= 3, 'three samples');
        assert.deepEqual(Object.keys(samples[0]!.metrics).sort(), ['connections_total', 'queries_total']);
        assert.equal(samples[0]!.intervalMs, 100);
        assert.ok(typeof samples[0]!.metrics.connections_total === 'number');
        assert.ok(
          (samples.at(-1)!.metrics.connections_total as number) >= 2,
          'both sockets of the client counted',
        );

        await server.restart();
        const before = samples.length;
        await eventually(
          () => metrics.status === 'active' && samples.length >= before + 2,
          'samples after the restart',
          20_000,
        );
        await metrics.unsubscribe();
        assert.equal(await reading, undefined);
      } finally {
        await client.close();
        await server.close();
      }
    },
  );

  test('without MONITOR the subscription fails with PERMISSION_DENIED', async () => {
    const server = await RestartableServer.start({ enable_rate_limiting: false });
    const admin = await openClient(server.url);
    try {
      const created = await server.ts.http('/api/v1/users', {
        body: { username: 'reader', password: 'reader-password', roles: ['readonly'] },
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const reader = await openClient(server.url, { username: 'reader', password: 'reader-password' });
      try {
        const metrics = reader.metrics();
        const err = await metrics.ready().catch((e: unknown) => e);
        assert.ok(err instanceof RustyDBError, String(err));
        assert.equal(err.code, 'PERMISSION_DENIED');
        await assert.rejects(
          metrics.next(),
          (e: unknown) => e instanceof RustyDBError && e.code === 'PERMISSION_DENIED',
        );
      } finally {
        await reader.close();
      }
    } finally {
      await admin.close();
      await server.close();
    }
  });
});
