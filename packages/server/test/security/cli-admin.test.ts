/**
 * `rustydb user …` and `rustydb role …` against a running server over HTTP: each command's effect is
 * checked through the API (a login, a privilege), and bad credentials or arguments fail cleanly.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, login, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { cleanEnv, runCli } from '../helpers/cli.ts';
import { connectWith, loginToken } from './helpers.ts';

let ts: TestServer;

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)');
  await sql(ts, 'INSERT INTO orders (total) VALUES (10)');
});

after(() => ts.close());

async function cli(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = runCli(
    args,
    cleanEnv({ RUSTYDB_URL: ts.server.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD, ...env }),
  );
  try {
    const { code } = await run.exited(30_000);
    return { code, stdout: run.stdout(), stderr: run.stderr() };
  } finally {
    run.kill();
  }
}

test('user add with a chosen password and roles; the user can log in', { timeout: 60_000 }, async () => {
  const out = await cli(['user', 'add', 'dana', '--new-password', 'dana-password-1', '--roles', 'readonly']);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /created user 'dana' with roles readonly/);
  assert.equal((await login(ts.server.url, 'dana', 'dana-password-1')).status, 200);
});

test('user add without a password prints a generated one that works', { timeout: 60_000 }, async () => {
  const out = await cli(['user', 'add', 'erin']);
  assert.equal(out.code, 0, out.stderr);
  const [, password] = /generated password: (\S+)/.exec(out.stdout) ?? [];
  assert.ok(password && password.length >= 16);
  assert.equal((await login(ts.server.url, 'erin', password)).status, 200);
});

test('user list shows users, roles and status; --json gives the data', { timeout: 60_000 }, async () => {
  const out = await cli(['user', 'list']);
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stdout, /^admin\s+admin$/m);
  assert.match(out.stdout, /^dana\s+readonly$/m);
  const json = await cli(['user', 'list', '--json']);
  const users = JSON.parse(json.stdout) as { username: string; roles: string[]; disabled: boolean }[];
  assert.deepEqual(
    users.find((u) => u.username === 'dana'),
    { username: 'dana', roles: ['readonly'], disabled: false },
  );
});

test(
  'role add / role grant / user grant: the privilege reaches an open connection',
  { timeout: 60_000 },
  async () => {
    await cli(['user', 'passwd', 'erin', '--new-password', 'erin-password-1']);
    const erin = await connectWith(ts, await loginToken(ts, 'erin', 'erin-password-1'));
    assert.equal((await erin.query('SELECT total FROM orders')).error?.payload.code, 'PERMISSION_DENIED');
    assert.equal((await cli(['role', 'add', 'analyst', '--description', 'reads orders'])).code, 0);
    const granted = await cli(['role', 'grant', 'analyst', 'SELECT', 'orders']);
    assert.equal(granted.code, 0, granted.stderr);
    assert.match(granted.stdout, /analyst: SELECT ON orders/);
    const given = await cli(['user', 'grant', 'erin', 'analyst']);
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, /erin: roles analyst/);
    assert.deepEqual((await erin.query('SELECT total FROM orders')).rows, [[10]]);
    const listed = await cli(['role', 'list']);
    assert.match(listed.stdout, /^analyst\s+SELECT ON orders$/m);
  },
);

test('user revoke and role revoke take the privilege away again', { timeout: 60_000 }, async () => {
  const erin = await connectWith(ts, await loginToken(ts, 'erin', 'erin-password-1'));
  assert.equal((await erin.query('SELECT total FROM orders')).error, undefined);
  assert.equal((await cli(['role', 'revoke', 'analyst', 'SELECT', 'orders'])).code, 0);
  assert.equal((await erin.query('SELECT total FROM orders')).error?.payload.code, 'PERMISSION_DENIED');
  const revoked = await cli(['user', 'revoke', 'erin', 'analyst']);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, /erin: roles \(none\)/);
  const again = await cli(['user', 'revoke', 'erin', 'analyst']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /does not have the role 'analyst'/);
});

test("user passwd ends the user's sessions and old password", { timeout: 60_000 }, async () => {
  const dana = await connectWith(ts, await loginToken(ts, 'dana', 'dana-password-1'));
  const out = await cli(['user', 'passwd', 'dana', '--new-password', 'dana-password-2']);
  assert.equal(out.code, 0, out.stderr);
  assert.equal((await dana.closed(2000)).code, 1008);
  assert.equal((await login(ts.server.url, 'dana', 'dana-password-1')).status, 401);
  assert.equal((await login(ts.server.url, 'dana', 'dana-password-2')).status, 200);
});

test(
  'a wrong administrator password fails with AUTH_FAILED and exit code 1, changing nothing',
  { timeout: 60_000 },
  async () => {
    const out = await cli(['user', 'add', 'mallory', '--new-password', 'mallory-pw-1'], {
      RUSTYDB_PASSWORD: 'not-the-admin-password',
    });
    assert.equal(out.code, 1);
    assert.match(out.stderr, /AUTH_FAILED/);
    assert.equal((await ts.http('/api/v1/users/mallory')).status, 404);
  },
);

test('a non-admin user gets PERMISSION_DENIED', { timeout: 60_000 }, async () => {
  const out = await cli(['user', 'add', 'mallory', '--new-password', 'mallory-pw-1'], {
    RUSTYDB_USER: 'dana',
    RUSTYDB_PASSWORD: 'dana-password-2',
  });
  assert.equal(out.code, 1);
  assert.match(out.stderr, /PERMISSION_DENIED/);
  assert.equal((await ts.http('/api/v1/users/mallory')).status, 404);
});

test('missing arguments and no password are usage errors (exit 2)', { timeout: 60_000 }, async () => {
  const missing = await cli(['user', 'grant', 'dana']);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /missing role name/);
  const unknown = await cli(['user', 'frobnicate']);
  assert.equal(unknown.code, 2);
  const noPassword = await cli(['user', 'list'], { RUSTYDB_PASSWORD: '' });
  assert.equal(noPassword.code, 2);
  assert.match(noPassword.stderr, /RUSTYDB_PASSWORD/);
});

test('an unreachable server is reported, exit code 1', { timeout: 60_000 }, async () => {
  const out = await cli(['user', 'list'], { RUSTYDB_URL: 'http://127.0.0.1:9' });
  assert.equal(out.code, 1);
  assert.match(out.stderr, /cannot reach http:\/\/127\.0\.0\.1:9/);
});
