/**
 * The SQLite engine's read workers start on demand and end when idle: none before the first read that
 * needs one (an idle server holds no isolate it has not used), one kept started from then on, the pool
 * grows to engine_pool_size while reads run at once, and the workers beyond the kept one end once idle
 * (each is an isolate, a connection and its page cache).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { SqliteEngine } from '../src/engine/sqlite/sqlite-engine.ts';
import { CHUNKS_AHEAD } from '../src/engine/sqlite/read-workers.ts';
import type { ResultChunk } from '../src/engine/engine.ts';
import type { SqlValue } from '@rustydb/protocol';
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

/** A scan of the whole table (it runs on a read worker), read to its end: the rows it gave. */
async function scanTable(): Promise<number> {
  let rows = 0;
  for await (const chunk of engine.stream(
    { sql: 'SELECT id FROM t WHERE label > ?', params: ['r'] },
    { timeoutMs: 10_000, chunkSize: 1000 },
  ))
    rows += chunk.rows.length;
  return rows;
}

async function until(condition: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition() && Date.now() < deadline) await sleep(20);
}

test('no read worker starts before a read needs one; the first scan starts one, which is kept', async () => {
  // The table was made by a DDL statement (on a pooled connection); a keyed read (by rowid) runs inline.
  assert.equal(engine.readWorkers, 0);
  const keyed = await engine.execute(
    { sql: 'SELECT label FROM t WHERE rowid = ?', params: [7] },
    { timeoutMs: 10_000 },
  );
  assert.deepEqual(keyed.rows, [['r7']]);
  assert.equal(engine.readWorkers, 0);
  assert.equal(await scanTable(), 5000);
  assert.equal(engine.readWorkers, 1);
  // Kept past the idle time of the workers beyond it.
  await sleep(3 * IDLE_MS);
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
  assert.equal(await scanTable(), 5000);
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

test('JSON chunks are the text JSON.stringify makes of the rows, whether the worker serializes them or packs them', async () => {
  // Values whose text is easy to get wrong: integers past 2^53 (SQLite keeps 64 bits, JSON numbers do
  // not), -0, extreme doubles, BLOBs, escapes and characters outside the BMP; a NULL in every column.
  await engine.execute(
    { sql: 'CREATE TABLE tricky (id INTEGER PRIMARY KEY, i INTEGER, r REAL, t TEXT, b BLOB)' },
    { timeoutMs: 10_000 },
  );
  const texts = ['quote " backslash \\ /', 'controls \u0001\u001f\t\n\u2028 ünïcødé 😀 𝄞', ''];
  const blob = (bytes: Buffer): { $base64: string } => ({ $base64: bytes.toString('base64') });
  // The integer is SQL text: as a parameter it would be a JSON number, which cannot hold it.
  const rows: [string, unknown[]][] = [
    ['9007199254740993', [-0.0, texts[0], blob(Buffer.from([0, 255, 128]))]],
    ['-9223372036854775808', [1e308, texts[1], blob(Buffer.alloc(0))]],
    ['0', [5e-324, texts[2], blob(Buffer.from('x'.repeat(300)))]],
    ['NULL', [null, null, null]],
    ['42', [0.1 + 0.2, 'z', null]],
  ];
  for (const [integer, params] of rows) {
    await engine.execute(
      { sql: `INSERT INTO tricky (i, r, t, b) VALUES (${integer}, ?, ?, ?)`, params: params as SqlValue[] },
      { timeoutMs: 10_000 },
    );
  }
  const sql = 'SELECT id, i, r, t, b, r * 2 AS twice FROM tricky ORDER BY id';
  const values: unknown[][] = [];
  for await (const chunk of engine.stream({ sql }, { timeoutMs: 10_000, chunkSize: 2 }))
    values.push(...chunk.rows);
  assert.equal(values.length, rows.length);
  const expected = (chunkSize: number): string[] => {
    const texts: string[] = [];
    for (let at = 0; at < values.length; at += chunkSize)
      texts.push(JSON.stringify(values.slice(at, at + chunkSize)));
    // A worker learns that the rows are over only by asking for one more: a last, empty chunk.
    if (values.length % chunkSize === 0) texts.push('[]');
    return texts;
  };
  const jsonTexts = async (chunkSize: number): Promise<string[]> => {
    const found: string[] = [];
    for await (const chunk of engine.stream({ sql }, { timeoutMs: 10_000, chunkSize, asJson: true })) {
      assert.ok(chunk.json);
      assert.equal(chunk.json.count, JSON.parse(chunk.json.text).length);
      found.push(chunk.json.text);
    }
    return found;
  };
  // Alone, the stream's worker packs the rows and the main thread serializes them. One row a chunk:
  // more chunks than the worker reads ahead, so it packs the later ones into buffers given back.
  assert.deepEqual(await jsonTexts(2), expected(2));
  assert.deepEqual(await jsonTexts(1), expected(1));
  // With another stream running, each worker serializes its own rows.
  const other = await openScan();
  try {
    assert.deepEqual(await jsonTexts(2), expected(2));
  } finally {
    await other.return();
  }
});

test("a lone stream's rows are serialized on the event loop only while it waits for its worker and the loop has time to spare", async () => {
  const sql = 'SELECT id, label FROM t ORDER BY id';
  /**
   * Streams the table as JSON in chunks of 50 rows, pausing `pauseMs` after each, and checks that every
   * row comes once and in order whichever thread serialized it: the chunks' count, and how many the
   * loop serialized.
   */
  const stream = async (pauseMs: number): Promise<{ chunks: number; onLoop: number }> => {
    const before = engine.chunksSerializedOnLoop;
    let chunks = 0;
    let id = 0;
    for await (const chunk of engine.stream({ sql }, { timeoutMs: 20_000, chunkSize: 50, asJson: true })) {
      assert.ok(chunk.json);
      const rows: [number, string][] = [];
      for (const end = id + JSON.parse(chunk.json.text).length; id < end;) rows.push([++id, `r${id}`]);
      assert.equal(chunk.json.text, JSON.stringify(rows));
      chunks++;
      if (pauseMs > 0) await sleep(pauseMs);
    }
    assert.equal(id, 5000);
    return { chunks, onLoop: engine.chunksSerializedOnLoop - before };
  };
  // A consumer that keeps up with the worker, on a loop otherwise idle: the loop serializes (most of:
  // the worker may get ahead now and then) the chunks.
  await sleep(150);
  const waiting = await stream(0);
  assert.ok(waiting.onLoop > waiting.chunks / 2, `${waiting.onLoop} of ${waiting.chunks} on the loop`);
  // A consumer slower than the worker finds the next chunk ready: the worker serializes, after the
  // first chunk and those it packed ahead of it.
  const slow = await stream(5);
  assert.ok(slow.onLoop <= 2 + CHUNKS_AHEAD, `${slow.onLoop} of ${slow.chunks} on the loop`);
  // A loop kept busy ~80% of the time: the worker serializes, whatever the consumer.
  const busy = setInterval(() => {
    const until = performance.now() + 8;
    while (performance.now() < until);
  }, 10);
  try {
    await sleep(150);
    const loaded = await stream(0);
    assert.ok(loaded.chunks >= 100, `${loaded.chunks} chunks`);
    assert.ok(loaded.onLoop <= 2, `${loaded.onLoop} of ${loaded.chunks} chunks serialized on a busy loop`);
  } finally {
    clearInterval(busy);
  }
});

test('a stream of wide rows is serialized by its worker after its first wide chunk', async () => {
  // 200 rows of 60,000 characters, 20 to a chunk: 1.2M characters of text in a chunk.
  await engine.execute(
    {
      sql: "CREATE TABLE wide AS WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200) SELECT x AS id, printf('%.*c', 60000, 'w') AS body FROM c",
    },
    { timeoutMs: 10_000 },
  );
  await sleep(250); // a window of the loop's load with nothing else running: the stream may pack
  const before = engine.chunksSerializedOnLoop;
  let rows = 0;
  for await (const chunk of engine.stream(
    { sql: 'SELECT id, body FROM wide ORDER BY id' },
    { timeoutMs: 10_000, chunkSize: 20, asJson: true },
  )) {
    for (const [id, body] of JSON.parse(chunk.json!.text) as [number, string][]) {
      assert.equal(id, ++rows);
      assert.equal(body, 'w'.repeat(60_000));
    }
  }
  assert.equal(rows, 200);
  // The first chunk, and those its worker had packed ahead before it was told: 4 of 11 at most.
  const onLoop = engine.chunksSerializedOnLoop - before;
  assert.ok(onLoop >= 1 && onLoop <= 1 + CHUNKS_AHEAD, `${onLoop} chunks serialized on the loop`);
});

/** A scan of `rows` generated rows (it runs on a read worker; no table needed). */
function generatedScan(rows: number): string {
  return `WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ${rows}) SELECT x FROM c`;
}

/** Runs `body` on an engine of its own, opened on a fresh data directory: no worker started yet. */
async function withFreshEngine(body: (fresh: SqliteEngine) => Promise<void>): Promise<void> {
  const dir = freshDataDir();
  const fresh = await SqliteEngine.open({ dataDir: dir, poolSize: POOL_SIZE, readWorkerIdleMs: IDLE_MS });
  try {
    assert.equal(fresh.readWorkers, 0);
    await body(fresh);
  } finally {
    await fresh.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function countRows(fresh: SqliteEngine, rows: number): Promise<number> {
  let counted = 0;
  for await (const chunk of fresh.stream(
    { sql: generatedScan(rows) },
    { timeoutMs: 10_000, chunkSize: 1000 },
  ))
    counted += chunk.rows.length;
  return counted;
}

test('a first scan cancelled while its worker is still starting is answered; the worker then serves', () =>
  withFreshEngine(async (fresh) => {
    const controller = new AbortController();
    const first = fresh
      .stream({ sql: generatedScan(10) }, { timeoutMs: 10_000, chunkSize: 10, signal: controller.signal })
      .next();
    // The worker is starting: it gets the run, then the stop, before it has begun.
    controller.abort();
    await assert.rejects(first, { code: 'QUERY_CANCELLED' });
    assert.equal(fresh.readWorkers, 1);
    // The next scan runs (on that worker once it has stopped, or on a second one started meanwhile),
    // and the pool settles back to the one kept.
    assert.equal(await countRows(fresh, 2500), 2500);
    await until(() => fresh.readWorkers === 1, 20 * IDLE_MS);
    assert.equal(fresh.readWorkers, 1);
  }));

test('a first scan whose statement timeout passes while its worker starts gets QUERY_TIMEOUT', () =>
  withFreshEngine(async (fresh) => {
    // Starting a thread takes well over a millisecond: the timeout fires before the worker has begun.
    const first = fresh.stream({ sql: generatedScan(10) }, { timeoutMs: 1, chunkSize: 10 }).next();
    await assert.rejects(first, { code: 'QUERY_TIMEOUT' });
    assert.equal(await countRows(fresh, 2500), 2500);
    await until(() => fresh.readWorkers === 1, 20 * IDLE_MS);
    assert.equal(fresh.readWorkers, 1);
  }));

test('closing the engine while its first worker starts ends the scan and the thread', async () => {
  const dir = freshDataDir();
  const fresh = await SqliteEngine.open({ dataDir: dir, poolSize: POOL_SIZE, readWorkerIdleMs: IDLE_MS });
  try {
    const outcome = fresh
      .stream({ sql: generatedScan(1_000_000) }, { timeoutMs: 10_000, chunkSize: 1000 })
      .next()
      .then(
        () => 'rows',
        () => 'error',
      );
    await fresh.close();
    assert.equal(fresh.readWorkers, 0);
    // Whatever the scan got to (its first chunk or an error), it is answered.
    assert.ok(['rows', 'error'].includes(await outcome));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
