/** server.close(): every client gets 1001, then the server stops accepting. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
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
