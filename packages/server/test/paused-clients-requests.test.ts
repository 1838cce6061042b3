/**
 * A client that stops reading while it keeps sending requests must not grow the server: on every request
 * surface the server queues a bounded number of bytes for its socket, answers that do not fit wait for
 * room, and the client's further requests wait unread in the network (TCP backpressure). Large writes
 * nobody reads back must not grow it either. See helpers/paused-clients.ts for how each surface is run.
 */
import { describe, test } from 'node:test';
import {
  checkSurface,
  DEFAULT_SEND_BUFFER,
  graphqlWs,
  pausedStreamClient,
  PAUSED_MS,
  sendAtRate,
  warmGraphQL,
  WIDE_QUERY,
} from './helpers/paused-clients.ts';

/** Requests a paused GraphQL client sends at once: half a second's worth. */
const GRAPHQL_BURST = 45;

describe('paused clients sending requests: the server stays within +50 MB', () => {
  test('keyed reads of a 512 KB row (the fast path)', { timeout: 90_000 }, () =>
    checkSurface(
      pausedStreamClient((i) => ({
        type: 'query',
        id: `k${i}`,
        payload: { sql: 'SELECT id, v FROM wide WHERE id = ?', params: [1] },
      })),
    ),
  );

  test('batches', { timeout: 90_000 }, () =>
    checkSurface(
      pausedStreamClient((i) => ({
        type: 'batch',
        id: `b${i}`,
        payload: { queries: [{ sql: 'SELECT id, v FROM wide WHERE id = ?', params: [1] }] },
      })),
    ),
  );

  test('streamed queries (a scan answering one 512 KB row)', { timeout: 90_000 }, () =>
    checkSurface(
      pausedStreamClient((i) => ({
        type: 'query',
        id: `s${i}`,
        payload: { sql: "SELECT id, v FROM wide WHERE v <> '' LIMIT 1" },
      })),
    ),
  );

  // In bursts: each operation is answered only once it has run, so the socket, which stops reading the
  // client's messages once 1 MiB waits, is not behind yet when a burst arrives; every operation of a
  // burst ran at once and queued its answer (+69 MB for bursts of 60 before operations took turns).
  test(`GraphQL queries over graphql-ws, ${GRAPHQL_BURST} at a time`, { timeout: 90_000 }, () =>
    checkSurface(
      async (server) => {
        const ws = await graphqlWs(server);
        ws.pause();
        const query = (i: number) => ({ id: `g${i}`, type: 'subscribe', payload: { query: WIDE_QUERY } });
        await sendAtRate(ws, PAUSED_MS, query, GRAPHQL_BURST);
        return [ws];
      },
      DEFAULT_SEND_BUFFER,
      warmGraphQL(WIDE_QUERY),
    ),
  );
});
