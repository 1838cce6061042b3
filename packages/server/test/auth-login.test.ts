/** POST /api/v1/auth/login, the bootstrap admin (configured or generated), and the signing secret on disk. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  ADMIN_PASSWORD,
  freshDataDir,
  login,
  startTestServer,
  type TestServer,
} from './helpers/test-server.ts';
import { ISO_TIMESTAMP } from './helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ token_ttl: 3600 });
});
after(() => ts.close());

test('login answers {success:true, data:{token, expires_at}}', async () => {
  const before = Date.now();
  const res = await login(ts.server.url, 'admin', ADMIN_PASSWORD);
  assert.equal(res.status, 200);
  const body = res.body as { success: boolean; data: { token: string; expires_at: string } };
  assert.deepEqual(Object.keys(body).sort(), ['data', 'success']);
  assert.equal(body.success, true);
  assert.deepEqual(Object.keys(body.data).sort(), ['expires_at', 'token']);
  assert.match(body.data.token, /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
  assert.match(body.data.expires_at, ISO_TIMESTAMP);
  // token_ttl is 3600 s.
  const ttl = Date.parse(body.data.expires_at) - before;
  assert.ok(ttl > 3_595_000 && ttl <= 3_601_000, `expires in ${ttl} ms`);
  // The token works.
  const c = await ts.connect({ token: body.data.token });
  const ok = await c.next();
  assert.equal(ok.type, 'auth_success');
  assert.equal(ok.payload.expires_at, body.data.expires_at);
});

test('a wrong password is 401 AUTH_FAILED', async () => {
  const res = await login(ts.server.url, 'admin', 'not-the-password');
  assert.equal(res.status, 401);
  assert.deepEqual(res.body, {
    success: false,
    error: { code: 'AUTH_FAILED', message: 'invalid username or password' },
  });
});

test('an unknown user is 401 AUTH_FAILED with the same message', async () => {
  const res = await login(ts.server.url, 'nobody', ADMIN_PASSWORD);
  assert.equal(res.status, 401);
  assert.deepEqual(res.body, {
    success: false,
    error: { code: 'AUTH_FAILED', message: 'invalid username or password' },
  });
});

test('a malformed login body is 400 INVALID_MESSAGE', async () => {
  for (const body of [
    { username: 'admin' },
    { username: '', password: 'x' },
    { username: 5, password: 'x' },
  ]) {
    const res = await ts.http('/api/v1/auth/login', { body, token: null });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
  }
  const res = await ts.http('/api/v1/auth/login', { rawBody: '{"username":', token: null });
  assert.equal(res.status, 400);
  assert.equal((res.body as { error: { code: string } }).error.code, 'INVALID_MESSAGE');
});

test('the generated signing secret is kept in <data_dir>/jwt-secret with mode 0600', async () => {
  const path = join(ts.dataDir, 'jwt-secret');
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  assert.ok(secret.length >= 32, `secret is ${secret.length} bytes`);
});

test('without admin_password a generated one is reported once and works; a restart keeps it', async () => {
  const dataDir = freshDataDir();
  try {
    const reported: string[] = [];
    const first = await startTestServer(
      { admin_password: undefined },
      { dataDir, onGeneratedAdminPassword: (p) => reported.push(p) },
    );
    let token: string;
    try {
      assert.equal(reported.length, 1);
      const password = reported[0]!;
      assert.ok(password.length >= 16, `generated password '${password}' is short`);
      assert.equal((await login(first.server.url, 'admin', 'admin')).status, 401);
      const res = await login(first.server.url, 'admin', password);
      assert.equal(res.status, 200);
      token = (res.body as { data: { token: string } }).data.token;
    } finally {
      await first.close();
    }
    // Loosen the secret's mode: the server restores 0600 on start.
    chmodSync(join(dataDir, 'jwt-secret'), 0o644);
    const second = await startTestServer(
      { admin_password: undefined },
      { dataDir, onGeneratedAdminPassword: (p) => reported.push(p) },
    );
    try {
      assert.equal(reported.length, 1, 'a second password was generated although the admin exists');
      assert.equal((await login(second.server.url, 'admin', reported[0]!)).status, 200);
      // The secret persisted, so a token from the first run is still valid.
      const c = await second.connect({ token });
      assert.equal((await c.next()).type, 'auth_success');
      assert.equal(statSync(join(dataDir, 'jwt-secret')).mode & 0o777, 0o600);
    } finally {
      await second.close();
    }
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('admin_password set at first start is the admin password, and is not reported', async () => {
  const reported: string[] = [];
  const other = await startTestServer(
    { admin_password: 'chosen-password' },
    { onGeneratedAdminPassword: (p) => reported.push(p) },
  );
  try {
    assert.deepEqual(reported, []);
    assert.equal((await login(other.server.url, 'admin', 'chosen-password')).status, 200);
    assert.equal((await login(other.server.url, 'admin', ADMIN_PASSWORD)).status, 401);
  } finally {
    await other.close();
  }
});

test('a configured jwt_secret shorter than 32 bytes stops start-up', async () => {
  await assert.rejects(startTestServer({ jwt_secret: 'too-short' }), /jwt_secret/);
});
