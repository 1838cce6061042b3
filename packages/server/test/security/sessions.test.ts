/**
 * The token lifecycle and the session registry: refresh, logout (one token or everywhere), password
 * changes, disabling and deleting users, and an administrator's kill all reach open sockets within a
 * second (error first, then close 1008); grants and revokes reach open connections within a second
 * too. `GET/DELETE /api/v1/sessions` are for admins only.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import {
  assertAlive,
  connectWith,
  createRole,
  createUser,
  loginToken,
  USER_PASSWORD,
  within,
} from './helpers.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, `CREATE TABLE docs (id ${dialect.autoId}, body TEXT)`);
    await sql(ts, "INSERT INTO docs (body) VALUES ('hello')");
  });

  after(() => ts.close());

  interface SessionView {
    id: string;
    user: string;
    remote_address: string;
    endpoint: string;
    connected_at: string;
    authenticated_at: string;
    expires_at: string | null;
  }

  async function sessionsOf(user: string): Promise<SessionView[]> {
    const res = await ts.http(`/api/v1/sessions?user=${user}`);
    assert.equal(res.status, 200);
    return (res.body as { data: { sessions: SessionView[] } }).data.sessions;
  }

  /**
   * The socket receives `code` as an error without id, then a 1008 close, within a second of `since`: the
   * moment the change was made, which the answer to the request that made it marks. (Not the moment the
   * request was sent: a password change first checks one password and hashes another, which takes
   * hundreds of milliseconds on a busy machine, before it changes anything.)
   */
  async function cut(c: TestClient, code: string, since: number): Promise<void> {
    const closed = await c.closed(1000);
    assert.equal(closed.code, 1008);
    assert.ok(Date.now() - since <= 1000, `closed after ${Date.now() - since} ms`);
    const error = c.received.find((m) => m.type === 'error' && m.id === undefined);
    assert.equal(error?.payload.code, code, JSON.stringify(c.received.at(-1)));
  }

  test('GET /api/v1/sessions lists authenticated sessions with who, where, when and expiry', async () => {
    const token = await createUser(ts, 'lister', ['readonly']);
    const c = await connectWith(ts, token);
    const [session] = await sessionsOf('lister');
    assert.ok(session);
    assert.equal(session.user, 'lister');
    assert.equal(session.remote_address, '127.0.0.1');
    assert.equal(session.endpoint, '/api/v1/stream');
    assert.ok(Date.parse(session.connected_at) <= Date.now());
    assert.ok(Date.parse(session.expires_at!) > Date.now() + 3600_000);
    const all = await ts.http('/api/v1/sessions');
    assert.ok(
      (all.body as { data: { sessions: SessionView[] } }).data.sessions.some((s) => s.id === session.id),
    );
    c.close();
    await c.closed();
    await within(1000, async () => (await sessionsOf('lister')).length === 0);
  });

  test('sessions are for admins: a non-admin is 403 PERMISSION_DENIED, no token is 401', async () => {
    const token = await createUser(ts, 'nosy', ['readwrite']);
    for (const [method, path] of [
      ['GET', '/api/v1/sessions'],
      ['DELETE', '/api/v1/sessions?user=admin'],
      ['DELETE', '/api/v1/sessions/whatever'],
    ] as const) {
      const res = await ts.http(path, { method, token });
      assert.equal(res.status, 403, `${method} ${path}`);
      assert.equal((res.body as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
      assert.equal((await ts.http(path, { method, token: null })).status, 401);
    }
  });

  test('DELETE /api/v1/sessions/:id closes that session within a second; others stay', async () => {
    const token = await createUser(ts, 'killed', ['readonly']);
    const a = await connectWith(ts, token);
    const b = await connectWith(ts, token);
    const sessions = await sessionsOf('killed');
    assert.equal(sessions.length, 2);
    const res = await ts.http(`/api/v1/sessions/${sessions[0]!.id}`, { method: 'DELETE' });
    const changed = Date.now();
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as { data: unknown }).data, { closed: 1 });
    // Which of a and b was listed first is not known: exactly one is cut.
    const target = sessions[0]!.id;
    const cutOne = await Promise.race([a.closed(1000).then(() => a), b.closed(1000).then(() => b)]);
    const kept = cutOne === a ? b : a;
    assert.equal(cutOne.closeInfo!.code, 1008);
    assert.ok(Date.now() - changed <= 1000, `closed after ${Date.now() - changed} ms`);
    assert.deepEqual((await sessionsOf('killed')).map((s) => s.id).includes(target), false);
    assert.equal((await sessionsOf('killed')).length, 1);
    assert.equal(cutOne.received.find((m) => m.type === 'error')?.payload.code, 'PERMISSION_DENIED');
    assert.equal((await kept.request({ type: 'ping' })).type, 'pong');
    assert.equal((await ts.http(`/api/v1/sessions/${sessions[0]!.id}`, { method: 'DELETE' })).status, 404);
    kept.close();
  });

  test("DELETE /api/v1/sessions?user= closes all of that user's sessions; without ?user it is 400", async () => {
    const token = await createUser(ts, 'everywhere', ['readonly']);
    const clients = [
      await connectWith(ts, token),
      await connectWith(ts, token),
      await connectWith(ts, token),
    ];
    const bystander = await ts.connectAuthed();
    const res = await ts.http('/api/v1/sessions?user=everywhere', { method: 'DELETE' });
    const changed = Date.now();
    assert.deepEqual((res.body as { data: unknown }).data, { closed: 3 });
    for (const c of clients) await cut(c, 'PERMISSION_DENIED', changed);
    assert.equal((await bystander.request({ type: 'ping' })).type, 'pong');
    const none = await ts.http('/api/v1/sessions', { method: 'DELETE' });
    assert.equal(none.status, 400);
    assert.equal((await bystander.request({ type: 'ping' })).type, 'pong');
    bystander.close();
  });

  test('logout revokes that token: its sockets are cut, HTTP refuses it, other tokens of the user live', async () => {
    await createUser(ts, 'logger', ['readonly']);
    const one = await loginToken(ts, 'logger');
    const two = await loginToken(ts, 'logger');
    const onOne = await connectWith(ts, one);
    const onTwo = await connectWith(ts, two);
    const res = await ts.http('/api/v1/auth/logout', { method: 'POST', token: one });
    const changed = Date.now();
    assert.equal(res.status, 200);
    assert.deepEqual((res.body as { data: unknown }).data, {
      logged_out: true,
      all: false,
      sessions_closed: 1,
    });
    await cut(onOne, 'AUTH_EXPIRED', changed);
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: one })).status, 401);
    assert.equal((await ts.http('/api/v1/auth/logout', { method: 'POST', token: one })).status, 401);
    assert.equal((await onTwo.request({ type: 'ping' })).type, 'pong');
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: two })).status, 200);
    onTwo.close();
  });

  test('logout with {"all": true} ends every token and socket of the user', async () => {
    await createUser(ts, 'leaver', ['readonly']);
    const one = await loginToken(ts, 'leaver');
    const two = await loginToken(ts, 'leaver');
    const sockets = [await connectWith(ts, one), await connectWith(ts, two)];
    const res = await ts.http('/api/v1/auth/logout', { method: 'POST', token: two, body: { all: true } });
    const changed = Date.now();
    assert.deepEqual((res.body as { data: unknown }).data, {
      logged_out: true,
      all: true,
      sessions_closed: 2,
    });
    for (const c of sockets) await cut(c, 'AUTH_EXPIRED', changed);
    for (const token of [one, two]) {
      assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token })).status, 401);
    }
    // Logging in again works (the new token is dated after the cut-off).
    const fresh = await loginToken(ts, 'leaver');
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: fresh })).status, 200);
  });

  test('refresh returns a new, longer-lived token; the old one keeps working until logged out', async () => {
    const old = await createUser(ts, 'refresher', ['readonly']);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const res = await ts.http('/api/v1/auth/refresh', { method: 'POST', token: old });
    assert.equal(res.status, 200);
    const data = (res.body as { data: { token: string; expires_at: string } }).data;
    assert.notEqual(data.token, old);
    assert.ok(Date.parse(data.expires_at) > Date.now() + 86_000_000);
    const c = await connectWith(ts, data.token);
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: old })).status, 200);
    // Re-authenticating the open socket with the refreshed token keeps it open.
    c.send({ type: 'auth', id: 're', payload: { token: data.token } });
    assert.equal((await c.reply('re')).type, 'auth_success');
    c.close();
    assert.equal((await ts.http('/api/v1/auth/refresh', { method: 'POST', token: 'garbage' })).status, 401);
    assert.equal((await ts.http('/api/v1/auth/refresh', { method: 'POST', token: null })).status, 401);
  });

  test("changing one's own password cuts every socket of the user and returns a working token", async () => {
    const token = await createUser(ts, 'changer', ['readonly']);
    const sockets = [await connectWith(ts, token), await connectWith(ts, token)];
    const wrong = await ts.http('/api/v1/auth/password', {
      token,
      body: { current_password: 'not-it', new_password: 'second-password' },
    });
    assert.equal(wrong.status, 401);
    assert.equal((await sockets[0]!.request({ type: 'ping' })).type, 'pong');
    const res = await ts.http('/api/v1/auth/password', {
      token,
      body: { current_password: USER_PASSWORD, new_password: 'second-password' },
    });
    const changed = Date.now();
    assert.equal(res.status, 200);
    const fresh = (res.body as { data: { token: string; sessions_closed: number } }).data;
    assert.equal(fresh.sessions_closed, 2);
    for (const c of sockets) await cut(c, 'AUTH_EXPIRED', changed);
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token })).status, 401);
    assert.equal(
      (await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: fresh.token })).status,
      200,
    );
    assert.equal(
      (
        await ts.http('/api/v1/auth/login', {
          body: { username: 'changer', password: USER_PASSWORD },
          token: null,
        })
      ).status,
      401,
    );
    await loginToken(ts, 'changer', 'second-password');
  });

  test("an admin changing a user's password cuts that user's sockets within a second", async () => {
    const token = await createUser(ts, 'reset', ['readonly']);
    const c = await connectWith(ts, token);
    const res = await ts.http('/api/v1/users/reset', {
      method: 'PATCH',
      body: { password: 'admin-chosen-1' },
    });
    const changed = Date.now();
    assert.equal(res.status, 200);
    await cut(c, 'AUTH_EXPIRED', changed);
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token })).status, 401);
  });

  test('disabling a user cuts their sockets within a second; their token stays dead', async () => {
    const token = await createUser(ts, 'suspended', ['readonly']);
    const c = await connectWith(ts, token);
    assert.equal(
      (await ts.http('/api/v1/users/suspended', { method: 'PATCH', body: { disabled: true } })).status,
      200,
    );
    const changed = Date.now();
    await cut(c, 'AUTH_EXPIRED', changed);
    const again = await ts.connect({ token });
    assert.equal((await again.next()).payload.code, 'AUTH_FAILED');
    assert.equal((await again.closed()).code, 1008);
  });

  test('deleting a user cuts their sockets within a second', async () => {
    const token = await createUser(ts, 'removed', ['readonly']);
    const c = await connectWith(ts, token);
    assert.equal((await ts.http('/api/v1/users/removed', { method: 'DELETE' })).status, 200);
    const changed = Date.now();
    await cut(c, 'AUTH_EXPIRED', changed);
  });

  test('a grant reaches an open connection within a second, and so does a revoke', async () => {
    await createRole(ts, 'docs_role', []);
    const token = await createUser(ts, 'grantee', ['docs_role']);
    const c = await connectWith(ts, token);
    assert.equal((await c.query('SELECT body FROM docs')).error?.payload.code, 'PERMISSION_DENIED');
    const granted = Date.now();
    assert.equal(
      (await ts.http('/api/v1/roles/docs_role/grants', { body: { privilege: 'SELECT', table: 'docs' } }))
        .status,
      200,
    );
    const took = await within(1000, async () => (await c.query('SELECT body FROM docs')).error === undefined);
    assert.ok(Date.now() - granted <= 1000, `grant took ${took} ms`);
    assert.deepEqual((await c.query('SELECT body FROM docs')).rows, [['hello']]);
    const revoked = Date.now();
    assert.equal(
      (
        await ts.http('/api/v1/roles/docs_role/grants', {
          method: 'DELETE',
          body: { privilege: 'SELECT', table: 'docs' },
        })
      ).status,
      200,
    );
    await within(
      1000,
      async () => (await c.query('SELECT body FROM docs')).error?.payload.code === 'PERMISSION_DENIED',
    );
    assert.ok(Date.now() - revoked <= 1000);
    // The socket itself stays open: only the privilege went.
    assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  });

  test('taking a role away from a user reaches an open connection within a second', async () => {
    const token = await createUser(ts, 'demoted', ['readwrite']);
    const c = await connectWith(ts, token);
    assert.equal((await c.query("INSERT INTO docs (body) VALUES ('by-demoted')")).error, undefined);
    const started = Date.now();
    assert.equal(
      (await ts.http('/api/v1/users/demoted', { method: 'PATCH', body: { roles: ['readonly'] } })).status,
      200,
    );
    const { error } = await c.query("INSERT INTO docs (body) VALUES ('again')");
    assert.equal(error?.payload.code, 'PERMISSION_DENIED');
    assert.ok(Date.now() - started <= 1000);
    assert.deepEqual((await c.query("SELECT count(*) FROM docs WHERE body = 'again'")).rows, [[0]]);
    await sql(ts, "DELETE FROM docs WHERE body = 'by-demoted'");
  });

  test('a token presented again after its user got new roles authenticates with the new roles', async () => {
    // Connections of one token share what its authentication made while the user's row is unchanged:
    // that must never outlive a change of the row.
    const token = await createUser(ts, 'regranted', ['readonly']);
    const rolesOnConnect = async (): Promise<{ c: TestClient; roles: unknown }> => {
      const c = await ts.connect();
      c.send({ type: 'auth', id: 'auth', payload: { token } });
      const m = await c.reply('auth');
      assert.equal(m.type, 'auth_success', JSON.stringify(m));
      return { c, roles: (m.payload as { roles: unknown }).roles };
    };
    const first = await rolesOnConnect();
    assert.deepEqual(first.roles, ['readonly']);
    assert.deepEqual((await rolesOnConnect()).roles, ['readonly']);
    assert.equal(
      (await ts.http('/api/v1/users/regranted', { method: 'PATCH', body: { roles: ['readwrite'] } })).status,
      200,
    );
    const second = await rolesOnConnect();
    assert.deepEqual(second.roles, ['readwrite']);
    assert.equal((await second.c.query("INSERT INTO docs (body) VALUES ('by-regranted')")).error, undefined);
    await sql(ts, "DELETE FROM docs WHERE body = 'by-regranted'");
  });

  test('re-authenticating an open socket as another user is refused; the socket closes and leaves the list', async () => {
    const first = await createUser(ts, 'first_user', ['readonly']);
    const second = await createUser(ts, 'second_user', ['readonly']);
    const c = await connectWith(ts, first);
    assert.equal((await sessionsOf('first_user')).length, 1);
    c.send({ type: 'auth', id: 'switch', payload: { token: second } });
    const refused = await c.reply('switch');
    assert.equal(refused.type, 'auth_error');
    assert.equal(refused.payload.code, 'AUTH_FAILED');
    assert.deepEqual(await c.closed(), { code: 1008, reason: 'authentication failed' });
    assert.equal((await sessionsOf('first_user')).length, 0);
    assert.equal((await sessionsOf('second_user')).length, 0);
  });

  test('the server serves after every cut', async () => {
    await assertAlive(ts);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
