/**
 * GraphQL is loaded at its first use (lazy-graphql.ts), not at start: a server nobody asks GraphQL of
 * does not hold graphql-js and the schema in memory. The first request on each surface — HTTP and
 * graphql-ws, alone or at the same moment — is answered as it was when everything loaded at start,
 * and sees tables created before it.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { disposeClients, gqlData, wsClient, wsRequest } from './helpers.ts';

let ts: TestServer | undefined;

afterEach(async () => {
  await disposeClients();
  await ts?.close();
  ts = undefined;
});

async function serverWithTable(): Promise<TestServer> {
  const server = await startTestServer();
  await sql(server, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  await sql(server, "INSERT INTO notes (id, body) VALUES (1, 'first')");
  return server;
}

test('the GraphQL layer is not loaded at start; a first HTTP request loads it and is answered', async () => {
  ts = await serverWithTable();
  assert.equal(ts.server.graphql.loaded, undefined);
  const data = await gqlData<{ notes: { id: number; body: string }[] }>(ts, '{ notes { id body } }');
  assert.deepEqual(data.notes, [{ id: 1, body: 'first' }]);
  assert.ok(ts.server.graphql.loaded);
});

test('a first graphql-ws connection waits for the layer to load and is answered', async () => {
  ts = await serverWithTable();
  assert.equal(ts.server.graphql.loaded, undefined);
  const result = await wsRequest<{ notes: { body: string }[] }>(wsClient(ts, ts.token), '{ notes { body } }');
  assert.deepEqual(result, { data: { notes: [{ body: 'first' }] } });
  assert.ok(ts.server.graphql.loaded);
});

test('first requests on both surfaces at once share one load', async () => {
  ts = await serverWithTable();
  const server = ts;
  const [http, ws] = await Promise.all([
    gqlData<{ notes: { id: number }[] }>(server, '{ notes { id } }'),
    wsRequest<{ notes: { id: number }[] }>(wsClient(server, server.token), '{ notes { id } }'),
  ]);
  assert.deepEqual(http.notes, [{ id: 1 }]);
  assert.deepEqual(ws.data?.notes, [{ id: 1 }]);
  const service = server.server.graphql.loaded;
  assert.ok(service);
  assert.equal(await server.server.graphql.service(), service);
});
