/** Streaming a 1,000,000-row result over /api/v1/stream: every row arrives, in order, in chunks. */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer, type TestServer } from './helpers/test-server.ts';

const ROWS = 1_000_000;

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ statement_timeout: 60 });
});
after(() => ts.close());

test(
  '1,000,000 rows stream completely: count, sum of ids and chunking are exact',
  { timeout: 120_000 },
  async () => {
    const c = await ts.connectAuthed();
    const create = await c.query('CREATE TABLE million (id INTEGER PRIMARY KEY, label TEXT NOT NULL)');
    assert.equal(create.error, undefined);
    const fill = await c.query(
      `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${ROWS}) INSERT INTO million (id, label) SELECT x, 'row-' || x FROM c`,
      {},
      60_000,
    );
    assert.equal(fill.error, undefined, JSON.stringify(fill.error));
    assert.equal(fill.chunks[0]!.payload.rows_affected, ROWS);

    // Count as the chunks arrive rather than keeping a million rows in memory.
    c.record = false;
    const id = 'million';
    c.send({
      type: 'query',
      id,
      payload: { sql: 'SELECT id, label FROM million ORDER BY id', chunk_size: 5000 },
    });
    let count = 0;
    let sum = 0;
    let chunks = 0;
    let inOrder = true;
    let labelsOk = true;
    let last;
    const deadline = Date.now() + 100_000;
    for (;;) {
      const m = await c.next((x) => x.id === id, Math.max(1, deadline - Date.now()));
      assert.equal(m.type, 'data', JSON.stringify(m.payload).slice(0, 300));
      chunks++;
      assert.deepEqual(m.payload.columns, ['id', 'label']);
      for (const row of m.payload.rows!) {
        const rowId = row[0] as number;
        count++;
        sum += rowId;
        if (rowId !== count) inOrder = false;
        if (row[1] !== `row-${rowId}`) labelsOk = false;
      }
      if (m.payload.has_more === false) {
        last = m;
        break;
      }
      assert.equal(m.payload.rows!.length, 5000);
      assert.equal('rows_affected' in m.payload, false);
    }
    assert.equal(count, ROWS);
    assert.equal(sum, (ROWS * (ROWS + 1)) / 2);
    assert.equal(inOrder, true, 'rows arrived out of order');
    assert.equal(labelsOk, true, 'a label did not match its id');
    assert.equal(last.payload.rows_affected, ROWS);
    assert.ok(chunks === ROWS / 5000 || chunks === ROWS / 5000 + 1, `${chunks} chunks`);
    // Nothing else was sent for the query.
    c.send({ type: 'ping', id: 'after-million' });
    assert.equal((await c.reply('after-million')).type, 'pong');
    assert.equal(
      c.pending().some((m) => m.id === id),
      false,
    );
  },
);
