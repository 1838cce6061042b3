/**
 * The SQLite engine's read workers start on demand and end when idle: one is kept started (the first
 * read never waits for a thread), the pool grows to engine_pool_size while reads run at once, and the
 * workers beyond the kept one end once idle (each is an isolate, a connection and its page cache).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SqliteEngine } from '../src/engine/sqlite/sqlite-engine.ts';
import type { ResultChunk } from '../src/engine/engine.ts';
import { freshDataDir, sleep } from './helpers/test-server.ts';

const IDLE_MS = 300;
const POOL_SIZE = 4;

let engine: SqliteEngine;
let dataDir: string;
before(async () => {
  dataDir = freshDataDir();
  engine = await SqliteEngine.open({ dataDir, poolSize: POOL_SIZE, readWorkerIdleMs: IDLE_MS });
  await engine.execute(
    {
      sql: "CREATE TABLE t AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5000) SELECT x AS id, 'r' || x AS label FROM c",
    },
    { timeoutMs: 10_000 },
  );
});
after(async () => {
  await engine.close();
  rmSync(dataDir, { recursive: true, force: true });
});

/** A scan (it runs on a read worker), held open after its first chunk. */
async function openScan(): Promise<AsyncGenerator<ResultChunk, void, undefined>> {
  const chunks = engine.stream(
    { sql: 'SELECT id, label FROM t ORDER BY label' },
    { timeoutMs: 10_000, chunkSize: 10 },
  );
  const first = await chunks.next();
  assert.equal(first.done, false);
  return chunks;
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(20);
}

test('one read worker is started while nothing runs', () => {
  assert.equal(engine.readWorkers, 1);
});

test('reads at once start workers up to the pool size; idle ones end, down to one kept', async () => {
  const scans = [await openScan(), await openScan(), await openScan()];
  // One started for each read running at once (one user holds at most all but one of them).
  assert.equal(engine.readWorkers, POOL_SIZE - 1);
  for (const scan of scans) await scan.return();
  await until(() => engine.readWorkers === 1, 20 * IDLE_MS);
  assert.equal(engine.readWorkers, 1);
  // The kept worker serves, and the pool grows again when asked.
  let rows = 0;
  for await (const chunk of engine.stream(
    { sql: 'SELECT id FROM t WHERE label > ?', params: ['r'] },
    { timeoutMs: 10_000, chunkSize: 1000 },
  ))
    rows += chunk.rows.length;
  assert.equal(rows, 5000);
  const again = [await openScan(), await openScan()];
  assert.ok(engine.readWorkers >= 2);
  for (const scan of again) await scan.return();
});

test('JSON chunks from a worker carry the same rows as values', async () => {
  const sql = 'SELECT id, label, id * 0.5 AS half FROM t WHERE id <= 25 ORDER BY id';
  const values: unknown[][] = [];
  for await (const chunk of engine.stream({ sql }, { timeoutMs: 10_000, chunkSize: 10 }))
    values.push(...chunk.rows);
  const parsed: unknown[][] = [];
  let counted = 0;
  for await (const chunk of engine.stream({ sql }, { timeoutMs: 10_000, chunkSize: 10, asJson: true })) {
    assert.ok(chunk.json, 'a read worker hands JSON over when asked');
    assert.deepEqual(chunk.rows, []);
    counted += chunk.json.count;
    parsed.push(...(JSON.parse(chunk.json.text) as unknown[][]));
  }
  assert.equal(counted, 25);
  assert.deepEqual(parsed, values);
});
