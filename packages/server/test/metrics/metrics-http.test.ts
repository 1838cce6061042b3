/** `GET /metrics` (Prometheus text, access configurable) and `GET /api/v1/metrics` (JSON, MONITOR). */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { createRole, createUser } from '../security/helpers.ts';
import { METRIC_NAMES } from '../../src/metrics/sampler.ts';
import { asSuperuser, dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';

let ts: TestServer;
let reader: string;
let monitor: string;

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY)');
  await createRole(ts, 't_reader', [{ privilege: 'SELECT', table: 't' }]);
  reader = await createUser(ts, 'reader', ['t_reader']);
  monitor = await createUser(ts, 'watcher', ['monitor']);
});

after(async () => {
  await ts.close();
});

function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  assert.ok(line, `${name} missing from the exposition`);
  return Number(line.split(' ')[1]);
}

test('/metrics needs a MONITOR token by default: 401 without, 403 without the privilege', async () => {
  assert.equal((await ts.http('/metrics', { token: null })).status, 401);
  assert.equal((await ts.http('/metrics', { token: reader })).status, 403);
  const res = await fetch(`${ts.server.url}/metrics`, { headers: { authorization: `Bearer ${monitor}` } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
  const text = await res.text();
  assert.match(text, /^# HELP rustydb_queries_total /m);
  assert.match(text, /^process_cpu_user_seconds_total /m);
  assert.match(text, /^rustydb_query_latency_seconds\{quantile="0.99"\} /m);
});

test('Prometheus counters follow the statements run', async () => {
  const before = sample(
    await (
      await fetch(`${ts.server.url}/metrics`, { headers: { authorization: `Bearer ${monitor}` } })
    ).text(),
    'rustydb_queries_total',
  );
  for (let i = 0; i < 25; i++) await sql(ts, 'SELECT count(*) FROM t');
  const after = sample(
    await (
      await fetch(`${ts.server.url}/metrics`, { headers: { authorization: `Bearer ${monitor}` } })
    ).text(),
    'rustydb_queries_total',
  );
  assert.ok(after >= before + 25, `${before} -> ${after}`);
});

test('with metrics_public on, /metrics answers without a token; the JSON form still needs MONITOR', async () => {
  const open = await startTestServer({ metrics_public: true });
  try {
    const res = await open.http('/metrics', { token: null });
    assert.equal(res.status, 200);
    assert.match(String(res.body), /rustydb_connections/);
    assert.equal((await open.http('/api/v1/metrics', { token: null })).status, 401);
  } finally {
    await open.close();
  }
});

test('/api/v1/metrics returns every metric as JSON, for MONITOR holders only', async () => {
  assert.equal((await ts.http('/api/v1/metrics', { token: reader })).status, 403);
  const res = await ts.http('/api/v1/metrics', { token: monitor });
  assert.equal(res.status, 200);
  const body = res.body as {
    success: boolean;
    data: { timestamp: string; metrics: Record<string, unknown> };
  };
  assert.equal(body.success, true);
  assert.deepEqual(Object.keys(body.data.metrics).sort(), [...METRIC_NAMES].sort());
  assert.ok((body.data.metrics.memory_rss_bytes as number) > 0);
  assert.ok((body.data.metrics.queries_total as number) > 0);
});

postgresCases('PostgreSQL cases', () => {
  test("database_size_bytes is the PostgreSQL database's size", async () => {
    const engine = await engineConfig('postgres');
    const node = await startTestServer(engine);
    try {
      const metric = async (): Promise<number> => {
        const res = await node.http('/api/v1/metrics');
        assert.equal(res.status, 200, JSON.stringify(res.body));
        return (res.body as { data: { metrics: { database_size_bytes: number } } }).data.metrics
          .database_size_bytes;
      };
      const reported = await metric();
      const database = new URL(engine.database_url!).pathname.slice(1);
      const [result] = (await asSuperuser([`SELECT pg_database_size('${database}')::float8 AS size`])) as {
        rows: { size: number }[];
      }[];
      const actual = result!.rows[0]!.size;
      // An empty database is several megabytes of catalog; the figure is at most a few seconds old.
      assert.ok(actual > 1_000_000, String(actual));
      assert.ok(Math.abs(reported - actual) < actual / 10, `${reported} reported, ${actual} in PostgreSQL`);
      // Read again at once, the figure is reused rather than measured on every read.
      assert.equal(await metric(), reported);
    } finally {
      await node.close();
      await dropCaptureSlot(engine.database_url!);
    }
  });
});
