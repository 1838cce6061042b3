/**
 * A client that stops reading its metrics subscriptions must not grow the server: on /api/v1/metrics/stream
 * and over graphql-ws, readings made while the client is behind are skipped rather than queued, and the
 * subscriptions go on once it reads again. See helpers/paused-clients.ts for how each surface is run.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  authed,
  checkSurface,
  DEFAULT_SEND_BUFFER,
  eventually,
  graphqlWs,
  METRICS_QUEUE_BOUND,
  METRICS_SUBSCRIPTION,
  METRICS_SUBSCRIPTIONS,
  PAUSED_MS,
  sendAtRate,
  SHORTEST_INTERVAL_MS,
  SOCKET_FILLING_QUERIES,
  warmGraphQL,
  WIDE_QUERY,
} from './helpers/paused-clients.ts';

describe('paused metrics clients: the server stays within +50 MB', () => {
  test(
    `the metrics stream: ${METRICS_SUBSCRIPTIONS} subscriptions every ${SHORTEST_INTERVAL_MS} ms`,
    { timeout: 90_000 },
    () =>
      checkSurface(async (server) => {
        // The URL starts the first subscription; the paused client asks for the others, then pings.
        const client = await authed(server, `/api/v1/metrics/stream?interval_ms=${SHORTEST_INTERVAL_MS}`);
        client.record = false;
        await client.next((m) => m.type === 'subscribed' && m.id === 'metrics', 10_000);
        client.ws.pause();
        await sendAtRate(client.ws, PAUSED_MS, (i) =>
          i < METRICS_SUBSCRIPTIONS - 1
            ? { type: 'subscribe', id: `m${i}`, payload: { interval_ms: SHORTEST_INTERVAL_MS } }
            : { type: 'ping', id: `p${i}` },
        );
        // Readings were skipped, not queued, and the subscriptions go on: once the client reads again,
        // readings made after it did keep coming.
        const resumed = new Date().toISOString();
        client.ws.resume();
        await client.next(
          (m) => m.type === 'data' && m.id === 'metrics' && String(m.timestamp) > resumed,
          20_000,
        );
        assert.ok(client.isOpen, 'the metrics stream was closed');
        return [client];
      }, METRICS_QUEUE_BOUND),
  );

  test(
    `GraphQL metrics subscriptions every ${SHORTEST_INTERVAL_MS} ms behind 512 KB results`,
    { timeout: 90_000 },
    () =>
      checkSurface(
        async (server) => {
          const ws = await graphqlWs(server);
          // The time each reading was made, per subscription, as the client receives them.
          const readings = new Map<string, string[]>();
          ws.on('message', (data) => {
            const message = JSON.parse(String(data)) as {
              type: string;
              id?: string;
              payload?: { data?: { systemMetrics?: { timestamp: string } } };
            };
            const made = message.payload?.data?.systemMetrics?.timestamp;
            if (message.type === 'next' && message.id && made) {
              readings.set(message.id, [...(readings.get(message.id) ?? []), made]);
            }
          });
          const ids = Array.from({ length: METRICS_SUBSCRIPTIONS }, (_, i) => `m${i}`);
          for (const id of ids) {
            ws.send(JSON.stringify({ id, type: 'subscribe', payload: { query: METRICS_SUBSCRIPTION } }));
          }
          const readingsSince = (id: string, since: string) =>
            (readings.get(id) ?? []).filter((made) => made > since).length;
          await eventually(() => ids.every((id) => readingsSince(id, '') > 0), 'a first reading of each');
          // The client stops reading, asks for 512 KB results that fill its socket, then pings.
          ws.pause();
          const paused = new Date().toISOString();
          await sendAtRate(ws, PAUSED_MS, (i) =>
            i < SOCKET_FILLING_QUERIES
              ? { id: `g${i}`, type: 'subscribe', payload: { query: WIDE_QUERY } }
              : { type: 'ping' },
          );
          const resumed = new Date().toISOString();
          ws.resume();
          await eventually(
            () => ids.every((id) => readingsSince(id, resumed) > 0),
            'a reading made after the client read again, on each subscription',
          );
          // Readings made while the socket was full were skipped, not queued for the client.
          for (const id of ids) {
            const queued = readingsSince(id, paused) - readingsSince(id, resumed);
            assert.ok(
              queued <= PAUSED_MS / SHORTEST_INTERVAL_MS / 4,
              `${id}: ${queued} readings made while the client was not reading were kept for it`,
            );
          }
          return [ws];
        },
        DEFAULT_SEND_BUFFER,
        async (server) => {
          await warmGraphQL(WIDE_QUERY)(server);
          await warmGraphQL(METRICS_SUBSCRIPTION, 3)(server);
        },
      ),
  );
});
