/** Server heartbeats: WebSocket pings every websocket_ping_interval; a peer silent for websocket_timeout is dropped. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, startTestServer, type TestServer } from './helpers/test-server.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ websocket_ping_interval: 0.1, websocket_timeout: 0.5 });
});
after(() => ts.close());

test('the server sends WebSocket ping frames every websocket_ping_interval', async () => {
  const c = await ts.connectAuthed();
  const start = c.pings;
  await sleep(650);
  const pings = c.pings - start;
  // 0.1 s interval over 0.65 s: about 6; allow for timer slack either way.
  assert.ok(pings >= 3 && pings <= 9, `received ${pings} pings in 650 ms`);
});

test('a silent peer that does not answer pings is dropped after websocket_timeout', async () => {
  const silent = await ts.connect({ token: ts.token, autoPong: false });
  assert.equal((await silent.next()).type, 'auth_success');
  const responsive = await ts.connect({ token: ts.token });
  assert.equal((await responsive.next()).type, 'auth_success');
  const opened = Date.now();

  const closed = await silent.closed(4000);
  const after = Date.now() - opened;
  assert.ok(
    (closed.code === 1001 && closed.reason === 'idle timeout') || closed.code === 1006,
    `closed with ${closed.code} '${closed.reason}'`,
  );
  assert.ok(after >= 400, `dropped after only ${after} ms`);
  assert.ok(silent.pings > 0, 'the silent client was never pinged');

  // The responsive client (auto pong) outlives three timeouts without sending a message.
  await sleep(1500 - (Date.now() - opened));
  assert.equal(responsive.isOpen, true);
  assert.equal(responsive.closeInfo, undefined);
  responsive.send({ type: 'ping', id: 'still-here' });
  assert.equal((await responsive.reply('still-here')).type, 'pong');
});

test('a peer that does not answer pings but keeps sending messages is not dropped', async () => {
  const chatty = await ts.connect({ token: ts.token, autoPong: false });
  assert.equal((await chatty.next()).type, 'auth_success');
  for (let i = 0; i < 10; i++) {
    await sleep(120);
    chatty.send({ type: 'ping', id: `chat-${i}` });
    assert.equal((await chatty.reply(`chat-${i}`)).type, 'pong');
  }
  assert.equal(chatty.isOpen, true);
});

test('a socket that never authenticates is closed with 1008 after half of websocket_timeout', async () => {
  const c = await ts.connect();
  const opened = Date.now();
  const closed = await c.closed(4000);
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, 'authentication timeout');
  // Half of websocket_timeout (0.5 s): before an idle close could ever race it.
  assert.ok(Date.now() - opened >= 200);
});
