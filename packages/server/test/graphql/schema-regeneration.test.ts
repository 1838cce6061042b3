/**
 * The schema follows the database: after CREATE / ALTER / DROP TABLE the next operation sees the new
 * schema, while subscriptions already running on other tables go on without a gap; a subscription to
 * an altered table sees a SCHEMA event and goes on, one to a dropped table ends.
 */
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { Events, disposeClients, gqlData, gqlErrorCode, wsClient } from './helpers.ts';

let ts: TestServer;

interface Change {
  changeType: string;
  row: Record<string, unknown> | null;
  schema: { action: string } | null;
  sequence: number;
}

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE steady (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE shifting (id INTEGER PRIMARY KEY, v TEXT)');
});

afterEach(async () => {
  await disposeClients();
});

after(async () => {
  await ts.close();
});

test('CREATE and ALTER TABLE regenerate the schema while a subscription on another table keeps running', async () => {
  const client = wsClient(ts, ts.token);
  const changes = new Events<{ tableChanges: Change }>(
    client,
    'subscription { tableChanges(table: steady) { changeType row sequence } }',
  );
  const live = new Events<{ steadyLive: { rows: { v: string }[] } }>(
    client,
    'subscription { steadyLive(orderBy: [{id: ASC}]) { rows { v } } }',
  );
  assert.deepEqual((await live.data()).steadyLive.rows, []);
  await sleep(200);
  const subscriptionsBefore = ts.server.subscriptions.count;

  await sql(ts, "INSERT INTO steady (v) VALUES ('before')");
  assert.equal((await changes.data()).tableChanges.row?.v, 'before');
  assert.deepEqual((await live.data()).steadyLive.rows, [{ v: 'before' }]);

  // A new table is queryable by the very next operation.
  await sql(ts, 'CREATE TABLE fresh (id INTEGER PRIMARY KEY, label TEXT)');
  await sql(ts, "INSERT INTO fresh (label) VALUES ('new')");
  assert.deepEqual(await gqlData(ts, '{ fresh { label } }'), { fresh: [{ label: 'new' }] });

  // A new column too.
  await sql(ts, 'ALTER TABLE shifting ADD COLUMN extra INTEGER');
  await gqlData(ts, 'mutation { shiftingInsertOne(object: {v: "x", extra: 5}) { extra } }');
  assert.deepEqual(await gqlData(ts, '{ shifting { v extra } }'), { shifting: [{ v: 'x', extra: 5 }] });

  // The subscriptions opened before all this are still attached and deliver.
  assert.equal(ts.server.subscriptions.count, subscriptionsBefore);
  await sql(ts, "INSERT INTO steady (v) VALUES ('after')");
  const next = (await changes.data()).tableChanges;
  assert.deepEqual([next.changeType, next.row?.v], ['INSERT', 'after']);
  assert.deepEqual((await live.data()).steadyLive.rows, [{ v: 'before' }, { v: 'after' }]);
  assert.equal(changes.finished || live.finished, false);
  await sleep(100);
  assert.equal(changes.pending, 0, 'DDL on other tables is not an event of this one');
});

test('ALTER of the subscribed table: a SCHEMA event, then rows with the new column', async () => {
  await sql(ts, 'CREATE TABLE altered (id INTEGER PRIMARY KEY, v TEXT)');
  const changes = new Events<{ tableChanges: Change }>(
    wsClient(ts, ts.token),
    'subscription { tableChanges(table: altered) { changeType row schema } }',
  );
  await sleep(200);
  await sql(ts, 'ALTER TABLE altered ADD COLUMN n INTEGER');
  const schema = (await changes.data()).tableChanges;
  assert.equal(schema.changeType, 'SCHEMA');
  assert.equal(schema.schema?.action, 'alter');
  await sql(ts, "INSERT INTO altered (v, n) VALUES ('x', 3)");
  assert.deepEqual((await changes.data()).tableChanges.row, { id: 1, v: 'x', n: 3 });
});

test('DROP of the subscribed table ends the subscription; the table leaves the schema', async () => {
  await sql(ts, 'CREATE TABLE doomed (id INTEGER PRIMARY KEY)');
  const changes = new Events<{ tableChanges: Change }>(
    wsClient(ts, ts.token),
    'subscription { tableChanges(table: doomed) { changeType schema } }',
  );
  await sleep(200);
  await sql(ts, 'DROP TABLE doomed');
  const last = (await changes.data()).tableChanges;
  assert.deepEqual([last.changeType, last.schema?.action], ['SCHEMA', 'drop']);
  assert.deepEqual(await changes.ended(), {});
  assert.equal(await gqlErrorCode(ts, '{ doomed { id } }'), 'INVALID_MESSAGE');
});
