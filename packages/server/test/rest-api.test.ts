/** The HTTP surface: POST /api/v1/query and /api/v1/batch with a Bearer token, and the health endpoints. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { dialectOf, ENGINES, type EngineName } from './helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({}, { engine });
    const res = await ts.http('/api/v1/query', {
      body: { sql: 'CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER)' },
    });
    assert.equal(res.status, 200);
  });
  after(() => ts.close());

  interface Failure {
    success: false;
    error: { code: string; message: string; details?: unknown };
  }

  function errorCode(body: unknown): string {
    const b = body as Failure;
    assert.equal(b.success, false);
    assert.equal(typeof b.error.message, 'string');
    return b.error.code;
  }

  test('POST /api/v1/query: writes answer rows_affected and last_insert_id, reads columns and rows', async () => {
    const ins = await ts.http('/api/v1/query', {
      body: { sql: 'INSERT INTO kv (k, v) VALUES (?, ?), (?, ?)', params: ['a', 1, 'b', 2] },
    });
    assert.equal(ins.status, 200);
    assert.deepEqual(ins.body, {
      success: true,
      data: { columns: [], rows: [], rows_affected: 2, ...dialect.lastInsertId(2) },
    });
    const sel = await ts.http('/api/v1/query', { body: { sql: 'SELECT k, v FROM kv ORDER BY k' } });
    assert.equal(sel.status, 200);
    assert.deepEqual(sel.body, {
      success: true,
      data: {
        columns: ['k', 'v'],
        rows: [
          ['a', 1],
          ['b', 2],
        ],
        rows_affected: 2,
      },
    });
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'DELETE FROM kv' } })).status, 200);
  });

  test('POST /api/v1/batch answers {success, data:{results}}', async () => {
    const res = await ts.http('/api/v1/batch', {
      body: {
        queries: [
          { sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', params: ['x', 10] },
          { sql: 'SELECT * FROM missing' },
          { sql: 'SELECT v FROM kv WHERE k = ?', params: ['x'] },
        ],
      },
    });
    assert.equal(res.status, 200);
    const body = res.body as {
      success: boolean;
      data: { results: { status: string; code?: string; rows?: unknown }[] };
    };
    assert.equal(body.success, true);
    assert.deepEqual(
      body.data.results.map((r) => r.code ?? r.status),
      ['success', 'TABLE_NOT_FOUND', 'success'],
    );
    assert.deepEqual(body.data.results[2]!.rows, [[10]]);

    const tx = await ts.http('/api/v1/batch', {
      body: {
        transaction: true,
        queries: [{ sql: 'INSERT INTO kv (k, v) VALUES (?, ?)', params: ['y', 1] }, { sql: 'SELEC' }],
      },
    });
    assert.equal(tx.status, 400);
    assert.equal(errorCode(tx.body), 'QUERY_ERROR');
    const check = await ts.http('/api/v1/query', { body: { sql: "SELECT count(*) FROM kv WHERE k = 'y'" } });
    assert.deepEqual((check.body as { data: { rows: unknown } }).data.rows, [[0]]);
  });

  test('without a token: 401 AUTH_REQUIRED; with a bad token: 401 AUTH_FAILED', async () => {
    for (const path of ['/api/v1/query', '/api/v1/batch']) {
      const body = path.endsWith('query') ? { sql: 'SELECT 1' } : { queries: [{ sql: 'SELECT 1' }] };
      const none = await ts.http(path, { body, token: null });
      assert.equal(none.status, 401, path);
      assert.equal(errorCode(none.body), 'AUTH_REQUIRED');
      const bad = await ts.http(path, { body, token: 'garbage' });
      assert.equal(bad.status, 401, path);
      assert.equal(errorCode(bad.body), 'AUTH_FAILED');
    }
  });

  test('a body of the wrong shape is 400 INVALID_MESSAGE', async () => {
    for (const body of [{}, { sql: 5 }, { sql: '' }, { sql: 'SELECT ?', params: 'x' }]) {
      const res = await ts.http('/api/v1/query', { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(errorCode(res.body), 'INVALID_MESSAGE');
    }
    for (const body of [{}, { queries: [] }, { queries: [{ sql: 1 }] }]) {
      const res = await ts.http('/api/v1/batch', { body });
      assert.equal(res.status, 400, JSON.stringify(body));
      assert.equal(errorCode(res.body), 'INVALID_MESSAGE');
    }
  });

  test('a body that is not JSON is 400 INVALID_MESSAGE', async () => {
    for (const rawBody of ['{"sql": ', 'SELECT 1', '']) {
      const res = await ts.http('/api/v1/query', { rawBody });
      assert.equal(res.status, 400, JSON.stringify(rawBody));
      assert.equal(errorCode(res.body), 'INVALID_MESSAGE');
    }
  });

  test('SQL errors map to HTTP statuses: 404 TABLE_NOT_FOUND, 400 QUERY_ERROR, 403 PERMISSION_DENIED', async () => {
    const missing = await ts.http('/api/v1/query', { body: { sql: 'SELECT * FROM nowhere' } });
    assert.equal(missing.status, 404);
    assert.equal(errorCode(missing.body), 'TABLE_NOT_FOUND');
    const syntax = await ts.http('/api/v1/query', { body: { sql: 'SELEC 1' } });
    assert.equal(syntax.status, 400);
    assert.equal(errorCode(syntax.body), 'QUERY_ERROR');
    const denied = await ts.http('/api/v1/query', { body: { sql: `SELECT * FROM ${dialect.usersTable}` } });
    assert.equal(denied.status, 403);
    assert.equal(errorCode(denied.body), 'PERMISSION_DENIED');
  });

  test('GET /api/v1/health/liveness and /readiness are 200 without a token', async () => {
    const live = await ts.http('/api/v1/health/liveness', { token: null });
    assert.equal(live.status, 200);
    assert.equal((live.body as { status: string }).status, 'ok');
    const ready = await ts.http('/api/v1/health/readiness', { token: null });
    assert.equal(ready.status, 200);
    assert.equal((ready.body as { status: string }).status, 'ready');
  });

  test('an unknown endpoint is a JSON 404', async () => {
    const res = await ts.http('/api/v1/nothing-here', { token: null });
    assert.equal(res.status, 404);
    assert.equal((res.body as { success: boolean }).success, false);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
