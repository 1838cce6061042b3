/**
 * The HTTP API through the client: `request()` calls it with the client's token and turns refusals
 * into RustyDBErrors; `logout()` closes the client and revokes its token on the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBClient, isRustyDBError, login } from '@rustydb/client';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from './helpers.ts';

describe('client.request and client.logout', () => {
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
    await ts.http('/api/v1/users', {
      body: { username: 'reader', password: 'reader-password', roles: ['readonly'] },
    });
  });
  after(() => ts.close());

  test('request() calls the HTTP API with the token and returns the envelope data', async () => {
    const client = new RustyDBClient({ url: ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    try {
      const me = await client.request<{ user: string; roles: string[]; grants: { privilege: string }[] }>(
        '/api/v1/auth/me',
      );
      assert.equal(me.user, 'admin');
      assert.deepEqual(me.roles, ['admin']);
      assert.deepEqual(me.grants, [{ privilege: 'ADMIN' }]);
      const created = await client.request<{ name: string }>('/api/v1/roles', {
        body: { name: 'desk', grants: [{ privilege: 'SELECT', table: 'orders' }] },
      });
      assert.equal(created.name, 'desk');
    } finally {
      await client.close();
    }
  });

  test('a refusal is a RustyDBError with the server code and the HTTP status', async () => {
    const client = new RustyDBClient({ url: ts.server.url, username: 'reader', password: 'reader-password' });
    try {
      const me = await client.request<{ grants: unknown[] }>('/api/v1/auth/me');
      assert.deepEqual(me.grants, [{ privilege: 'SELECT', table: '*' }]);
      await assert.rejects(client.request('/api/v1/users'), (err) => {
        assert.ok(isRustyDBError(err, 'PERMISSION_DENIED'), String(err));
        assert.equal(err.status, 403);
        return true;
      });
    } finally {
      await client.close();
    }
  });

  test('logout() closes the client and the token is refused from then on', async () => {
    const { token } = await login(ts.server.url, 'admin', ADMIN_PASSWORD);
    const client = new RustyDBClient({ url: ts.server.url, token });
    await client.ready();
    await client.logout();
    assert.equal(client.state, 'closed');
    const res = await ts.http('/api/v1/auth/me', { token });
    assert.equal(res.status, 401);
    assert.match((res.body as { error: { code: string } }).error.code, /^AUTH_(FAILED|EXPIRED)$/);
  });
});
