/**
 * RBAC on every GraphQL field: a user granted one table sees only that table in its schema, cannot
 * read, change or subscribe to another (the engine refuses whatever reaches it with PERMISSION_DENIED),
 * sees mutations only for the privileges it holds, and loses a subscription when its grant is revoked.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { createRole, createUser } from '../security/helpers.ts';
import { Events, disposeClients, gql, gqlData, gqlErrorCode, wsClient } from './helpers.ts';

let ts: TestServer;
let reader: string;
let writer: string;
let nobody: string;
let monitor: string;

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE open_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE secret_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, "INSERT INTO open_t (v) VALUES ('o1')");
  await sql(ts, "INSERT INTO secret_t (v) VALUES ('s1')");
  await createRole(ts, 'open_reader', [{ privilege: 'SELECT', table: 'open_t' }]);
  await createRole(ts, 'open_writer', [
    { privilege: 'SELECT', table: 'open_t' },
    { privilege: 'INSERT', table: 'open_t' },
    { privilege: 'UPDATE', table: 'open_t' },
  ]);
  reader = await createUser(ts, 'reader', ['open_reader']);
  writer = await createUser(ts, 'writer', ['open_writer']);
  nobody = await createUser(ts, 'nobody', []);
  monitor = await createUser(ts, 'watcher', ['monitor']);
});

afterEach(async () => {
  await disposeClients();
});

after(async () => {
  await ts.close();
});

async function fieldNames(
  token: string,
  type: 'queryType' | 'mutationType' | 'subscriptionType',
): Promise<string[]> {
  const data = await gqlData<{ __schema: Record<string, { fields: { name: string }[] } | null> }>(
    ts,
    `{ __schema { ${type} { fields { name } } } }`,
    undefined,
    token,
  );
  return (data.__schema[type]?.fields ?? []).map((f) => f.name).sort();
}

describe('what the schema shows', () => {
  test('a reader of one table sees that table only, and no mutations for it', async () => {
    assert.deepEqual(await fieldNames(reader, 'queryType'), ['executeSql', 'open_t', 'open_tConnection']);
    assert.deepEqual(await fieldNames(reader, 'mutationType'), ['executeSql']);
    const subscriptions = await fieldNames(reader, 'subscriptionType');
    assert.ok(subscriptions.includes('open_tLive') && !subscriptions.includes('secret_tLive'));
    const tables = await gqlData<{ __type: { enumValues: { name: string }[] } }>(
      ts,
      '{ __type(name: "TableName") { enumValues { name } } }',
      undefined,
      reader,
    );
    assert.deepEqual(
      tables.__type.enumValues.map((v) => v.name),
      ['open_t'],
    );
  });

  test('mutations appear per privilege held (INSERT, UPDATE; upsert needs both; no DELETE)', async () => {
    assert.deepEqual(await fieldNames(writer, 'mutationType'), [
      'executeSql',
      'open_tInsertMany',
      'open_tInsertOne',
      'open_tUpdateMany',
      'open_tUpdateOne',
      'open_tUpsert',
    ]);
  });

  test('the admin sees every table', async () => {
    const fields = await fieldNames(ts.token, 'queryType');
    assert.ok(fields.includes('secret_t') && fields.includes('open_t'));
  });

  test('a grant shows the table at the next request; a revoke hides it again', async () => {
    await ts.http('/api/v1/roles/open_reader/grants', { body: { privilege: 'SELECT', table: 'secret_t' } });
    assert.ok((await fieldNames(reader, 'queryType')).includes('secret_t'));
    await ts.http('/api/v1/roles/open_reader/grants', {
      method: 'DELETE',
      body: { privilege: 'SELECT', table: 'secret_t' },
    });
    assert.ok(!(await fieldNames(reader, 'queryType')).includes('secret_t'));
  });
});

describe('what the engine refuses', () => {
  test('reading another table: not in the schema, and PERMISSION_DENIED through executeSql', async () => {
    assert.equal(await gqlErrorCode(ts, '{ secret_t { v } }', undefined, reader), 'INVALID_MESSAGE');
    assert.equal(
      await gqlErrorCode(ts, '{ executeSql(sql: "SELECT v FROM secret_t") { rows } }', undefined, reader),
      'PERMISSION_DENIED',
    );
    assert.equal(
      await gqlErrorCode(
        ts,
        '{ executeSql(sql: "SELECT o.v FROM open_t o JOIN secret_t s ON s.id = o.id") { rows } }',
        undefined,
        reader,
      ),
      'PERMISSION_DENIED',
    );
    const ok = await gqlData<{ open_t: { v: string }[] }>(ts, '{ open_t { v } }', undefined, reader);
    assert.deepEqual(ok.open_t, [{ v: 'o1' }]);
  });

  test('writing without the privilege is refused by the engine, whatever the route', async () => {
    assert.equal(
      await gqlErrorCode(ts, 'mutation { open_tInsertOne(object: {v: "x"}) { id } }', undefined, reader),
      'INVALID_MESSAGE',
    );
    assert.equal(
      await gqlErrorCode(
        ts,
        'mutation { executeSql(sql: "INSERT INTO open_t (v) VALUES (?)", params: ["x"]) { rowsAffected } }',
        undefined,
        reader,
      ),
      'PERMISSION_DENIED',
    );
    assert.equal(
      await gqlErrorCode(
        ts,
        'mutation { executeSql(sql: "DELETE FROM open_t") { rowsAffected } }',
        undefined,
        writer,
      ),
      'PERMISSION_DENIED',
    );
    assert.equal(
      await gqlErrorCode(
        ts,
        'mutation { executeSql(sql: "INSERT INTO secret_t (v) VALUES (1)") { rowsAffected } }',
        undefined,
        writer,
      ),
      'PERMISSION_DENIED',
    );
    const inserted = await gqlData<{ open_tInsertOne: { v: string } }>(
      ts,
      'mutation { open_tInsertOne(object: {v: "w"}) { v } }',
      undefined,
      writer,
    );
    assert.equal(inserted.open_tInsertOne.v, 'w');
    assert.deepEqual((await sql(ts, 'SELECT count(*) FROM secret_t')).rows[0], [1]);
  });

  test('a user with no grants sees no tables and can read nothing', async () => {
    assert.deepEqual(await fieldNames(nobody, 'queryType'), ['executeSql']);
    assert.equal(
      await gqlErrorCode(ts, '{ executeSql(sql: "SELECT * FROM open_t") { rows } }', undefined, nobody),
      'PERMISSION_DENIED',
    );
  });
});

describe('subscriptions', () => {
  test('subscribing to a table outside the grant is refused', async () => {
    const client = wsClient(ts, reader);
    const hidden = new Events(client, 'subscription { tableChanges(table: secret_t) { sequence } }');
    assert.ok(Array.isArray((await hidden.ended()).error), 'refused at validation');
    const live = new Events(client, 'subscription { liveQuery(table: secret_t) { rows } }');
    assert.ok(Array.isArray((await live.ended()).error));
    await ts.http('/api/v1/documents/collections', { body: { name: 'secret_docs' } });
    const docs = new Events(
      client,
      'subscription { documentChanges(collection: "secret_docs") { sequence } }',
    );
    const result = await docs.next();
    assert.equal(result.errors?.[0]?.extensions?.code, 'PERMISSION_DENIED');
  });

  test('a revoked grant ends an open subscription with PERMISSION_DENIED', async () => {
    await createRole(ts, 'temp_reader', [{ privilege: 'SELECT', table: 'open_t' }]);
    const temp = await createUser(ts, 'temp', ['temp_reader']);
    const events = new Events<{ tableChanges: { row: { v: string } } }>(
      wsClient(ts, temp),
      'subscription { tableChanges(table: open_t) { row } }',
    );
    await sleep(200);
    await sql(ts, "INSERT INTO open_t (v) VALUES ('seen')");
    assert.equal((await events.data()).tableChanges.row.v, 'seen');
    await ts.http('/api/v1/roles/temp_reader/grants', {
      method: 'DELETE',
      body: { privilege: 'SELECT', table: 'open_t' },
    });
    const { error } = await events.ended();
    assert.ok(Array.isArray(error), JSON.stringify(error));
    assert.equal((error as { extensions: { code: string } }[])[0]!.extensions.code, 'PERMISSION_DENIED');
  });

  test('metric subscriptions need MONITOR', async () => {
    const denied = new Events(wsClient(ts, reader), 'subscription { metricUpdated { cpu } }');
    const result = await denied.next();
    assert.equal(result.errors?.[0]?.extensions?.code, 'PERMISSION_DENIED');
    const allowed = new Events<{ metricUpdated: { cpu: number } }>(
      wsClient(ts, monitor),
      'subscription { metricUpdated(intervalMs: 100) { cpu } }',
    );
    assert.equal(typeof (await allowed.data()).metricUpdated.cpu, 'number');
  });

  test('a monitor-only user reads metrics but no table', async () => {
    const res = await gql(ts, '{ open_t { v } }', undefined, monitor);
    assert.equal(res.body.errors?.[0]?.extensions?.code, 'INVALID_MESSAGE');
  });
});
