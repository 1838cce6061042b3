/**
 * Documents are parsed once per query text and validated once per schema (document-cache.ts). None of
 * that may let one caller's validation answer for another's schema, nor an old schema's for the current
 * one: the same text, valid for the administrator, stays invalid for a user who may not see its table,
 * over HTTP and graphql-ws, in either order and however often; a grant, a revoke and a dropped table
 * change what the same text validates to at the next request.
 */
import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { createRole, createUser } from '../security/helpers.ts';
import { acknowledgedSocket, disposeClients, gqlData, gqlErrorCode } from './helpers.ts';

let ts: TestServer;
let reader: string;

before(async () => {
  ts = await startTestServer();
  await sql(ts, 'CREATE TABLE shown_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE hidden_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, "INSERT INTO hidden_t (v) VALUES ('h1')");
  await createRole(ts, 'shown_reader', [{ privilege: 'SELECT', table: 'shown_t' }]);
  reader = await createUser(ts, 'cache_reader', ['shown_reader']);
});

afterEach(async () => {
  await disposeClients();
});

after(async () => {
  await ts.close();
});

const HIDDEN = '{ hidden_t { v } }';

/** What a graphql-ws `subscribe` of `query` as `token` is answered with first: `next` or `error`. */
async function wsAnswer(token: string, query: string): Promise<string> {
  const socket = await acknowledgedSocket(ts, token);
  socket.send({ id: 'q1', type: 'subscribe', payload: { query } });
  const answer = await socket.next((m) => m.type === 'next' || m.type === 'error', 5000);
  socket.terminate();
  return answer.type;
}

describe('one text, several schemas', () => {
  test('valid for the administrator, refused for a user who may not see the table: each time, in either order', async () => {
    for (let i = 0; i < 3; i++) {
      assert.deepEqual(await gqlData(ts, HIDDEN), { hidden_t: [{ v: 'h1' }] });
      assert.equal(await gqlErrorCode(ts, HIDDEN, undefined, reader), 'INVALID_MESSAGE');
    }
    assert.equal(await wsAnswer(reader, HIDDEN), 'error');
    assert.equal(await wsAnswer(ts.token, HIDDEN), 'next');
    assert.equal(await wsAnswer(reader, HIDDEN), 'error');
  });

  test('a grant, a revoke and a dropped table change what the same text validates to', async () => {
    const text = '{ hidden_t { id } }';
    assert.equal(await gqlErrorCode(ts, text, undefined, reader), 'INVALID_MESSAGE');
    await ts.http('/api/v1/roles/shown_reader/grants', { body: { privilege: 'SELECT', table: 'hidden_t' } });
    assert.deepEqual(await gqlData(ts, text, undefined, reader), { hidden_t: [{ id: 1 }] });
    await ts.http('/api/v1/roles/shown_reader/grants', {
      method: 'DELETE',
      body: { privilege: 'SELECT', table: 'hidden_t' },
    });
    assert.equal(await gqlErrorCode(ts, text, undefined, reader), 'INVALID_MESSAGE');
    assert.deepEqual(await gqlData(ts, text), { hidden_t: [{ id: 1 }] });
    await sql(ts, 'DROP TABLE hidden_t');
    assert.equal(await gqlErrorCode(ts, text), 'INVALID_MESSAGE');
  });

  test('a text that does not parse is refused each time', async () => {
    for (let i = 0; i < 2; i++) assert.equal(await gqlErrorCode(ts, '{ shown_t { v }'), 'INVALID_MESSAGE');
  });
});
