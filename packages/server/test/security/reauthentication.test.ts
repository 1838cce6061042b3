/**
 * Issue 14, breach 2, and its pattern: nothing opened under one identity may outlive that identity's
 * revocation. A socket belongs to one user for its whole life (an `auth` with another user's token is
 * refused and closes it), and revoking any token a socket ever presented closes the socket, with every
 * subscription on it — on every WebSocket endpoint.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { disposeClients, rawSocket } from '../graphql/helpers.ts';
import { connectWith, createRole, createUser, loginToken } from './helpers.ts';

let ts: TestServer;
let eve: string;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)');
  await createRole(ts, 'eve_role', [{ privilege: 'SELECT', table: 'public_t' }]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  await createUser(ts, 'watcher', ['readonly']);
});

after(async () => {
  await disposeClients();
  await ts.close();
});

async function subscribeSecret(c: TestClient): Promise<void> {
  c.send({ type: 'subscribe', id: 'tbl', payload: { table: 'secret' } });
  assert.equal((await c.next((m) => m.id === 'tbl')).type, 'subscribed');
  c.send({ type: 'subscribe', id: 'live', payload: { query: 'SELECT * FROM secret' } });
  assert.equal((await c.next((m) => m.id === 'live')).type, 'subscribed');
}

const secretEvents = (c: TestClient): number =>
  c.received.filter((m) => (m.id === 'tbl' || m.id === 'live') && m.type === 'change').length;

test('a socket cannot switch to another user: the auth is refused and the socket closed with its subscriptions', async () => {
  const adminToken = await loginToken(ts, 'admin', 'test-admin-password');
  const c = await connectWith(ts, adminToken);
  await subscribeSecret(c);
  c.send({ type: 'auth', id: 'switch', payload: { token: eve } });
  const answer = await c.reply('switch');
  assert.equal(answer.type, 'auth_error', JSON.stringify(answer));
  assert.equal(answer.payload.code, 'AUTH_FAILED');
  assert.match(answer.payload.message!, /another user/);
  assert.deepEqual(await c.closed(), { code: 1008, reason: 'authentication failed' });
  await sql(ts, "INSERT INTO secret (s) VALUES ('after-switch')");
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(secretEvents(c), 0);
  // Nothing of that socket is left anywhere.
  const subs = await ts.http('/api/v1/subscriptions');
  assert.equal(JSON.stringify(subs.body).includes('secret'), false, JSON.stringify(subs.body));
  // Logging out the admin's token still reports what it closes (nothing: that socket is gone).
  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: adminToken });
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 0);
});

test('re-authenticating with a refreshed token of the same user works; logging out the first token still closes the socket', async () => {
  const first = await loginToken(ts, 'watcher');
  const c = await connectWith(ts, first);
  await subscribeSecret(c);
  const refreshed = await ts.http('/api/v1/auth/refresh', { method: 'POST', token: first });
  const second = (refreshed.body as { data: { token: string } }).data.token;
  c.send({ type: 'auth', id: 're', payload: { token: second } });
  assert.equal((await c.reply('re')).type, 'auth_success');

  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: first });
  assert.equal(out.status, 200);
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1);
  const error = await c.next((m) => m.type === 'error' && m.id === undefined);
  assert.equal(error.payload.code, 'AUTH_EXPIRED');
  assert.equal((await c.closed()).code, 1008);
  await sql(ts, "INSERT INTO secret (s) VALUES ('after-logout')");
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal(secretEvents(c), 0);
});

test('a graphql-ws connection refreshed with a new token is closed when the token it opened with is logged out', async () => {
  const first = await loginToken(ts, 'watcher');
  const socket = await rawSocket(ts);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${first}` } });
  assert.equal((await socket.next()).type, 'connection_ack');
  const refreshed = await ts.http('/api/v1/auth/refresh', { method: 'POST', token: first });
  const second = (refreshed.body as { data: { token: string } }).data.token;
  socket.send({ type: 'ping', payload: { authorization: `Bearer ${second}` } });
  assert.equal((await socket.next((m) => m.type === 'pong')).payload.refreshed, true);
  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: first });
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1);
  assert.equal((await socket.closed()).code, 4403);
});

test('a metrics socket cannot switch users either', async () => {
  await createRole(ts, 'metrics_only', [{ privilege: 'MONITOR' }]);
  const monitor = await createUser(ts, 'monitor_user', ['metrics_only']);
  const c = await ts.connect({ path: '/api/v1/metrics/stream' });
  c.send({ type: 'auth', id: 'a', payload: { token: monitor } });
  assert.equal((await c.reply('a')).type, 'auth_success');
  c.send({ type: 'auth', id: 'b', payload: { token: eve } });
  const answer = await c.reply('b');
  assert.equal(answer.type, 'auth_error', JSON.stringify(answer));
  assert.equal(answer.payload.code, 'AUTH_FAILED');
  assert.equal((await c.closed()).code, 1008);
});

test('a change-stream socket is held to the same: a URL token counts as presented, and it cannot switch users', async () => {
  const made = await ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
  assert.ok([200, 201].includes(made.status), JSON.stringify(made.body));
  const path = '/api/v1/documents/collections/notes/watch';
  // Opened with a token in the URL, extended with a refreshed one: the first still ends it.
  const first = await loginToken(ts, 'watcher');
  const c = await ts.connect({ path, token: first });
  await c.next((m) => m.type === 'auth_success');
  const refreshed = await ts.http('/api/v1/auth/refresh', { method: 'POST', token: first });
  const second = (refreshed.body as { data: { token: string } }).data.token;
  c.send({ type: 'auth', id: 're', payload: { token: second } });
  assert.equal((await c.reply('re')).type, 'auth_success');
  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: first });
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1);
  assert.equal((await c.closed()).code, 1008);
  // Another user's token is refused, and the socket closed.
  const d = await ts.connect({ path });
  d.send({ type: 'auth', id: 'a', payload: { token: await loginToken(ts, 'watcher') } });
  assert.equal((await d.reply('a')).type, 'auth_success');
  d.send({ type: 'auth', id: 'b', payload: { token: eve } });
  const answer = await d.reply('b');
  assert.equal(answer.type, 'auth_error', JSON.stringify(answer));
  assert.equal(answer.payload.code, 'AUTH_FAILED');
  assert.equal((await d.closed()).code, 1008);
});

test('every revocation of the user ends a socket that re-authenticated: log out everywhere, password change', async () => {
  for (const revoke of ['logout all', 'password'] as const) {
    const name = `reauth_${revoke.replace(' ', '_')}`;
    const first = await createUser(ts, name, ['readonly']);
    const c = await connectWith(ts, first);
    await subscribeSecret(c);
    const refreshed = await ts.http('/api/v1/auth/refresh', { method: 'POST', token: first });
    const second = (refreshed.body as { data: { token: string } }).data.token;
    c.send({ type: 'auth', id: 're', payload: { token: second } });
    assert.equal((await c.reply('re')).type, 'auth_success');
    const out =
      revoke === 'logout all'
        ? await ts.http('/api/v1/auth/logout', { method: 'POST', token: first, body: { all: true } })
        : await ts.http('/api/v1/auth/password', {
            method: 'POST',
            token: first,
            body: { current_password: 'user-password-1', new_password: 'another-password-2' },
          });
    assert.equal(out.status, 200, `${revoke}: ${JSON.stringify(out.body)}`);
    assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1, revoke);
    assert.equal((await c.closed()).code, 1008, revoke);
    await sql(ts, 'INSERT INTO secret (s) VALUES (?)', [`after-${revoke}`]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(secretEvents(c), 0, revoke);
  }
});
