/**
 * Issue 14, breach 1, and its pattern: every re-evaluation of a live query — over /api/v1/stream and
 * over GraphQL — is authorized against the schema and grants of that moment, like a fresh statement.
 * A view or table redefined under a subscriber must never carry rows the subscriber may not read; the
 * subscription ends with PERMISSION_DENIED instead.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import { Events, disposeClients, errorCode, wsClient } from '../graphql/helpers.ts';
import { connectWith, createRole, createUser } from './helpers.ts';

/** Values only the secret table holds: no message to an unprivileged user may contain one. */
const SECRETS = ['launch-code-7', 'salary-9000'];

let ts: TestServer;
let eve: string;
let mallory: string;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (1, 'one'), (2, 'two')");
  await sql(ts, 'INSERT INTO secret (id, s) VALUES (1, ?), (2, ?)', SECRETS);
  await createRole(ts, 'eve_role', [{ privilege: 'SELECT', table: 'public_t' }]);
  // Enough to stage the attack alone: replace a view of one's own, and write the table it reads.
  await createRole(ts, 'mallory_role', [
    { privilege: 'CREATE' },
    { privilege: 'DROP' },
    { privilege: 'SELECT', table: 'public_t' },
    { privilege: 'INSERT', table: 'public_t' },
  ]);
  eve = await createUser(ts, 'eve', ['eve_role']);
  mallory = await createUser(ts, 'mallory', ['mallory_role']);
});

after(async () => {
  await disposeClients();
  await ts.close();
});

function assertNoSecret(messages: readonly unknown[], who: string): void {
  const text = JSON.stringify(messages);
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${who} received a secret value: ${text}`);
}

async function subscribeLive(c: TestClient, id: string, query: string): Promise<void> {
  c.send({ type: 'subscribe', id, payload: { query } });
  const ack = await c.next((m) => m.id === id && m.type !== 'data');
  assert.equal(ack.type, 'subscribed', JSON.stringify(ack));
  await c.next((m) => m.id === id && m.type === 'data');
}

/**
 * The subscription's next diff or refusal. An evaluation that ran between a DROP and a CREATE fails
 * with TABLE_NOT_FOUND and leaves the live query in place (docs/live.md): such errors are skipped.
 */
function nextOf(c: TestClient, id: string, timeoutMs = 3000): Promise<ServerMsg> {
  return c.next(
    (m) =>
      m.id === id &&
      m.type !== 'subscribed' &&
      m.type !== 'data' &&
      !(m.type === 'error' && m.payload.code === 'TABLE_NOT_FOUND'),
    timeoutMs,
  );
}

/** Runs statements as admin in one transaction: a swap with no moment in between. */
async function atomically(...statements: string[]): Promise<void> {
  const res = await ts.http('/api/v1/batch', {
    body: { queries: statements.map((text) => ({ sql: text })), transaction: true },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
}

test('a view redefined by an admin to read a secret table ends the live query with PERMISSION_DENIED', async () => {
  await sql(ts, 'CREATE VIEW pv AS SELECT id, v FROM public_t');
  const c = await connectWith(ts, eve);
  await subscribeLive(c, 'pv', 'SELECT * FROM pv');

  await atomically(
    'DROP VIEW pv',
    'CREATE VIEW pv AS SELECT p.id, s.s AS v FROM public_t AS p JOIN secret AS s ON s.id = p.id',
  );
  // Eve's own query of the new view is refused…
  const direct = await c.query('SELECT * FROM pv');
  assert.equal(direct.error?.payload.code, 'PERMISSION_DENIED');
  // …and so is every later evaluation of her live query, whatever makes it run again.
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (3, 'three')");
  const end = await nextOf(c, 'pv');
  assert.equal(end.type, 'error', JSON.stringify(end));
  assert.equal(end.payload.code, 'PERMISSION_DENIED');
  assert.deepEqual(end.payload.details, { privilege: 'SELECT', table: 'secret' });
  // Ended: further writes reach nobody.
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (4, 'four')");
  assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  assertNoSecret(c.received, 'eve');
  assert.equal(
    c.received.filter((m) => m.id === 'pv' && m.type === 'change').length,
    0,
    'no diff of the new view may be sent',
  );
  c.close();
  await sql(ts, 'DROP VIEW pv');
  await sql(ts, 'DELETE FROM public_t WHERE id > 2');
});

test('a user holding CREATE, DROP and INSERT cannot redefine their own view under their live query', async () => {
  const c = await connectWith(ts, mallory);
  assert.equal((await c.query('CREATE VIEW mine AS SELECT id, v FROM public_t')).error, undefined);
  await subscribeLive(c, 'mine', 'SELECT * FROM mine');
  assert.equal((await c.query('DROP VIEW mine')).error, undefined);
  const swap = await c.query(
    'CREATE VIEW mine AS SELECT p.id, s.s AS v FROM public_t AS p JOIN secret AS s ON s.id = p.id',
  );
  assert.equal(swap.error, undefined, 'creating a view needs only CREATE: its readers are checked');
  assert.equal((await c.query("INSERT INTO public_t (id, v) VALUES (5, 'five')")).error, undefined);
  const end = await nextOf(c, 'mine');
  assert.equal(end.type, 'error', JSON.stringify(end));
  assert.equal(end.payload.code, 'PERMISSION_DENIED');
  assertNoSecret(c.received, 'mallory');
  c.close();
  await sql(ts, 'DROP VIEW mine');
  await sql(ts, 'DELETE FROM public_t WHERE id > 2');
});

test('a live query shared by an admin and a user: only the user is ended, the admin follows the new view', async () => {
  await sql(ts, 'CREATE VIEW shared_v AS SELECT id, v FROM public_t');
  const admin = await ts.connectAuthed();
  const user = await connectWith(ts, eve);
  await subscribeLive(admin, 'a', 'SELECT * FROM shared_v ORDER BY id');
  await subscribeLive(user, 'u', 'SELECT * FROM shared_v ORDER BY id');

  await sql(ts, 'DROP VIEW shared_v');
  await sql(
    ts,
    'CREATE VIEW shared_v AS SELECT p.id, s.s AS v FROM public_t AS p JOIN secret AS s ON s.id = p.id',
  );
  // The redefinition alone changes the query's result: both are told at once, without a write.
  const end = await nextOf(user, 'u');
  assert.equal(end.type, 'error', JSON.stringify(end));
  assert.equal(end.payload.code, 'PERMISSION_DENIED');
  const diff = await nextOf(admin, 'a');
  assert.equal(diff.type, 'change', JSON.stringify(diff));
  assert.ok(JSON.stringify(diff.payload).includes(SECRETS[0]!), 'the admin sees the new definition');
  assertNoSecret(user.received, 'eve');
  admin.close();
  user.close();
  await sql(ts, 'DROP VIEW shared_v');
});

test('a grant change re-authorizes live queries against the current definition of their views', async () => {
  await createRole(ts, 'pt_reader', [{ privilege: 'SELECT', table: 'public_t' }]);
  const reader = await createUser(ts, 'pt_reader_user', ['pt_reader']);
  await sql(ts, 'CREATE VIEW gv AS SELECT id, v FROM public_t');
  const c = await connectWith(ts, reader);
  await subscribeLive(c, 'gv', 'SELECT * FROM gv');
  // A grant on secret to someone else is irrelevant; the redefinition is what matters, and the next
  // re-check (here caused by a grant change) must see it.
  await sql(ts, 'DROP VIEW gv');
  await sql(ts, 'CREATE VIEW gv AS SELECT id, s AS v FROM secret');
  const res = await ts.http('/api/v1/roles/pt_reader/grants', {
    body: { privilege: 'INSERT', table: 'public_t' },
  });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  const end = await nextOf(c, 'gv');
  assert.equal(end.type, 'error', JSON.stringify(end));
  assert.equal(end.payload.code, 'PERMISSION_DENIED');
  assertNoSecret(c.received, 'pt_reader_user');
  c.close();
  await sql(ts, 'DROP VIEW gv');
});

test('a GraphQL live query of a table replaced by a view over a secret table ends with PERMISSION_DENIED', async () => {
  await sql(ts, 'CREATE TABLE swapped (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, "INSERT INTO swapped (id, v) VALUES (1, 'visible')");
  await createRole(ts, 'swapped_reader', [{ privilege: 'SELECT', table: 'swapped' }]);
  const token = await createUser(ts, 'gql_eve', ['swapped_reader']);
  const client = wsClient(ts, token);
  const events = new Events<{ swappedLive: { rows: { id: number; v: string }[] } }>(
    client,
    'subscription { swappedLive { rows { id v } } }',
  );
  assert.deepEqual((await events.data()).swappedLive.rows, [{ id: 1, v: 'visible' }]);

  await atomically('DROP TABLE swapped', 'CREATE VIEW swapped AS SELECT id, s AS v FROM secret');
  await sql(ts, 'UPDATE secret SET s = s WHERE id = 1');
  const seen: unknown[] = [];
  for (;;) {
    let result;
    try {
      result = await events.next(3000);
    } catch {
      break;
    }
    seen.push(result);
    if (result.errors) break;
  }
  const outcome = await events.ended(3000);
  assertNoSecret(seen, 'gql_eve');
  assert.equal(errorCode(outcome.error), 'PERMISSION_DENIED', JSON.stringify(outcome));
  await sql(ts, 'DROP VIEW swapped');
});

/** Writes (a few times at most) until `events` delivers one result. */
async function untilDelivered<T>(events: Events<T>, write: (n: number) => Promise<unknown>): Promise<void> {
  for (let n = 0; ; n++) {
    await write(n);
    try {
      const result = await events.next(1000);
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      return;
    } catch (err) {
      if (n >= 9) throw err;
    }
  }
}

/** Ends of every kind of subscription one user holds, as the server reports them. */
async function endOf(c: TestClient, id: string): Promise<ServerMsg> {
  return c.next((m) => m.id === id && m.type === 'error', 3000);
}

test('taking a role away ends every kind of subscription at once, and nothing after reaches them', async () => {
  await sql(ts, 'CREATE TABLE role_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE VIEW role_v AS SELECT id, v FROM role_t');
  const made = await ts.http('/api/v1/documents/collections', { body: { name: 'role_docs' } });
  assert.ok([200, 201].includes(made.status), JSON.stringify(made.body));
  await createRole(ts, 'role_t_reader', [
    { privilege: 'SELECT', table: 'role_t' },
    { privilege: 'SELECT', table: 'role_docs' },
  ]);
  const token = await createUser(ts, 'role_loser', ['role_t_reader']);
  const c = await connectWith(ts, token);
  await subscribeLive(c, 'live', 'SELECT * FROM role_v');
  c.send({ type: 'subscribe', id: 'table', payload: { table: 'role_t' } });
  assert.equal((await c.next((m) => m.id === 'table')).type, 'subscribed');
  c.send({ type: 'watch', id: 'stream', payload: { collection: 'role_docs' } });
  assert.equal((await c.next((m) => m.id === 'stream')).type, 'subscribed');
  const client = wsClient(ts, token);
  const tableChanges = new Events<{ tableChanges: { row: { v: string } } }>(
    client,
    'subscription { tableChanges(table: role_t) { row } }',
  );
  const documentChanges = new Events(
    client,
    'subscription { documentChanges(collection: "role_docs") { sequence } }',
  );
  // graphql-ws acknowledges no subscription: write until a change reaches each, which shows it runs.
  await untilDelivered(tableChanges, (n) => sql(ts, 'INSERT INTO role_t (v) VALUES (?)', [`before-${n}`]));
  await untilDelivered(documentChanges, (n) =>
    ts.http('/api/v1/documents/collections/role_docs/insert', { body: { document: { n } } }),
  );

  const res = await ts.http('/api/v1/users/role_loser', { method: 'PATCH', body: { roles: [] } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  for (const id of ['live', 'table', 'stream']) {
    const end = await endOf(c, id);
    assert.equal(end.payload.code, 'PERMISSION_DENIED', `${id}: ${JSON.stringify(end)}`);
  }
  // Ended: nothing written after can reach them.
  for (const events of [tableChanges, documentChanges]) {
    const { error } = await events.ended();
    assert.equal(errorCode(error), 'PERMISSION_DENIED', JSON.stringify(error));
  }
  await sql(ts, "INSERT INTO role_t (v) VALUES ('after-role-removed')");
  await ts.http('/api/v1/documents/collections/role_docs/insert', {
    body: { document: { n: 'after-role-removed' } },
  });
  assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  assert.ok(!JSON.stringify(c.received).includes('after-role-removed'), JSON.stringify(c.received));
  c.close();
});

test('a change stream ends when SELECT on its collection is revoked, even when granted again at once', async () => {
  const made = await ts.http('/api/v1/documents/collections', { body: { name: 'flicker_docs' } });
  assert.ok([200, 201].includes(made.status), JSON.stringify(made.body));
  await createRole(ts, 'flicker_docs_reader', [{ privilege: 'SELECT', table: 'flicker_docs' }]);
  const token = await createUser(ts, 'doc_flicker', ['flicker_docs_reader']);
  const c = await ts.connect({ path: '/api/v1/documents/collections/flicker_docs/watch', token });
  await c.next((m) => m.type === 'auth_success');
  c.send({ type: 'watch', id: 'w', payload: {} });
  assert.equal((await c.next((m) => m.id === 'w')).type, 'subscribed');
  const grant = { privilege: 'SELECT', table: 'flicker_docs' };
  await Promise.all([
    ts.http('/api/v1/roles/flicker_docs_reader/grants', { method: 'DELETE', body: grant }),
    ts.http('/api/v1/documents/collections/flicker_docs/insert', {
      body: { document: { note: 'while-revoked' } },
    }),
  ]);
  await ts.http('/api/v1/roles/flicker_docs_reader/grants', { body: grant });
  const end = await endOf(c, 'w');
  assert.equal(end.payload.code, 'PERMISSION_DENIED', JSON.stringify(end));
  await ts.http('/api/v1/documents/collections/flicker_docs/insert', {
    body: { document: { note: 'after-regrant' } },
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const text = JSON.stringify(c.received);
  assert.ok(!text.includes('while-revoked') && !text.includes('after-regrant'), text);
  c.close();
});

test('a live query over a view ends when a table under the view is revoked', async () => {
  await sql(ts, 'CREATE TABLE base_a (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE base_b (id INTEGER PRIMARY KEY, w TEXT)');
  await sql(ts, "INSERT INTO base_a VALUES (1, 'a')");
  await sql(ts, "INSERT INTO base_b VALUES (1, 'b')");
  await sql(ts, 'CREATE VIEW joined AS SELECT a.id, a.v, b.w FROM base_a AS a JOIN base_b AS b USING (id)');
  await createRole(ts, 'join_reader', [
    { privilege: 'SELECT', table: 'base_a' },
    { privilege: 'SELECT', table: 'base_b' },
  ]);
  const token = await createUser(ts, 'joiner', ['join_reader']);
  const c = await connectWith(ts, token);
  await subscribeLive(c, 'j', 'SELECT * FROM joined');
  const res = await ts.http('/api/v1/roles/join_reader/grants', {
    method: 'DELETE',
    body: { privilege: 'SELECT', table: 'base_b' },
  });
  assert.equal(res.status, 200);
  const end = await nextOf(c, 'j');
  assert.equal(end.type, 'error', JSON.stringify(end));
  assert.equal(end.payload.code, 'PERMISSION_DENIED');
  assert.deepEqual(end.payload.details, { privilege: 'SELECT', table: 'base_b' });
  await sql(ts, "INSERT INTO base_b VALUES (2, 'hidden-after-revoke')");
  await sql(ts, "INSERT INTO base_a VALUES (2, 'x')");
  assert.equal((await c.request({ type: 'ping' })).type, 'pong');
  assert.ok(!JSON.stringify(c.received).includes('hidden-after-revoke'));
  c.close();
});
