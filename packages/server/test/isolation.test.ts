/** A long statement on one socket does not stall another socket: the engine's work runs off the event loop. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sleep, startTestServer, type TestServer } from './helpers/test-server.ts';
import type { TestClient } from './helpers/ws-client.ts';

/** Far more rows than 2 s allow: statement_timeout stops it at 2 s, whatever the machine's speed. */
const LONG =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ statement_timeout: 2 });
});
after(() => ts.close());

/** Pings on `c` until `done()` and returns every round-trip time, in ms. */
async function pingWhile(c: TestClient, done: () => boolean): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; !done(); i++) {
    const started = performance.now();
    c.send({ type: 'ping', id: `iso-${i}` });
    await c.reply(`iso-${i}`, 5000);
    times.push(performance.now() - started);
    await sleep(10);
  }
  return times;
}

test(
  "while one socket runs a 2-second query, another socket's pings stay under 100 ms",
  { timeout: 20_000 },
  async () => {
    const busy = await ts.connectAuthed();
    const other = await ts.connectAuthed();
    const started = Date.now();
    let finished = false;
    const id = busy.newId('long');
    busy.send({ type: 'query', id, payload: { sql: LONG } });
    const answer = busy.reply(id, 10_000).then((m) => {
      finished = true;
      return m;
    });
    const times = await pingWhile(other, () => finished);
    const m = await answer;
    const elapsed = Date.now() - started;
    assert.equal(m.type, 'error');
    assert.equal(m.payload.code, 'QUERY_TIMEOUT');
    assert.ok(elapsed >= 1900, `the query ran only ${elapsed} ms`);
    const max = Math.max(...times);
    assert.ok(times.length >= 40, `only ${times.length} pings during the query`);
    assert.ok(max < 100, `slowest ping round trip ${max.toFixed(1)} ms (of ${times.length})`);
  },
);

test(
  'two long queries on two sockets run side by side (neither waits for the other)',
  { timeout: 20_000 },
  async () => {
    const a = await ts.connectAuthed();
    const b = await ts.connectAuthed();
    const started = Date.now();
    a.send({ type: 'query', id: 'long-a', payload: { sql: LONG } });
    b.send({ type: 'query', id: 'long-b', payload: { sql: LONG } });
    const [ma, mb] = await Promise.all([a.reply('long-a', 10_000), b.reply('long-b', 10_000)]);
    const elapsed = Date.now() - started;
    assert.equal(ma.payload.code, 'QUERY_TIMEOUT');
    assert.equal(mb.payload.code, 'QUERY_TIMEOUT');
    // Serialised they would need 4 s.
    assert.ok(elapsed < 3500, `two 2-second queries took ${elapsed} ms together`);
  },
);
