/**
 * Writers wait their turn: transactional batches from many connections, several in flight on each,
 * all succeed (the server serializes them within the timeout instead of failing with "busy"), and
 * every acknowledged batch is in the database, whole — before and after a restart on the same data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { freshDataDir, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const CONNECTIONS = 8;
const IN_FLIGHT = 4;
const STATEMENTS = 10;
const PHASE_MS = 20_000;

interface PhaseResult {
  acknowledged: string[];
  failures: string[];
}

/** One connection keeping IN_FLIGHT transactional batches running until the deadline. */
async function writeUntil(client: TestClient, tag: string, deadline: number, result: PhaseResult) {
  let n = 0;
  const lane = async (): Promise<void> => {
    while (Date.now() < deadline) {
      const batchId = `${tag}-${n++}`;
      const queries = Array.from({ length: STATEMENTS }, (_, i) => ({
        sql: 'INSERT INTO ledger (batch, n) VALUES (?, ?)',
        params: [batchId, i],
      }));
      const reply = await client.request({ type: 'batch', payload: { queries, transaction: true } }, 60_000);
      if (reply.type === 'data' && reply.payload.status === 'success') result.acknowledged.push(batchId);
      else result.failures.push(`${batchId}: ${reply.payload.code} ${reply.payload.message}`);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, lane));
}

async function phase(ts: TestServer, name: string): Promise<PhaseResult> {
  const clients = await Promise.all(Array.from({ length: CONNECTIONS }, () => ts.connectAuthed()));
  const result: PhaseResult = { acknowledged: [], failures: [] };
  const deadline = Date.now() + PHASE_MS;
  await Promise.all(clients.map((client, i) => writeUntil(client, `${name}-c${i}`, deadline, result)));
  for (const client of clients) client.close();
  return result;
}

/** Every acknowledged batch has all its rows; no batch is there in part. */
async function assertWhole(ts: TestServer, acknowledged: readonly string[]): Promise<void> {
  const { rows } = await sql(ts, 'SELECT batch, count(*) FROM ledger GROUP BY batch');
  const counts = new Map(rows.map(([batch, count]) => [batch as string, count as number]));
  const missing = acknowledged.filter((batch) => counts.get(batch) !== STATEMENTS);
  assert.deepEqual(missing.slice(0, 10), [], `${missing.length} acknowledged batches are missing or partial`);
  const partial = [...counts].filter(([, count]) => count !== STATEMENTS);
  assert.deepEqual(partial.slice(0, 10), [], 'a batch was applied in part');
}

test(
  `${CONNECTIONS} connections x ${IN_FLIGHT} in flight of ${STATEMENTS}-statement transactional batches: no failures, before and after a restart`,
  { timeout: 4 * PHASE_MS + 60_000 },
  async (t) => {
    const dataDir = freshDataDir();
    // The rate limiter is not what this test is about: it would refuse some of this load by design.
    const config = { enable_rate_limiting: false };
    try {
      let ts = await startTestServer(config, { dataDir });
      await sql(ts, 'CREATE TABLE ledger (id INTEGER PRIMARY KEY, batch TEXT NOT NULL, n INTEGER NOT NULL)');
      const first = await phase(ts, 'first');
      await ts.close();
      t.diagnostic(
        `before the restart: ${first.acknowledged.length} batches acknowledged, ${first.failures.length} failed`,
      );
      assert.deepEqual(
        first.failures.slice(0, 5),
        [],
        `${first.failures.length} batches failed before the restart`,
      );
      assert.ok(first.acknowledged.length > 0);

      ts = await startTestServer(config, { dataDir });
      try {
        await assertWhole(ts, first.acknowledged);
        const second = await phase(ts, 'second');
        t.diagnostic(
          `after the restart: ${second.acknowledged.length} batches acknowledged, ${second.failures.length} failed`,
        );
        assert.deepEqual(
          second.failures.slice(0, 5),
          [],
          `${second.failures.length} batches failed after the restart`,
        );
        await assertWhole(ts, [...first.acknowledged, ...second.acknowledged]);
      } finally {
        await ts.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
