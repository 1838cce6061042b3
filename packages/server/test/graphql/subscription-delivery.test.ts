/**
 * How GraphQL subscription events reach many subscribers: changes are routed to the subscriptions
 * their filters pin (not offered to every one), events are completed by a plan made once per
 * subscription and their JSON shared between subscribers of the same selection, and sent straight to
 * the socket. None of that may change what a subscriber receives: its own variables, its own grants,
 * the same result graphql-js gives, the same ordering, the same slow-consumer limit.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import WebSocket from 'ws';
import { TestClient } from '../helpers/ws-client.ts';
import { createRole, createUser, within } from '../security/helpers.ts';
import {
  Events,
  acknowledgedSocket,
  attached,
  disposeClients,
  errorCode,
  rawSocket,
  wsClient,
} from './helpers.ts';

let ts: TestServer;

interface Change {
  changeType: string;
  row: { id: number; v: number } | null;
}

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
});

afterEach(async () => {
  await disposeClients();
});

after(async () => {
  await ts.close();
});

/** Every event an operation receives within `ms` after the ones already taken. */
async function drain<T>(events: Events<T>, count: number): Promise<T[]> {
  const got: T[] = [];
  for (let i = 0; i < count; i++) got.push(await events.data(5000));
  await sleep(300);
  assert.equal(events.pending, 0, `more than ${count} events`);
  return got;
}

describe('routing by the filter', () => {
  test('one document, each subscriber its own variables: exactly the events its filter selects', async () => {
    await sql(ts, 'CREATE TABLE routed (id INTEGER PRIMARY KEY, v INTEGER, status TEXT, flag INTEGER)');
    await sql(
      ts,
      "INSERT INTO routed (id, v, status, flag) VALUES (1, 0, 'open', 0), (2, 0, 'open', 0), (3, 0, 'closed', 1), (4, 0, 'closed', 0)",
    );
    const document = 'subscription($w: JSON) { tableChanges(table: routed, where: $w) { changeType row } }';
    const client = wsClient(ts, ts.token);
    const subscribe = (w: unknown): Events<{ tableChanges: Change }> =>
      new Events(client, document, w === undefined ? undefined : { w });
    const byId = subscribe({ id: 1 });
    const byEq = subscribe({ id: { eq: 2 } });
    const byIn = subscribe({ id: { in: [2, 3, 99] } });
    const byStatus = subscribe({ status: 'open' });
    const byFlag = subscribe({ flag: true });
    const byRange = subscribe({ id: { gte: 3 } });
    const everything = subscribe(undefined);
    await attached(ts, 'routed', 7);

    await sql(ts, 'UPDATE routed SET v = v + 1');
    await sql(ts, "UPDATE routed SET status = 'open' WHERE id = 4");
    await sql(ts, "UPDATE routed SET status = 'closed' WHERE id = 1");
    await sql(ts, 'INSERT INTO routed (id, v, status, flag) VALUES (5, 0, NULL, 1)');
    await sql(ts, 'DELETE FROM routed WHERE id = 2');

    const seen = async (events: Events<{ tableChanges: Change }>, count: number): Promise<string[]> =>
      (await drain(events, count)).map(
        (e) => `${e.tableChanges.changeType} ${e.tableChanges.row?.id ?? '-'}`,
      );
    assert.deepEqual(await seen(byId, 2), ['UPDATE 1', 'UPDATE 1']);
    assert.deepEqual(await seen(byEq, 2), ['UPDATE 2', 'DELETE -']);
    assert.deepEqual(await seen(byIn, 3), ['UPDATE 2', 'UPDATE 3', 'DELETE -']);
    // Entering and leaving are found by the value before and after the change.
    assert.deepEqual(await seen(byStatus, 5), ['UPDATE 1', 'UPDATE 2', 'ENTER 4', 'LEAVE 1', 'DELETE -']);
    // `true` matches the stored 1, as the filter itself compares them.
    assert.deepEqual(await seen(byFlag, 2), ['UPDATE 3', 'INSERT 5']);
    assert.deepEqual(await seen(byRange, 4), ['UPDATE 3', 'UPDATE 4', 'UPDATE 4', 'INSERT 5']);
    assert.equal((await drain(everything, 8)).length, 8);
    // Subscriptions that were given none of the last changes have still moved past them.
    await attached(ts, 'routed', 7);
  });
});

describe('planned events', () => {
  test('a planned event reads exactly as graphql-js executes it: aliases, fragments, __typename, enums', async () => {
    await sql(ts, 'CREATE TABLE planned (id INTEGER PRIMARY KEY, v INTEGER)');
    await sql(ts, 'INSERT INTO planned (id, v) VALUES (1, 0)');
    const selection = (directive: string): string =>
      `subscription($w: JSON) { c: rowUpdated(table: planned, where: $w) { __typename kind: changeType${directive} ...F ... on TableChange { sequence row } table } }
       fragment F on TableChange { table key oldRow timestamp schema oldestResumable }`;
    const client = wsClient(ts, ts.token);
    // A directive is not planned: that operation's events are executed by graphql-js.
    const planned = new Events(client, selection(''), { w: { id: 1 } });
    const executed = new Events(client, selection(' @include(if: true)'), { w: { id: 1 } });
    await attached(ts, 'planned', 2);
    await sql(ts, 'UPDATE planned SET v = 7 WHERE id = 1');
    const [a, b] = [await planned.next(), await executed.next()];
    assert.equal(JSON.stringify(a), JSON.stringify(b));
    const event = (a.data as { c: Record<string, unknown> }).c;
    assert.deepEqual(Object.keys(event), [
      '__typename',
      'kind',
      'table',
      'key',
      'oldRow',
      'timestamp',
      'schema',
      'oldestResumable',
      'sequence',
      'row',
    ]);
    assert.equal(event.__typename, 'TableChange');
    assert.equal(event.kind, 'UPDATE');
    assert.deepEqual(event.row, { id: 1, v: 7 });
    assert.deepEqual(event.oldRow, { id: 1, v: 0 });
    assert.equal(typeof event.sequence, 'number');
  });

  test('directives with variables: the same document gives each subscriber the shape its variables ask for', async () => {
    await sql(ts, 'CREATE TABLE shaped (id INTEGER PRIMARY KEY, v INTEGER)');
    await sql(ts, 'INSERT INTO shaped (id, v) VALUES (1, 0), (2, 0)');
    const document =
      'subscription($w: JSON, $full: Boolean!) { rowUpdated(table: shaped, where: $w) { changeType row @include(if: $full) } }';
    const client = wsClient(ts, ts.token);
    const full = new Events(client, document, { w: { id: 1 }, full: true });
    const bare = new Events(client, document, { w: { id: 2 }, full: false });
    await attached(ts, 'shaped', 2);
    await sql(ts, 'UPDATE shaped SET v = v + 1');
    assert.deepEqual((await full.data()).rowUpdated, { changeType: 'UPDATE', row: { id: 1, v: 1 } });
    assert.deepEqual((await bare.data()).rowUpdated, { changeType: 'UPDATE' });
  });
});

describe('frames', () => {
  test('events of every size, several to a socket in one pass, with and without permessage-deflate: intact and in order', async () => {
    await sql(ts, 'CREATE TABLE framed (id INTEGER PRIMARY KEY, body TEXT)');
    await sql(
      ts,
      "INSERT INTO framed (id, body) VALUES (1, ''), (2, ''), (3, ''), (4, ''), (5, ''), (6, '')",
    );
    // Message lengths on both sides of the frame header's 125 and 65,535 bytes and of the 1,024 bytes
    // from which a permessage-deflate socket compresses (then ws frames the message, not the server).
    const sizes = [10, 80, 900, 1100, 65_480, 70_000];
    const sockets = [
      await rawSocket(ts),
      await TestClient.adopt(
        new WebSocket(`${ts.server.wsUrl}/graphql/ws`, 'graphql-transport-ws', { perMessageDeflate: false }),
      ),
    ];
    assert.match(sockets[0]!.ws.extensions, /permessage-deflate/);
    assert.equal(sockets[1]!.ws.extensions, '');
    for (const socket of sockets) {
      socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } });
      assert.equal((await socket.next()).type, 'connection_ack');
      socket.send({
        id: 's1',
        type: 'subscribe',
        payload: {
          query: 'subscription($w: JSON) { rowUpdated(table: framed, where: $w) { row } }',
          variables: { w: { id: { in: [1, 2, 3, 4, 5, 6] } } },
        },
      });
    }
    await attached(ts, 'framed', 2);
    // One statement each: its six events reach each socket in the same pass. The second goes from large
    // to small, so small events follow compressed ones still being deflated.
    const update = (lengths: number[]): Promise<unknown> =>
      sql(
        ts,
        `UPDATE framed SET body = CASE id ${lengths.map((n, i) => `WHEN ${i + 1} THEN printf('%.*c', ${n}, 'x')`).join(' ')} END`,
      );
    await update(sizes);
    await update([...sizes].reverse());
    const expected = [...sizes, ...[...sizes].reverse()].map(
      (n, i) =>
        `{"id":"s1","type":"next","payload":{"data":{"rowUpdated":{"row":{"id":${(i % 6) + 1},"body":"${'x'.repeat(n)}"}}}}}`,
    );
    for (const socket of sockets) {
      for (let i = 0; i < expected.length; i++) await socket.next((m) => m.type === 'next', 10_000);
      const texts = socket.rawTexts.filter((t) => t.startsWith('{"id":"s1","type":"next"'));
      assert.equal(texts.length, expected.length);
      texts.forEach((text, i) => assert.equal(text, expected[i], `event ${i}: ${text.slice(0, 80)}…`));
      socket.terminate();
    }
  });

  test('events whose text is not ASCII, short and long: each frame holds exactly the UTF-8 of its JSON', async () => {
    await sql(ts, 'CREATE TABLE unicode_events (id INTEGER PRIMARY KEY, body TEXT)');
    await sql(ts, "INSERT INTO unicode_events (id, body) VALUES (1, ''), (2, ''), (3, '')");
    // Payload texts under and over the 64 characters the frame builder measures and copies itself, with
    // characters of 2, 3 and 4 bytes (a surrogate pair) in UTF-8, and JSON escapes.
    const bodies = ['é€😀', `${'ü'.repeat(100)}😀"\n`, `a${'€'.repeat(40)}`];
    const socket = await acknowledgedSocket(ts, ts.token);
    socket.send({
      id: 'u1',
      type: 'subscribe',
      payload: { query: 'subscription { rowUpdated(table: unicode_events) { row } }' },
    });
    await attached(ts, 'unicode_events', 1);
    await sql(ts, 'UPDATE unicode_events SET body = CASE id WHEN 1 THEN ? WHEN 2 THEN ? ELSE ? END', bodies);
    for (let i = 0; i < bodies.length; i++) await socket.next((m) => m.type === 'next', 10_000);
    const texts = socket.rawTexts.filter((t) => t.startsWith('{"id":"u1","type":"next"'));
    assert.deepEqual(
      texts,
      bodies.map(
        (body, i) =>
          `{"id":"u1","type":"next","payload":{"data":{"rowUpdated":{"row":${JSON.stringify({ id: i + 1, body })}}}}}`,
      ),
    );
    socket.terminate();
  });
});

describe('grants', () => {
  test('the same document for users with different grants: each gets what it may read; a revoke ends only its subscriber', async () => {
    await sql(ts, 'CREATE TABLE granted (id INTEGER PRIMARY KEY, v INTEGER)');
    await sql(ts, 'INSERT INTO granted (id, v) VALUES (1, 0)');
    await createRole(ts, 'granted_a', [{ privilege: 'SELECT', table: 'granted' }]);
    await createRole(ts, 'granted_b', [{ privilege: 'SELECT', table: 'granted' }]);
    const a = await createUser(ts, 'granted_user_a', ['granted_a']);
    const b = await createUser(ts, 'granted_user_b', ['granted_b']);
    const none = await createUser(ts, 'granted_user_none', []);
    const document = 'subscription($w: JSON) { rowUpdated(table: granted, where: $w) { row } }';
    const variables = { w: { id: 1 } };
    const forA = new Events<{ rowUpdated: Change }>(wsClient(ts, a), document, variables);
    const forB = new Events<{ rowUpdated: Change }>(wsClient(ts, b), document, variables);
    const forAdmin = new Events<{ rowUpdated: Change }>(wsClient(ts, ts.token), document, variables);
    const refused = new Events(wsClient(ts, none), document, variables);
    const { error } = await refused.ended();
    assert.ok(Array.isArray(error), 'a user who may not read the table cannot subscribe to it');
    await attached(ts, 'granted', 3);

    await sql(ts, 'UPDATE granted SET v = 1');
    for (const events of [forA, forB, forAdmin]) assert.equal((await events.data()).rowUpdated.row?.v, 1);

    await ts.http('/api/v1/roles/granted_a/grants', {
      method: 'DELETE',
      body: { privilege: 'SELECT', table: 'granted' },
    });
    const ended = await forA.ended();
    assert.equal(errorCode(ended.error), 'PERMISSION_DENIED');
    await attached(ts, 'granted', 2);
    await sql(ts, 'UPDATE granted SET v = 2');
    assert.equal((await forB.data()).rowUpdated.row?.v, 2);
    assert.equal((await forAdmin.data()).rowUpdated.row?.v, 2);
    assert.equal(forA.pending, 0, 'nothing after the revoke');
  });
});

describe('a subscriber that does not read', () => {
  let slow: TestServer;
  let socket: TestClient | undefined;
  before(async () => {
    slow = await startTestServer({ enable_rate_limiting: false, subscription_max_buffer: 64 * 1024 });
  });
  after(async () => {
    socket?.terminate();
    await slow.close();
  });

  test('its events pile up in its socket only to subscription_max_buffer: then SLOW_CONSUMER', async () => {
    await sql(slow, 'CREATE TABLE bulky (id INTEGER PRIMARY KEY, body TEXT)');
    // Uncompressed: 20 KB of one letter deflates to a few dozen bytes, which the kernel's buffers absorb
    // however many rows are written (whether the server's queue passes the limit then depends on how
    // fast zlib keeps up).
    socket = await acknowledgedSocket(slow, slow.token, { perMessageDeflate: false });
    socket.send({
      id: 's1',
      type: 'subscribe',
      payload: { query: 'subscription { rowInserted(table: bulky) { row } }' },
    });
    await attached(slow, 'bulky', 1);
    // Stop reading: the server's send buffer fills up. How much the kernel's socket buffers take first
    // depends on the machine (loopback buffers grow to several MB) and on how fast the writes come
    // (with durability full each commit waits for the disk), so rows are written until the server gives
    // up on the subscriber and ends its subscription (it is no longer listed), which it must do long
    // before MAX_ROWS (40 MB).
    const MAX_ROWS = 2000;
    const tcp = (socket.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
    tcp.pause();
    const body = 'x'.repeat(20_000);
    const ended = async (): Promise<boolean> => {
      const res = await slow.http('/api/v1/subscriptions');
      return (res.body as { data: { subscriptions: unknown[] } }).data.subscriptions.length === 0;
    };
    for (let written = 0; written < MAX_ROWS && !(await ended()); written += 20) {
      await slow.http('/api/v1/batch', {
        body: {
          queries: Array.from({ length: 20 }, () => ({
            sql: 'INSERT INTO bulky (body) VALUES (?)',
            params: [body],
          })),
        },
      });
    }
    await within(10_000, ended);
    tcp.resume();
    const failed = await socket.next((m) => m.type === 'error' && m.id === 's1', 10_000);
    const errors = failed.payload as unknown as { extensions?: { code?: string } }[];
    assert.equal(errors[0]?.extensions?.code, 'SLOW_CONSUMER');
    // The subscription is over: the hub no longer lists it.
    const left = await slow.http('/api/v1/subscriptions');
    assert.deepEqual((left.body as { data: { subscriptions: unknown[] } }).data.subscriptions, []);
  });
});
