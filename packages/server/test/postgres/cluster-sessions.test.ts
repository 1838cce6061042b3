/**
 * Two real nodes on one PostgreSQL database: the administrator's list of sessions, asked of either
 * node, holds the sessions of both, each with the node that holds it; ending one listed on the other
 * node works from the list.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { dropCaptureSlot, engineConfig, postgresCases } from '../helpers/engines.ts';

interface Listed {
  node: string;
  unanswered_nodes: number;
  sessions: { id: string; node: string; user: string; endpoint: string }[];
}

postgresCases('PostgreSQL cases', () => {
  let a: TestServer;
  let b: TestServer;
  let databaseUrl: string;

  before(async () => {
    const engine = await engineConfig('postgres');
    databaseUrl = engine.database_url!;
    a = await startTestServer({ enable_rate_limiting: false, ...engine });
    b = await startTestServer({ enable_rate_limiting: false, ...engine });
  });
  after(async () => {
    await a?.close();
    await b?.close();
    await dropCaptureSlot(databaseUrl);
  });

  const list = async (node: TestServer, query = ''): Promise<Listed> => {
    const res = await node.http(`/api/v1/sessions${query}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return (res.body as { data: Listed }).data;
  };

  test('either node lists the sessions of both, each with its node', async () => {
    const made = await a.http('/api/v1/users', {
      body: { username: 'bob', password: 'bob-password', roles: [] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const login = await b.http('/api/v1/auth/login', {
      body: { username: 'bob', password: 'bob-password' },
      token: null,
    });
    const bobToken = (login.body as { data: { token: string } }).data.token;
    const onA = await a.connectAuthed();
    const bobOnB = await b.connect({ token: bobToken });
    assert.equal((await bobOnB.next()).type, 'auth_success');

    const fromA = await list(a);
    const fromB = await list(b);
    assert.notEqual(fromA.node, fromB.node);
    for (const listed of [fromA, fromB]) {
      assert.equal(listed.unanswered_nodes, 0);
      const byUser = new Map(listed.sessions.map((s) => [s.user, s]));
      assert.equal(listed.sessions.length, 2, JSON.stringify(listed.sessions));
      assert.equal(byUser.get('admin')?.node, fromA.node);
      assert.equal(byUser.get('bob')?.node, fromB.node);
    }
    // The filter applies on every node.
    const bobs = await list(a, '?user=bob');
    assert.deepEqual(
      bobs.sessions.map((s) => [s.user, s.node]),
      [['bob', fromB.node]],
    );

    // A session listed from node A and held by node B is ended through node A.
    const bobSession = bobs.sessions[0]!.id;
    const killed = await a.http(`/api/v1/sessions/${bobSession}`, { method: 'DELETE' });
    assert.equal(killed.status, 200, JSON.stringify(killed.body));
    assert.equal((await bobOnB.closed()).code, 1008);
    assert.deepEqual((await list(a, '?user=bob')).sessions, []);
    onA.close();
  });
});
