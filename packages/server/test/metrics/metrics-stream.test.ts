/**
 * `ws /api/v1/metrics/stream` and the GraphQL metric subscriptions, checked against load the test
 * itself generates: queries run, sockets opened, rows streamed, subscriptions made. Every figure comes
 * from the one sampler the server shares between its surfaces.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import { createRole, createUser } from '../security/helpers.ts';
import { Events, disposeClients, wsClient } from '../graphql/helpers.ts';

const PATH = '/api/v1/metrics/stream';
let ts: TestServer;
let reader: string;
let monitor: string;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE load (id INTEGER PRIMARY KEY, v INTEGER)');
  await sql(
    ts,
    'INSERT INTO load (v) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) SELECT x FROM c',
  );
  await createRole(ts, 'load_reader', [{ privilege: 'SELECT', table: 'load' }]);
  reader = await createUser(ts, 'reader', ['load_reader']);
  monitor = await createUser(ts, 'watcher', ['monitor']);
});

afterEach(async () => {
  await disposeClients();
});

after(async () => {
  await ts.close();
});

type Metrics = Record<string, number | Record<string, number>>;

async function metricsSocket(token = ts.token): Promise<TestClient> {
  const socket = await ts.connect({ path: PATH, token });
  const ok = await socket.next((m) => m.type === 'auth_success' || m.type === 'auth_error');
  assert.equal(ok.type, 'auth_success', JSON.stringify(ok));
  return socket;
}

function subscribe(socket: TestClient, id: string, payload: Record<string, unknown>): void {
  socket.send({ type: 'subscribe', id, payload });
}

async function nextData(socket: TestClient, id: string, timeoutMs = 3000): Promise<Metrics> {
  const m = await socket.next((x) => x.id === id && (x.type === 'data' || x.type === 'error'), timeoutMs);
  assert.equal(m.type, 'data', JSON.stringify(m));
  return m.payload.metrics as Metrics;
}

/** Reads data messages until `predicate` holds for one (bounded). */
async function until(
  socket: TestClient,
  id: string,
  predicate: (m: Metrics) => boolean,
  timeoutMs = 5000,
): Promise<Metrics> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const metrics = await nextData(socket, id, Math.max(1, deadline - Date.now()));
    if (predicate(metrics)) return metrics;
  }
}

describe('access', () => {
  test('authenticated like /api/v1/stream: ?token= or an auth message first', async () => {
    const viaUrl = await metricsSocket();
    subscribe(viaUrl, 'a', { metrics: ['cpu_percent'] });
    assert.equal(typeof (await nextData(viaUrl, 'a')).cpu_percent, 'number');

    const viaMessage = await ts.connect({ path: PATH });
    viaMessage.send({ type: 'subscribe', id: 'early', payload: {} });
    assert.equal((await viaMessage.reply('early')).payload.code, 'AUTH_REQUIRED');
    viaMessage.send({ type: 'auth', id: 'auth', payload: { token: monitor } });
    assert.equal((await viaMessage.reply('auth')).type, 'auth_success');
    subscribe(viaMessage, 'b', { metrics: ['memory_rss_bytes'] });
    assert.equal((await viaMessage.next((m) => m.id === 'b')).type, 'subscribed');
    assert.ok(((await nextData(viaMessage, 'b')).memory_rss_bytes as number) > 1_000_000);
  });

  test('MONITOR is required: PERMISSION_DENIED otherwise, and the socket stays usable', async () => {
    const socket = await metricsSocket(reader);
    subscribe(socket, 'm', {});
    const refused = await socket.reply('m');
    assert.equal(refused.type, 'error');
    assert.equal(refused.payload.code, 'PERMISSION_DENIED');
    socket.send({ type: 'ping', id: 'p' });
    assert.equal((await socket.reply('p')).type, 'pong');
  });

  test('a bad token is refused with auth_error and 1008', async () => {
    const socket = await ts.connect({ path: PATH, token: 'nope' });
    assert.equal((await socket.next()).type, 'auth_error');
    assert.equal((await socket.closed()).code, 1008);
  });

  test('metric names and the interval are checked (100 ms to 60 s)', async () => {
    const socket = await metricsSocket();
    for (const [id, payload] of [
      ['unknown', { metrics: ['cpu_percent', 'bogus'] }],
      ['fast', { interval_ms: 50 }],
      ['slow', { interval_ms: 60_001 }],
    ] as const) {
      subscribe(socket, id, payload);
      const reply = await socket.reply(id);
      assert.equal(reply.payload.code, 'INVALID_MESSAGE', `${id}: ${JSON.stringify(reply)}`);
    }
  });

  test('a revoked MONITOR grant ends the subscription at its next tick', async () => {
    await createRole(ts, 'temp_monitor', [{ privilege: 'MONITOR' }]);
    const token = await createUser(ts, 'temp_watcher', ['temp_monitor']);
    const socket = await metricsSocket(token);
    subscribe(socket, 'w', { metrics: ['cpu_percent'], interval_ms: 100 });
    await nextData(socket, 'w');
    await ts.http('/api/v1/roles/temp_monitor/grants', { method: 'DELETE', body: { privilege: 'MONITOR' } });
    const m = await socket.next((x) => x.id === 'w' && x.type === 'error', 3000);
    assert.equal(m.payload.code, 'PERMISSION_DENIED');
  });
});

describe('values follow the load', () => {
  test('queries: N queries raise queries_total by at least N, and the rate and latencies show them', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 'q', {
      metrics: [
        'queries_total',
        'queries_per_sec',
        'query_latency_p50_ms',
        'query_latency_p95_ms',
        'query_latency_p99_ms',
      ],
      interval_ms: 250,
    });
    const start = (await nextData(socket, 'q')).queries_total as number;
    const N = 300;
    const client = await ts.connectAuthed();
    for (let i = 0; i < N; i++)
      client.send({
        type: 'query',
        id: `q${i}`,
        payload: { sql: 'SELECT v FROM load WHERE id = ?', params: [1 + (i % 2000)] },
      });
    for (let i = 0; i < N; i++) await client.reply(`q${i}`, 10_000);
    const seen = await until(socket, 'q', (m) => (m.queries_total as number) >= start + N);
    assert.ok(
      (seen.queries_total as number) - start < N + 50,
      'the count matches the load (few other statements ran)',
    );
    const p50 = seen.query_latency_p50_ms as number;
    const p99 = seen.query_latency_p99_ms as number;
    assert.ok(
      p50 >= 0 &&
        p50 <= (seen.query_latency_p95_ms as number) &&
        (seen.query_latency_p95_ms as number) <= p99,
    );
    // Some interval covered the burst: its rate is the burst's share of that interval.
    const rates: number[] = [];
    socket.received
      .filter((m) => m.id === 'q' && m.type === 'data')
      .forEach((m) => rates.push((m.payload.metrics as Metrics).queries_per_sec as number));
    assert.ok(Math.max(...rates) > 0, `queries_per_sec saw the burst: ${rates.join(', ')}`);
  });

  test('connections: K sockets opened show in connections_total and per endpoint, and go when closed', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 'c', { metrics: ['connections_total', 'connections_by_endpoint'], interval_ms: 100 });
    const base = await nextData(socket, 'c');
    const streamBase = (base.connections_by_endpoint as Record<string, number>)['/api/v1/stream'] ?? 0;
    const K = 5;
    const opened: TestClient[] = [];
    for (let i = 0; i < K; i++) opened.push(await ts.connectAuthed());
    const up = await until(
      socket,
      'c',
      (m) =>
        ((m.connections_by_endpoint as Record<string, number>)['/api/v1/stream'] ?? 0) === streamBase + K,
    );
    assert.equal(up.connections_total, (base.connections_total as number) + K);
    assert.equal(
      (up.connections_by_endpoint as Record<string, number>)[PATH],
      (base.connections_by_endpoint as Record<string, number>)[PATH],
    );
    for (const c of opened) c.close();
    await until(socket, 'c', (m) => (m.connections_total as number) === base.connections_total);
  });

  test('messages in and out count the messages sent and answered', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 'm', {
      metrics: ['messages_in_total', 'messages_out_total', 'messages_in_per_sec'],
      interval_ms: 200,
    });
    const base = await nextData(socket, 'm');
    const client = await ts.connectAuthed();
    const N = 100;
    for (let i = 0; i < N; i++) client.send({ type: 'ping', id: `p${i}` });
    for (let i = 0; i < N; i++) await client.reply(`p${i}`);
    const seen = await until(
      socket,
      'm',
      (m) => (m.messages_in_total as number) >= (base.messages_in_total as number) + N,
    );
    assert.ok((seen.messages_out_total as number) >= (base.messages_out_total as number) + N);
  });

  test('rows streamed: a 2000-row query adds 2000 rows', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 'r', { metrics: ['rows_streamed_total'], interval_ms: 100 });
    const base = (await nextData(socket, 'r')).rows_streamed_total as number;
    const client = await ts.connectAuthed();
    const result = await client.query('SELECT * FROM load', { chunk_size: 500 });
    assert.equal(result.rows.length, 2000);
    await until(socket, 'r', (m) => (m.rows_streamed_total as number) >= base + 2000);
  });

  test('subscriptions, change-log head and database size', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 's', {
      metrics: ['subscriptions_active', 'changelog_head', 'changelog_lag', 'database_size_bytes'],
      interval_ms: 100,
    });
    // The sockets of earlier tests close in the background: start from a count that holds still.
    let base = await nextData(socket, 's');
    for (let steady = 0; steady < 3;) {
      const next = await nextData(socket, 's');
      steady = next.subscriptions_active === base.subscriptions_active ? steady + 1 : 0;
      base = next;
    }
    assert.ok((base.database_size_bytes as number) > 0);
    const client = await ts.connectAuthed();
    for (const id of ['s1', 's2', 's3']) {
      client.send({ type: 'subscribe', id, payload: { table: 'load' } });
      await client.next((m) => m.id === id && m.type === 'subscribed');
    }
    await until(socket, 's', (m) => m.subscriptions_active === (base.subscriptions_active as number) + 3);
    await sql(ts, 'UPDATE load SET v = v + 1 WHERE id <= 10');
    const after = await until(
      socket,
      's',
      (m) => (m.changelog_head as number) >= (base.changelog_head as number) + 10,
    );
    assert.ok((after.changelog_lag as number) >= 0);
  });

  test('the interval is honoured and unsubscribe stops the data', async () => {
    const socket = await metricsSocket();
    subscribe(socket, 'i', { metrics: ['cpu_percent'], interval_ms: 200 });
    await nextData(socket, 'i');
    const started = Date.now();
    await nextData(socket, 'i');
    await nextData(socket, 'i');
    assert.ok(Date.now() - started >= 350, `two intervals of 200 ms took ${Date.now() - started} ms`);
    socket.send({ type: 'unsubscribe', id: 'i' });
    await socket.next((m) => m.id === 'i' && m.type === 'unsubscribed');
    const count = socket.received.filter((m: ServerMsg) => m.id === 'i' && m.type === 'data').length;
    await sleep(500);
    assert.equal(socket.received.filter((m: ServerMsg) => m.id === 'i' && m.type === 'data').length, count);
  });
});

describe('GraphQL metric subscriptions', () => {
  test('systemMetrics picks metrics and reports per-endpoint connections with labels', async () => {
    const events = new Events<{
      systemMetrics: { values: { name: string; value: number; labels: Record<string, string> | null }[] };
    }>(
      wsClient(ts, monitor),
      'subscription { systemMetrics(intervalSeconds: 0.2, metricTypes: [QUERIES_TOTAL, CONNECTIONS_BY_ENDPOINT]) { timestamp values { name value labels } } }',
    );
    const first = (await events.data()).systemMetrics.values;
    const queries = first.find((v) => v.name === 'QUERIES_TOTAL')!.value;
    const ws = first.find(
      (v) => v.name === 'CONNECTIONS_BY_ENDPOINT' && v.labels?.endpoint === '/graphql/ws',
    );
    assert.ok(ws && ws.value >= 1, JSON.stringify(first));
    for (let i = 0; i < 20; i++) await sql(ts, 'SELECT count(*) FROM load');
    for (let i = 0; i < 20; i++) {
      const values = (await events.data()).systemMetrics.values;
      if (values.find((v) => v.name === 'QUERIES_TOTAL')!.value >= queries + 20) return;
    }
    assert.fail('QUERIES_TOTAL did not rise by 20');
  });

  test('metricUpdated: queryRate rises under load', async () => {
    const events = new Events<{ metricUpdated: { queryRate: number; activeConnections: number } }>(
      wsClient(ts, monitor),
      'subscription { metricUpdated(intervalMs: 300) { queryRate activeConnections } }',
    );
    await events.data();
    const client = await ts.connectAuthed();
    const loadUntil = Date.now() + 700;
    let i = 0;
    while (Date.now() < loadUntil) {
      client.send({ type: 'query', id: `l${i}`, payload: { sql: 'SELECT v FROM load WHERE id = 1' } });
      await client.reply(`l${i++}`);
    }
    let best = 0;
    for (let n = 0; n < 4; n++) best = Math.max(best, (await events.data()).metricUpdated.queryRate);
    assert.ok(best >= 10, `queryRate ${best} while running ${i} queries in 0.7 s`);
  });

  test('an interval outside 100 ms to 60 s is refused', async () => {
    const events = new Events(
      wsClient(ts, monitor),
      'subscription { metricUpdated(intervalMs: 10) { cpu } }',
    );
    assert.equal((await events.next()).errors?.[0]?.extensions?.code, 'INVALID_MESSAGE');
  });
});
