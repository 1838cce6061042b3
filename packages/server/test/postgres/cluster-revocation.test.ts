/**
 * Two real nodes on one PostgreSQL database: what is revoked through node A takes effect on node B's
 * open sockets and subscriptions within a second, as it does on one node (docs/postgres.md, "Several
 * nodes"). Logout, logout everywhere, a password change, an administrator's kill, a revoked grant, a
 * role taken away, a disabled or deleted user.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';

/** The bound the issue sets: a revocation reaches every node within one second. */
const WITHIN_MS = 1000;

postgresCases('PostgreSQL cases', () => {
  describe('revocations reach every node', () => {
    let a: TestServer;
    let b: TestServer;
    let databaseUrl: string;
    let users = 0;

    before(async () => {
      const engine = await engineConfig('postgres');
      databaseUrl = engine.database_url!;
      a = await startTestServer({ enable_rate_limiting: false, ...engine });
      b = await startTestServer({ enable_rate_limiting: false, ...engine });
      await sql(a, 'CREATE TABLE notes (id int PRIMARY KEY, body text)');
    });
    after(async () => {
      await a.close();
      await b.close();
      await dropCaptureSlot(databaseUrl);
    });

    /** A new user (made through node A) holding a new role that may read `notes`. */
    async function newUser(): Promise<{ name: string; role: string; password: string }> {
      users += 1;
      const name = `user${users}`;
      const role = `reader${users}`;
      const password = `${name}-password`;
      const made = await a.http('/api/v1/roles', {
        body: { name: role, grants: [{ privilege: 'SELECT', table: 'notes' }] },
      });
      assert.equal(made.status, 201, JSON.stringify(made.body));
      const user = await a.http('/api/v1/users', { body: { username: name, password, roles: [role] } });
      assert.equal(user.status, 201, JSON.stringify(user.body));
      return { name, role, password };
    }

    /** Logs in through `node`; the token is then used on the other node too. */
    async function loginOn(node: TestServer, name: string, password: string): Promise<string> {
      const res = await node.http('/api/v1/auth/login', { body: { username: name, password }, token: null });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      return (res.body as { data: { token: string } }).data.token;
    }

    async function socketOn(node: TestServer, token: string): Promise<TestClient> {
      const client = await node.connect({ token });
      assert.equal((await client.next()).type, 'auth_success');
      return client;
    }

    /** The session is ended as on one node: an error without id, then close 1008; within the bound. */
    async function expectEnded(
      client: TestClient,
      since: number,
      code: string,
      reason: string,
    ): Promise<void> {
      const error = await client.next((m) => m.type === 'error' && m.id === undefined, 3000);
      const elapsed = Date.now() - since;
      assert.equal(error.payload.code, code);
      assert.deepEqual(await client.closed(), { code: 1008, reason });
      assert.ok(elapsed < WITHIN_MS, `ended ${elapsed} ms after the revocation`);
    }

    test('a token issued by node A is accepted by node B, and logging it out on A closes its socket on B', async () => {
      const { name, password } = await newUser();
      const token = await loginOn(a, name, password);
      const onB = await socketOn(b, token);
      const otherLogin = await socketOn(b, await loginOn(b, name, password));
      const out = await a.http('/api/v1/auth/logout', { method: 'POST', token });
      assert.equal(out.status, 200);
      await expectEnded(onB, Date.now(), 'AUTH_EXPIRED', 'logged out');
      // Only that login: the user's other login on B stays open.
      assert.equal((await otherLogin.request({ type: 'ping' })).type, 'pong');
    });

    test('logout everywhere on A closes every socket of the user on B', async () => {
      const { name, password } = await newUser();
      const first = await socketOn(b, await loginOn(a, name, password));
      const second = await socketOn(b, await loginOn(b, name, password));
      const out = await a.http('/api/v1/auth/logout', {
        method: 'POST',
        body: { all: true },
        token: await loginOn(a, name, password),
      });
      assert.equal(out.status, 200);
      const since = Date.now();
      await expectEnded(first, since, 'AUTH_EXPIRED', 'logged out');
      await expectEnded(second, since, 'AUTH_EXPIRED', 'logged out');
    });

    test("a password change on A closes the user's sockets on B", async () => {
      const { name, password } = await newUser();
      const onB = await socketOn(b, await loginOn(b, name, password));
      const changed = await a.http('/api/v1/auth/password', {
        body: { current_password: password, new_password: `${password}-new` },
        token: await loginOn(a, name, password),
      });
      assert.equal(changed.status, 200, JSON.stringify(changed.body));
      await expectEnded(onB, Date.now(), 'AUTH_EXPIRED', 'credentials changed');
    });

    test('an administrator on A kills a session held by B, by id and by user', async () => {
      const { name, password } = await newUser();
      const token = await loginOn(b, name, password);
      const byId = await socketOn(b, token);
      // The session list is the answering node's own: B names the session, A ends it.
      const listed = (await b.http(`/api/v1/sessions?user=${name}`)).body as {
        data: { sessions: { id: string }[] };
      };
      const [session] = listed.data.sessions;
      assert.ok(session);
      const killed = await a.http(`/api/v1/sessions/${session.id}`, { method: 'DELETE' });
      assert.equal(killed.status, 200, JSON.stringify(killed.body));
      await expectEnded(byId, Date.now(), 'PERMISSION_DENIED', 'session terminated');
      // No node holds it any more.
      assert.equal((await a.http(`/api/v1/sessions/${session.id}`, { method: 'DELETE' })).status, 404);

      const byUser = await socketOn(b, token);
      const all = await a.http(`/api/v1/sessions?user=${name}`, { method: 'DELETE' });
      assert.equal(all.status, 200);
      await expectEnded(byUser, Date.now(), 'PERMISSION_DENIED', 'session terminated');
    });

    test("a grant revoked or a role taken away on A ends the user's subscriptions on B with PERMISSION_DENIED", async () => {
      const { name, role, password } = await newUser();
      const onB = await socketOn(b, await loginOn(b, name, password));
      onB.send({ type: 'subscribe', id: 'grant', payload: { table: 'notes' } });
      assert.equal((await onB.next((m) => m.id === 'grant')).type, 'subscribed');
      const revoked = await a.http(`/api/v1/roles/${role}/grants`, {
        method: 'DELETE',
        body: { privilege: 'SELECT', table: 'notes' },
      });
      assert.equal(revoked.status, 200);
      let since = Date.now();
      const denied = await onB.next((m) => m.id === 'grant' && m.type === 'error', 3000);
      assert.equal(denied.payload.code, 'PERMISSION_DENIED');
      assert.ok(Date.now() - since < WITHIN_MS, `ended ${Date.now() - since} ms after the revoke`);

      const granted = await a.http(`/api/v1/roles/${role}/grants`, {
        body: { privilege: 'SELECT', table: 'notes' },
      });
      assert.equal(granted.status, 200);
      // The grant is back on B at once too.
      onB.send({ type: 'subscribe', id: 'role', payload: { table: 'notes' } });
      assert.equal((await onB.next((m) => m.id === 'role')).type, 'subscribed');
      const patched = await a.http(`/api/v1/users/${name}`, { method: 'PATCH', body: { roles: [] } });
      assert.equal(patched.status, 200);
      since = Date.now();
      const ended = await onB.next((m) => m.id === 'role' && m.type === 'error', 3000);
      assert.equal(ended.payload.code, 'PERMISSION_DENIED');
      assert.ok(Date.now() - since < WITHIN_MS, `ended ${Date.now() - since} ms after the role change`);
      // Nothing after the revoke reaches B's socket.
      await sql(a, "INSERT INTO notes VALUES (1, 'after the revoke')");
      await assert.rejects(
        onB.next((m) => m.type === 'change', 300),
        /no matching message/,
      );
    });

    test("disabling or deleting a user on A closes the user's sockets on B", async () => {
      const disabled = await newUser();
      const deleted = await newUser();
      const onB = await socketOn(b, await loginOn(a, disabled.name, disabled.password));
      const otherOnB = await socketOn(b, await loginOn(a, deleted.name, deleted.password));
      const patched = await a.http(`/api/v1/users/${disabled.name}`, {
        method: 'PATCH',
        body: { disabled: true },
      });
      assert.equal(patched.status, 200);
      await expectEnded(onB, Date.now(), 'AUTH_EXPIRED', 'credentials revoked');
      const removed = await a.http(`/api/v1/users/${deleted.name}`, { method: 'DELETE' });
      assert.equal(removed.status, 200);
      await expectEnded(otherOnB, Date.now(), 'AUTH_EXPIRED', 'credentials revoked');
    });
  });
});
