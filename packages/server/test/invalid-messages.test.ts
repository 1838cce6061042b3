/** Malformed client messages get INVALID_MESSAGE and the connection stays usable. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';
import { ENGINES, type EngineName } from './helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  let ts: TestServer;
  let c: TestClient;
  before(async () => {
    ts = await startTestServer({}, { engine });
    c = await ts.connectAuthed();
  });
  after(() => ts.close());

  async function expectInvalid(text: string, id?: string): Promise<void> {
    c.sendRaw(text);
    const m = await c.next();
    assert.equal(m.type, 'error', text);
    assert.equal(m.payload.status, 'error');
    assert.equal(m.payload.code, 'INVALID_MESSAGE', text);
    assert.equal(typeof m.payload.message, 'string');
    assert.ok(m.payload.message!.length > 0);
    assert.equal(m.id, id, `id of the answer to ${text}`);
    // Still open and still answering.
    const ping = c.newId('alive');
    c.send({ type: 'ping', id: ping });
    const pong = await c.next();
    assert.equal(pong.type, 'pong', `after ${text}`);
    assert.equal(pong.id, ping);
    assert.equal(c.isOpen, true);
  }

  test('text that is not JSON', async () => {
    await expectInvalid('not json');
    await expectInvalid('{"type": "ping"');
    await expectInvalid('');
  });

  test('JSON that is not an object', async () => {
    await expectInvalid('[1, 2, 3]');
    await expectInvalid('"ping"');
    await expectInvalid('42');
    await expectInvalid('null');
    await expectInvalid('true');
  });

  test('an object without a string type', async () => {
    await expectInvalid('{}');
    await expectInvalid('{"payload": {}}');
    await expectInvalid('{"type": 5, "id": "t-num"}', 't-num');
    await expectInvalid('{"type": null, "id": "t-null"}', 't-null');
  });

  test('an unknown type, answered with the id', async () => {
    await expectInvalid('{"type": "publish", "id": "u-1", "payload": {}}', 'u-1');
    await expectInvalid('{"type": "PING", "id": "u-2"}', 'u-2');
    c.sendRaw('{"type": "drop_everything", "id": "u-3"}');
    const m = await c.reply('u-3');
    assert.match(m.payload.message!, /drop_everything/);
  });

  test('fields of the wrong type', async () => {
    await expectInvalid(JSON.stringify({ type: 'query', id: 'w-1', payload: { sql: 5 } }), 'w-1');
    await expectInvalid(JSON.stringify({ type: 'query', id: 'w-2', payload: { sql: '' } }), 'w-2');
    await expectInvalid(JSON.stringify({ type: 'query', id: 'w-3' }), 'w-3');
    await expectInvalid(JSON.stringify({ type: 'query', id: 'w-4', payload: 'SELECT 1' }), 'w-4');
    await expectInvalid(
      JSON.stringify({ type: 'query', id: 'w-5', payload: { sql: 'SELECT ?', params: 'x' } }),
      'w-5',
    );
    await expectInvalid(
      JSON.stringify({ type: 'query', id: 'w-6', payload: { sql: 'SELECT ?', params: [{ nested: 1 }] } }),
      'w-6',
    );
    await expectInvalid(
      JSON.stringify({ type: 'query', id: 'w-7', payload: { sql: 'SELECT 1', streaming: 'yes' } }),
      'w-7',
    );
    await expectInvalid(
      JSON.stringify({ type: 'query', id: 'w-8', payload: { sql: 'SELECT 1', chunk_size: 0 } }),
      'w-8',
    );
    await expectInvalid(
      JSON.stringify({ type: 'query', id: 'w-9', payload: { sql: 'SELECT 1', chunk_size: 1.5 } }),
      'w-9',
    );
    await expectInvalid(
      JSON.stringify({ type: 'batch', id: 'w-10', payload: { queries: 'SELECT 1' } }),
      'w-10',
    );
    await expectInvalid(JSON.stringify({ type: 'cancel', id: 'w-11', payload: {} }), 'w-11');
    await expectInvalid(JSON.stringify({ type: 'auth', id: 'w-12', payload: { token: 7 } }), 'w-12');
    // A non-string id cannot be echoed.
    await expectInvalid(JSON.stringify({ type: 'query', id: 17, payload: { sql: 'SELECT 1' } }));
  });

  test('the message names the offending field', async () => {
    c.send({ type: 'query', id: 'named', payload: { sql: 5 } });
    const m = await c.reply('named');
    assert.match(m.payload.message!, /payload\.sql/);
  });

  test('INVALID_MESSAGE is sent even before authentication, and the socket stays open', async () => {
    const fresh = await ts.connect();
    fresh.sendRaw('nonsense');
    const m = await fresh.next();
    assert.equal(m.payload.code, 'INVALID_MESSAGE');
    fresh.send({ type: 'auth', id: 'late-auth', payload: { token: ts.token } });
    assert.equal((await fresh.reply('late-auth')).type, 'auth_success');
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
