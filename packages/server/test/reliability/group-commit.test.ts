/**
 * Group commit: keyed writes that wait for the writer run in one transaction and are acknowledged after
 * its one COMMIT. Each still reports only its own result, a failing one undoes only itself (also one
 * whose failure ends the whole transaction: the others run again, once), their change-log records keep
 * the order of arrival, and a write stopped while it waits is never run. Under both durabilities: with
 * `full` every keyed write commits in a group; with `normal` the first keyed write of a turn of the
 * event loop commits inline and those that arrive with it in the same turn commit in a group, unless
 * the last turn with writes had several: then the first joins the group too.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Durability } from '../../src/config/config.ts';
import { openSync } from '../../src/engine/sqlite/driver.ts';
import type { SqliteEngine } from '../../src/engine/sqlite/sqlite-engine.ts';
import { sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { ServerMsg, TestClient } from '../helpers/ws-client.ts';
import { holdWriter } from '../helpers/hold-writer.ts';

function send(client: TestClient, id: string, text: string, params: unknown[]): Promise<ServerMsg> {
  client.send({ type: 'query', id, payload: { sql: text, params } });
  return client.reply(id, 15_000);
}

for (const durability of ['full', 'normal'] as const satisfies readonly Durability[]) {
  describe(`durability ${durability}`, () => {
    let ts: TestServer;
    let engine: SqliteEngine;
    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false, durability });
      engine = ts.server.engine as unknown as SqliteEngine;
      await sql(ts, 'CREATE TABLE g (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)');
      await sql(ts, "INSERT INTO g (id, v) VALUES (1, 'first')");
    });
    after(() => ts.close());

    test('writes waiting for the writer commit together, each answered with its own result', async () => {
      const writer = await ts.connectAuthed();
      const before = engine.groupCommits;
      const head = await engine.changes.head();
      const held = await holdWriter(ts, "INSERT INTO g (v) VALUES ('long')");
      const values = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'];
      const replies = new Map<string, Promise<ServerMsg>>();
      values.forEach((v, i) => {
        replies.set(v, send(writer, `w${i}`, 'INSERT INTO g (v) VALUES (?)', [v]));
        // Failing members between the others: a constraint failure undoes only its statement; OR
        // ROLLBACK ends the whole transaction, so what ran before it must run again.
        if (i === 2) replies.set('dup', send(writer, 'dup', 'INSERT INTO g (v) VALUES (?)', ['first']));
        if (i === 5) {
          replies.set(
            'rollback',
            send(writer, 'rollback', 'INSERT OR ROLLBACK INTO g (id, v) VALUES (?, ?)', [1, 'again']),
          );
        }
      });
      await sleep(300);
      await held.release();
      const answered = new Map<string, ServerMsg>();
      for (const [key, reply] of replies) answered.set(key, await reply);
      for (const key of ['dup', 'rollback']) {
        const reply = answered.get(key)!;
        assert.equal(reply.type, 'error', JSON.stringify(reply));
        assert.match(String(reply.payload.message), /UNIQUE constraint failed/);
      }
      const stored = new Map(
        (await sql(ts, 'SELECT v, id FROM g')).rows.map(([v, id]) => [String(v), Number(id)] as const),
      );
      let previousId = 0;
      for (const v of values) {
        const reply = answered.get(v)!;
        assert.equal(reply.type, 'data', JSON.stringify(reply));
        assert.equal(reply.payload.rows_affected, 1);
        // Its own row's id, not another member's (the connection was shared by the whole group).
        assert.equal(reply.payload.last_insert_id, stored.get(v), `last_insert_id of ${v}`);
        assert.ok(stored.get(v)! > previousId, 'rows inserted in their order of arrival');
        previousId = stored.get(v)!;
      }
      assert.equal(stored.get('again'), undefined);
      assert.equal(stored.get('long'), undefined);
      assert.equal(stored.size, 1 + values.length, 'each acknowledged row stored once, nothing else');
      // One group (an internal write of the server may split it once), one flush for all of them.
      const after = engine.groupCommits;
      assert.equal(after.writes - before.writes, values.length);
      assert.ok(after.groups - before.groups <= 2, `${after.groups - before.groups} groups`);
      // The change log: one record per row, in the order the rows were written, with no gap.
      const records = (await engine.changes.read(head, 100)).filter((r) => r.table === 'g');
      assert.deepEqual(
        records.map((r) => r.new?.v),
        values,
      );
      records.forEach((r, i) => assert.equal(r.seq, records[0]!.seq + i));
    });

    test('a write cancelled while it waits for its group is never run', async () => {
      const writer = await ts.connectAuthed();
      const held = await holdWriter(ts, "INSERT INTO g (v) VALUES ('long')");
      const kept = send(writer, 'kept', 'INSERT INTO g (v) VALUES (?)', ['kept']);
      writer.send({
        type: 'query',
        id: 'gone',
        payload: { sql: 'INSERT INTO g (v) VALUES (?)', params: ['gone'] },
      });
      await sleep(100);
      writer.send({ type: 'cancel', payload: { id: 'gone' } });
      assert.equal((await writer.reply('gone', 5000)).payload.code, 'QUERY_CANCELLED');
      await held.release();
      assert.equal((await kept).type, 'data');
      const { rows } = await sql(ts, "SELECT v FROM g WHERE v IN ('kept', 'gone') ORDER BY v");
      assert.deepEqual(rows, [['kept']]);
    });

    test('a group admits no write that arrived after another writer: the order of arrival is kept', async () => {
      const writer = await ts.connectAuthed();
      const other = await ts.connectAuthed();
      const head = await engine.changes.head();
      const held = await holdWriter(ts, "INSERT INTO g (v) VALUES ('long')");
      const first = send(writer, 'first', 'INSERT INTO g (v) VALUES (?)', ['order-1']);
      await sleep(50);
      // Another writer queues for the gate behind the first write's group…
      other.send({
        type: 'batch',
        id: 'between',
        payload: { transaction: true, queries: [{ sql: "INSERT INTO g (v) VALUES ('order-2')" }] },
      });
      await sleep(50);
      // …so this write may not join that group: it would commit before the batch that came first.
      const last = send(writer, 'last', 'INSERT INTO g (v) VALUES (?)', ['order-3']);
      await sleep(100);
      await held.release();
      assert.equal((await first).type, 'data');
      assert.equal((await other.reply('between', 15_000)).type, 'data');
      assert.equal((await last).type, 'data');
      const records = (await engine.changes.read(head, 100)).filter((r) => r.table === 'g');
      assert.deepEqual(
        records.map((r) => r.new?.v),
        ['order-1', 'order-2', 'order-3'],
      );
    });
  });
}

describe('durability normal: a write commits inline unless others arrive with it', () => {
  let ts: TestServer;
  let engine: SqliteEngine;
  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false, durability: 'normal' });
    engine = ts.server.engine as unknown as SqliteEngine;
    await sql(ts, 'CREATE TABLE n (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  });
  after(() => ts.close());

  test('a lone keyed write runs inline; the writes read with it commit in one group, in order', async () => {
    const writer = await ts.connectAuthed();
    const head = await engine.changes.head();
    const atStart = engine.groupCommits;
    const lone = await send(writer, 'lone', 'INSERT INTO n (v) VALUES (?)', ['lone']);
    assert.equal(lone.type, 'data', JSON.stringify(lone));
    assert.deepEqual(engine.groupCommits, atStart, 'the lone write committed inline, in no group');
    // Corked: the frames leave in one write, which the server reads and handles in one turn.
    const socket = (writer.ws as unknown as { _socket: Socket })._socket;
    const values = Array.from({ length: 8 }, (_, i) => `burst-${i}`);
    socket.cork();
    const replies = values.map((v, i) => send(writer, `b${i}`, 'INSERT INTO n (v) VALUES (?)', [v]));
    socket.uncork();
    const answered = await Promise.all(replies);
    const stored = new Map(
      (await sql(ts, 'SELECT v, id FROM n')).rows.map(([v, id]) => [String(v), Number(id)] as const),
    );
    answered.forEach((reply, i) => {
      assert.equal(reply.type, 'data', JSON.stringify(reply));
      assert.equal(reply.payload.rows_affected, 1);
      assert.equal(reply.payload.last_insert_id, stored.get(values[i]!), `last_insert_id of ${values[i]}`);
    });
    // The first of the read ran inline; the seven after it shared a transaction (an internal write of
    // the server may split the group once).
    const now = engine.groupCommits;
    assert.equal(now.writes - atStart.writes, values.length - 1);
    assert.ok(now.groups - atStart.groups <= 2, `${now.groups - atStart.groups} groups`);
    const records = (await engine.changes.read(head, 100)).filter((r) => r.table === 'n');
    assert.deepEqual(
      records.map((r) => r.new?.v),
      ['lone', ...values],
    );
    records.forEach((r, i) => assert.equal(r.seq, records[0]!.seq + i));
  });

  test('after a turn of several writes, the first write of the next turn joins the group too', async () => {
    const writer = await ts.connectAuthed();
    const socket = (writer.ws as unknown as { _socket: Socket })._socket;
    const burst = async (prefix: string): Promise<void> => {
      socket.cork();
      const replies = Array.from({ length: 8 }, (_, i) =>
        send(writer, `${prefix}${i}`, 'INSERT INTO n (v) VALUES (?)', [`${prefix}-${i}`]),
      );
      socket.uncork();
      for (const reply of await Promise.all(replies)) assert.equal(reply.type, 'data', JSON.stringify(reply));
    };
    const lone = async (id: string): Promise<void> => {
      const reply = await send(writer, id, 'INSERT INTO n (v) VALUES (?)', [id]);
      assert.equal(reply.type, 'data', JSON.stringify(reply));
    };
    await lone('settle');
    await lone('settled');
    await burst('first');
    let before = engine.groupCommits;
    await burst('second');
    assert.equal(engine.groupCommits.writes - before.writes, 8, 'all eight of the second burst grouped');
    // The burst's end: the next lone write joins a group (of one); the one after it runs inline again.
    before = engine.groupCommits;
    await lone('after-burst');
    assert.equal(engine.groupCommits.writes - before.writes, 1, 'the first lone write after a burst');
    before = engine.groupCommits;
    await lone('alone-again');
    assert.deepEqual(engine.groupCommits, before, 'a lone write after a lone write runs inline');
  });

  test('with the write lock held by another process, the writes of a turn wait for it and all commit', async () => {
    const writer = await ts.connectAuthed();
    const head = await engine.changes.head();
    // As another process would: the server's inline connection never waits for a lock, so the group
    // must move to a pooled connection, which waits (up to its busy timeout).
    const outsider = openSync(join(ts.dataDir, 'rustydb.sqlite'));
    outsider.exec('BEGIN IMMEDIATE');
    const socket = (writer.ws as unknown as { _socket: Socket })._socket;
    const values = Array.from({ length: 6 }, (_, i) => `locked-${i}`);
    let answered: ServerMsg[];
    try {
      socket.cork();
      const replies = values.map((v, i) => send(writer, `l${i}`, 'INSERT INTO n (v) VALUES (?)', [v]));
      socket.uncork();
      await sleep(300);
      outsider.exec('ROLLBACK');
      answered = await Promise.all(replies);
    } finally {
      if (outsider.inTransaction) outsider.exec('ROLLBACK');
      outsider.close();
    }
    answered.forEach((reply) => assert.equal(reply.type, 'data', JSON.stringify(reply)));
    const records = (await engine.changes.read(head, 100)).filter((r) => r.table === 'n');
    assert.deepEqual(
      records.map((r) => r.new?.v),
      values,
    );
    // And the inline connection commits again afterwards.
    assert.equal((await send(writer, 'after', 'INSERT INTO n (v) VALUES (?)', ['after'])).type, 'data');
  });
});
