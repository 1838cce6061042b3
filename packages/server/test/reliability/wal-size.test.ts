/**
 * The WAL is checkpointed whichever path wrote: keyed single-row inserts all take the inline fast path
 * (with durability normal; with full they commit in groups on a pooled connection, whose commits are
 * checkpointed like any pooled write's), and 100k of them still leave a WAL of a few MB, not one that
 * grows with every write.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { sleep, sql, startTestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const ROWS = 100_000;
const CONNECTIONS = 4;
/** As many as a connection may have running (max_running_queries). */
const IN_FLIGHT = 16;
/**
 * "A few MB", at every moment of the run, not only at its end: the server checkpoints from 1 MB on, off
 * the event loop, and makes writers wait for the checkpoint from 3 MB on; the writes queued by then
 * still commit.
 */
const WAL_LIMIT = 6 * 1024 * 1024;

test(
  `${ROWS} fast-path inserts leave a WAL under ${WAL_LIMIT / 1024 / 1024} MB`,
  { timeout: 170_000 },
  async (t) => {
    const ts = await startTestServer({ enable_rate_limiting: false, durability: 'normal' });
    try {
      await sql(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)');
      const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => ts.connectAuthed()));
      for (const client of clients) client.record = false;
      let sent = 0;
      let largest = 0;
      const wal = join(ts.dataDir, 'rustydb.sqlite-wal');
      const walSize = (): number => statSync(wal, { throwIfNoEntry: false })?.size ?? 0;
      const lane = async (client: TestClient): Promise<void> => {
        while (sent < ROWS) {
          const n = sent++;
          const reply = await client.request(
            {
              type: 'query',
              payload: { sql: 'INSERT INTO items (id, v) VALUES (?, ?)', params: [n, `row ${n}`] },
            },
            30_000,
          );
          assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
          // After every reply (a few microseconds each): a peak between two samples would go unseen.
          largest = Math.max(largest, walSize());
        }
      };
      await Promise.all(clients.flatMap((client) => Array.from({ length: IN_FLIGHT }, () => lane(client))));
      assert.deepEqual((await sql(ts, 'SELECT count(*) FROM items')).rows, [[ROWS]]);
      // Checkpoints run in the background: give the last one a moment.
      for (let i = 0; i < 20 && walSize() > WAL_LIMIT; i++) await sleep(100);
      largest = Math.max(largest, walSize());
      t.diagnostic(`WAL after ${ROWS} inserts: ${walSize()} bytes; largest seen: ${largest} bytes`);
      assert.ok(largest <= WAL_LIMIT, `the WAL reached ${largest} bytes`);
    } finally {
      await ts.close();
    }
  },
);
