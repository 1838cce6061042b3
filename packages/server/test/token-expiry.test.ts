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

test('many sessions with different expiries: each is closed at its own expiry, none early, none missed', async () => {
  // Every session's expiry shares one timer in the server: sessions expiring at different seconds,
  // some closed by their client first and some re-authenticated (both take their deadline out of the
  // middle of the queue), and some only warned, must each get exactly what a timer of its own gave.
  const start = nowSeconds();
  type Kind = 'expires' | 'leaves' | 'reauthenticates' | 'warned';
  const kinds: Kind[] = [];
  for (let i = 0; i < 32; i++)
    kinds.push(i % 8 === 3 ? 'leaves' : i % 8 === 5 ? 'reauthenticates' : 'expires');
  for (let i = 0; i < 4; i++) kinds.push('warned');
  const sessions = await Promise.all(
    kinds.map(async (kind, i) => {
      // 2 to 5 seconds from now, interleaved so that the queue's order differs from the connect order;
      // the warned ones 61 to 62 seconds from now, so their warning comes within the same few seconds.
      const exp = kind === 'warned' ? start + 61 + (i % 2) : start + 2 + ((i * 7) % 4);
      const c = await ts.connect({
        token: await signToken(ts.secret(), { claims: identityOf(ts.token), exp }),
      });
      assert.equal((await c.next()).type, 'auth_success');
      return { c, kind, exp };
    }),
  );
  for (const { c, kind } of sessions) {
    if (kind === 'leaves') c.close();
    if (kind === 'reauthenticates') {
      assert.equal((await c.request({ type: 'auth', payload: { token: ts.token } })).type, 'auth_success');
    }
  }
  await Promise.all(
    sessions.map(async ({ c, kind, exp }) => {
      if (kind === 'expires') {
        // A generous bound for a busy machine: missing the expiry by seconds is still a failure.
        assert.deepEqual(await c.closed(exp * 1000 - Date.now() + 5000), {
          code: 1008,
          reason: 'token expired',
        });
        const error = c.received.find((m) => m.type === 'error' && m.id === undefined);
        assert.equal(error?.payload.code, 'AUTH_EXPIRED');
        // Stamped by the server when it sent it: never before the token's own expiry.
        assert.ok(Date.parse(error.timestamp) >= exp * 1000, `closed early: ${error.timestamp} < exp ${exp}`);
      }
      if (kind === 'warned') {
        const warning = await c.next(
          (m) => m.type === 'auth_expiring',
          (exp - 60) * 1000 - Date.now() + 5000,
        );
        assert.equal(warning.payload.expires_at, new Date(exp * 1000).toISOString());
        assert.ok(Date.parse(warning.timestamp) >= (exp - 60) * 1000, `warned early: ${warning.timestamp}`);
      }
    }),
  );
  // The ones that stayed (re-authenticated, or only warned) are still open and served, unwarned twice.
  for (const { c, kind } of sessions) {
    if (kind !== 'reauthenticates' && kind !== 'warned') continue;
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
    assert.equal(c.received.filter((m) => m.type === 'error').length, 0);
    assert.equal(c.received.filter((m) => m.type === 'auth_expiring').length, kind === 'warned' ? 1 : 0);
    c.close();
  }
});
