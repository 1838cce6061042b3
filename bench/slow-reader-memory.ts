/**
 * (d) Memory under a slow reader: stream 5M rows to a client that reads several times slower than the
 * server can produce, and watch the server's resident memory. With backpressure working end to end, the server
 * stops reading rows while the socket is behind, so its memory stays near idle whatever the result
 * size (targets: peak RSS < 160 MB, and < 100 MB idle with one authenticated socket). Without it, the unsent result piles up in the server's heap.
 *
 * Where the idle RSS is (bench/tools/idle-memory-probe.ts, which prints it): ~50 MB is file-backed (the
 * node binary ~42 MB, libsql's library ~5 MB), the rest anonymous: V8's heap (~17 MB live after a full
 * GC: fastify, zod, ajv, jose, prom-client and the server's own modules), its young generation (held at
 * its initial size during start-up, see packages/server/src/cli/young-generation.ts), malloc and thread
 * stacks. GraphQL and the console's files are loaded at their first use. V8's memory reducer shrinks the
 * heap further after ~10 s of idleness; this measurement is taken 1 s after the socket authenticated.
 *
 * Why the idle reading varies from start to start by ~7 MB (Dec 6: 0b35308 started 24 times on a data
 * directory whose admin already existed, as here, read 93.4-101.5 MB; the reading stays flat from 1 s to
 * 3 s, so later or repeated samples within a run would not steady it): the V8 heaps are the same every
 * time and so is the main malloc heap (6.0-6.7 MB); what differs is free memory glibc keeps in the
 * arenas of the threads that allocated it (2.7-9.6 MB), chiefly V8's platform threads (node's
 * --v8-pool-size, 4 by default whatever the cores: concurrent compilation and GC). The login's scrypt
 * frees a 16 MB block, which raises glibc's dynamic mmap and trim thresholds for the rest of the process,
 * so how much stays depends on what those threads freed before or after it. So the figure is the median
 * of IDLE_STARTS starts, with each start's reading shown. Fewer platform threads keep less
 * (`--v8-pool-size=2`: 91.6-98.1 MB against 93.8-101.5 MB, a worker started): an operator's choice on a
 * small machine (docs/operations.md), not made for the bench.
 *
 * The idle server has run no scan, so it has no read worker: none starts before the first read that
 * needs one (read-workers.ts, KEPT_IDLE). Until 975d977 one was started with the server, and the idle
 * reading held it: its isolate, connection and arenas, and a main-thread young generation V8 grew while
 * the worker started alongside the server (heap pages 28.8 against 20.2 MB resident). Alternated 10
 * times each (bench/tools/idle-memory-probe.ts --baseline, load 11-12 on the shared 2-core machine):
 * median 86.3 MB, range 82.9-88.4, against 96.3 MB, 94.5-102.2. The price: the first scan after start
 * waits for the thread (~55-60 ms of CPU; see docs/operations.md). After its first scans the server held
 * 92.1-102.3 MB (median 93.4) against 96.1-100.1 MB (median 98.2) for 975d977 (10 starts each).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamConnection, collect, login } from './lib/client.ts';
import { ROWS_TABLE, ROWS_TOTAL } from './lib/dataset.ts';
import { RssSampler, memory, resetPeakRss } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { startRustyServer } from './lib/rusty-server.ts';
import { count, mb, median, sleep, verdict } from './lib/stats.ts';

/** 5M rows: the 1M-row table read five times over (the outer loop of a CROSS JOIN), ids kept unique. */
const STREAM_ROWS = 5_000_000;
const COPIES = STREAM_ROWS / ROWS_TOTAL;
const SQL =
  `SELECT b.id + ${ROWS_TOTAL} * (k.column1 - 1) AS id, b.name, b.value ` +
  `FROM (VALUES ${Array.from({ length: COPIES }, (_, i) => `(${i + 1})`).join(', ')}) AS k ` +
  `CROSS JOIN ${ROWS_TABLE} AS b`;
/**
 * The reader takes at most this many rows per second, a few times slower than the server streams on
 * this machine (~500k-800k rows/s): 5M rows take ~40 s. Pausing its socket between messages is what
 * makes it slow (see below); merely pausing on a fixed duty cycle is not enough, because the kernel's
 * loopback buffers (several MB) refill during every pause and are drained at full speed on resume.
 */
const READ_ROWS_PER_S = 125_000;
// The pace is part of the yardstick, and so are the ~40 s it takes: a faster reader raises the peak (one
// run each, Dec 2026, on a busy machine: 145 MB at 125,000 rows/s, 151 MB at 200,000, 153 and 168 MB at
// 250,000), so the bench is not shortened by reading faster.
/** The server's default query_chunk_size: rows per data message. */
const CHUNK_ROWS = 1000;
/** The statement timeout covers the whole stream, so the slow reader needs a long one. */
const STATEMENT_TIMEOUT_S = 600;
/** The run is cut short (query cancelled) after this long; the memory figures stay valid. */
const MAX_STREAM_MS = 75_000;
const TARGET_PEAK = 160 * 1024 * 1024;
/** Started, one authenticated socket, nothing running. */
const TARGET_IDLE = 100 * 1024 * 1024;
/**
 * Starts of the server whose idle RSS is read (one is the server that then streams): the figure is
 * their median. One start's reading varies by several MB with what glibc's arenas keep (see above);
 * each extra start takes 2-5 s (a start, a login, 1 s of quiet, a stop; more under load), run while the
 * slow reader streams (idleRssOfStarts).
 */
const IDLE_STARTS = 3;
/** How long after its socket authenticated the idle server is read. */
const IDLE_SETTLE_MS = 1000;
/** A `data` message that is not the last (see stream-throughput.ts for why this test is safe). */
const MORE = Buffer.from('"has_more":true');

const SERVER_FLAGS = ['--statement-timeout', String(STATEMENT_TIMEOUT_S)];

/** RSS of a server started on `dataDir` with one authenticated socket and nothing running. */
async function idleRssOfAStart(dataDir: string): Promise<number> {
  const server = await startRustyServer({ dataDir, flags: SERVER_FLAGS });
  try {
    const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
    await sleep(IDLE_SETTLE_MS);
    const { rss } = memory(server.pid);
    await connection.close();
    return rss;
  } finally {
    await server.stop();
  }
}

/**
 * The idle RSS of `starts` starts, one after another, on `dataDir`. (d) runs them while the slow reader
 * streams, on a copy of the data directory (the streaming server holds the original): that server and
 * its reader leave the machine mostly idle (the reader is paused ahead of its pace ~98% of the time),
 * and a process's RSS is its own, so neither reading moves the other. Run before the stream, they added
 * 5-10 s to a bench that has 6 minutes.
 */
async function idleRssOfStarts(dataDir: string, starts: number): Promise<number[]> {
  const readings: number[] = [];
  for (let i = 0; i < starts; i++) readings.push(await idleRssOfAStart(dataDir));
  return readings;
}

export async function runSlowReaderMemory(ctx: BenchContext): Promise<BenchReport> {
  // Copied before any server opens the database (a copy of a file in use could be torn); beside it,
  // not inside it.
  const idleDataDir = mkdtempSync(join(tmpdir(), 'rustydb-bench-idle-'));
  cpSync(ctx.dataDir, idleDataDir, { recursive: true });
  let moreIdleReadings: Promise<number[]> | undefined;
  let stopServer: (() => Promise<void>) | undefined;
  try {
    const server = await startRustyServer({
      dataDir: ctx.dataDir,
      flags: SERVER_FLAGS,
      ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
    });
    stopServer = () => server.stop();
    const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
    const ws = connection.ws;
    // Idle: started, one authenticated connection, a moment to settle.
    await sleep(IDLE_SETTLE_MS);
    const idle = memory(server.pid);
    // Peak from here on only (start-up, e.g. tsx compiling the server, has its own peak).
    const hwmReset = resetPeakRss(server.pid);
    const sampler = new RssSampler(server.pid, 50);
    moreIdleReadings = idleRssOfStarts(idleDataDir, IDLE_STARTS - 1);
    // Awaited after the stream; a failure meanwhile must not go unhandled.
    moreIdleReadings.catch(() => {});

    const id = 'slow-reader';
    let messages = 0;
    let bytes = 0;
    let rowsReported = -1;
    let cutShort = false;
    let resumeTimer: NodeJS.Timeout | undefined;
    /** How long the reader held its socket paused, being ahead of its pace: the server waited on it. */
    let pausedMs = 0;
    const started = performance.now();
    // The slow reader: after each message, if it is ahead of its pace, it pauses its socket until it
    // is not. A paused socket stops reading from the kernel, the kernel's buffers fill, and the
    // server's socket stops draining — what a slow network or a busy client looks like to the server.
    const pace = (): void => {
      const due = started + ((messages * CHUNK_ROWS) / READ_ROWS_PER_S) * 1000;
      const wait = due - performance.now();
      if (wait > 1 && resumeTimer === undefined) {
        ws.pause();
        const pausedAt = performance.now();
        resumeTimer = setTimeout(() => {
          resumeTimer = undefined;
          pausedMs += performance.now() - pausedAt;
          ws.resume();
        }, wait);
      }
    };
    // Bounded in time: past MAX_STREAM_MS the query is cancelled; the memory figures stay valid.
    const deadline = setTimeout(() => {
      cutShort = true;
      ws.send(JSON.stringify({ type: 'cancel', payload: { id } }));
    }, MAX_STREAM_MS);
    const finished = collect(
      ws,
      (data) => {
        messages++;
        bytes += data.length;
        if (data.includes(MORE)) {
          pace();
          return false;
        }
        const reply = JSON.parse(data.toString()) as {
          type: string;
          id?: string;
          payload: { rows_affected?: number; code?: string; message?: string };
        };
        if (reply.id !== id) return false;
        if (reply.type !== 'data') {
          // A cancel we sent ourselves ends the run; anything else is a failure.
          if (cutShort && reply.payload.code === 'QUERY_CANCELLED') return true;
          throw new Error(`slow-reader stream failed: ${reply.payload.code}: ${reply.payload.message}`);
        }
        rowsReported = reply.payload.rows_affected ?? -1;
        if (rowsReported !== STREAM_ROWS)
          throw new Error(`expected ${STREAM_ROWS} rows, got ${rowsReported}`);
        return true;
      },
      MAX_STREAM_MS + 30_000,
    );
    ws.send(JSON.stringify({ type: 'query', id, payload: { sql: SQL } }));
    try {
      await finished;
    } finally {
      clearTimeout(deadline);
      clearTimeout(resumeTimer);
      ws.resume();
    }
    const seconds = (performance.now() - started) / 1000;
    const { maxRss, samples } = sampler.stop();
    const after = memory(server.pid);
    await connection.close();
    const idleReadings = [...(await moreIdleReadings), idle.rss];

    const rows = cutShort ? `~${count((messages - 1) * CHUNK_ROWS)} (cut short)` : count(rowsReported);
    const peak = after.hwm;
    const met = peak < TARGET_PEAK;
    const idleRss = median(idleReadings);
    const idleRange = `${mb(Math.min(...idleReadings))}–${mb(Math.max(...idleReadings))}`;
    const idleMet = idleRss < TARGET_IDLE;
    const markdown = [
      `\`${SQL}\` (${count(STREAM_ROWS)} rows, default chunk size) to a client that reads at most ` +
        `${count(READ_ROWS_PER_S)} rows/s, pausing its socket whenever it is ahead; server started with --statement-timeout ` +
        `${STATEMENT_TIMEOUT_S}. RSS read from /proc/<pid>/status: VmHWM is the kernel's exact peak` +
        (hwmReset ? ' (reset after the idle reading)' : ' (could not be reset: includes start-up)') +
        `; VmRSS sampled every 50 ms (${samples} samples). Idle RSS: the streaming server's before its ` +
        `query, and ${IDLE_STARTS - 1} more starts, one after another on a copy of the data directory while ` +
        `the stream ran (a process's RSS is its own, and the paused reader leaves the machine mostly idle).`,
      '',
      table(
        ['', 'value'],
        [
          ['rows received', rows],
          ['stream time', `${seconds.toFixed(1)} s (${count(bytes / seconds / 1024)} KiB/s read)`],
          [
            'reader paused, ahead of its pace',
            `${((pausedMs / 1000 / seconds) * 100).toFixed(0)}% of the stream time`,
          ],
          ['messages received', count(messages)],
          [
            `server RSS idle (1 authenticated socket), median of ${IDLE_STARTS} starts`,
            `${mb(idleRss)} (${idleReadings.map((r) => mb(r)).join(', ')})`,
          ],
          ['server RSS idle, the start that then streamed', mb(idle.rss)],
          ['server peak RSS while streaming (VmHWM)', mb(peak)],
          ['server max sampled VmRSS', mb(maxRss)],
          ['growth over idle', mb(peak - idle.rss)],
          ['server RSS after the stream', mb(after.rss)],
        ],
      ),
      '',
      `**Peak ${mb(peak)}** (target < ${mb(TARGET_PEAK)}: ${verdict(met)}), ${mb(peak - idle.rss)} above idle; ` +
        `**idle ${mb(idleRss)}**, median of ${IDLE_STARTS} starts (range ${idleRange}; target < ${mb(TARGET_IDLE)}: ${verdict(idleMet)}). ` +
        `The idle server has run no scan: its first starts the read worker, which stays (~10 MB more; see docs/operations.md).`,
    ].join('\n');
    return {
      key: 'd',
      title: 'Server memory while streaming 5M rows to a slow reader',
      markdown,
      targets: [
        { name: `peak RSS < ${mb(TARGET_PEAK)}`, measured: mb(peak), met },
        {
          name: `idle RSS, 1 authenticated socket < ${mb(TARGET_IDLE)}`,
          measured: `${mb(idleRss)} (median of ${IDLE_STARTS} starts, range ${idleRange})`,
          met: idleMet,
        },
      ],
    };
  } finally {
    await stopServer?.();
    // Its servers stop before their data directory goes.
    await moreIdleReadings?.catch(() => {});
    rmSync(idleDataDir, { recursive: true, force: true });
  }
}
