/** server.close(): every client gets 1001, then the server stops accepting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { once } from 'node:events';
import { connect } from 'node:net';
import { ENDLESS, freshDataDir, sleep, startTestServer } from './helpers/test-server.ts';
import { TestClient } from './helpers/ws-client.ts';

test('server.close() closes every socket with 1001, even one running a query', async () => {
  const dataDir = freshDataDir();
  const ts = await startTestServer({}, { dataDir });
  try {
    const authed = await ts.connectAuthed();
    const anonymous = await ts.connect();
    const busy = await ts.connectAuthed();
    busy.send({ type: 'query', id: 'running', payload: { sql: ENDLESS } });
    await sleep(100);
    const started = Date.now();
    await ts.server.close();
    assert.ok(Date.now() - started < 3000, `close took ${Date.now() - started} ms`);
    for (const c of [authed, anonymous, busy]) {
      const closed = await c.closed();
      assert.equal(closed.code, 1001);
      assert.equal(closed.reason, 'server shutting down');
    }
    // No longer listening.
    await assert.rejects(TestClient.connect(`${ts.server.wsUrl}/api/v1/stream`, {}, 2000));
    await assert.rejects(fetch(`${ts.server.url}/api/v1/health/liveness`));
    // Closing twice is safe.
    await ts.server.close();
  } finally {
    await ts.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test(
  'server.close() does not wait for HTTP connections that never finish a request',
  { timeout: 60_000 },
  async () => {
    // An HTTP client that connected and then gave up on its request before sending it (the SDK closed
    // during a token refresh) left the server's close waiting for the connection's keep-alive timeout,
    // 72 s: a connection with no request is not idle to Node, nor has it a request to finish.
    const ts = await startTestServer();
    const port = Number(new URL(ts.server.url).port);
    const silent = connect(port, '127.0.0.1');
    const partial = connect(port, '127.0.0.1');
    try {
      await Promise.all([once(silent, 'connect'), once(partial, 'connect')]);
      partial.write('POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{');
      await sleep(100);
      const started = Date.now();
      await ts.close();
      assert.ok(Date.now() - started < 5000, `close took ${Date.now() - started} ms`);
    } finally {
      silent.destroy();
      partial.destroy();
      await ts.close();
    }
  },
);
