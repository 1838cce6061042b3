/**
 * The endpoints that name what they stream in their URL start streaming as soon as the connection is
 * authenticated: a collection's watch endpoint and the metrics stream, with resume point and interval as
 * query parameters. Explicit `watch` and `subscribe` messages keep working beside them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { ServerMsg, TestClient } from './helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  const created = await ts.http('/api/v1/documents/collections', { body: { name: 'orders' } });
  assert.equal(created.status, 201);
});
after(() => ts.close());

const WATCH = '/api/v1/documents/collections/orders/watch';
const METRICS = '/api/v1/metrics/stream';

async function insert(document: Record<string, unknown>): Promise<void> {
  const res = await ts.http('/api/v1/documents/collections/orders/insert', { body: { document } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** Opens `path` with the token (and `query`) in the URL. */
function open(path: string, query = ''): Promise<TestClient> {
  return ts.connect({ path: query ? `${path}?${query}` : path });
}

function withToken(query: Record<string, string> = {}): string {
  return new URLSearchParams({ token: ts.token, ...query }).toString();
}

const change = (id: string) => (m: ServerMsg) => m.type === 'change' && m.id === id;

describe("a collection's watch endpoint", () => {
  test('with the token in the URL, the change stream starts at once, named after the collection', async () => {
    const c = await open(WATCH, withToken());
    assert.equal((await c.next()).type, 'auth_success');
    const subscribed = await c.next((m) => m.type === 'subscribed');
    assert.equal(subscribed.id, 'orders');
    assert.equal(subscribed.payload.kind, 'collection');
    await insert({ _id: 'o1', total: 5 });
    const event = await c.next(change('orders'));
    assert.equal(event.payload.operationType, 'insert');
    assert.deepEqual(event.payload.documentKey, { _id: 'o1' });
    c.close();
  });

  test('resumeAfter and fullDocument come from the query string', async () => {
    const first = await open(WATCH, withToken());
    await first.next((m) => m.type === 'subscribed');
    await insert({ _id: 'o2', total: 1 });
    const seen = await first.next(change('orders'));
    first.close();
    await ts.http('/api/v1/documents/collections/orders/update', {
      body: { filter: { _id: 'o2' }, update: { $set: { total: 2 } } },
    });
    const token = (seen.payload._id as { _data: string })._data;
    const resumed = await open(WATCH, withToken({ resumeAfter: token, fullDocument: 'updateLookup' }));
    const subscribed = await resumed.next((m) => m.type === 'subscribed');
    assert.equal(subscribed.id, 'orders');
    // The update made while no one watched, with the document after it.
    const update = await resumed.next(change('orders'));
    assert.equal(update.payload.operationType, 'update');
    assert.deepEqual(update.payload.fullDocument, { _id: 'o2', total: 2 });
    resumed.close();
  });

  test('a bad parameter is an INVALID_MESSAGE error for the stream; the socket stays usable', async () => {
    const c = await open(WATCH, withToken({ fullDocument: 'sometimes' }));
    const error = await c.next((m) => m.type === 'error');
    assert.equal(error.id, 'orders');
    assert.equal(error.payload.code, 'INVALID_MESSAGE');
    assert.match(error.payload.message ?? '', /fullDocument/);
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
    c.close();
  });

  test('explicit watch messages keep working, beside the automatic stream or instead of it', async () => {
    // With the token in an auth message and nothing to stream in the URL, nothing starts by itself.
    const quiet = await open(WATCH);
    quiet.send({ type: 'auth', id: 'a', payload: { token: ts.token } });
    await quiet.reply('a');
    quiet.send({ type: 'watch', id: 'mine' });
    assert.equal((await quiet.reply('mine')).type, 'subscribed');
    const both = await open(WATCH, withToken({ id: 'auto' }));
    await both.next((m) => m.type === 'subscribed' && m.id === 'auto');
    both.send({ type: 'watch', id: 'explicit' });
    assert.equal((await both.reply('explicit')).type, 'subscribed');
    await insert({ _id: 'o3' });
    assert.equal((await quiet.next(change('mine'))).payload.operationType, 'insert');
    assert.equal((await both.next(change('auto'))).payload.operationType, 'insert');
    assert.equal((await both.next(change('explicit'))).payload.operationType, 'insert');
    await sleep(200);
    assert.equal(
      quiet.received.filter((m) => m.type === 'subscribed').length,
      1,
      'no automatic stream without a token or parameters in the URL',
    );
    quiet.close();
    both.close();
  });
});

describe('the metrics stream', () => {
  test('with the token in the URL, readings start at once, with the interval and metrics asked for', async () => {
    const c = await open(
      METRICS,
      withToken({ interval_ms: '200', metrics: 'cpu_percent,connections_total' }),
    );
    assert.equal((await c.next()).type, 'auth_success');
    const subscribed = await c.next((m) => m.type === 'subscribed');
    assert.equal(subscribed.id, 'metrics');
    assert.equal(subscribed.payload.interval_ms, 200);
    const started = Date.now();
    for (let i = 0; i < 3; i++) {
      const data = await c.next((m) => m.type === 'data' && m.id === 'metrics');
      assert.deepEqual(Object.keys(data.payload.metrics as object).sort(), [
        'connections_total',
        'cpu_percent',
      ]);
    }
    assert.ok(Date.now() - started < 2000, 'readings every 200 ms, not every second');
    // An explicit subscription beside it.
    c.send({ type: 'subscribe', id: 'mine', payload: { metrics: ['queries_total'], interval_ms: 100 } });
    assert.equal((await c.reply('mine')).type, 'subscribed');
    c.close();
  });

  test('an auth message with an interval in the URL starts the readings once authenticated', async () => {
    const c = await open(METRICS, 'interval_ms=250');
    c.send({ type: 'auth', id: 'a', payload: { token: ts.token } });
    assert.equal((await c.reply('a')).type, 'auth_success');
    assert.equal((await c.next((m) => m.type === 'subscribed')).payload.interval_ms, 250);
    c.close();
  });

  test('an interval out of range is refused with INVALID_MESSAGE', async () => {
    const c = await open(METRICS, withToken({ interval_ms: '5' }));
    const error = await c.next((m) => m.type === 'error');
    assert.equal(error.id, 'metrics');
    assert.equal(error.payload.code, 'INVALID_MESSAGE');
    c.close();
  });
});
