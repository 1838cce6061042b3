/**
 * The audit log: security events as JSON lines in `<data_dir>/audit.log` (mode 0600, append-only),
 * never a password or a token, readable by admins through `GET /api/v1/audit`.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_PASSWORD, login, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { signToken } from '../helpers/tokens.ts';
import { connectWith, createRole, createUser, USER_PASSWORD } from './helpers.ts';

interface Record_ {
  time: string;
  event: string;
  user?: string;
  actor?: string;
  ip?: string;
  endpoint?: string;
  session?: string;
  details?: Record<string, unknown>;
}

let ts: TestServer;
const secrets: string[] = [ADMIN_PASSWORD, USER_PASSWORD, 'wrong-password-123', 'new-password-456'];

before(async () => {
  ts = await startTestServer({ rate_limit_rps: 5, rate_limit_max_violations: 3, login_max_attempts: 2 });
  secrets.push(ts.token);
  await sql(ts, 'CREATE TABLE vault (id INTEGER PRIMARY KEY, v TEXT)');
  // Produce one of every event.
  const alice = await createUser(ts, 'alice', []);
  secrets.push(alice);
  await login(ts.server.url, 'alice', 'wrong-password-123');
  const forged = await signToken(new TextEncoder().encode('f'.repeat(40)), { sub: 'alice' });
  secrets.push(forged);
  await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: forged });
  await ts.http('/api/v1/query', { body: { sql: 'SELECT * FROM vault' }, token: alice });
  await ts.http('/api/v1/query', { body: { sql: 'SELECT * FROM _rustydb_users' }, token: alice });
  await ts.http('/api/v1/users', { token: alice });
  await createRole(ts, 'vault_reader', [{ privilege: 'SELECT', table: 'vault' }]);
  await ts.http('/api/v1/users/alice', { method: 'PATCH', body: { roles: ['vault_reader'] } });
  await ts.http('/api/v1/roles/vault_reader/grants', { body: { privilege: 'INSERT', table: 'vault' } });
  await ts.http('/api/v1/roles/vault_reader/grants', {
    method: 'DELETE',
    body: { privilege: 'INSERT', table: 'vault' },
  });
  await ts.http('/api/v1/users/alice', { method: 'PATCH', body: { password: 'new-password-456' } });
  const fresh = (await login(ts.server.url, 'alice', 'new-password-456')).body as { data: { token: string } };
  secrets.push(fresh.data.token);
  const c = await connectWith(ts, fresh.data.token);
  const sessions = (await ts.http('/api/v1/sessions?user=alice')).body as {
    data: { sessions: { id: string }[] };
  };
  await ts.http(`/api/v1/sessions/${sessions.data.sessions[0]!.id}`, { method: 'DELETE' });
  await c.closed();
  const flooder = await ts.connectAuthed();
  for (let i = 0; i < 20; i++) flooder.send({ type: 'ping', id: `p${i}` });
  await flooder.closed();
  for (let i = 0; i < 4; i++) await login(ts.server.url, 'alice', 'wrong-password-123');
  await ts.http('/api/v1/auth/logout', { method: 'POST', token: fresh.data.token });
  await ts.http('/api/v1/roles/vault_reader', { method: 'DELETE' }).catch(() => undefined);
  await createUser(ts, 'bob', []);
  await ts.http('/api/v1/users/bob', { method: 'DELETE' });
});

after(() => ts.close());

async function events(query = ''): Promise<Record_[]> {
  const res = await ts.http(`/api/v1/audit${query}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body as { data: { events: Record_[] } }).data.events;
}

function fileRecords(): Record_[] {
  return readFileSync(join(ts.dataDir, 'audit.log'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record_);
}

test('the file is JSON lines, readable by the owner only', async () => {
  await events();
  const mode = statSync(join(ts.dataDir, 'audit.log')).mode & 0o777;
  assert.equal(mode, 0o600);
  const records = fileRecords();
  assert.ok(records.length > 10);
  for (const r of records) assert.match(r.time, /^\d{4}-\d{2}-\d{2}T/);
  assert.equal(records[0]!.event, 'server.start');
});

test('never a password or a token, in the file or through the API', async () => {
  await events();
  const text = readFileSync(join(ts.dataDir, 'audit.log'), 'utf8');
  for (const secret of secrets)
    assert.ok(!text.includes(secret), `the audit log contains a secret (${secret.slice(0, 12)}…)`);
  const api = JSON.stringify(await events('?limit=10000'));
  for (const secret of secrets) assert.ok(!api.includes(secret));
  assert.ok(!/scrypt\$/.test(text), 'a password hash was logged');
});

test('logins: success and failure name the user and the address', async () => {
  const all = await events('?event=login&limit=1000');
  const failure = all.find((e) => e.event === 'login.failure' && e.user === 'alice')!;
  assert.equal(failure.ip, '127.0.0.1');
  assert.equal(failure.endpoint, 'POST /api/v1/auth/login');
  assert.equal(failure.details?.reason, 'wrong password');
  assert.ok(all.some((e) => e.event === 'login.success' && e.user === 'admin'));
  assert.ok(all.some((e) => e.event === 'login.throttled' && e.user === 'alice'));
});

test('a refused token is auth.failure with its code', async () => {
  const all = await events('?event=auth.failure');
  assert.ok(all.some((e) => e.details?.code === 'AUTH_FAILED' && e.endpoint === 'POST /api/v1/query'));
});

test('permission denied: statements (privilege and table, or the guard) and admin endpoints', async () => {
  const all = await events('?event=permission.denied');
  const table = all.find((e) => e.user === 'alice' && e.details?.table === 'vault')!;
  assert.deepEqual(table.details, {
    reason: 'permission denied: SELECT on table vault',
    privilege: 'SELECT',
    table: 'vault',
  });
  assert.ok(
    all.some((e) => e.user === 'alice' && e.details?.reason === 'internal tables are not accessible'),
  );
  assert.ok(all.some((e) => e.user === 'alice' && e.details?.privilege === 'ADMIN'));
  // The SQL text itself is not recorded.
  assert.ok(!JSON.stringify(all).includes('SELECT * FROM'));
});

test('user, role and grant changes name the administrator', async () => {
  const all = await events('?event=user,role,grant&limit=1000');
  const names = all.map((e) => `${e.event}:${e.user ?? ''}`);
  for (const expected of [
    'user.create:alice',
    'user.update:alice',
    'grant.add:alice',
    'user.create:bob',
    'user.delete:bob',
  ]) {
    assert.ok(names.includes(expected), `${expected} missing from ${names.join(', ')}`);
  }
  assert.ok(all.every((e) => e.actor === 'admin'));
  const update = all.find(
    (e) => e.event === 'user.update' && (e.details?.changed as string[]).includes('password'),
  )!;
  assert.deepEqual(update.details, { changed: ['password'] });
  const roles = all.find(
    (e) => e.event === 'user.update' && (e.details?.changed as string[]).includes('roles'),
  )!;
  assert.deepEqual(roles.details, { changed: ['roles'], roles: ['vault_reader'] });
  assert.ok(all.some((e) => e.event === 'role.create' && e.details?.role === 'vault_reader'));
  assert.ok(
    all.some(
      (e) =>
        e.event === 'grant.add' && e.details?.role === 'vault_reader' && e.details?.privilege === 'INSERT',
    ),
  );
  assert.ok(
    all.some(
      (e) => e.event === 'grant.revoke' && e.details?.role === 'vault_reader' && e.details?.table === 'vault',
    ),
  );
});

test('session kill, rate-limit close and logout are recorded', async () => {
  const kill = (await events('?event=session.kill'))[0]!;
  assert.equal(kill.actor, 'admin');
  assert.equal(kill.user, 'alice');
  assert.ok(kill.session);
  const flood = (await events('?event=rate_limit'))[0]!;
  assert.equal(flood.event, 'rate_limit.close');
  assert.equal(flood.user, 'admin');
  assert.equal(flood.endpoint, '/api/v1/stream');
  const logout = (await events('?event=auth.logout'))[0]!;
  assert.equal(logout.user, 'alice');
});

test('?limit=N returns the newest N, oldest first; filters combine', async () => {
  const all = await events('?limit=10000');
  const last3 = await events('?limit=3');
  assert.deepEqual(last3, all.slice(-3));
  const alice = await events('?user=alice&event=login.failure&limit=2');
  assert.equal(alice.length, 2);
  assert.ok(alice.every((e) => e.user === 'alice' && e.event === 'login.failure'));
});

test('the log only grows: earlier lines stay as they were', async () => {
  const before_ = readFileSync(join(ts.dataDir, 'audit.log'), 'utf8');
  await login(ts.server.url, 'nobody', 'x');
  await events();
  const after_ = readFileSync(join(ts.dataDir, 'audit.log'), 'utf8');
  assert.ok(after_.startsWith(before_));
  assert.ok(after_.length > before_.length);
});

test('GET /api/v1/audit is for admins; a bad limit or event is 400', async () => {
  const token = await createUser(ts, 'carol', ['readwrite', 'monitor']);
  const res = await ts.http('/api/v1/audit', { token });
  assert.equal(res.status, 403);
  assert.equal((res.body as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
  assert.equal((await ts.http('/api/v1/audit', { token: null })).status, 401);
  for (const query of ['?limit=0', '?limit=abc', '?limit=100001', '?event=DROP%20TABLE']) {
    assert.equal((await ts.http(`/api/v1/audit${query}`)).status, 400, query);
  }
});

test('with audit_log off nothing is written', async () => {
  const quiet = await startTestServer({ audit_log: false });
  try {
    await login(quiet.server.url, 'admin', 'wrong');
    await quiet.http('/api/v1/query', { body: { sql: 'SELECT * FROM _rustydb_users' } });
    assert.equal(existsSync(join(quiet.dataDir, 'audit.log')), false);
    const res = await quiet.http('/api/v1/audit');
    assert.deepEqual((res.body as { data: unknown }).data, { events: [] });
  } finally {
    await quiet.close();
  }
});

test('a large log is read from its end', async () => {
  const big = await startTestServer();
  try {
    for (let i = 0; i < 3000; i++)
      big.server.audit.record({ event: 'login.failure', user: `u${i}`, details: { pad: 'x'.repeat(100) } });
    big.server.audit.record({ event: 'session.kill', user: 'needle' });
    const res = await big.http('/api/v1/audit?limit=2');
    const got = (res.body as { data: { events: Record_[] } }).data.events;
    assert.deepEqual(
      got.map((e) => e.user),
      ['u2999', 'needle'],
    );
    const needle = await big.http('/api/v1/audit?event=session.kill&limit=5');
    assert.deepEqual(
      (needle.body as { data: { events: Record_[] } }).data.events.map((e) => e.user),
      ['needle'],
    );
    const first = await big.http('/api/v1/audit?event=server.start');
    assert.equal((first.body as { data: { events: Record_[] } }).data.events.length, 1);
  } finally {
    await big.close();
    rmSync(big.dataDir, { recursive: true, force: true });
  }
});
