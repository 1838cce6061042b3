/**
 * The connection policy a user can reason about, against the real server: the first connection fails
 * fast, a lost one is retried after about a second and never waits longer than the cap, the client does
 * not give up on its own once it has been open (the application decides, with shouldRetry and
 * retryWait), a closed client can be opened again, a server that wants credentials is told apart from
 * one that is down, close() ends every loop cleanly, and misuse fails with a RustyDBError.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  RustyDBClient,
  RustyDBError,
  connect,
  type LiveQueryEvent,
  type TableChangeEvent,
  type TableEvent,
  type WatchEvent,
} from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  TcpRelay,
  collect,
  eventually,
  fixture,
  freePort,
  openClient,
  sleep,
  startTestServer,
  within,
} from './helpers.ts';

/** The admin's credentials and nothing else: the SDK's own defaults for everything else. */
const credentials = { username: 'admin', password: ADMIN_PASSWORD };

describe('the first connection', () => {
  test('connect() to a port nobody listens on fails with CONNECTION_FAILED within a few seconds', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const err = await within(
      connect({ url, ...credentials }).catch((e: unknown) => e),
      20_000,
      'connect() to a dead port',
    );
    const elapsed = performance.now() - started;
    assert.ok(err instanceof RustyDBError, String(err));
    assert.equal(err.code, 'CONNECTION_FAILED');
    assert.match(err.message, /127\.0\.0\.1/);
    assert.ok(elapsed < 8000, `took ${Math.round(elapsed)} ms`);
  });

  test('initialConnectTimeout sets how long the first connection may take', async () => {
    const url = `ws://127.0.0.1:${await freePort()}`;
    const started = performance.now();
    const client = new RustyDBClient({ url, ...credentials, initialConnectTimeout: 800 });
    const err = await within(
      client.ready().catch((e: unknown) => e),
      10_000,
      'ready()',
    );
    const elapsed = performance.now() - started;
    assert.ok(err instanceof RustyDBError && err.code === 'CONNECTION_FAILED', String(err));
    assert.ok(elapsed >= 700 && elapsed < 2500, `took ${Math.round(elapsed)} ms`);
    assert.equal(client.state, 'closed');
  });

  test('connect() without credentials to a server that requires them fails with AUTH_REQUIRED at once', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const open = await startTestServer({ enable_rate_limiting: false, require_authentication: false });
    try {
      const started = performance.now();
      const err = await within(
        connect({ url: ts.server.url }).catch((e: unknown) => e),
        10_000,
        'connect() without credentials',
      );
      assert.ok(err instanceof RustyDBError, String(err));
      assert.equal(err.code, 'AUTH_REQUIRED');
      assert.equal(err.retryable, false);
      assert.ok(performance.now() - started < 2000, 'no retry was waited');

      // A server without authentication accepts the same call.
      const anonymous = await connect({ url: open.server.url });
      try {
        assert.equal(anonymous.state, 'open');
        assert.deepEqual((await anonymous.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
      } finally {
        await anonymous.close();
      }
    } finally {
      await ts.close();
      await open.close();
    }
  });
});

describe('losing an open connection', () => {
  test(
    'through an outage of up to about 8 s the retries come about a second apart, and the client is back within about a second (the defaults)',
    { timeout: 60_000 },
    async () => {
      const ts = await startTestServer({ enable_rate_limiting: false });
      const relay = await TcpRelay.start(ts.server.port);
      const client = await connect({ url: relay.url, ...credentials });
      try {
        await fixture(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)');
        const sub = client.subscribe('t');
        await sub.ready();
        const reading = collect<TableEvent>(sub);

        relay.refuse = true;
        const cut = performance.now();
        relay.dropAll();
        // Attempts through the first 9 s of the outage.
        await eventually(
          () => relay.attempts.some((t) => t > cut + 9000),
          'reconnect attempts for 9 s',
          30_000,
        );
        const times = [cut, ...relay.attempts.filter((t) => t > cut && t <= cut + 9000)];
        const waits = times.slice(1).map((t, i) => Math.round(t - times[i]!));
        // About a second apart all along: a server back after an outage of up to 8 s or so is found
        // within about a second of its return.
        assert.ok(waits.length >= 7, `${waits.length} attempts in 9 s (${waits.join(', ')})`);
        for (const wait of waits) assert.ok(wait <= 1600, `a wait of ${wait} ms (${waits.join(', ')})`);
        assert.equal(client.state, 'reconnecting');

        await fixture(ts, 'INSERT INTO t (n) VALUES (1)');
        const back = performance.now();
        relay.refuse = false;
        await eventually(() => reading.events.length === 1, 'the change made while away', 10_000);
        const recovered = performance.now() - back;
        assert.ok(recovered <= 2500, `recovered ${Math.round(recovered)} ms after the server was back`);
        assert.equal((reading.events[0] as TableChangeEvent).row?.n, 1);
      } finally {
        await client.close();
        await relay.close();
        await ts.close();
      }
    },
  );

  test('a client that has been open never gives up on its own: past any number of attempts it reconnects and resumes', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const relay = await TcpRelay.start(ts.server.port);
    const client = await openClient(relay.url, {
      reconnectDelay: 20,
      maxReconnectDelay: 50,
      maxReconnectAttempts: undefined,
    });
    try {
      await fixture(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)');
      const sub = client.subscribe('t');
      await sub.ready();
      const reading = collect(sub);
      relay.refuse = true;
      const cut = performance.now();
      relay.dropAll();
      await eventually(() => relay.attempts.filter((t) => t > cut).length >= 30, '30 attempts', 20_000);
      assert.equal(client.state, 'reconnecting');
      await fixture(ts, 'INSERT INTO t (n) VALUES (7)');
      relay.refuse = false;
      await eventually(() => reading.events.length === 1, 'the change made while away');
      assert.equal(client.state, 'open');
    } finally {
      await client.close();
      await relay.close();
      await ts.close();
    }
  });

  test('shouldRetry and retryWait decide: the application stops retrying, and reopens the client later', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const relay = await TcpRelay.start(ts.server.port);
    const asked: { attempt: number; code: string }[] = [];
    const waited: number[] = [];
    const client = await connect({
      url: relay.url,
      ...credentials,
      shouldRetry: ({ attempt, error }) => {
        asked.push({ attempt, code: error.code });
        return attempt <= 3;
      },
      retryWait: async (attempt) => {
        waited.push(attempt);
        await sleep(20);
      },
    });
    try {
      await fixture(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const sub = client.subscribe('t');
      await sub.ready();
      const reading = collect(sub);
      relay.refuse = true;
      relay.dropAll();
      const failure = await within(reading.done, 10_000, 'the subscription to fail');
      assert.ok(failure instanceof RustyDBError && failure.code === 'CONNECTION_FAILED', String(failure));
      assert.equal(client.state, 'closed');
      assert.deepEqual(
        asked.map((a) => a.attempt),
        [1, 2, 3, 4],
      );
      assert.ok(
        asked.every((a) => a.code === 'CONNECTION_LOST'),
        JSON.stringify(asked),
      );
      assert.deepEqual(waited, [1, 2, 3]);

      // The application opens it again once it believes the server is back.
      relay.refuse = false;
      client.open();
      await within(client.ready(), 10_000, 'ready() after open()');
      assert.equal(client.state, 'open');
      // A new subscription covers the changes after the point the server acknowledges it at; a change
      // made before ready() resolves may be committed while the server is still attaching it, and then
      // it is (rightly) before that point and never delivered.
      const resubscribed = client.subscribe('t');
      await within(resubscribed.ready(), 10_000, 'the subscription after reopening');
      const again = collect(resubscribed);
      await fixture(ts, 'INSERT INTO t DEFAULT VALUES');
      await eventually(() => again.events.length === 1, 'a change after reopening');
      assert.equal((again.events[0] as TableChangeEvent).op, 'insert');
    } finally {
      await client.close();
      await relay.close();
      await ts.close();
    }
  });

  test('a client closed with close() can be opened again', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    try {
      const client = await openClient(ts.server.url);
      await client.close();
      assert.equal(client.state, 'closed');
      client.open();
      client.open(); // a second call while connecting changes nothing
      const session = await within(client.ready(), 10_000, 'ready() after open()');
      assert.equal(session.user, 'admin');
      assert.deepEqual((await client.query('SELECT 2 AS two')).rows, [{ two: 2 }]);
      await client.close();
      assert.equal(client.state, 'closed');
    } finally {
      await ts.close();
    }
  });
});

describe('closing and misuse', () => {
  test('close() ends every loop cleanly: subscriptions, live queries, change streams and streams just finish', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const client = await openClient(ts.server.url);
    await fixture(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)');
    const created = await ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
    assert.equal(created.status, 201);
    try {
      const sub = client.subscribe('t');
      const live = client.subscribe({ query: 'SELECT count(*) AS n FROM t' });
      const watch = client.watch('notes');
      await Promise.all([sub.ready(), live.ready(), watch.ready()]);
      const loops = [collect<TableEvent>(sub), collect<LiveQueryEvent>(live), collect<WatchEvent>(watch)];
      const stream = client.stream(
        'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c',
        [],
        { chunkSize: 10 },
      );
      const streamed = collect(stream);
      await eventually(() => streamed.events.length > 0, 'the first chunk');
      const pending = client.query('SELECT 1').catch((e: unknown) => e);

      await client.close();
      const outcomes = await within(
        Promise.all([...loops, streamed].map((l) => l.done)),
        5000,
        'every loop to end',
      );
      assert.deepEqual(outcomes, ['finished', 'finished', 'finished', 'finished']);
      assert.equal(sub.status, 'ended');
      // A promise cannot just finish: a request still waiting is refused with CLIENT_CLOSED (or had its answer).
      const answer = await pending;
      assert.ok(
        !(answer instanceof Error) || (answer instanceof RustyDBError && answer.code === 'CLIENT_CLOSED'),
        String(answer),
      );
    } finally {
      await client.close();
      await ts.close();
    }
  });

  test('a second reader of one subscription or stream is told with a RustyDBError', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const client = await openClient(ts.server.url);
    await fixture(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
    try {
      const sub = client.subscribe('t');
      const first = sub.next();
      const second = await sub.next().catch((e: unknown) => e);
      assert.ok(second instanceof RustyDBError, String(second));
      assert.equal(second.code, 'INVALID_USE');
      assert.equal(second.retryable, false);
      await fixture(ts, 'INSERT INTO t DEFAULT VALUES');
      assert.equal(((await first).value as TableChangeEvent).op, 'insert', 'the first reader carries on');

      const stream = client.stream('SELECT 1');
      const reading = stream.next();
      const again = await stream.next().catch((e: unknown) => e);
      assert.ok(again instanceof RustyDBError && again.code === 'INVALID_USE', String(again));
      await reading;
    } finally {
      await client.close();
      await ts.close();
    }
  });

  test('a URL that is not one is a RustyDBError, not a TypeError', () => {
    assert.throws(
      () => new RustyDBClient({ url: 'not a url' }),
      (e: unknown) => e instanceof RustyDBError && e.code === 'INVALID_USE',
    );
  });
});
