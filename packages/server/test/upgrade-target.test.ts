/**
 * An upgrade whose request target no URL can be made of (`//[`: a host that cannot be) is refused with
 * 400 and closed, like any bad request; the server goes on serving. (The gateway parsed the target
 * with URL and let its TypeError escape the 'upgrade' listener: one such request ended the process.)
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
});
after(() => ts.close());

/** Sends an upgrade request for `target` and resolves with everything the server answered before closing. */
function upgrade(target: string): Promise<string> {
  const { port } = new URL(ts.server.url);
  return new Promise((resolve, reject) => {
    let answer = '';
    const socket = connect(Number(port), '127.0.0.1', () => {
      socket.write(
        `GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
      );
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to ${target} within 5 s (answered so far: ${JSON.stringify(answer)})`));
    }, 5000);
    socket.on('data', (chunk) => (answer += chunk.toString('latin1')));
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.once('error', reject);
  });
}

test('an upgrade to a target that is no URL is answered 400, and the server keeps serving', async () => {
  for (const target of ['//[', '//a:b', '//%']) {
    assert.match(await upgrade(target), /^HTTP\/1\.1 400 /, target);
  }
  const client = await ts.connectAuthed();
  client.close();
  const health = await ts.http('/api/v1/health/readiness');
  assert.equal(health.status, 200);
});
