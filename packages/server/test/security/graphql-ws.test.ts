/**
 * One bad operation must not end a graphql-ws connection: every kind of malformed document (syntax
 * and lexer errors, in queries, mutations and subscriptions, unknown fields, too costly
 * operations, bad variables, several anonymous operations) is answered with an `error` message for
 * that operation id, and the connection and its other operations go on.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { rawSocket } from '../graphql/helpers.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ graphql_max_complexity: 50 });
  await sql(ts, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  await sql(ts, "INSERT INTO notes (body) VALUES ('first')");
});
after(() => ts.close());

interface GraphQLWsMessage {
  type: string;
  id?: string;
  payload?: unknown;
}

async function initialised(): Promise<TestClient> {
  const socket = await rawSocket(ts);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } });
  await waitFor(socket, (m) => m.type === 'connection_ack');
  return socket;
}

/** The next graphql-ws message matching `predicate`, read from the raw texts (they carry no envelope). */
async function waitFor(
  socket: TestClient,
  predicate: (m: GraphQLWsMessage) => boolean,
  timeoutMs = 3000,
): Promise<GraphQLWsMessage> {
  const started = Date.now();
  let seen = 0;
  for (;;) {
    for (; seen < socket.rawTexts.length; seen++) {
      const message = JSON.parse(socket.rawTexts[seen]!) as GraphQLWsMessage;
      if (predicate(message)) return message;
    }
    if (!socket.isOpen) throw new Error(`socket closed: ${JSON.stringify(socket.closeInfo)}`);
    if (Date.now() - started > timeoutMs) throw new Error('no such message in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

const BAD_DOCUMENTS: [string, string, Record<string, unknown>?][] = [
  ['subscription with a syntax error', 'subscription { tableChanges(table: notes) {'],
  ['query with a syntax error', 'query { notes { id '],
  ['mutation with a syntax error', 'mutation { insertNotes(objects: [{body: }]) { affectedRows } }'],
  ['an unterminated string', 'query { notes(where: {body: {_eq: "open}}) { id } }'],
  ['an invalid character', 'query { notes { id } } \u0007'],
  ['an empty document', ''],
  ['a field that does not exist', 'subscription { noSuchField }'],
  ['an operation over the complexity limit', 'query { notes(limit: 1000) { id body } }'],
  ['two anonymous operations', 'query { notes { id } } query { notes { body } }'],
  ['a variable of the wrong type', 'query ($n: Int!) { notes(limit: $n) { id } }', { n: 'many' }],
];

test('a malformed subscribe gets an error for its id and the connection stays open', async () => {
  const socket = await initialised();
  for (const [what, query, variables] of BAD_DOCUMENTS) {
    const id = what.replaceAll(' ', '-');
    socket.send({ type: 'subscribe', id, payload: { query, ...(variables ? { variables } : {}) } });
    const answer = await waitFor(socket, (m) => m.id === id && (m.type === 'error' || m.type === 'next'));
    if (answer.type === 'next') {
      // Variable coercion errors are execution results with errors, per the GraphQL spec.
      const errors = (answer.payload as { errors?: { extensions?: { code?: string } }[] }).errors;
      assert.ok(errors && errors.length > 0, `${what}: ${JSON.stringify(answer)}`);
      // graphql-js reports the scalar's refusal as the cause: a client error either way, never internal.
      assert.ok(['INVALID_MESSAGE', 'QUERY_ERROR'].includes(errors[0]!.extensions?.code ?? ''), what);
    } else {
      const errors = answer.payload as { message: string; extensions?: { code?: string } }[];
      assert.ok(Array.isArray(errors) && errors.length > 0, `${what}: ${JSON.stringify(answer)}`);
      assert.equal(errors[0]!.extensions?.code, 'INVALID_MESSAGE', `${what}: ${JSON.stringify(errors)}`);
    }
    assert.equal(socket.isOpen, true, `${what} closed the connection: ${JSON.stringify(socket.closeInfo)}`);
  }
  // The connection still serves queries and subscriptions, and the failed ids can be used again.
  socket.send({ type: 'subscribe', id: 'an-empty-document', payload: { query: '{ notes { body } }' } });
  const next = await waitFor(socket, (m) => m.id === 'an-empty-document' && m.type === 'next');
  assert.deepEqual(next.payload, { data: { notes: [{ body: 'first' }] } });
  await waitFor(socket, (m) => m.id === 'an-empty-document' && m.type === 'complete');
});

test('a malformed subscribe next to a live subscription leaves the live one running', async () => {
  const socket = await initialised();
  socket.send({
    type: 'subscribe',
    id: 'live',
    payload: { query: 'subscription { tableChanges(table: notes) { row } }' },
  });
  // The subscription is attached once the first change arrives after it; give it a moment.
  await new Promise((resolve) => setTimeout(resolve, 200));
  socket.send({ type: 'subscribe', id: 'broken', payload: { query: 'subscription {' } });
  await waitFor(socket, (m) => m.id === 'broken' && m.type === 'error');
  await sql(ts, "INSERT INTO notes (body) VALUES ('second')");
  const change = await waitFor(socket, (m) => m.id === 'live' && m.type === 'next');
  assert.match(JSON.stringify(change.payload), /second/);
  assert.equal(socket.isOpen, true);
});
