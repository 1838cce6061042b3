/** Authentication on /api/v1/stream: URL token, auth message, AUTH_REQUIRED, bad and expired tokens, expiry while connected. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { sleep, sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import { ISO_TIMESTAMP, TestClient } from './helpers/ws-client.ts';
import { nowSeconds, identityOf, signToken, unsignedToken } from './helpers/tokens.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE hits (n INTEGER)');
});
after(() => ts.close());

/** Opens a socket and sends `messages` from inside the open handler, before anything can come back. */
async function connectAndSend(url: string, messages: unknown[]): Promise<TestClient> {
  const ws = new WebSocket(url);
  ws.once('open', () => {
    for (const m of messages) ws.send(JSON.stringify(m));
  });
  return TestClient.adopt(ws);
}

async function expectRejected(token: string, code: string, reason: string): Promise<void> {
  // As an auth message…
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'bad-auth', payload: { token } });
  const m = await c.next();
  assert.equal(m.type, 'auth_error');
  assert.equal(m.id, 'bad-auth');
  assert.equal(m.payload.status, 'error');
  assert.equal(m.payload.code, code);
  assert.deepEqual(await c.closed(), { code: 1008, reason });
  // …and in the URL.
  const u = await ts.connect({ token });
  const mu = await u.next();
  assert.equal(mu.type, 'auth_error');
  assert.equal(mu.payload.code, code);
  assert.deepEqual(await u.closed(), { code: 1008, reason });
}

test('?token= authenticates on connect: auth_success arrives unasked', async () => {
  const c = await ts.connect({ token: ts.token });
  const m = await c.next();
  assert.equal(m.type, 'auth_success');
  assert.equal(m.payload.user, 'admin');
});

test('with ?token=, messages sent the instant the socket opens are served, in order', async () => {
  const url = `${ts.server.wsUrl}/api/v1/stream?token=${ts.token}`;
  const c = await connectAndSend(url, [
    { type: 'query', id: 'early-1', payload: { sql: 'INSERT INTO hits VALUES (1)' } },
    { type: 'ping', id: 'early-2' },
    { type: 'query', id: 'early-3', payload: { sql: 'SELECT count(*) FROM hits' } },
  ]);
  const first = await c.next();
  assert.equal(first.type, 'auth_success');
  const one = await c.reply('early-1');
  assert.equal(one.type, 'data', JSON.stringify(one));
  assert.equal(one.payload.rows_affected, 1);
  assert.equal((await c.reply('early-2')).type, 'pong');
  const three = await c.reply('early-3');
  assert.equal(three.type, 'data', JSON.stringify(three));
  assert.deepEqual(three.payload.rows, [[1]]);
  assert.equal(
    c.received.some((m) => m.payload.code === 'AUTH_REQUIRED'),
    false,
  );
  await sql(ts, 'DELETE FROM hits');
});

test('with a bad ?token=, messages sent at once are not executed', async () => {
  const url = `${ts.server.wsUrl}/api/v1/stream?token=garbage`;
  const c = await connectAndSend(url, [
    { type: 'query', id: 'sneaky', payload: { sql: 'INSERT INTO hits VALUES (2)' } },
  ]);
  const m = await c.next();
  assert.equal(m.type, 'auth_error');
  assert.equal((await c.closed()).code, 1008);
  assert.equal(
    c.received.some((x) => x.id === 'sneaky' && x.type === 'data'),
    false,
  );
  assert.deepEqual((await sql(ts, 'SELECT count(*) FROM hits')).rows, [[0]]);
});

test('an auth message answers auth_success with user, roles, expires_at and limits', async () => {
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'auth-1', payload: { token: ts.token }, timestamp: new Date().toISOString() });
  const m = await c.reply('auth-1');
  assert.equal(m.type, 'auth_success');
  assert.match(m.payload.expires_at!, ISO_TIMESTAMP);
  assert.ok(Date.parse(m.payload.expires_at!) > Date.now() + 86_000_000);
  const { limits, ...rest } = m.payload;
  assert.deepEqual(rest, {
    status: 'success',
    user: 'admin',
    roles: ['admin'],
    expires_at: m.payload.expires_at,
  });
  // The limits the client must respect (the server may add more).
  assert.deepEqual(
    {
      max_message_size: limits?.max_message_size,
      rate_limit_rps: limits?.rate_limit_rps,
      ping_interval_ms: limits?.ping_interval_ms,
      idle_timeout_ms: limits?.idle_timeout_ms,
    },
    { max_message_size: 1_048_576, rate_limit_rps: 100, ping_interval_ms: 30_000, idle_timeout_ms: 60_000 },
  );
  const { rows } = await c.query('SELECT 1');
  assert.deepEqual(rows, [[1]]);
});

test('before authentication every request gets AUTH_REQUIRED and the socket stays open', async () => {
  const c = await ts.connect();
  const requests = [
    { type: 'query', id: 'pre-q', payload: { sql: 'INSERT INTO hits VALUES (3)' } },
    { type: 'ping', id: 'pre-p' },
    { type: 'batch', id: 'pre-b', payload: { queries: [{ sql: 'INSERT INTO hits VALUES (4)' }] } },
    { type: 'cancel', id: 'pre-c', payload: { id: 'pre-q' } },
  ];
  for (const r of requests) {
    c.send(r);
    const m = await c.reply(r.id);
    assert.equal(m.type, 'error', r.type);
    assert.equal(m.payload.status, 'error');
    assert.equal(m.payload.code, 'AUTH_REQUIRED', r.type);
  }
  assert.equal(c.isOpen, true);
  assert.deepEqual((await sql(ts, 'SELECT count(*) FROM hits')).rows, [[0]]);
  c.send({ type: 'auth', id: 'now-auth', payload: { token: ts.token } });
  assert.equal((await c.reply('now-auth')).type, 'auth_success');
  c.send({ type: 'ping', id: 'post-p' });
  assert.equal((await c.reply('post-p')).type, 'pong');
});

test('a garbage token: auth_error AUTH_FAILED, then close 1008', async () => {
  await expectRejected('not-a-token', 'AUTH_FAILED', 'authentication failed');
});

test('a token signed with another secret: AUTH_FAILED, close 1008', async () => {
  const forged = await signToken(new TextEncoder().encode('an-entirely-different-secret-of-48-bytes-length'));
  await expectRejected(forged, 'AUTH_FAILED', 'authentication failed');
});

test('an unsigned token (alg none): AUTH_FAILED, close 1008', async () => {
  await expectRejected(unsignedToken(), 'AUTH_FAILED', 'authentication failed');
});

test('a token with the wrong issuer, audience or algorithm, or for an unknown user: AUTH_FAILED', async () => {
  const secret = ts.secret();
  await expectRejected(
    await signToken(secret, { claims: identityOf(ts.token), iss: 'someone-else' }),
    'AUTH_FAILED',
    'authentication failed',
  );
  await expectRejected(
    await signToken(secret, { claims: identityOf(ts.token), aud: 'someone-else' }),
    'AUTH_FAILED',
    'authentication failed',
  );
  await expectRejected(
    await signToken(secret, { claims: identityOf(ts.token), alg: 'HS512' }),
    'AUTH_FAILED',
    'authentication failed',
  );
  await expectRejected(
    await signToken(secret, { claims: identityOf(ts.token), sub: 'ghost' }),
    'AUTH_FAILED',
    'authentication failed',
  );
});

test('an expired token: auth_error AUTH_EXPIRED, then close 1008', async () => {
  const expired = await signToken(ts.secret(), {
    claims: identityOf(ts.token),
    iat: nowSeconds() - 120,
    exp: nowSeconds() - 60,
  });
  await expectRejected(expired, 'AUTH_EXPIRED', 'token expired');
});

test(
  'a token that expires while connected: error AUTH_EXPIRED, then close 1008',
  { timeout: 10_000 },
  async () => {
    const exp = nowSeconds() + 2;
    const shortLived = await signToken(ts.secret(), { claims: identityOf(ts.token), exp });
    const c = await ts.connect({ token: shortLived });
    const ok = await c.next();
    assert.equal(ok.type, 'auth_success');
    assert.equal(ok.payload.expires_at, new Date(exp * 1000).toISOString());
    c.send({ type: 'ping', id: 'before-expiry' });
    assert.equal((await c.reply('before-expiry')).type, 'pong');
    const m = await c.next((x) => x.type === 'error', 4000);
    assert.equal(m.payload.code, 'AUTH_EXPIRED');
    assert.equal('id' in m, false);
    assert.ok(Date.now() >= exp * 1000 - 50, 'expired early');
    assert.deepEqual(await c.closed(), { code: 1008, reason: 'token expired' });
  },
);

test(
  're-sending auth with a fresh token before expiry keeps the socket open',
  { timeout: 10_000 },
  async () => {
    const shortLived = await signToken(ts.secret(), { claims: identityOf(ts.token), exp: nowSeconds() + 2 });
    const c = await ts.connect({ token: shortLived });
    assert.equal((await c.next()).type, 'auth_success');
    c.send({ type: 'auth', id: 'refresh', payload: { token: ts.token } });
    const refreshed = await c.reply('refresh');
    assert.equal(refreshed.type, 'auth_success');
    assert.ok(Date.parse(refreshed.payload.expires_at!) > Date.now() + 3600_000);
    await sleep(2600);
    assert.equal(c.isOpen, true);
    c.send({ type: 'ping', id: 'after-old-expiry' });
    assert.equal((await c.reply('after-old-expiry')).type, 'pong');
  },
);

test('require_authentication:false serves clients without any token', async () => {
  const open = await startTestServer({ require_authentication: false });
  try {
    const c = await open.connect();
    const { rows, error } = await c.query('SELECT 7 AS seven');
    assert.equal(error, undefined);
    assert.deepEqual(rows, [[7]]);
    c.send({ type: 'ping', id: 'anon-ping' });
    assert.equal((await c.reply('anon-ping')).type, 'pong');
    const res = await open.http('/api/v1/query', { body: { sql: 'SELECT 8' }, token: null });
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as { data: { rows: unknown } }).data.rows, [[8]]);
  } finally {
    await open.close();
  }
});
