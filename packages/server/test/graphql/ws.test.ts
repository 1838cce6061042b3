/**
 * `ws /graphql/ws` with the real graphql-ws client (createClient on the `ws` WebSocket): authentication
 * by connection_init, queries and mutations, table-change subscriptions with filters and resume,
 * live queries, document change streams, the protocol's close codes, and the token-refresh extension.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { nowSeconds, identityOf, signToken } from '../helpers/tokens.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';
import { Events, attached, disposeClients, errorCode, rawSocket, wsClient, wsRequest } from './helpers.ts';

let ts: TestServer;
const raw = new Set<TestClient>();

async function openRaw(protocol?: string): Promise<TestClient> {
  const socket = await rawSocket(ts, protocol);
  raw.add(socket);
  return socket;
}

/** A raw socket past connection_init/connection_ack. */
async function initialised(payload: unknown = { authorization: `Bearer ${ts.token}` }): Promise<TestClient> {
  const socket = await openRaw();
  socket.send({ type: 'connection_init', payload });
  const ack = await socket.next(() => true, 3000);
  assert.equal(ack.type, 'connection_ack', JSON.stringify(ack));
  return socket;
}

interface Change {
  table: string;
  changeType: string;
  row: Record<string, unknown> | null;
  oldRow: Record<string, unknown> | null;
  sequence: number;
  timestamp: string;
}

before(async () => {
  ts = await startTestServer();
  await sql(
    ts,
    'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, prio INTEGER NOT NULL DEFAULT 0)',
  );
});

afterEach(async () => {
  await disposeClients();
  for (const socket of raw) socket.terminate();
  raw.clear();
});

after(async () => {
  await ts.close();
});

describe('connection and authentication', () => {
  test('connection_init with authorization: Bearer, then a query and a mutation', async () => {
    const client = wsClient(ts, ts.token);
    const inserted = await wsRequest<{ notesInsertOne: { id: number; body: string } }>(
      client,
      'mutation($b: String!) { notesInsertOne(object: {body: $b}) { id body } }',
      { b: 'over ws' },
    );
    assert.equal(inserted.errors, undefined, JSON.stringify(inserted.errors));
    const read = await wsRequest<{ notes: { body: string }[] }>(
      client,
      'query($id: BigInt!) { notes(where: {id: {eq: $id}}) { body } }',
      {
        id: inserted.data!.notesInsertOne.id,
      },
    );
    assert.deepEqual(read.data, { notes: [{ body: 'over ws' }] });
  });

  test('operations sent all at once, more than may run at once, are each answered in turn', async () => {
    const socket = await initialised();
    const ids = Array.from({ length: 40 }, (_, i) => `q${i}`);
    for (const id of ids) {
      socket.send({ id, type: 'subscribe', payload: { query: '{ notes(limit: 1) { id } }' } });
    }
    for (const id of ids) await socket.next((m) => m.type === 'complete' && m.id === id, 10_000);
    const answered = socket.received.filter((m) => m.type === 'next').map((m) => m.id);
    assert.deepEqual(answered.sort(), [...ids].sort());
  });

  test('the ack names the user and when the token expires; {token} is accepted too', async () => {
    const socket = await openRaw();
    socket.send({ type: 'connection_init', payload: { token: ts.token } });
    const ack = await socket.next();
    assert.equal(ack.type, 'connection_ack');
    assert.equal(ack.payload.user, 'admin');
    assert.ok(Date.parse(String(ack.payload.expires_at)) > Date.now());
  });

  test('no token or a rejected token closes with 4403', async () => {
    for (const payload of [
      {},
      { authorization: 'Bearer nope' },
      { authorization: 'Basic abc' },
      { token: '' },
    ]) {
      const socket = await openRaw();
      socket.send({ type: 'connection_init', payload });
      const closed = await socket.closed();
      assert.equal(closed.code, 4403, `payload ${JSON.stringify(payload)}`);
    }
  });

  test('an expired token closes with 4403', async () => {
    const token = await signToken(ts.secret(), {
      claims: identityOf(ts.token),
      exp: nowSeconds() - 10,
      iat: nowSeconds() - 100,
    });
    const socket = await openRaw();
    socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    assert.equal((await socket.closed()).code, 4403);
  });

  test('the graphql-ws client sees the 4403 close', async () => {
    const closes: number[] = [];
    const client = wsClient(ts, undefined, {
      connectionParams: { authorization: 'Bearer wrong' },
      onClosed: (e) => closes.push(e.code),
    });
    const events = new Events(client, '{ __typename }');
    const { error } = await events.ended();
    assert.equal((error as { code?: number }).code, 4403);
    assert.deepEqual(closes, [4403]);
  });

  test('graphql-ws close codes: 4400, 4401, 4409, 4429; another subprotocol is not accepted', async () => {
    const bad = await initialised();
    bad.sendRaw('{"type":"nonsense"}');
    assert.equal((await bad.closed()).code, 4400);

    const early = await openRaw();
    early.send({ id: '1', type: 'subscribe', payload: { query: '{ __typename }' } });
    assert.equal((await early.closed()).code, 4401);

    const twice = await initialised();
    twice.send({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } });
    assert.equal((await twice.closed()).code, 4429);

    const duplicate = await initialised();
    const query = 'subscription { notesLive { sequence } }';
    duplicate.send({ id: 'same', type: 'subscribe', payload: { query } });
    await duplicate.next((m) => m.type === 'next');
    duplicate.send({ id: 'same', type: 'subscribe', payload: { query } });
    assert.equal((await duplicate.closed()).code, 4409);

    // A client offering only another subprotocol is not served (graphql-ws would close it with 4406).
    await assert.rejects(rawSocket(ts, 'graphql-ws'), /no subprotocol/);
  });

  test('a socket that never sends connection_init closes with 4408', async () => {
    const quick = await startTestServer({ websocket_timeout: 0.3 });
    try {
      const socket = await rawSocket(quick);
      raw.add(socket);
      assert.equal((await socket.closed(3000)).code, 4408);
    } finally {
      await quick.close();
    }
  });

  test('graphql-ws sockets count toward the gateway connections, per endpoint', async () => {
    const before = ts.server.gateway.connectionsByEndpoint()['/graphql/ws'] ?? 0;
    await initialised();
    await initialised();
    assert.equal(ts.server.gateway.connectionsByEndpoint()['/graphql/ws'], before + 2);
  });

  test('at websocket_max_connections a graphql-ws socket is refused with 1013', async () => {
    const small = await startTestServer({ websocket_max_connections: 1 });
    try {
      const first = await rawSocket(small);
      raw.add(first);
      const second = await rawSocket(small);
      raw.add(second);
      assert.equal((await second.closed()).code, 1013);
      assert.equal(second.received.length, 0, 'no RustyDB envelope on a graphql-ws socket');
    } finally {
      await small.close();
    }
  });
});

/** Subscriptions and live queries, run once per engine, each on a server of its own. */
function changeSuites(engine: EngineName): void {
  const { autoId } = dialectOf(engine);
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, `CREATE TABLE notes (id ${autoId}, body TEXT NOT NULL, prio INTEGER NOT NULL DEFAULT 0)`);
  });
  after(async () => {
    await ts.close();
  });

  describe('table change subscriptions', () => {
    test('tableChanges delivers inserts, updates and deletes in order, with sequences', async () => {
      const started = Date.now();
      const client = wsClient(ts, ts.token);
      const events = new Events<{ tableChanges: Change }>(
        client,
        'subscription { tableChanges(table: notes) { table changeType row oldRow sequence timestamp } }',
      );
      await attached(ts, 'notes', 1, started);
      await sql(ts, "INSERT INTO notes (body) VALUES ('a')");
      await sql(ts, "UPDATE notes SET body = 'b' WHERE body = 'a'");
      await sql(ts, "DELETE FROM notes WHERE body = 'b'");
      const got = [
        (await events.data()).tableChanges,
        (await events.data()).tableChanges,
        (await events.data()).tableChanges,
      ];
      assert.deepEqual(
        got.map((c) => c.changeType),
        ['INSERT', 'UPDATE', 'DELETE'],
      );
      assert.equal(got[0]!.table, 'notes');
      assert.equal(got[0]!.row?.body, 'a');
      assert.equal(got[1]!.oldRow?.body, 'a');
      assert.equal(got[1]!.row?.body, 'b');
      assert.equal(got[2]!.row, null);
      assert.ok(got[0]!.sequence < got[1]!.sequence && got[1]!.sequence < got[2]!.sequence);
      assert.ok(!Number.isNaN(Date.parse(got[0]!.timestamp)));
    });

    test('where filters rows (with enter/leave), rowInserted only inserts', async () => {
      const started = Date.now();
      const client = wsClient(ts, ts.token);
      const urgent = new Events<{ tableChanges: Change }>(
        client,
        'subscription($w: JSON) { tableChanges(table: notes, where: $w) { changeType row } }',
        { w: { prio: { gte: 5 } } },
      );
      const inserts = new Events<{ rowInserted: Change }>(
        client,
        'subscription { rowInserted(table: notes) { changeType row } }',
      );
      await attached(ts, 'notes', 2, started);
      await sql(ts, "INSERT INTO notes (body, prio) VALUES ('low', 1)");
      await sql(ts, "INSERT INTO notes (body, prio) VALUES ('high', 9)");
      await sql(ts, "UPDATE notes SET prio = 7 WHERE body = 'low'");
      await sql(ts, "UPDATE notes SET prio = 0 WHERE body = 'high'");
      const seen = [];
      for (let i = 0; i < 3; i++) seen.push((await urgent.data()).tableChanges);
      assert.deepEqual(
        seen.map((c) => [c.changeType, c.row?.body]),
        [
          ['INSERT', 'high'],
          ['ENTER', 'low'],
          ['LEAVE', 'high'],
        ],
      );
      const a = (await inserts.data()).rowInserted;
      const b = (await inserts.data()).rowInserted;
      assert.deepEqual([a.row?.body, b.row?.body], ['low', 'high']);
      await sleep(200);
      assert.equal(inserts.pending, 0, 'updates are not inserts');
    });

    test('resume with since: exactly the changes missed while away, then live', async () => {
      const query =
        'subscription($since: BigInt) { rowInserted(table: notes, since: $since) { row sequence } }';
      const started = Date.now();
      const first = new Events<{ rowInserted: Change }>(wsClient(ts, ts.token), query);
      await attached(ts, 'notes', 1, started);
      await sql(ts, "INSERT INTO notes (body) VALUES ('r1')");
      const last = (await first.data()).rowInserted.sequence;
      first.dispose();
      await disposeClients();

      await sql(ts, "INSERT INTO notes (body) VALUES ('r2')");
      await sql(ts, "INSERT INTO notes (body) VALUES ('r3')");

      const again = new Events<{ rowInserted: Change }>(wsClient(ts, ts.token), query, { since: last });
      const r2 = (await again.data()).rowInserted;
      const r3 = (await again.data()).rowInserted;
      assert.deepEqual([r2.row?.body, r3.row?.body], ['r2', 'r3']);
      await sql(ts, "INSERT INTO notes (body) VALUES ('r4')");
      const r4 = (await again.data()).rowInserted;
      assert.equal(r4.row?.body, 'r4');
      assert.ok(last < r2.sequence && r2.sequence < r3.sequence && r3.sequence < r4.sequence);
      await sleep(200);
      assert.equal(again.pending, 0, 'nothing twice');
    });

    test('since older than the log: one RESET event naming the oldest resumable sequence, then the end', async () => {
      const pruned = await startTestServer({ changelog_max_entries: 100 }, { engine });
      try {
        await sql(pruned, `CREATE TABLE t (id ${autoId})`);
        for (let i = 0; i < 15; i++) {
          await sql(
            pruned,
            `INSERT INTO t (id) VALUES ${Array.from({ length: 10 }, (_, j) => `(${i * 10 + j + 1})`).join(', ')}`,
          );
        }
        await pruned.server.feed.prune();
        const events = new Events<{ tableChanges: Change & { oldestResumable: number } }>(
          wsClient(pruned, pruned.token),
          'subscription { tableChanges(table: t, since: 1) { changeType sequence oldestResumable } }',
        );
        const reset = (await events.data()).tableChanges;
        assert.equal(reset.changeType, 'RESET');
        assert.ok(reset.oldestResumable > 1);
        assert.deepEqual(await events.ended(), {});
      } finally {
        await disposeClients();
        await pruned.close();
      }
    });

    test('a subscription to a table that is not in the schema fails validation (INVALID_MESSAGE)', async () => {
      const events = new Events(
        wsClient(ts, ts.token),
        'subscription { tableChanges(table: nowhere) { sequence } }',
      );
      const { error } = await events.ended();
      assert.equal(errorCode(error), 'INVALID_MESSAGE');
    });
  });

  describe('live queries', () => {
    before(async () => {
      await sql(ts, `CREATE TABLE scores (id ${autoId}, player TEXT, points INTEGER)`);
      await sql(ts, "INSERT INTO scores (player, points) VALUES ('a', 10), ('b', 30), ('c', 20)");
    });

    test('<table>Live keeps an ordered, limited result current, with its sequence', async () => {
      const events = new Events<{
        scoresLive: { sequence: number; rows: { player: string; points: number }[] };
      }>(
        wsClient(ts, ts.token),
        'subscription { scoresLive(orderBy: [{points: DESC}], limit: 2) { sequence rows { player points } } }',
      );
      const first = (await events.data()).scoresLive;
      assert.deepEqual(
        first.rows.map((r) => r.player),
        ['b', 'c'],
      );
      await sql(ts, "INSERT INTO scores (player, points) VALUES ('d', 25)");
      const second = (await events.data()).scoresLive;
      assert.deepEqual(
        second.rows.map((r) => [r.player, r.points]),
        [
          ['b', 30],
          ['d', 25],
        ],
      );
      assert.ok(second.sequence > first.sequence);
      await sql(ts, "UPDATE scores SET points = 50 WHERE player = 'a'");
      const third = (await events.data()).scoresLive;
      assert.deepEqual(
        third.rows.map((r) => r.player),
        ['a', 'b'],
      );
    });

    test('liveQuery(table, where, orderBy, limit) returns JSON rows keyed by column', async () => {
      const events = new Events<{
        liveQuery: { table: string; columns: string[]; rows: Record<string, unknown>[] };
      }>(
        wsClient(ts, ts.token),
        'subscription { liveQuery(table: scores, where: {points: {lt: 26}}, orderBy: [{player: "ASC"}]) { table columns rows } }',
      );
      const first = (await events.data()).liveQuery;
      assert.equal(first.table, 'scores');
      assert.deepEqual(first.columns, ['id', 'player', 'points']);
      assert.deepEqual(
        first.rows.map((r) => r.player),
        ['c', 'd'],
      );
      await sql(ts, "INSERT INTO scores (player, points) VALUES ('aa', 1)");
      assert.deepEqual(
        (await events.data()).liveQuery.rows.map((r) => r.player),
        ['aa', 'c', 'd'],
      );
    });
  });

  describe('document change streams', () => {
    test('documentChanges follows a collection and resumes with since', async () => {
      const created = await ts.http('/api/v1/documents/collections', { body: { name: 'people' } });
      assert.ok(created.status === 201 || created.status === 200, JSON.stringify(created.body));
      const query =
        'subscription($s: BigInt) { documentChanges(collection: "people", since: $s) { operationType documentKey fullDocument sequence } }';
      const insertDocument = (name: string) =>
        ts.http('/api/v1/documents/collections/people/insert', { body: { document: { name } } });
      const events = new Events<{
        documentChanges: { operationType: string; fullDocument: { name: string }; sequence: number };
      }>(wsClient(ts, ts.token), query);
      // The subscription has no acknowledgement: write until a write is seen (a write committed before
      // it attached is not delivered, by design).
      let insert: { operationType: string; fullDocument: { name: string }; sequence: number } | undefined;
      for (let attempt = 0; insert === undefined; attempt++) {
        assert.ok(attempt < 20, 'the subscription never delivered an insert');
        await insertDocument('Ada');
        insert = await events.data(500).then(
          (data) => data.documentChanges,
          () => undefined,
        );
      }
      assert.equal(insert.operationType, 'insert');
      assert.equal(insert.fullDocument.name, 'Ada');
      events.dispose();
      await insertDocument('Bo');
      const resumed = new Events<{ documentChanges: { fullDocument: { name: string }; sequence: number } }>(
        wsClient(ts, ts.token),
        query,
        { s: insert.sequence },
      );
      // Everything after the resume point, in order: writes made while waiting above, then Bo.
      let last = insert.sequence;
      for (;;) {
        const change = (await resumed.data()).documentChanges;
        assert.ok(change.sequence > last);
        last = change.sequence;
        if (change.fullDocument.name === 'Bo') break;
        assert.equal(change.fullDocument.name, 'Ada');
      }
    });

    test('an unknown collection fails with NOT_FOUND', async () => {
      const events = new Events(
        wsClient(ts, ts.token),
        'subscription { documentChanges(collection: "ghosts") { sequence } }',
      );
      // A subscription refused when it starts is one `next` with the errors, then `complete`.
      const result = await events.next();
      assert.equal(result.errors?.[0]?.extensions?.code, 'NOT_FOUND');
      assert.deepEqual(await events.ended(), {});
    });
  });
}

for (const engine of ENGINES) describe(engine, () => changeSuites(engine));

describe('token refresh extension', () => {
  test('ping {authorization} is answered by pong {refreshed: true, expires_at}; a standard ping still gets a plain pong', async () => {
    const socket = await initialised();
    socket.send({ type: 'ping' });
    const plain = await socket.next((m) => m.type === 'pong');
    assert.equal(plain.payload, undefined);
    const refreshed = await ts.http('/api/v1/auth/refresh', { body: {} });
    const fresh = (refreshed.body as { data: { token: string } }).data.token;
    socket.send({ type: 'ping', payload: { authorization: `Bearer ${fresh}` } });
    const pong = await socket.next((m) => m.type === 'pong');
    assert.equal(pong.payload.refreshed, true);
    assert.ok(Date.parse(String(pong.payload.expires_at)) > Date.now());
    assert.equal(pong.payload.authorization, undefined, 'the token is not echoed back');
  });

  test('a refresh with a bad token is refused in the pong and the connection goes on', async () => {
    const socket = await initialised();
    socket.send({ type: 'ping', payload: { token: 'garbage' } });
    const pong = await socket.next((m) => m.type === 'pong');
    assert.equal(pong.payload.refreshed, false);
    assert.equal(pong.payload.code, 'AUTH_FAILED');
    socket.send({ id: 'q', type: 'subscribe', payload: { query: '{ __typename }' } });
    assert.equal((await socket.next((m) => m.type === 'next')).id, 'q');
  });

  test('without a refresh the connection closes with 4403 when the token expires; a refresh keeps it open', async () => {
    const soon = nowSeconds() + 2;
    const expiring = await signToken(ts.secret(), { claims: identityOf(ts.token), exp: soon });
    const lapsing = await initialised({ authorization: `Bearer ${expiring}` });
    const kept = await initialised({
      authorization: `Bearer ${await signToken(ts.secret(), { claims: identityOf(ts.token), exp: soon })}`,
    });
    kept.send({
      type: 'ping',
      payload: {
        authorization: `Bearer ${await signToken(ts.secret(), { claims: identityOf(ts.token), exp: soon + 60 })}`,
      },
    });
    assert.equal((await kept.next((m) => m.type === 'pong')).payload.refreshed, true);
    const closed = await lapsing.closed(5000);
    assert.equal(closed.code, 4403);
    assert.match(closed.reason, /expired/);
    assert.ok(kept.isOpen, 'the refreshed connection is still open');
  });

  test('logout ends the graphql-ws sessions of that token with 4403', async () => {
    const login = await ts.http('/api/v1/auth/refresh', { body: {} });
    const token = (login.body as { data: { token: string } }).data.token;
    const socket = await initialised({ authorization: `Bearer ${token}` });
    const out = await ts.http('/api/v1/auth/logout', { body: {}, token });
    assert.equal(out.status, 200);
    assert.equal((await socket.closed()).code, 4403);
  });
});
