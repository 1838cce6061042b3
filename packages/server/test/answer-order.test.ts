/**
 * Answers leave in the order their requests came, however they are written: requests that arrive in
 * one read (a client that pipelines) have their answers framed and written together at the end of the
 * tick, a `pong` goes through ws's own framing, and the answer to the last request of a read is written
 * at once (see lastOfRead in flow-controlled-socket.ts). None of them may overtake another.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { sql, startTestServer, type TestServer } from './helpers/test-server.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  await sql(ts, "INSERT INTO kv (k, v) VALUES (1, 'one'), (2, 'two'), (3, 'three')");
});
after(() => ts.close());

const keyed = (id: string, k: number): unknown => ({
  type: 'query',
  id,
  payload: { sql: 'SELECT v FROM kv WHERE k = ?', params: [k] },
});

test('requests sent in one write are answered in order: keyed queries, a ping between them', async () => {
  const c = await ts.connectAuthed();
  // The client's TCP socket is corked while it sends: the frames leave in one write, which the server
  // reads at once, so that the earlier requests' answers wait for the end of the tick and the last
  // one's is written at once.
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  for (let round = 0; round < 20; round++) {
    const ids = [`a${round}`, `p${round}`, `b${round}`, `c${round}`];
    socket.cork();
    c.send(keyed(ids[0]!, 1));
    c.send({ type: 'ping', id: ids[1] });
    c.send(keyed(ids[2]!, 2));
    c.send(keyed(ids[3]!, 3));
    socket.uncork();
    await c.reply(ids[3]!);
    const answers = c.received.filter((m) => ids.includes(m.id ?? ''));
    assert.deepEqual(
      answers.map((m) => m.id),
      ids,
      `answers out of order: ${answers.map((m) => m.id).join(', ')}`,
    );
    assert.deepEqual(
      answers.map((m) => (m.type === 'data' ? m.payload.rows : m.type)),
      [[['one']], 'pong', [['two']], [['three']]],
    );
  }
  // A lone request (the last of its read) is answered as ever.
  c.send(keyed('lone', 2));
  assert.deepEqual((await c.reply('lone')).payload.rows, [['two']]);
  c.close();
});
