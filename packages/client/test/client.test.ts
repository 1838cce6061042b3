/**
 * The SDK against the real server in Node: login, queries, streams (backpressure, cancel on break),
 * batches, typed errors, timeouts, and the close-code decision.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ERROR_CODES, RETRYABLE_CLOSE_CODES } from '@rustydb/protocol';
import {
  CLIENT_ERROR_CODES,
  RustyDBClient,
  RustyDBError,
  closeDisposition,
  connect,
  resolveUrls,
  type InboundMessage,
} from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  eventually,
  fixture,
  openClient,
  startTestServer,
  within,
  type TestServer,
} from './helpers.ts';

const ENDLESS_ROWS = 'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c';
const ENDLESS_COUNT =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c';

describe('client over a real server', () => {
  let ts: TestServer;
  let client: RustyDBClient;
  const messages: InboundMessage[] = [];

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
    await fixture(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL)');
    await fixture(ts, "INSERT INTO items (name, price) VALUES ('pen', 1.5), ('book', 12), ('cup', NULL)");
    client = await openClient(ts.server.url);
    client.on('message', (m) => messages.push(m));
  });
  after(async () => {
    await client?.close();
    await ts?.close();
  });

  test('connect logs in over HTTP and authenticates the socket; the session carries the limits', async () => {
    assert.equal(client.state, 'open');
    assert.equal(client.session?.user, 'admin');
    assert.deepEqual(client.session?.roles, ['admin']);
    assert.ok(client.session?.expiresAt instanceof Date);
    assert.equal(client.session?.limits?.max_running_queries, 16);
    assert.equal(client.session?.reconnected, false);
  });

  test('query() resolves with the whole result; parameters are bound, not interpolated', async () => {
    const result = await client.query('SELECT id, name FROM items WHERE price > ? ORDER BY id', [1]);
    assert.deepEqual(result.columns, ['id', 'name']);
    assert.deepEqual(result.rows, [
      { id: 1, name: 'pen' },
      { id: 2, name: 'book' },
    ]);
    assert.equal(result.rowsAffected, 2);
    const sneaky = await client.query('SELECT count(*) AS n FROM items WHERE name = ?', ["x' OR '1'='1"]);
    assert.deepEqual(sneaky.rows, [{ n: 0 }]);
    const write = await client.query('INSERT INTO items (name) VALUES (?)', ['lamp']);
    assert.equal(write.rowsAffected, 1);
    assert.equal(write.lastInsertId, 4);
    await client.query('DELETE FROM items WHERE id = 4');
  });

  test('query() collects a result of many chunks', async () => {
    const result = await client.query(
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25000) SELECT x FROM c',
    );
    assert.equal(result.rows.length, 25_000);
    assert.equal(result.rowsAffected, 25_000);
    assert.deepEqual(result.rows[24_999], { x: 25_000 });
  });

  test('stream() yields chunks of chunkSize; the last has hasMore false and rowsAffected', async () => {
    const stream = client.stream(
      'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2500) SELECT x FROM c',
      [],
      { chunkSize: 1000 },
    );
    const sizes: number[] = [];
    let last;
    for await (const chunk of stream) {
      sizes.push(chunk.rows.length);
      last = chunk;
    }
    assert.deepEqual(sizes, [1000, 1000, 500]);
    assert.equal(last?.hasMore, false);
    assert.equal(last?.rowsAffected, 2500);
    assert.equal(stream.rowsReceived, 2500);
    const names = [];
    for await (const row of client
      .stream<{ id: number; name: string }>('SELECT id, name FROM items ORDER BY id')
      .rows())
      names.push(row.name);
    assert.deepEqual(names, ['pen', 'book', 'cup']);
  });

  test('breaking out of a stream sends cancel: the server stops the query', async () => {
    const stream = client.stream(ENDLESS_ROWS, [], { chunkSize: 100 });
    let chunks = 0;
    for await (const chunk of stream) {
      assert.equal(chunk.hasMore, true);
      if (++chunks === 3) break;
    }
    const stopped = await eventually(
      () =>
        messages.find(
          (m) =>
            m.id === stream.id &&
            m.type === 'error' &&
            (m.payload as { code: string }).code === 'QUERY_CANCELLED',
        ),
      'the QUERY_CANCELLED answer to the cancel',
    );
    assert.ok(stopped);
    const ack = messages.find(
      (m) =>
        m.type === 'data' && m.id?.startsWith('cancel-') && (m.payload as { cancelled?: boolean }).cancelled,
    );
    assert.ok(ack, 'the server acknowledged the cancel with cancelled: true');
    // The connection is free for more work.
    assert.deepEqual((await client.query('SELECT 1 AS one')).rows, [{ one: 1 }]);
  });

  test('a slow reader pauses the socket: rows stay on the server until they are read (backpressure)', async () => {
    // 40 000 rows of 2 KB. Unread, they would all arrive within a few seconds (about 13 000 in 3 s
    // here with the buffer limit lifted); held back, only what TCP buffers in between arrives.
    const stream = client.stream(
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 40000) SELECT x, printf('%02000d', x) AS pad FROM c",
      [],
      { chunkSize: 200, highWaterMark: 2 },
    );
    const iterator = stream[Symbol.asyncIterator]();
    const first = await within(iterator.next(), 20_000, 'first chunk');
    assert.equal(first.done, false);
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const buffered = stream.rowsReceived;
    assert.ok(buffered < 6000, `the client read ${buffered} rows while its consumer took 200`);
    let total = first.value ? first.value.rows.length : 0;
    for (let next = await iterator.next(); !next.done; next = await iterator.next())
      total += next.value.rows.length;
    assert.equal(total, 40_000);
  });

  test('an AbortSignal cancels a running query', async () => {
    const abort = new AbortController();
    const running = client.query(ENDLESS_COUNT, [], { signal: abort.signal });
    setTimeout(() => abort.abort(), 100);
    await assert.rejects(
      running,
      (err: unknown) => err instanceof RustyDBError && err.code === 'QUERY_CANCELLED',
    );
    assert.deepEqual((await client.query('SELECT 2 AS two')).rows, [{ two: 2 }]);
  });

  test('a request timeout fails the request with REQUEST_TIMEOUT and cancels it on the server', async () => {
    const before = messages.length;
    await assert.rejects(
      client.query(ENDLESS_COUNT, [], { timeout: 150 }),
      (err: unknown) => err instanceof RustyDBError && err.code === 'REQUEST_TIMEOUT' && err.retryable,
    );
    await eventually(
      () =>
        messages
          .slice(before)
          .some((m) => m.type === 'error' && (m.payload as { code: string }).code === 'QUERY_CANCELLED'),
      'the server stopping the timed-out query',
    );
  });

  test('batch(): statements on their own, or all or nothing in a transaction', async () => {
    const results = await client.batch([
      'SELECT count(*) FROM items',
      { sql: 'SELECT name FROM items WHERE id = ?', params: [2] },
      'SELECT * FROM missing_table',
    ]);
    assert.equal(results.length, 3);
    assert.ok(results[0]!.ok && results[1]!.ok);
    if (results[1]!.ok) assert.deepEqual(results[1]!.rows, [{ name: 'book' }]);
    const failed = results[2]!;
    assert.equal(failed.ok, false);
    if (!failed.ok) assert.equal(failed.error.code, 'TABLE_NOT_FOUND');

    await assert.rejects(
      client.batch(
        [
          { sql: 'INSERT INTO items (name) VALUES (?)', params: ['tx-1'] },
          { sql: 'INSERT INTO items (name) VALUES (NULL)' },
        ],
        { transaction: true },
      ),
      (err: unknown) => err instanceof RustyDBError && err.code === 'QUERY_ERROR' && err.details?.index === 1,
    );
    const count = await client.query("SELECT count(*) AS n FROM items WHERE name = 'tx-1'");
    assert.deepEqual(count.rows, [{ n: 0 }], 'nothing of the failed transaction remains');
  });

  test('errors are RustyDBError with the server code and retryable from the protocol table', async () => {
    const err = await client.query('SELECT * FROM nope').catch((e: unknown) => e);
    assert.ok(err instanceof RustyDBError);
    assert.equal(err.code, 'TABLE_NOT_FOUND');
    assert.equal(err.retryable, false);
    assert.deepEqual(err.details, { table: 'nope' });
    const syntax = await client.query('SELEC 1').catch((e: unknown) => e);
    assert.ok(syntax instanceof RustyDBError && syntax.code === 'QUERY_ERROR');
    const denied = await client.query('ATTACH DATABASE x AS y').catch((e: unknown) => e);
    assert.ok(denied instanceof RustyDBError && denied.code === 'PERMISSION_DENIED');
    for (const [code, spec] of Object.entries(ERROR_CODES)) {
      assert.equal(new RustyDBError(code as keyof typeof ERROR_CODES, 'x').retryable, spec.retryable, code);
    }
    for (const [code, spec] of Object.entries(CLIENT_ERROR_CODES)) {
      assert.equal(
        new RustyDBError(code as keyof typeof CLIENT_ERROR_CODES, 'x').retryable,
        spec.retryable,
        code,
      );
    }
  });

  test('a wrong password fails connect() with AUTH_FAILED at once, without retrying', async () => {
    const started = Date.now();
    const err = await connect({
      url: ts.server.url,
      username: 'admin',
      password: 'wrong password',
      reconnectDelay: 2000,
    }).catch((e: unknown) => e);
    assert.ok(err instanceof RustyDBError, String(err));
    assert.equal(err.code, 'AUTH_FAILED');
    assert.equal(err.status, 401);
    assert.equal(err.retryable, false);
    assert.ok(Date.now() - started < 1900, 'no reconnect delay was waited');
  });

  test('a refused token closes the client with AUTH_FAILED (1008 is not retried)', async () => {
    const bad = new RustyDBClient({ url: ts.server.url, token: 'not.a.token', reconnectDelay: 10 });
    const err = await bad.ready().catch((e: unknown) => e);
    assert.ok(err instanceof RustyDBError);
    assert.equal(err.code, 'AUTH_FAILED');
    assert.equal(err.closeCode, 1008);
    assert.equal(bad.state, 'closed');
    await assert.rejects(
      bad.query('SELECT 1'),
      (e: unknown) => e instanceof RustyDBError && e.code === 'AUTH_FAILED',
    );
  });

  test('close() is final and safe twice; later requests fail with CLIENT_CLOSED', async () => {
    const other = await openClient(ts.server.url, { password: ADMIN_PASSWORD });
    await other.close();
    await other.close();
    assert.equal(other.state, 'closed');
    await assert.rejects(
      other.query('SELECT 1'),
      (e: unknown) => e instanceof RustyDBError && e.code === 'CLIENT_CLOSED',
    );
  });
});

describe('decisions without a server', () => {
  test('which close codes reconnect is decided by RETRYABLE_CLOSE_CODES', () => {
    for (const code of RETRYABLE_CLOSE_CODES)
      assert.equal(closeDisposition(code, undefined, false), 'reconnect');
    for (const code of [1000, 1002, 1003, 1007, 1009])
      assert.equal(closeDisposition(code, undefined, true), 'fatal');
    const expired = new RustyDBError('AUTH_EXPIRED', 'token expired');
    assert.equal(closeDisposition(1008, expired, true), 'reauthenticate');
    assert.equal(closeDisposition(1008, expired, false), 'fatal');
    assert.equal(closeDisposition(1008, new RustyDBError('RATE_LIMIT_EXCEEDED', 'flood'), true), 'fatal');
    assert.equal(closeDisposition(1008, new RustyDBError('AUTH_FAILED', 'bad'), true), 'fatal');
  });

  test('server URLs are accepted as http(s) or ws(s), with or without the stream path', () => {
    assert.deepEqual(resolveUrls('http://db.example:8080'), {
      httpUrl: 'http://db.example:8080',
      wsUrl: 'ws://db.example:8080/api/v1/stream',
      metricsUrl: 'ws://db.example:8080/api/v1/metrics/stream',
    });
    assert.deepEqual(resolveUrls('wss://db.example/api/v1/stream'), {
      httpUrl: 'https://db.example',
      wsUrl: 'wss://db.example/api/v1/stream',
      metricsUrl: 'wss://db.example/api/v1/metrics/stream',
    });
    assert.deepEqual(resolveUrls('https://example.org/rusty/'), {
      httpUrl: 'https://example.org/rusty',
      wsUrl: 'wss://example.org/rusty/api/v1/stream',
      metricsUrl: 'wss://example.org/rusty/api/v1/metrics/stream',
    });
  });
});
