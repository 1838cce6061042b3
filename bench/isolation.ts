/**
 * (c) Isolation: while one socket runs a ~5 s query, another socket's `ping` must still be answered
 * promptly (target: delayed by at most 50 ms). A second socket pings every 20 ms before the query
 * (the baseline) and during it; the figure is the ping round trip in each phase.
 *
 * Two long queries are measured:
 * - the brief's case, a recursive CTE counting to N: one result row, all the work before it;
 * - a sparse result, the same CTE returning a row every N/10 steps. After its first row, libsql's
 *   promise-API iterator fetches further rows synchronously (DESIGN.md, "Where SQL runs"), so this
 *   probes the path between rows, which the first case never exercises.
 */
import type WebSocket from 'ws';
import { StreamConnection, collect, login } from './lib/client.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { startRustyServer } from './lib/rusty-server.ts';
import { max, median, ms, percentile, sleep, verdict } from './lib/stats.ts';

const COUNT_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT count(*) FROM c';
const SPARSE_SQL =
  'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) SELECT x FROM c WHERE x % ? = 0';
const TARGET_QUERY_MS = 5000;
const PING_EVERY_MS = 20;
const BASELINE_MS = 2000;
const TARGET_MAX_DELAY_MS = 50;
/** Calibration starts here and grows until a run takes long enough to extrapolate from. */
const CALIBRATION_START = 1_000_000;
const CALIBRATION_MIN_MS = 300;
const CALIBRATION_PROBE_MS = 1500;
/** A sanity cap on the calibrated bound (a 5 s query stays far inside the default 30 s statement timeout). */
const MAX_BOUND = 2_000_000_000;
/** A query that overruns its calibrated time by this much fails the benchmark instead of hanging it. */
const QUERY_TIMEOUT_MS = 25_000;
/** How long to wait for pongs still in flight after the query ends. */
const PONG_GRACE_MS = 5000;

interface PingSample {
  /** When the ping was sent (performance.now()). */
  sentAt: number;
  /** Its round trip, ms; Infinity if the pong never came. */
  ms: number;
}

interface Pinger {
  stop(): Promise<PingSample[]>;
}

/**
 * Pings every PING_EVERY_MS on `ws` until stopped. Pings are not serialized: a slow pong does not
 * delay the next ping, so a stalled server shows up as a run of slow pings rather than as fewer pings.
 */
function startPinger(ws: WebSocket): Pinger {
  const pending = new Map<string, number>();
  const samples: PingSample[] = [];
  let seq = 0;
  const onMessage = (raw: WebSocket.RawData): void => {
    const reply = JSON.parse((raw as Buffer).toString()) as { type: string; id?: string };
    if (reply.type !== 'pong' || reply.id === undefined) return;
    const sentAt = pending.get(reply.id);
    if (sentAt === undefined) return;
    pending.delete(reply.id);
    samples.push({ sentAt, ms: performance.now() - sentAt });
  };
  ws.on('message', onMessage);
  const send = (): void => {
    const id = `ping-${++seq}`;
    pending.set(id, performance.now());
    ws.send(JSON.stringify({ type: 'ping', id }));
  };
  const timer = setInterval(send, PING_EVERY_MS);
  send();
  return {
    async stop() {
      clearInterval(timer);
      const deadline = performance.now() + PONG_GRACE_MS;
      while (pending.size > 0 && performance.now() < deadline) await sleep(5);
      ws.off('message', onMessage);
      return [...samples, ...[...pending.values()].map((sentAt) => ({ sentAt, ms: Infinity }))];
    },
  };
}

/** Runs one query to its end and returns its wall time in ms (all chunks received). */
async function timeQuery(ws: WebSocket, sql: string, params: unknown[]): Promise<number> {
  const id = `long-${Math.random().toString(36).slice(2)}`;
  const started = performance.now();
  const finished = collect(
    ws,
    (data) => {
      const reply = JSON.parse(data.toString()) as {
        type: string;
        id?: string;
        payload: Record<string, unknown>;
      };
      if (reply.id !== id) return false;
      if (reply.type !== 'data') throw new Error(`long query failed: ${JSON.stringify(reply.payload)}`);
      return reply.payload.has_more === false;
    },
    QUERY_TIMEOUT_MS,
  );
  ws.send(JSON.stringify({ type: 'query', id, payload: { sql, params } }));
  await finished;
  return performance.now() - started;
}

/**
 * Finds N such that counting to N takes about TARGET_QUERY_MS through the server. Run time per step
 * varies by ±50% between runs on a shared 2-core machine, so a short probe is followed by a longer one
 * (~1.5 s) before extrapolating; the report gives the query time actually measured.
 */
async function calibrate(ws: WebSocket): Promise<{ bound: number; probeMs: number }> {
  let bound = CALIBRATION_START;
  let elapsed = await timeQuery(ws, COUNT_SQL, [bound]);
  // At most a few steps: each multiplies the work by 4, and the start takes ~0.2 s here.
  for (let i = 0; i < 5 && elapsed < CALIBRATION_MIN_MS; i++) {
    bound *= 4;
    elapsed = await timeQuery(ws, COUNT_SQL, [bound]);
  }
  bound = Math.min(MAX_BOUND, Math.round((bound * CALIBRATION_PROBE_MS) / elapsed));
  elapsed = await timeQuery(ws, COUNT_SQL, [bound]);
  return { bound: Math.min(MAX_BOUND, Math.round((bound * TARGET_QUERY_MS) / elapsed)), probeMs: elapsed };
}

interface Phase {
  pings: PingSample[];
  /** When the long query was sent and how long it took, ms. */
  queryStart?: number;
  queryMs?: number;
}

function summarize(phase: Phase) {
  const times = phase.pings.map((p) => p.ms);
  return { n: times.length, p50: median(times), p99: percentile(times, 99), max: max(times) };
}

/** The slowest pings, with when they were sent relative to the query's start: where the stall was. */
function slowest(phase: Phase, n: number): string {
  const start = phase.queryStart ?? 0;
  return [...phase.pings]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, n)
    .map((p) => `${ms(p.ms)} at ${((p.sentAt - start) / 1000).toFixed(2)} s`)
    .join(', ');
}

/**
 * Says where the worst stall was: a ping answered only as the query finished means the server's event
 * loop was busy with that query (not with scheduling noise) from the ping's send to the query's end.
 */
function stallNote(name: string, phase: Phase): string {
  const worst = [...phase.pings].sort((a, b) => b.ms - a.ms)[0];
  if (!worst || worst.ms <= TARGET_MAX_DELAY_MS || phase.queryStart === undefined) return '';
  const sent = (worst.sentAt - phase.queryStart) / 1000;
  const answered = sent + worst.ms / 1000;
  const queryEnd = (phase.queryMs ?? 0) / 1000;
  // The final data message and the pongs queued behind a stall leave the server in the same burst.
  const afterEnd = answered >= queryEnd - 0.15;
  return (
    `${name}: the worst ping was sent ${sent.toFixed(2)} s into the query and answered at ` +
    `${answered.toFixed(2)} s; the query's last message arrived at ${queryEnd.toFixed(2)} s` +
    (afterEnd
      ? ` — the server's event loop did not get back to the socket until the query had finished, ` +
        `${(queryEnd - sent).toFixed(2)} s later.`
      : ` — a stall in the middle of the query's run.`)
  );
}

async function pingsDuring(
  pingSocket: WebSocket,
  querySocket: WebSocket,
  sql: string,
  params: unknown[],
): Promise<Phase> {
  const pinger = startPinger(pingSocket);
  // Let the pinger settle so that the first pings of the window are not start-up effects.
  await sleep(4 * PING_EVERY_MS);
  const queryStart = performance.now();
  const queryMs = await timeQuery(querySocket, sql, params);
  return { pings: await pinger.stop(), queryStart, queryMs };
}

export async function runIsolation(ctx: BenchContext): Promise<BenchReport> {
  const server = await startRustyServer({
    dataDir: ctx.dataDir,
    ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
  });
  try {
    const token = await login(server.url);
    const querying = await StreamConnection.open(server.streamUrl, token);
    const pinging = await StreamConnection.open(server.streamUrl, token);

    const { bound, probeMs } = await calibrate(querying.ws);
    ctx.log(`  (c) calibrated: counting to ${bound.toLocaleString('en-US')} (probe took ${ms(probeMs)})`);

    const pinger = startPinger(pinging.ws);
    await sleep(BASELINE_MS);
    const before: Phase = { pings: await pinger.stop() };
    const counting = await pingsDuring(pinging.ws, querying.ws, COUNT_SQL, [bound]);
    ctx.log(`  (c) count query took ${ms(counting.queryMs!)}`);
    const sparse = await pingsDuring(pinging.ws, querying.ws, SPARSE_SQL, [bound, Math.floor(bound / 10)]);
    ctx.log(`  (c) sparse query took ${ms(sparse.queryMs!)}`);
    await querying.close();
    await pinging.close();

    const b = summarize(before);
    const c = summarize(counting);
    const s = summarize(sparse);
    // "Delay" is how much longer the worst ping took than a typical ping with the server idle.
    const delay = (phase: ReturnType<typeof summarize>): number => phase.max - b.p50;
    const row = (name: string, x: ReturnType<typeof summarize>, queryMs?: number): string[] => [
      name,
      queryMs === undefined ? '—' : ms(queryMs),
      String(x.n),
      ms(x.p50),
      ms(x.p99),
      ms(x.max),
    ];
    const countDelay = delay(c);
    const sparseDelay = delay(s);
    const markdown = [
      `Ping every ${PING_EVERY_MS} ms on a second socket; the long query's bound was calibrated on this ` +
        `machine to take ~${TARGET_QUERY_MS / 1000} s (N = ${bound.toLocaleString('en-US')}).`,
      '',
      table(
        ['phase', 'query time', 'pings', 'p50', 'p99', 'max'],
        [
          row('before (server idle)', b),
          row('during `…SELECT count(*) FROM c` (one row at the end)', c, counting.queryMs),
          row('during `…SELECT x FROM c WHERE x % (N/10) = 0` (10 rows, far apart)', s, sparse.queryMs),
        ],
      ),
      '',
      `**Counting query: worst ping ${ms(c.max)}, ${ms(countDelay)} over the idle p50** ` +
        `(target ≤ ${TARGET_MAX_DELAY_MS} ms: ${verdict(countDelay <= TARGET_MAX_DELAY_MS)}); p99 ${ms(c.p99)} ` +
        `vs ${ms(b.p99)} idle.`,
      '',
      `Slowest pings (round trip, and when sent relative to the query's start) — counting: ` +
        `${slowest(counting, 5)}; sparse: ${slowest(sparse, 3)}.`,
      '',
      ...[stallNote('Counting query', counting), stallNote('Sparse query', sparse)]
        .filter((note) => note !== '')
        .flatMap((note) => [note, '']),
      `Sparse-result query (beyond the brief's case): worst ping ${ms(s.max)}, ${ms(sparseDelay)} over the ` +
        `idle p50 (${verdict(sparseDelay <= TARGET_MAX_DELAY_MS)} against the same target).`,
    ].join('\n');
    return {
      key: 'c',
      title: 'Isolation: pings during a 5 s query',
      markdown,
      targets: [
        {
          name: `ping delay ≤ ${TARGET_MAX_DELAY_MS} ms during a 5 s count`,
          measured: `max ${ms(c.max)} (+${ms(countDelay)})`,
          met: countDelay <= TARGET_MAX_DELAY_MS,
        },
        {
          name: `same, 5 s query with sparse rows (extra)`,
          measured: `max ${ms(s.max)} (+${ms(sparseDelay)})`,
          met: sparseDelay <= TARGET_MAX_DELAY_MS,
        },
      ],
    };
  } finally {
    await server.stop();
  }
}
