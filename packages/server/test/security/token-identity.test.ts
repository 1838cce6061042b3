/**
 * Issue 14, breach 4 and point 14, and their pattern: a token is bound to one login of one user — not
 * to a user name and a clock with one-second resolution.
 *
 * - A token never opens an account created after it, even one of the same name created within the
 *   same second (breach 4).
 * - Logging out ends the whole login: the token presented and every token refreshed from it (or that
 *   it was refreshed from), and every socket that ever used any of them (point 14).
 * - Revocations take effect at once, whatever the second: a token issued just before a revocation is
 *   refused, one issued just after works.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { openSync } from '../../src/engine/sqlite/driver.ts';
import { hashPassword } from '../../src/auth/passwords.ts';
import { freshDataDir, login, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { connectWith, createUser, loginToken } from './helpers.ts';

let ts: TestServer;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false, login_max_attempts: 1000 });
});

after(() => ts.close());

/** Waits for the start of a wall-clock second, so that what follows happens within one second. */
async function startOfSecond(): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5));
}

async function status(token: string): Promise<number> {
  return (await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token })).status;
}

async function refresh(token: string): Promise<string> {
  const res = await ts.http('/api/v1/auth/refresh', { method: 'POST', token });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body as { data: { token: string } }).data.token;
}

test('a token of a deleted user does not open an account re-created under the name in the same second', async () => {
  // Within one second on an unloaded machine: a clock-based check would let the old token in.
  await startOfSecond();
  const old = await createUser(ts, 'reborn', ['readwrite']);
  assert.equal((await ts.http('/api/v1/users/reborn', { method: 'DELETE' })).status, 200);
  const created = await ts.http('/api/v1/users', {
    body: { username: 'reborn', password: 'another-password-1', roles: ['readonly'] },
  });
  assert.equal(created.status, 201);
  assert.equal(await status(old), 401);
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'old', payload: { token: old } });
  assert.equal((await c.reply('old')).type, 'auth_error');
  // The new account works with its own login.
  assert.equal(await status(await loginToken(ts, 'reborn', 'another-password-1')), 200);
});

test('a revocation in the same second as a login: earlier tokens die, later ones live', async () => {
  await createUser(ts, 'quick', ['readonly']);
  for (const revoke of [
    () => ts.http('/api/v1/users/quick', { method: 'PATCH', body: { password: 'quick-password-2' } }),
    () => ts.http('/api/v1/users/quick', { method: 'PATCH', body: { disabled: true } }),
  ]) {
    await ts.http('/api/v1/users/quick', {
      method: 'PATCH',
      body: { password: 'quick-password-1', disabled: false },
    });
    await startOfSecond();
    const before_ = await loginToken(ts, 'quick', 'quick-password-1');
    assert.equal((await revoke()).status, 200);
    assert.equal(await status(before_), 401);
  }
  await ts.http('/api/v1/users/quick', { method: 'PATCH', body: { disabled: false } });
  const after_ = await loginToken(ts, 'quick', 'quick-password-1');
  assert.equal(await status(after_), 200);
  // Logging out everywhere, then logging in again at once.
  const everywhere = await ts.http('/api/v1/auth/logout', {
    method: 'POST',
    token: after_,
    body: { all: true },
  });
  assert.equal(everywhere.status, 200);
  assert.equal(await status(after_), 401);
  assert.equal(await status(await loginToken(ts, 'quick', 'quick-password-1')), 200);
});

test('logging out a token revokes the tokens refreshed from it, and closes their sockets', async () => {
  const first = await createUser(ts, 'chain', ['readonly']);
  const second = await refresh(first);
  const third = await refresh(second);
  const other = await loginToken(ts, 'chain');
  const onThird = await connectWith(ts, third);
  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: first });
  assert.equal(out.status, 200);
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1);
  assert.equal((await onThird.closed()).code, 1008);
  for (const token of [first, second, third]) assert.equal(await status(token), 401);
  assert.equal((await ts.http('/api/v1/auth/refresh', { method: 'POST', token: third })).status, 401);
  // Another login of the same user is another chain.
  assert.equal(await status(other), 200);
});

test('logging out a refreshed token ends the tokens it came from as well', async () => {
  const first = await loginToken(ts, 'chain');
  const second = await refresh(first);
  const third = await refresh(second);
  assert.equal((await ts.http('/api/v1/auth/logout', { method: 'POST', token: second })).status, 200);
  for (const token of [first, second, third]) assert.equal(await status(token), 401);
});

test('a refresh carries the login on: the new token is not a new login', async () => {
  const first = await loginToken(ts, 'chain');
  const second = await refresh(first);
  const c = await connectWith(ts, first);
  // Logging out the refreshed token also closes the socket that used the first one.
  const out = await ts.http('/api/v1/auth/logout', { method: 'POST', token: second });
  assert.equal((out.body as { data: { sessions_closed: number } }).data.sessions_closed, 1);
  assert.equal((await c.closed()).code, 1008);
});

test('a database from before user ids: users get one, and log in again', async () => {
  const dataDir = freshDataDir();
  const db = openSync(join(dataDir, 'rustydb.sqlite'));
  db.exec(`CREATE TABLE _rustydb_users (
    username TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    roles TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    tokens_valid_after INTEGER NOT NULL DEFAULT 0
  )`);
  db.prepare(`INSERT INTO _rustydb_users (username, password_hash, roles) VALUES (?, ?, ?), (?, ?, ?)`).run([
    'admin',
    await hashPassword('test-admin-password'),
    '["admin"]',
    'old_timer',
    await hashPassword('old-timer-password'),
    '["readonly"]',
  ]);
  db.close();
  const upgraded = await startTestServer({}, { dataDir });
  try {
    const res = await login(upgraded.server.url, 'old_timer', 'old-timer-password');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const token = (res.body as { data: { token: string } }).data.token;
    const ok = await upgraded.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token });
    assert.equal(ok.status, 200);
  } finally {
    await upgraded.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});
