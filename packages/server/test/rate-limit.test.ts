/** Per-connection rate limiting: a burst over rate_limit_rps is refused (and not executed); a flood is cut off with 1008. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { ServerMsg, TestClient } from './helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ rate_limit_rps: 10 });
  await sql(ts, 'CREATE TABLE marks (n INTEGER PRIMARY KEY)');
});
after(() => ts.close());

async function replies(c: TestClient, ids: string[]): Promise<ServerMsg[]> {
  return Promise.all(ids.map((id) => c.reply(id, 5000)));
}

test('a burst of 30 pings at 10/s: 10 pongs, the rest RATE_LIMIT_EXCEEDED with retry_after_ms', async () => {
  // Token in the URL: no message is spent on authentication.
  const c = await ts.connectAuthed();
  const ids = Array.from({ length: 30 }, (_, i) => `burst-${i}`);
  for (const id of ids) c.send({ type: 'ping', id });
  const answers = await replies(c, ids);
  const pongs = answers.filter((m) => m.type === 'pong');
  const refused = answers.filter((m) => m.type === 'error');
  assert.equal(pongs.length + refused.length, 30);
  assert.ok(pongs.length >= 10 && pongs.length <= 11, `${pongs.length} pongs`);
  // The first ten are the ones served.
  assert.deepEqual(
    answers.slice(0, 10).map((m) => m.type),
    Array(10).fill('pong'),
  );
  for (const m of refused) {
    assert.equal(m.payload.status, 'error');
    assert.equal(m.payload.code, 'RATE_LIMIT_EXCEEDED');
    const retry = m.payload.details?.retry_after_ms;
    assert.equal(typeof retry, 'number');
    assert.ok((retry as number) > 0 && (retry as number) <= 100, `retry_after_ms ${String(retry)}`);
  }
  assert.equal(c.isOpen, true);
  // Throttling is temporary: after a pause requests are served again.
  await sleep(1100);
  c.send({ type: 'ping', id: 'after-pause' });
  assert.equal((await c.reply('after-pause')).type, 'pong');
});

test('refused messages are not executed', async () => {
  const c = await ts.connectAuthed();
  const ids = Array.from({ length: 30 }, (_, i) => `ins-${i}`);
  ids.forEach((id, i) =>
    c.send({ type: 'query', id, payload: { sql: 'INSERT INTO marks (n) VALUES (?)', params: [i] } }),
  );
  const answers = await replies(c, ids);
  const served = answers.flatMap((m, i) => (m.type === 'data' ? [i] : []));
  const refused = answers.filter((m) => m.type === 'error');
  assert.ok(served.length >= 10 && served.length <= 11, `${served.length} inserts served`);
  assert.ok(refused.every((m) => m.payload.code === 'RATE_LIMIT_EXCEEDED'));
  const { rows } = await sql(ts, 'SELECT n FROM marks ORDER BY n');
  assert.deepEqual(
    rows.map((r) => r[0]),
    served,
  );
});

test(
  'a sustained flood is closed with 1008 after a final RATE_LIMIT_EXCEEDED',
  { timeout: 15_000 },
  async () => {
    const c = await ts.connectAuthed();
    for (let i = 0; i < 700; i++) c.send({ type: 'ping', id: `flood-${i}` });
    const closed = await c.closed(5000);
    assert.deepEqual(closed, { code: 1008, reason: 'rate limit exceeded' });
    const last = c.received.at(-1)!;
    assert.equal(last.type, 'error');
    assert.equal(last.payload.code, 'RATE_LIMIT_EXCEEDED');
    const refused = c.received.filter((m) => m.payload.code === 'RATE_LIMIT_EXCEEDED').length;
    // rate 10/s: more than 5 × 10 × 10 s = 500 refusals within the window closes the socket.
    assert.ok(refused >= 500 && refused < 700, `${refused} refusals before the close`);
  },
);

test('a flood of malformed messages is rate limited too', { timeout: 15_000 }, async () => {
  const c = await ts.connectAuthed();
  for (let i = 0; i < 700; i++) c.sendRaw('{"type": "nonsense"');
  c.send({ type: 'ping', id: 'after-garbage' });
  // Either the ping is answered (refused, or wrongly served) or the socket is closed first.
  await Promise.race([c.reply('after-garbage', 5000), c.closed(5000)]).catch(() => undefined);
  const answer = c.received.find((m) => m.id === 'after-garbage');
  assert.notEqual(
    answer?.type,
    'pong',
    '700 malformed messages in a burst did not count against rate_limit_rps',
  );
  assert.equal((await c.closed(5000)).code, 1008);
});

test('with enable_rate_limiting false there is no limit, and auth_success says so', async () => {
  const open = await startTestServer({ enable_rate_limiting: false, rate_limit_rps: 10 });
  try {
    const c = await open.connect({ token: open.token });
    const auth = await c.next();
    assert.equal(auth.payload.limits?.rate_limit_rps, null);
    const ids = Array.from({ length: 100 }, (_, i) => `free-${i}`);
    for (const id of ids) c.send({ type: 'ping', id });
    const answers = await replies(c, ids);
    assert.ok(answers.every((m) => m.type === 'pong'));
  } finally {
    await open.close();
  }
});
