/**
 * A keyed statement whose inline runs were slow a few times in a row moves off the event loop, but not
 * for good (see StatementRouter#demoteSlow): on a loaded machine the slow runs may have been the
 * machine's, and a hot lookup would otherwise pay a thread hop on every run for the life of the process.
 * After INLINE_RETRY_MS it runs inline again; slow on its return, it goes off again for twice as long.
 *
 * Where a query ran is seen in the order of the answers to requests sent in one write: a query run
 * inline is answered within the message's handling, before the ping after it; one run off the loop is
 * answered later, after the pong.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { sleep, sql, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';
import { INLINE_RETRY_MS, INLINE_SLOW_RUNS } from '../src/engine/sqlite/statement-router.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL)');
  await sql(ts, "INSERT INTO kv (k, v) VALUES (1, 'one')");
});
after(() => ts.close());

/** A keyed lookup whose cost its parameter sets: 10 MB of random bytes take tens of milliseconds. */
const LOOKUP = 'SELECT length(randomblob(?)) AS n FROM kv WHERE k = ?';
const SLOW_BYTES = 10_000_000;

let sent = 0;

/** Runs the lookup with a ping in the same write; 'inline' when its answer came before the pong. */
async function whereRun(c: TestClient, bytes: number): Promise<'inline' | 'off the loop'> {
  const [query, ping] = [`q${sent}`, `p${sent++}`];
  const socket = (c.ws as unknown as { _socket: Socket })._socket;
  socket.cork();
  c.send({ type: 'query', id: query, payload: { sql: LOOKUP, params: [bytes, 1] } });
  c.send({ type: 'ping', id: ping });
  socket.uncork();
  const answer = await c.reply(query);
  await c.reply(ping);
  assert.deepEqual(answer.payload.rows, [[bytes]]);
  const order = c.received.filter((m) => m.id === query || m.id === ping).map((m) => m.id);
  return order[0] === query ? 'inline' : 'off the loop';
}

test('a keyed statement moved off the loop for slow runs runs inline again once it is fast', async () => {
  const c = await ts.connectAuthed();
  assert.equal(await whereRun(c, 1), 'inline', 'a keyed lookup starts inline');
  for (let i = 0; i < INLINE_SLOW_RUNS; i++) await whereRun(c, SLOW_BYTES);
  assert.equal(await whereRun(c, 1), 'off the loop', 'still inline after consecutive slow runs');

  await sleep(INLINE_RETRY_MS + 200);
  assert.equal(await whereRun(c, 1), 'inline', 'fast again, but left off the loop for good');
  assert.equal(await whereRun(c, 1), 'inline');

  // Found slow again, it goes off for the first period again: the fast run cleared the record.
  for (let i = 0; i < INLINE_SLOW_RUNS; i++) await whereRun(c, SLOW_BYTES);
  assert.equal(await whereRun(c, 1), 'off the loop');
  await sleep(INLINE_RETRY_MS + 200);
  // Back on probation: one slow run sends it off again, now for twice as long.
  assert.equal(await whereRun(c, SLOW_BYTES), 'inline');
  assert.equal(await whereRun(c, 1), 'off the loop', 'one slow run on its return left it inline');
  await sleep(INLINE_RETRY_MS + 200);
  assert.equal(await whereRun(c, 1), 'off the loop', 'slow on its return, but back after one period');
  await sleep(INLINE_RETRY_MS);
  assert.equal(await whereRun(c, 1), 'inline', 'not back after two periods');
  c.close();
});
