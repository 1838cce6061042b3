/**
 * Hostile messages: oversized, deeply nested, not JSON, binary, not UTF-8, prototype-polluting, with
 * absurd ids — over the WebSocket and as HTTP bodies. Each gets its exact answer (an error code or a
 * close code), the server keeps serving everyone else, and Object.prototype stays clean.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { assertAlive, snapshot } from './helpers.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  let initial: Record<string, unknown[][]>;
  const LIMIT = 256 * 1024;

  before(async () => {
    ts = await startTestServer(
      { websocket_max_message_size: LIMIT, enable_rate_limiting: false },
      { engine },
    );
    await sql(ts, `CREATE TABLE kept (id ${dialect.autoId}, v TEXT)`);
    await sql(ts, "INSERT INTO kept (v) VALUES ('x')");
    initial = await snapshot(ts, ['kept'], 'id');
  });

  after(() => ts.close());

  const nested = (depth: number, open = '[', close = ']'): string => open.repeat(depth) + close.repeat(depth);

  test('a message over websocket_max_message_size is closed with 1009 before it is parsed', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(
      JSON.stringify({ type: 'query', id: 'big', payload: { sql: `SELECT '${'a'.repeat(LIMIT)}'` } }),
    );
    assert.equal((await c.closed()).code, 1009);
    assert.equal(c.received.filter((m) => m.id === 'big').length, 0);
  });

  test('100 000 nested arrays as the whole message: INVALID_MESSAGE, socket open', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(nested(100_000));
    const m = await c.next((x) => x.type === 'error', 5000);
    assert.equal(m.payload.code, 'INVALID_MESSAGE');
    assert.equal(m.payload.message, 'message must be a JSON object');
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  });

  test('100 000 nested arrays as a parameter: INVALID_MESSAGE with the id, nothing runs', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(
      `{"type":"query","id":"deep","payload":{"sql":"DELETE FROM kept","params":[${nested(100_000)}]}}`,
    );
    const m = await c.reply('deep', 5000);
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'INVALID_MESSAGE');
    assert.deepEqual(await snapshot(ts, ['kept'], 'id'), initial);
  });

  test('40 000 nested objects in a ping payload are accepted as an opaque payload', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(`{"type":"ping","id":"deep-ping","payload":${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}}`);
    assert.equal((await c.reply('deep-ping', 5000)).type, 'pong');
  });

  test('text that is not JSON: INVALID_MESSAGE, socket open', async () => {
    const c = await ts.connectAuthed();
    for (const text of ['hello', '{"type":', '\u0000\u0001', '', ' ', 'null', '[]', '42', '"query"']) {
      c.sendRaw(text);
      const m = await c.next((x) => x.type === 'error');
      assert.equal(m.payload.code, 'INVALID_MESSAGE', JSON.stringify(text));
    }
    assert.equal(c.isOpen, true);
  });

  test('an unknown type, a numeric type and a missing payload are INVALID_MESSAGE with the id', async () => {
    const c = await ts.connectAuthed();
    for (const [i, message] of [
      { type: 'drop_database' },
      { type: 7 },
      { type: 'query' },
      { type: 'query', payload: { sql: 42 } },
      { type: 'batch', payload: { queries: 'DELETE FROM kept' } },
    ].entries()) {
      c.send({ ...message, id: `bad-${i}` });
      const m = await c.reply(`bad-${i}`);
      assert.equal(m.payload.code, 'INVALID_MESSAGE', JSON.stringify(message));
    }
    assert.deepEqual(await snapshot(ts, ['kept'], 'id'), initial);
  });

  test('an id longer than 128 characters is not echoed back', async () => {
    const c = await ts.connectAuthed();
    c.send({ type: 'ping', id: 'i'.repeat(10_000) });
    const m = await c.next();
    assert.equal(m.payload.code, 'INVALID_MESSAGE');
    assert.equal(m.id, undefined);
  });

  test('__proto__ and constructor keys in a message pollute nothing', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(
      '{"type":"ping","id":"proto","payload":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}}},"__proto__":{"isAdmin":true}}',
    );
    assert.equal((await c.reply('proto')).type, 'pong');
    c.sendRaw(
      '{"type":"query","id":"proto-q","payload":{"sql":"SELECT 1","__proto__":{"sql":"DELETE FROM kept"}}}',
    );
    const q = await c.reply('proto-q');
    assert.equal(q.type, 'data');
    assert.deepEqual(q.payload.rows, [[1]]);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
    assert.deepEqual(await snapshot(ts, ['kept'], 'id'), initial);
  });

  test('a binary frame is closed with 1003', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(Buffer.from('{"type":"ping"}'), { binary: true });
    assert.equal((await c.closed()).code, 1003);
  });

  test('invalid UTF-8 is closed with 1007', async () => {
    const c = await ts.connectAuthed();
    c.sendRaw(Buffer.from([0x7b, 0xc3, 0x28, 0x7d]), { binary: false });
    assert.equal((await c.closed()).code, 1007);
  });

  test('before authentication, hostile messages get AUTH_REQUIRED or INVALID_MESSAGE and run nothing', async () => {
    const c = await ts.connect();
    c.send({ type: 'query', id: 'unauth', payload: { sql: 'DELETE FROM kept' } });
    assert.equal((await c.reply('unauth')).payload.code, 'AUTH_REQUIRED');
    c.sendRaw(nested(10_000));
    assert.equal(
      (await c.next((m) => m.type === 'error' && m.id === undefined)).payload.code,
      'INVALID_MESSAGE',
    );
    assert.deepEqual(await snapshot(ts, ['kept'], 'id'), initial);
  });

  test('HTTP: a body over the limit is 413', async () => {
    const res = await ts.http('/api/v1/query', {
      rawBody: JSON.stringify({ sql: `SELECT '${'a'.repeat(LIMIT)}'` }),
    });
    assert.equal(res.status, 413);
  });

  test('HTTP: 100 000 nested arrays as a body is 400 INVALID_MESSAGE', async () => {
    const res = await ts.http('/api/v1/query', { rawBody: nested(100_000) });
    assert.equal(res.status, 400);
    assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
  });

  test('HTTP: 100 000 nested objects inside a body is 400 INVALID_MESSAGE', async () => {
    const res = await ts.http('/api/v1/query', {
      rawBody: `{"sql":"SELECT 1","params":[${'{"a":'.repeat(40_000)}1${'}'.repeat(40_000)}]}`,
    });
    assert.equal(res.status, 400);
    assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
  });

  test('HTTP: a __proto__ key in a body is refused with 400', async () => {
    const res = await ts.http('/api/v1/query', {
      rawBody: '{"sql":"SELECT 1","__proto__":{"polluted":"yes"}}',
    });
    assert.equal(res.status, 400);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test('HTTP: a login body that is not JSON, or JSON of the wrong shape, is 400', async () => {
    for (const rawBody of [
      'username=admin&password=x',
      '{"username":["admin"],"password":"x"}',
      '{"username":"admin"}',
    ]) {
      const res = await ts.http('/api/v1/auth/login', { rawBody, token: null });
      assert.equal(res.status, 400, rawBody);
      assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
    }
  });

  test('after every hostile message the server serves and the data is unchanged', async () => {
    assert.deepEqual(await snapshot(ts, ['kept'], 'id'), initial);
    await assertAlive(ts);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
