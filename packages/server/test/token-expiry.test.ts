/**
 * A connection's token running out: `auth_expiring` a minute before, then AUTH_EXPIRED and close 1008
 * at the expiry itself, unless the client authenticates again with a fresh token.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import { identityOf, nowSeconds, signToken } from './helpers/tokens.ts';

let ts: TestServer;

before(async () => {
  ts = await startTestServer();
});

after(async () => {
  await ts.close();
});

/** The admin's token, expiring `seconds` from now. */
function expiringIn(seconds: number): Promise<string> {
  return signToken(ts.secret(), { claims: identityOf(ts.token), exp: nowSeconds() + seconds });
}

test('a minute before its token expires the socket is warned once, and stays open', async () => {
  const exp = nowSeconds() + 62;
  const c = await ts.connect({ token: await signToken(ts.secret(), { claims: identityOf(ts.token), exp }) });
  assert.equal((await c.next()).type, 'auth_success');
  const warning = await c.next((m) => m.type === 'auth_expiring', 8000);
  assert.equal(warning.id, undefined);
  assert.equal(warning.payload.expires_at, new Date(exp * 1000).toISOString());
  assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  assert.equal(c.received.filter((m) => m.type === 'auth_expiring').length, 1);
  c.close();
});

test('at its expiry the socket gets AUTH_EXPIRED and close 1008, without a warning first', async () => {
  const c = await ts.connect({ token: await expiringIn(2) });
  assert.equal((await c.next()).type, 'auth_success');
  assert.deepEqual(await c.closed(6000), { code: 1008, reason: 'token expired' });
  const error = c.received.find((m) => m.type === 'error' && m.id === undefined);
  assert.equal(error?.payload.code, 'AUTH_EXPIRED');
  assert.equal(c.received.filter((m) => m.type === 'auth_expiring').length, 0);
});

test('authenticating again with a fresh token before the expiry keeps the socket open past it', async () => {
  const c = await ts.connect({ token: await expiringIn(2) });
  assert.equal((await c.next()).type, 'auth_success');
  assert.equal((await c.request({ type: 'auth', payload: { token: ts.token } })).type, 'auth_success');
  await new Promise((resolve) => setTimeout(resolve, 3000));
  assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  assert.equal(c.received.filter((m) => m.type === 'error').length, 0);
  c.close();
});
