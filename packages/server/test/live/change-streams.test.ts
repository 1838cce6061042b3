/** MongoDB-like change streams on /api/v1/documents/collections/{name}/watch, against the real server. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ENGINES, type EngineName } from '../helpers/engines.ts';
import { startTestServer, sleep, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';

const BASE = '/api/v1/documents/collections';
type ChangeEvent = {
  _id: { _data: string };
  operationType: string;
  documentKey?: { _id: string };
  fullDocument?: Record<string, unknown>;
  updateDescription?: { updatedFields: Record<string, unknown>; removedFields: string[] };
  ns?: { db: string; coll: string };
  clusterTime?: number;
};

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  describe('change streams', () => {
    let ts: TestServer;
    const docs = (path: string, body?: unknown, method?: string) =>
      ts.http(`${BASE}${path}`, { ...(body !== undefined ? { body } : {}), ...(method ? { method } : {}) });

    async function watcher(
      collection: string,
      payload: Record<string, unknown> = {},
      id = 'cs',
    ): Promise<{ client: TestClient; ack: ServerMsg }> {
      const client = await ts.connect({ path: `${BASE}/${collection}/watch`, token: ts.token });
      await client.next((m) => m.type === 'auth_success');
      client.send({ type: 'watch', id, payload });
      const ack = await client.next((m) => m.id === id && m.type !== 'change');
      return { client, ack };
    }
    const event = async (client: TestClient, id = 'cs', timeoutMs = 3000): Promise<ChangeEvent> => {
      const m = await client.next((x) => x.id === id, timeoutMs);
      assert.equal(m.type, 'change', JSON.stringify(m));
      return m.payload as unknown as ChangeEvent;
    };

    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine });
    });
    after(async () => {
      await ts.close();
    });

    test('insert, update, replace and delete events carry the MongoDB fields', async () => {
      await docs('', { name: 'orders' });
      const { client, ack } = await watcher('orders');
      assert.equal(ack.type, 'subscribed');
      assert.equal(ack.payload.kind, 'collection');
      assert.deepEqual(Object.keys(ack.payload.resume_token as object), ['_data']);

      await docs('/orders/insert', { document: { _id: 'o1', item: 'pen', qty: 1, tags: ['a'] } });
      await docs('/orders/update', {
        filter: { _id: 'o1' },
        update: { $set: { qty: 2 }, $unset: { item: '' }, $push: { tags: 'b' } },
      });
      await docs('/orders/update', { filter: { _id: 'o1' }, update: { item: 'ink' } });
      await docs('/orders/delete', { filter: { _id: 'o1' } });

      const ins = await event(client);
      assert.equal(ins.operationType, 'insert');
      assert.deepEqual(ins.documentKey, { _id: 'o1' });
      assert.deepEqual(ins.fullDocument, { _id: 'o1', item: 'pen', qty: 1, tags: ['a'] });
      assert.deepEqual(ins.ns, { db: 'rustydb', coll: 'orders' });
      assert.equal(typeof ins.clusterTime, 'number');
      const upd = await event(client);
      assert.equal(upd.operationType, 'update');
      assert.deepEqual(upd.updateDescription, {
        updatedFields: { qty: 2, 'tags.1': 'b' },
        removedFields: ['item'],
      });
      assert.equal(upd.fullDocument, undefined, 'no fullDocument on updates by default');
      const rep = await event(client);
      assert.equal(rep.operationType, 'replace');
      assert.deepEqual(rep.fullDocument, { _id: 'o1', item: 'ink' });
      const del = await event(client);
      assert.equal(del.operationType, 'delete');
      assert.deepEqual(del.documentKey, { _id: 'o1' });
      const tokens = [ins, upd, rep, del].map((e) => parseInt(e._id._data, 16));
      assert.deepEqual(tokens, [tokens[0]!, tokens[0]! + 1, tokens[0]! + 2, tokens[0]! + 3]);
    });

    test('fullDocument: updateLookup adds the document after the update', async () => {
      await docs('', { name: 'lookups' });
      const { client } = await watcher('lookups', { fullDocument: 'updateLookup' });
      await docs('/lookups/insert', { document: { _id: 'x', n: 1 } });
      await docs('/lookups/update', { filter: { _id: 'x' }, update: { $inc: { n: 5 } } });
      await event(client);
      const upd = await event(client);
      assert.deepEqual(upd.fullDocument, { _id: 'x', n: 6 });
    });

    test('a $match pipeline filters events', async () => {
      await docs('', { name: 'alerts' });
      const { client } = await watcher('alerts', {
        pipeline: [{ $match: { operationType: 'insert', 'fullDocument.level': { $gte: 3 } } }],
      });
      await docs('/alerts/bulk-insert', {
        documents: [{ level: 1 }, { level: 5, _id: 'loud' }, { level: 2 }],
      });
      await docs('/alerts/delete', { filter: {}, multi: true });
      const only = await event(client);
      assert.deepEqual(only.documentKey, { _id: 'loud' });
      await assert.rejects(event(client, 'cs', 300), /no matching message/);
      const { ack } = await watcher('alerts', { pipeline: [{ $project: { x: 1 } }] }, 'bad');
      assert.equal(ack.type, 'error');
      assert.equal(ack.payload.code, 'INVALID_MESSAGE');
    });

    test('resumeAfter, startAfter and startAtOperationTime resume with nothing lost or repeated', async () => {
      await docs('', { name: 'journal' });
      const { client } = await watcher('journal');
      await docs('/journal/insert', { document: { _id: 'e1' } });
      const first = await event(client);
      client.terminate();
      const beforeMore = Date.now();
      await sleep(5);
      for (const id of ['e2', 'e3', 'e4']) await docs('/journal/insert', { document: { _id: id } });

      for (const option of ['resumeAfter', 'startAfter'] as const) {
        const { client: resumed, ack } = await watcher('journal', { [option]: first._id });
        assert.equal(ack.type, 'subscribed');
        const got = [await event(resumed), await event(resumed), await event(resumed)];
        assert.deepEqual(
          got.map((e) => e.documentKey?._id),
          ['e2', 'e3', 'e4'],
          option,
        );
        await assert.rejects(event(resumed, 'cs', 200), /no matching message/);
        resumed.terminate();
      }
      const { client: timed } = await watcher('journal', { startAtOperationTime: beforeMore });
      assert.deepEqual(
        [await event(timed), await event(timed), await event(timed)].map((e) => e.documentKey?._id),
        ['e2', 'e3', 'e4'],
      );
      const bad = await watcher('journal', { resumeAfter: { _data: 'not-hex!' } }, 'badtoken');
      assert.equal(bad.ack.payload.code, 'INVALID_MESSAGE');
    });

    test('dropping the collection sends drop then invalidate and ends the stream', async () => {
      await docs('', { name: 'temporary' });
      const { client } = await watcher('temporary');
      await docs('/temporary', undefined, 'DELETE');
      const drop = await event(client);
      assert.equal(drop.operationType, 'drop');
      const invalidate = await event(client);
      assert.equal(invalidate.operationType, 'invalidate');
      const end = await client.next((m) => m.id === 'cs' && m.type === 'unsubscribed');
      assert.equal(end.payload.reason, 'table_dropped');
    });

    test('a missing collection is NOT_FOUND; a stream can also be opened on /api/v1/stream', async () => {
      const { ack } = await watcher('nothing_here');
      assert.equal(ack.type, 'error');
      assert.equal(ack.payload.code, 'NOT_FOUND');
      await docs('', { name: 'via_stream' });
      const client = await ts.connectAuthed();
      client.send({ type: 'watch', id: 'w', payload: { collection: 'via_stream' } });
      assert.equal((await client.next((m) => m.id === 'w')).type, 'subscribed');
      await docs('/via_stream/insert', { document: { _id: 'q' } });
      const e = await client.next((m) => m.id === 'w' && m.type === 'change');
      assert.equal((e.payload as unknown as ChangeEvent).operationType, 'insert');
      client.send({ type: 'watch', id: 'w2', payload: {} });
      assert.equal((await client.next((m) => m.id === 'w2')).payload.code, 'INVALID_MESSAGE');
    });

    test('watching needs SELECT on the collection', async () => {
      await docs('', { name: 'guarded' });
      await ts.http('/api/v1/users', {
        body: { username: 'nobody', password: 'nobody-password', roles: [] },
      });
      const login = await ts.http('/api/v1/auth/login', {
        body: { username: 'nobody', password: 'nobody-password' },
        token: null,
      });
      const token = (login.body as { data: { token: string } }).data.token;
      const client = await ts.connect({ path: `${BASE}/guarded/watch`, token });
      await client.next((m) => m.type === 'auth_success');
      client.send({ type: 'watch', id: 'g', payload: {} });
      const denied = await client.next((m) => m.id === 'g');
      assert.equal(denied.payload.code, 'PERMISSION_DENIED');
    });
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
