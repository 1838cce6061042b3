/**
 * Issue 14, point 11, and its pattern: a subscriber receives only changes committed while it held the
 * privilege, and only to the incarnation of the table it subscribed to. A resume (`since`, a change
 * stream's resume token, GraphQL's `since`) from before either point is answered with `reset`, whose
 * `oldest_resumable` is the first position it may resume from; a live subscription whose privilege
 * lapses, even for a moment, ends with PERMISSION_DENIED. On both engines: on PostgreSQL the change log is
 * numbered after commit, so where a grant or a membership stands in it is settled once it has committed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';
import { Events, disposeClients, wsClient } from '../graphql/helpers.ts';
import { connectWith, createRole, createUser } from './helpers.ts';
import { PENDING_POSITION } from '../../src/engine/engine.ts';
import { GRANTS_TABLE } from '../../src/auth/role-store.ts';

function suite(engine: EngineName): void {
  const { autoId } = dialectOf(engine);
  let ts: TestServer;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false }, { engine });
  });

  after(async () => {
    await disposeClients();
    await ts.close();
  });

  async function head(): Promise<number> {
    // A change of a scratch table: its sequence is the log's head now.
    await sql(ts, `CREATE TABLE IF NOT EXISTS clock (id ${autoId})`);
    const watcher = await ts.connectAuthed();
    const ack = await watcher.subscribed('clock', { table: 'clock' });
    watcher.close();
    return ack.payload.sequence as number;
  }

  test('since: 0 does not replay rows deleted before the subscriber was granted SELECT', async () => {
    await sql(ts, `CREATE TABLE payroll (id ${autoId}, who TEXT, salary INTEGER)`);
    await sql(ts, "INSERT INTO payroll (who, salary) VALUES ('ceo', 900000), ('clerk', 40000)");
    await sql(ts, "DELETE FROM payroll WHERE who = 'ceo'");
    await createRole(ts, 'payroll_reader', []);
    const token = await createUser(ts, 'auditor', ['payroll_reader']);
    const grantedAfter = await head();
    const res = await ts.http('/api/v1/roles/payroll_reader/grants', {
      body: { privilege: 'SELECT', table: 'payroll' },
    });
    assert.equal(res.status, 200);
    const c = await connectWith(ts, token);
    const reset = await c.subscribe('p', { table: 'payroll', since: 0 });
    assert.equal(reset.type, 'reset', JSON.stringify(reset));
    assert.equal(reset.payload.reason, 'history_unavailable');
    const oldest = reset.payload.oldest_resumable as number;
    assert.ok(oldest >= grantedAfter, `oldest_resumable ${oldest} is before the grant (${grantedAfter})`);
    // From there on it works, and only what follows the grant arrives.
    await c.subscribed('p2', { table: 'payroll', since: oldest });
    await sql(ts, "INSERT INTO payroll (who, salary) VALUES ('intern', 1000)");
    const change = await c.next((m) => m.id === 'p2' && m.type === 'change');
    assert.equal((change.payload.row as { who: string }).who, 'intern');
    assert.ok(!JSON.stringify(c.received).includes('900000'), 'a row from before the grant was sent');
    c.close();
  });

  test('a user given a role later, or re-created under an old name, gets no history from before', async () => {
    await sql(ts, `CREATE TABLE ledger (id ${autoId}, entry TEXT)`);
    await createRole(ts, 'ledger_reader', [{ privilege: 'SELECT', table: 'ledger' }]);
    await sql(ts, "INSERT INTO ledger (entry) VALUES ('before-membership')");
    const token = await createUser(ts, 'late', []);
    const res = await ts.http('/api/v1/users/late', { method: 'PATCH', body: { roles: ['ledger_reader'] } });
    assert.equal(res.status, 200);
    const c = await connectWith(ts, token);
    assert.equal((await c.subscribe('l', { table: 'ledger', since: 0 })).type, 'reset');
    c.close();
    // Deleted and created again: a new account, with no history of the old one.
    await createUser(ts, 'again', ['ledger_reader']);
    await sql(ts, "INSERT INTO ledger (entry) VALUES ('seen-by-the-first-again')");
    assert.equal((await ts.http('/api/v1/users/again', { method: 'DELETE' })).status, 200);
    const second = await createUser(ts, 'again', ['ledger_reader']);
    const d = await connectWith(ts, second);
    assert.equal((await d.subscribe('l', { table: 'ledger', since: 0 })).type, 'reset');
    assert.ok(!JSON.stringify(d.received).includes('seen-by-the-first'), JSON.stringify(d.received));
    d.close();
  });

  test('since: 0 does not replay an earlier table of the same name (dropped and created again)', async () => {
    await sql(ts, `CREATE TABLE notes (id ${autoId}, body TEXT)`);
    await sql(ts, "INSERT INTO notes (body) VALUES ('old-incarnation-secret')");
    await sql(ts, 'DROP TABLE notes');
    await sql(ts, `CREATE TABLE notes (id ${autoId}, body TEXT)`);
    await sql(ts, "INSERT INTO notes (body) VALUES ('new-incarnation')");
    // Even an administrator: the old table's history is not this table's.
    const c = await ts.connectAuthed();
    const reset = await c.subscribe('n', { table: 'notes', since: 0 });
    assert.equal(reset.type, 'reset', JSON.stringify(reset));
    const oldest = reset.payload.oldest_resumable as number;
    await c.subscribed('n2', { table: 'notes', since: oldest });
    const first = await c.next((m) => m.id === 'n2' && m.type === 'change');
    assert.equal((first.payload.row as { body: string }).body, 'new-incarnation');
    assert.ok(!JSON.stringify(c.received).includes('old-incarnation'), JSON.stringify(c.received));
    c.close();
  });

  test('a change stream resumed from before its collection was created again gets a reset', async () => {
    const api = (path: string, body: unknown) =>
      ts.http(`/api/v1/documents/collections${path}`, { body, method: 'POST' });
    assert.ok([200, 201].includes((await api('', { name: 'orders' })).status));
    await api('/orders/insert', { document: { item: 'old-order-secret' } });
    assert.equal((await ts.http('/api/v1/documents/collections/orders', { method: 'DELETE' })).status, 200);
    assert.ok([200, 201].includes((await api('', { name: 'orders' })).status));
    const c = await ts.connectAuthed();
    c.send({ type: 'watch', id: 'w', payload: { collection: 'orders', resumeAfter: { _data: '0' } } });
    const answer = await c.next((m) => m.id === 'w');
    assert.equal(answer.type, 'reset', JSON.stringify(answer));
    assert.ok(!JSON.stringify(c.received).includes('old-order-secret'));
    c.close();
  });

  test('GraphQL tableChanges with since from before the grant ends with a reset event', async () => {
    await sql(ts, `CREATE TABLE bids (id ${autoId}, amount INTEGER)`);
    await sql(ts, 'INSERT INTO bids (amount) VALUES (777777)');
    await createRole(ts, 'bid_reader', [{ privilege: 'SELECT', table: 'bids' }]);
    const token = await createUser(ts, 'bidder', ['bid_reader']);
    const client = wsClient(ts, token);
    const events = new Events<{ tableChanges: { changeType: string; row: unknown } }>(
      client,
      'subscription { tableChanges(table: bids, since: 0) { changeType row } }',
    );
    const first = await events.data();
    assert.equal(first.tableChanges.changeType, 'RESET', JSON.stringify(first));
    assert.ok(!JSON.stringify(first).includes('777777'));
  });

  test('a privilege revoked and granted again at once still ends the running subscription', async () => {
    await sql(ts, `CREATE TABLE flaky (id ${autoId}, v TEXT)`);
    await createRole(ts, 'flaky_reader', [{ privilege: 'SELECT', table: 'flaky' }]);
    const token = await createUser(ts, 'flicker', ['flaky_reader']);
    const c = await connectWith(ts, token);
    await c.subscribed('f', { table: 'flaky' });
    const grant = { privilege: 'SELECT', table: 'flaky' };
    const revoked = ts.http('/api/v1/roles/flaky_reader/grants', { method: 'DELETE', body: grant });
    const written = sql(ts, "INSERT INTO flaky (v) VALUES ('while-revoked')");
    await Promise.all([revoked, written]);
    await ts.http('/api/v1/roles/flaky_reader/grants', { body: grant });
    const end = await c.next((m) => m.id === 'f' && m.type === 'error');
    assert.equal(end.payload.code, 'PERMISSION_DENIED');
    await sql(ts, "INSERT INTO flaky (v) VALUES ('after-regrant')");
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(!JSON.stringify(c.received).includes('after-regrant'), 'the ended subscription went on');
    c.close();
  });

  test('a change stream and GraphQL documentChanges resumed from before the grant get a reset, not the old documents', async () => {
    const api = (path: string, body: unknown) =>
      ts.http(`/api/v1/documents/collections${path}`, { body, method: 'POST' });
    assert.ok([200, 201].includes((await api('', { name: 'dossiers' })).status));
    // A position after the collection was made: only the grant stands between it and the old documents.
    const afterCreation = await head();
    await api('/dossiers/insert', { document: { _id: 'd1', note: 'before-the-grant-secret' } });
    await api('/dossiers/delete', { filter: { _id: 'd1' } });
    await createRole(ts, 'dossier_reader', [{ privilege: 'SELECT', table: 'dossiers' }]);
    const token = await createUser(ts, 'clerk', ['dossier_reader']);
    // A change stream resumed from there.
    const c = await connectWith(ts, token);
    c.send({
      type: 'watch',
      id: 'w',
      payload: {
        collection: 'dossiers',
        resumeAfter: { _data: afterCreation.toString(16).padStart(16, '0') },
      },
    });
    const answer = await c.next((m) => m.id === 'w');
    assert.equal(answer.type, 'reset', JSON.stringify(answer));
    assert.ok(!JSON.stringify(c.received).includes('before-the-grant'), JSON.stringify(c.received));
    c.close();
    // GraphQL: the operation ends with the reset, carrying nothing of the old documents.
    const events = new Events(
      wsClient(ts, token),
      'subscription ($s: BigInt) { documentChanges(collection: "dossiers", since: $s) { fullDocument } }',
      { s: afterCreation },
    );
    const { error } = await events.ended();
    const errors = error as { extensions?: { code?: string; reason?: string } }[];
    assert.equal(errors[0]?.extensions?.reason, 'history_unavailable', JSON.stringify(error));
    assert.equal(events.pending, 0, 'a document was delivered before the reset');
    assert.ok(!JSON.stringify(error).includes('before-the-grant'), JSON.stringify(error));
  });

  // Only PostgreSQL writes positions to be settled (SQLite's are exact in the write's transaction).
  if (engine === 'postgres') {
    test('a grant whose position is not settled yet (as a migration leaves it) is settled by its first reader', async () => {
      await sql(ts, `CREATE TABLE audits (id ${autoId}, note TEXT)`);
      await createRole(ts, 'audit_reader', [{ privilege: 'SELECT', table: 'audits' }]);
      const token = await createUser(ts, 'migrated', ['audit_reader']);
      const store = ts.server.engine.internal;
      await store.run(`UPDATE ${GRANTS_TABLE} SET granted_at = ${PENDING_POSITION} WHERE role = ?`, [
        'audit_reader',
      ]);
      await sql(ts, "INSERT INTO audits (note) VALUES ('before-it-was-settled')");
      const written = await head();
      const c = await connectWith(ts, token);
      const reset = await c.subscribe('a', { table: 'audits', since: 0 });
      assert.equal(reset.type, 'reset', JSON.stringify(reset));
      const oldest = reset.payload.oldest_resumable as number;
      // Settled at or after every change committed before it was read, and kept.
      assert.ok(oldest >= written && oldest < PENDING_POSITION, `oldest_resumable ${oldest}`);
      const row = await store.get<{ granted_at: string }>(
        `SELECT granted_at FROM ${GRANTS_TABLE} WHERE role = ?`,
        ['audit_reader'],
      );
      assert.equal(Number(row!.granted_at), oldest);
      assert.ok(!JSON.stringify(c.received).includes('before-it-was-settled'), JSON.stringify(c.received));
      c.close();
    });
  }
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
