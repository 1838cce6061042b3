/**
 * Losing the server: it is restarted (same port, same data) mid-stream and mid-subscription, it stays
 * away, or the network path goes dead. Subscriptions and change streams must resume with no gap and
 * no duplicate; requests made while offline wait in the queue and run in order; a stream cut off
 * fails with a retryable error; history that is gone is announced with a reset.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RustyDBError,
  type ChangeStreamEvent,
  type LiveQueryEvent,
  type TableChangeEvent,
  type TableEvent,
  type WatchEvent,
} from '@rustydb/client';
import {
  RestartableServer,
  TcpRelay,
  collect,
  eventually,
  fixture,
  openClient,
  startTestServer,
  within,
} from './helpers.ts';

const ENDLESS_ROWS = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c';

function insertBatch(server: RestartableServer, from: number, to: number) {
  return server.ts.http('/api/v1/batch', {
    body: {
      queries: Array.from({ length: to - from }, (_, i) => ({
        sql: 'INSERT INTO events (n) VALUES (?)',
        params: [from + i],
      })),
    },
  });
}

function insertDocs(server: RestartableServer, from: number, to: number) {
  return server.ts.http('/api/v1/documents/collections/notes/bulk-insert', {
    body: { documents: Array.from({ length: to - from }, (_, i) => ({ n: from + i })) },
  });
}

function assertStrictlyIncreasing(values: number[], what: string): void {
  for (let i = 1; i < values.length; i++) {
    assert.ok(values[i]! > values[i - 1]!, `${what}: ${values[i - 1]} then ${values[i]} at ${i}`);
  }
}

describe('reconnecting', () => {
  test(
    'the server restarts mid-stream and mid-subscription: the stream fails retryably, subscriptions resume without gap or duplicate',
    { timeout: 90_000 },
    async () => {
      const server = await RestartableServer.start({ enable_rate_limiting: false });
      // The client reaches the server through a relay, so that the test can keep it away for a moment
      // after the restart while changes are committed: those it must get by resuming.
      const relay = await TcpRelay.start(server.port);
      const client = await openClient(relay.url);
      try {
        await fixture(server, 'CREATE TABLE events (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
        const created = await server.ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
        assert.equal(created.status, 201, JSON.stringify(created.body));
        const states: string[] = [];
        client.on('state', (s) => states.push(s));

        const sub = client.subscribe('events');
        const subscribed: { sequence: number; resumed: boolean }[] = [];
        sub.on('subscribed', (s) => subscribed.push(s));
        const watch = client.watch('notes');
        const live = client.subscribe({ query: 'SELECT count(*) AS n FROM events' });
        await Promise.all([sub.ready(), watch.ready(), live.ready()]);
        const table = collect<TableEvent>(sub);
        const notes = collect<WatchEvent>(watch);
        const counts = collect<LiveQueryEvent>(live);

        await insertBatch(server, 0, 20);
        await insertDocs(server, 0, 10);
        await eventually(() => table.events.length >= 20 && notes.events.length >= 10, 'the first changes');

        // A long stream is running when the server goes.
        const stream = client.stream(ENDLESS_ROWS, [], { chunkSize: 100 });
        const iterator = stream[Symbol.asyncIterator]();
        await within(iterator.next(), 20_000, 'the first chunk of the stream');
        const streamEnd = (async () => {
          for (let next = await iterator.next(); !next.done; next = await iterator.next());
        })().catch((err: unknown) => err);

        // Changes committed just before the stop may not have reached the client; more are committed
        // after the restart while the client cannot reach the server yet.
        await insertBatch(server, 20, 30);
        await insertDocs(server, 10, 15);
        relay.refuse = true;
        await server.restart();
        await insertBatch(server, 30, 50);
        await insertDocs(server, 15, 20);
        await eventually(() => states.filter((s) => s === 'reconnecting').length > 0, 'a reconnect attempt');
        assert.ok(table.events.length <= 30, 'nothing committed after the restart arrived yet');
        relay.refuse = false;

        const streamError = await within(streamEnd, 20_000, 'the stream to end');
        assert.ok(streamError instanceof RustyDBError, `the stream ended with ${String(streamError)}`);
        assert.equal(streamError.code, 'CONNECTION_LOST');
        assert.equal(streamError.retryable, true);
        assert.ok((streamError.details?.rows_received as number) >= 100);

        await eventually(
          () => table.events.length >= 50 && notes.events.length >= 20,
          'every change',
          30_000,
        );
        await insertBatch(server, 50, 51);
        await eventually(() => table.events.length >= 51, 'a change after the resume');

        const changes = table.events.filter((e): e is TableChangeEvent => e.type === 'change');
        assert.equal(changes.length, table.events.length, 'only change events');
        assert.deepEqual(
          changes.map((e) => e.row?.n),
          Array.from({ length: 51 }, (_, i) => i),
          'every row exactly once, in commit order',
        );
        assertStrictlyIncreasing(
          changes.map((e) => e.sequence),
          'table sequences',
        );
        assert.equal(subscribed.length, 2);
        assert.equal(subscribed[1]!.resumed, true);
        assert.ok(subscribed[1]!.sequence >= changes[19]!.sequence, 'resumed from the last sequence seen');

        const docs = notes.events as ChangeStreamEvent[];
        assert.deepEqual(
          docs.map((e) => e.fullDocument?.n),
          Array.from({ length: 20 }, (_, i) => i),
          'every document event exactly once, in order',
        );
        assert.equal(new Set(docs.map((e) => e._id._data)).size, 20);

        await eventually(() => {
          const last = counts.events.at(-1);
          if (!last) return false;
          const row = last.type === 'result' ? last.rows[0] : last.added[0];
          return row?.n === 51;
        }, 'the live query to show the count after the restart').catch(async (err: Error) => {
          throw new Error(
            `${err.message}; status ${live.status}, ended with ${String(await Promise.race([counts.done, 'nothing']))}, events ${JSON.stringify(counts.events.slice(-3))}`,
          );
        });
        assert.ok(
          counts.events.filter((e) => e.type === 'result').length >= 2,
          'a fresh result after reconnecting',
        );

        assert.ok(states.includes('reconnecting'), states.join());
        assert.equal(client.state, 'open');
        assert.equal(client.session?.reconnected, true);
      } finally {
        await client.close();
        await relay.close();
        await server.close();
      }
    },
  );

  test('requests made while the server is away wait in the queue and run in order once it is back', async () => {
    const server = await RestartableServer.start({ enable_rate_limiting: false });
    const client = await openClient(server.url, { reconnectDelay: 100 });
    const bounded = await openClient(server.url, { reconnectDelay: 100, maxQueueSize: 3 });
    try {
      await fixture(server, 'CREATE TABLE q (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
      await server.stop();
      await eventually(() => client.state === 'reconnecting' && bounded.state === 'reconnecting', 'noticing');
      const pending = Array.from({ length: 40 }, (_, i) => client.query('INSERT INTO q (n) VALUES (?)', [i]));
      assert.equal(client.connection.queued, 40);

      const kept = [1, 2, 3].map((i) => bounded.query('SELECT ? AS n', [i]));
      await assert.rejects(
        bounded.query('SELECT 4'),
        (err: unknown) => err instanceof RustyDBError && err.code === 'QUEUE_FULL' && err.retryable,
      );

      await server.start();
      const results = await within(Promise.all(pending), 30_000, 'the queued inserts');
      assert.ok(results.every((r) => r.rowsAffected === 1));
      const stored = await client.query('SELECT n FROM q ORDER BY id');
      assert.deepEqual(
        stored.rows.map(({ n }) => n),
        Array.from({ length: 40 }, (_, i) => i),
      );
      assert.deepEqual(
        (await Promise.all(kept)).map((r) => r.rows[0]!.n),
        [1, 2, 3],
      );
    } finally {
      await client.close();
      await bounded.close();
      await server.close();
    }
  });

  test('after maxReconnectAttempts the client closes: queued requests and subscriptions fail with CONNECTION_FAILED', async () => {
    const server = await RestartableServer.start({ enable_rate_limiting: false });
    const client = await openClient(server.url, {
      reconnectDelay: 50,
      maxReconnectDelay: 100,
      maxReconnectAttempts: 3,
    });
    try {
      await fixture(server, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const sub = client.subscribe('t');
      await sub.ready();
      const reading = collect<TableEvent>(sub);
      const closes: number[] = [];
      client.on('close', (c) => closes.push(c.code));
      await server.stop();
      const queued = client.query('SELECT 1');
      await assert.rejects(
        queued,
        (err: unknown) => err instanceof RustyDBError && err.code === 'CONNECTION_FAILED',
      );
      const subError = await within(reading.done, 5000, 'the subscription to fail');
      assert.ok(subError instanceof RustyDBError && subError.code === 'CONNECTION_FAILED', String(subError));
      assert.equal(client.state, 'closed');
      assert.equal(closes[0], 1001);
    } finally {
      await client.close();
      await server.close();
    }
  });

  test('a dead network path is noticed by the heartbeat; the client reconnects and the subscription resumes', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const relay = await TcpRelay.start(ts.server.port);
    const client = await openClient(relay.url, {
      heartbeatInterval: 200,
      heartbeatTimeout: 300,
      reconnectDelay: 50,
    });
    try {
      await fixture(ts, 'CREATE TABLE beats (id INTEGER PRIMARY KEY, n INTEGER)');
      const sub = client.subscribe('beats');
      await sub.ready();
      const reading = collect<TableEvent>(sub);
      await fixture(ts, 'INSERT INTO beats (n) VALUES (0)');
      await eventually(() => reading.events.length === 1, 'the first change');
      const closes: { code: number; reason: string }[] = [];
      client.on('close', ({ code, reason }) => closes.push({ code, reason }));

      relay.freeze();
      for (let n = 1; n <= 5; n++) await fixture(ts, 'INSERT INTO beats (n) VALUES (?)', [n]);
      await eventually(() => reading.events.length === 6, 'the changes made while the path was dead', 15_000);
      assert.deepEqual(closes[0], { code: 1006, reason: 'heartbeat timeout' });
      assert.deepEqual(
        reading.events.map((e) => (e as TableChangeEvent).row?.n),
        [0, 1, 2, 3, 4, 5],
      );
    } finally {
      await client.close();
      await relay.close();
      await ts.close();
    }
  });

  test('a resume from history the server no longer holds yields a typed reset, then a fresh snapshot', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false, changelog_max_entries: 100 });
    const client = await openClient(ts.server.url);
    try {
      await fixture(ts, 'CREATE TABLE churn (id INTEGER PRIMARY KEY, v INTEGER)');
      const first = client.subscribe('churn');
      await first.ready();
      const since = first.lastSequence!;
      await first.unsubscribe();
      await ts.http('/api/v1/batch', {
        body: {
          queries: Array.from({ length: 300 }, (_, i) => ({
            sql: 'INSERT INTO churn (v) VALUES (?)',
            params: [i],
          })),
        },
      });
      await ts.server.feed.prune();

      const again = client.subscribe('churn', { since });
      const events: TableEvent[] = [];
      for await (const event of again) {
        events.push(event);
        if (event.type === 'snapshot') break;
      }
      const [reset, snapshot] = events;
      assert.equal(reset?.type, 'reset');
      if (reset?.type === 'reset') {
        assert.equal(reset.reason, 'history_unavailable');
        assert.equal(reset.lastSequence, since);
        assert.ok(reset.oldestResumable > since);
      }
      assert.equal(snapshot?.type, 'snapshot');
      if (snapshot?.type === 'snapshot') assert.equal(snapshot.rows.length, 300);
    } finally {
      await client.close();
      await ts.close();
    }
  });
});
