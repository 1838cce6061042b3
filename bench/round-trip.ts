/**
 * (b) Small-query round trip: `SELECT v FROM kv WHERE k = ?` by primary key, one client, one request
 * at a time, against a raw `ws` echo server driven by the very same client loop (the yardstick), and
 * against the floor: the echo plus only the work any server answering the query must do (parse the
 * request, one libsql keyed read, the reply's JSON). floor / echo is what no implementation can avoid on
 * this machine; RustyDB / floor is what RustyDB's own routing, authorization and bookkeeping add.
 */
import type WebSocket from 'ws';
import { spawnNode } from './lib/children.ts';
import { StreamConnection, login, openSocket } from './lib/client.ts';
import { KV_ROWS, KV_TABLE, databasePath } from './lib/dataset.ts';
import { prng } from './lib/prng.ts';
import { threadCpuSeconds } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { startRustyServer } from './lib/rusty-server.ts';
import { ms, percentile, ratio, verdict } from './lib/stats.ts';

export const SQL = `SELECT v FROM ${KV_TABLE} WHERE k = ?`;
/** Warm-up round trips per target: with 1,000 the first measured block was still the slowest. */
const WARMUP = 5000;
/**
 * Measured round trips per target come in BLOCKS alternating blocks of BLOCK_SIZE. With 5 blocks of
 * 1,000 the p99 (the 50th slowest round trip of 5,000) moved by several percent between runs, and
 * each block's figures depend on where the scheduler placed client and server (see NOTES): 15 blocks
 * average over more placements, and the ratios of each fifth of the run (3 turns, 3,000 per target)
 * show how far they move. Blocks of 1,000 (15,000 per target): 15 × 1,500 took the section 11 s on
 * the slower AMD EPYC host, over its 7 s allowance.
 */
const BLOCKS = 15;
const BLOCK_SIZE = 1000;
/** The ratios are also worked out for each of this many consecutive groups of turns (their spread). */
const GROUPS = 5;
/**
 * Time bounds: a block (or the warm-up) stops early when its budget is spent, so that a server with
 * millisecond round trips cannot stretch the bench; the report gives the counts actually measured.
 */
const WARMUP_BUDGET_MS = 10_000;
const BLOCK_BUDGET_MS = 2_000;
/** No single round trip may take longer than this; a stuck server fails the benchmark. */
const REPLY_TIMEOUT_MS = 10_000;
const TARGET_P50 = 1.2;
const TARGET_P99 = 1.5;

/**
 * Where the time goes, measured apart from the bench (a 20,000-query loop against the built server with
 * per-stage timers in the message path, `perf record`, `strace -c`, `--cpu-prof`, `--trace-gc`); the
 * figures are medians on the shared 2-core machine and move with its load.
 */
const NOTES: string[] = [
  "Where the time goes (before the changes of the next paragraph): per keyed query the server's " +
    'message handler took ~10 µs: `JSON.parse` and ' +
    "the check of the message 1.3–1.5 µs; the engine step ~5.5 µs, of which libsql's `get` is 4.0–4.3 µs " +
    '(2.5–2.9 µs in a tight loop in one process: between queries the caches are cold) and the route ' +
    "lookup, authorization, parameter conversion and the metrics and audit wrappers ~1.4 µs; the reply's " +
    "text ~1.1 µs; handing it to `ws` ~0.8 µs. The system calls per round trip are the echo's (one `read`, " +
    'one write, one `epoll_wait`) plus two `fcntl`: SQLite takes and drops its WAL read lock on the ' +
    '`-shm` file for every read transaction, and the floor pays them too.',
  '',
  "What changed in RustyDB's keyed path (session 7): the answer leaves as one frame built in one buffer " +
    "and one `write` (the transport's sendText, as auth_success does), where `ws` made a header buffer " +
    'and a `writev` of two; and when the request was the last message of its read, that write happens ' +
    "at once, inside the message handler, as the floor's `ws.send` does, instead of at the end of the " +
    'tick after the event loop has unwound (answers to pipelined requests still share one write). The ' +
    "engine view's `runInline` is read once per connection (each lookup on the view, a Proxy, ran a " +
    'trap: twice per query); the router records an inline run on the route it just ran instead of ' +
    "looking the statement's text up again. Measured A/B against the build before (" +
    'bench/tools/round-trip-ab.ts --builds-only: blocks of 1,000 in turns, 40 turns per run, on the ' +
    "loaded machine): the server's CPU per round trip 0.93× (three runs: 0.926, 0.933, 0.926; the " +
    'median of the per-turn ratios) and the p50 0.95× (0.947, 0.963, 0.942); the single write alone ' +
    'was 0.95–1.00×, the write at once 0.95–0.98× on top. Allocation per query fell from 5.3 to 4.5 KB. ' +
    'What RustyDB still does that the floor does not, by CPU profile (every 50 µs, 20,000 queries ' +
    "each): its own check of the message, the route and authorization, the engine view's three " +
    "wrappers (catalog scope, metrics, audit) and the run's bookkeeping, each a few tenths of a µs; and " +
    'six clock reads per query where the floor makes one (`performance.now()` twice for the metrics and ' +
    "twice for the inline time budget, `Date.now()` for the socket's last-heard time and the envelope's " +
    'timestamp), 0.1–0.2 µs each on this virtual machine in a tight loop (three since session 11, below).',
  '',
  'Why the floor is far above the echo although it adds only a few µs of CPU: a round trip is not the ' +
    'sum of the CPU times. The echo answers 2–3 µs after reading, while the client is still finishing ' +
    'its send and has not gone back to `epoll_wait`, so the client never sleeps. A server that needs ' +
    '5–10 µs answers a client that is asleep and has to be woken (the scheduler, and on this KVM guest a ' +
    'halted vCPU); that wake-up costs more than the work itself. The floor row measures this in the same ' +
    'run with the least work any server answering the query must do; RustyDB / floor is what RustyDB ' +
    'itself adds (routing, authorization, limits, metrics, audit, its envelope).',
  '',
  "The tail: the server allocated ~5 KB per keyed query (V8's sampling heap profiler with collected " +
    "objects counted): ~3.5 KB in `ws` framing and Node's stream bookkeeping, which the floor pays too, " +
    "and ~1.8 KB of its own — the reply's text ~0.7 KB, the parsed message ~0.4 KB, the result ~0.4 KB. " +
    'Framing the answer itself took that to 4.5 KB (`--trace-gc` over 20,000 queries after 20,000: a ' +
    "collection every ~740 queries instead of ~625; of the 4.5 KB the reply's text is 0.8 KB and its " +
    "flattening 0.2 KB, which the floor's identical text costs too, and Node's read path, `ws`'s " +
    'receiver and the tick queue ~1.6 KB). ' +
    'That was a young-generation collection every ~550 queries in this bench (`--trace-gc`: the young ' +
    'generation is still small this soon after start — it is held at its initial size while the server ' +
    'starts, src/cli/young-generation.ts, and grows only as objects survive) and every ~1,250 after tens ' +
    'of thousands of queries, 0.3–7 ms each on the loaded machine: one query in 550 (p99.8, not p99). ' +
    'In the bench itself (the server profiled every 50 µs during the measured blocks), the main ' +
    "thread's work outside the message path was: those collections (each followed by ~0.2 ms of the GC " +
    "metrics observer), the metrics sampler's tick (~0.5 ms once a second: it sorts up to 40k latencies), " +
    "the change feed's idle poll (~0.35 ms once a second), and gaps of 0.2–2.3 ms in which the process did " +
    "not run at all (the machine's other load). That is ~15 stalls of its own per 5,000 queries, 0.3%: " +
    'nothing in the server runs once per 100 queries. Round trips over 300 µs per 5,000, in two ' +
    'runs: RustyDB 29 and 15, the floor 12 and 1, the echo 6 and 2; its slower answer also leaves more ' +
    "room for the machine's noise. When RustyDB's p99 lands far above the floor's (once 24× on the loaded " +
    'machine, then 1.3× in the next run) it is these stalls meeting bursts of load; the p99 row of the ' +
    'floor in the same run shows what of the tail any server doing the work pays.',
  '',
  'The tail measured directly (bench/tools/round-trip-tail.ts: each round trip timed on the client, the ' +
    "server's `--trace-gc` lines marked at the round trip during which they arrived; 15,000–20,000 " +
    'queries after 5,000, on the AMD EPYC host at load 4–7). RustyDB made a young-generation collection ' +
    'every ~400–530 queries (36–45 per run), the floor every ~870 (17–23), though both allocate about ' +
    "the same per query (~4 KB vs ~3.6 KB: each RustyDB collection freed ~1.5 MB, each of the floor's " +
    "~3.2 MB): RustyDB's young generation is half the floor's, because it is held at its initial size " +
    'while the server starts (src/cli/young-generation.ts, for idle memory) and grows back only as ' +
    'survivors add up, over tens of thousands of queries. Collections took 0.3–0.6 ms (median), 1.2–12 ms ' +
    'at p90 under load. They touch one round trip in 400 (0.25%): that is p99.9, not p99 — and the p99.9 ' +
    'is where RustyDB stood furthest from the floor (3.0× in the quiet run). Of the round trips over ' +
    "p50 + 100 µs, only 39–50 of RustyDB's 137–1,268 per run (the floor: 22–25 of 171–1,761) had a " +
    'collection beside them; the rest came in bursts (gaps of 0–2 ms between slow round trips dominate, ' +
    "no peak at 10 ms or 1 s) with the floor showing as many or more: the machine's load, not a timer " +
    "of the server's. Without the start-up hold (a copy of the build with it removed: the young generation grows to 16 MB, " +
    '5 collections in 15,000 queries instead of 37) A/B against the build with it (round-trip-ab.ts ' +
    '--builds-only, 20 turns of 1,000, three runs, load 6–9): p99 with the hold 323, 695, 373 µs, without ' +
    '350, 2,240, 270 µs; p99.9 3.2, 8.0, 3.8 ms against 4.1, 13.5, 1.5 ms; round trips over 300 µs ' +
    '222, 389, 234 against 262, 864, 164; CPU per round trip 1.03×, 0.99×, 1.02×. Eight times fewer ' +
    "collections did not move the tail out of the machine's noise, and would cost the idle memory the " +
    "hold exists to save: left as it is. The event loop delay monitor's 10 ms timer (the metrics' loop lag) wakes the " +
    'server every ~80 queries, but A/B with it off (round-trip-ab.ts --builds-only, 20 turns of 1,000, ' +
    'two runs) changed nothing: p99 211 vs 216 µs and 385 vs 374 µs, CPU per round trip 0.94× and ' +
    '0.89× (the build with the monitor on was the cheaper one: noise). The metrics tick (sort of the ' +
    "latencies, ~0.5 ms) and the change feed's idle poll (~0.35 ms) run once a second, one query in " +
    '~8,000: below p99.9. What the collections cost did depend on the server: V8 splits each scavenge ' +
    'among its four background threads and the main thread waits for them all, which on a loaded 2-core ' +
    'machine may not run for milliseconds: pauses 0.33–0.41 ms at the median but 4.9–60 ms at worst ' +
    '(five 15,000-query runs). The server now scavenges on its main thread alone on two cores or fewer ' +
    '(src/cli/young-generation.ts): 0.23–0.36 ms at the median, 0.46–3.7 ms at worst in the runs ' +
    'alternated with those. A/B on round trips (round-trip-ab.ts --builds-only, 20 turns of 1,000, five ' +
    'runs, load 4–6), with vs without: p99 1.10/1.02 ms, 237/257, 2.93/3.20 ms, 252/241, 221/261 µs; ' +
    'p99.9 5.1/5.1, 1.6/2.5, 8.0/9.7, 1.6/1.3, 1.2/2.0 ms; CPU per round trip 0.985× (0.976–1.056×): ' +
    "the GC pauses' own tail is gone, the round trips' p99 is the load's.",
  '',
  "What RustyDB's slowest round trips have that the floor's do not (session 8; bench/tools/" +
    'round-trip-ab.ts --handler-times: the same preload in every server times, on its main thread, each ' +
    "request's handling to its socket write and to the handler's end, the event loop's other work and its " +
    'wait between two handlers, and the collections and timer callbacks run there; 10 turns of 2,000 per ' +
    'target, ten runs, load 4–8, when every step ran 3–5× slower than the quiet figures above: ' +
    "libsql's `get` alone took 20–26 µs). The server's own work from the request to its write: RustyDB " +
    'p50 33–38 µs, p99 61–86 µs; the floor 26–29 and 50–67 µs (the echo 1–2 and 3–7): RustyDB does ~30% ' +
    'more at p50 and the same ~30% more at p99 — no step of its path is sometimes much longer (the ' +
    'statement cache, the time budget and the wrappers never showed apart). By stage (timers in a copy of ' +
    'the build, 20,000 queries, alternated with the floor): the transport and the message check 9.3 µs ' +
    "against the floor's 5.2 (`toString` and `JSON.parse`); the engine step 32.5 against 23.2, of which " +
    "libsql's `get` itself 26.3 against 23.2 for the same statement on the same file, and the route, " +
    'authorization, parameters and the three wrappers ~5 together, none over 1 µs in a tight loop; the ' +
    "reply's text 5 µs in both; the frame 4.5 µs. At the round trips ≥ p99 RustyDB's own work was 50–57 " +
    'µs (median; the floor 38–46): what made them slow lay outside the handler (median 0.2–1.8 ms, the ' +
    "floor's 0.2–0.6 ms). Before 8–71 of RustyDB's 201 slowest round trips the loop had run over 100 µs " +
    'of other work (the floor 15–41): a young-generation collection before 2–52 of them (the floor ' +
    "5–25; RustyDB ran 116–135 collections in its life against the floor's 33–79, its young " +
    "generation being held small, see above) and a timer callback (the metrics tick, the change feed's " +
    'idle poll) before 2–13 (the floor has none). A copy of the build without the start-up hold (23–25 ' +
    'collections), in the same runs, had a collection before 0–6 of its slowest round trips, yet its ' +
    'p99 was 1.54 ms, 298 µs, 1.72 ms against 2.25 ms, 262 µs, 1.85 ms with the hold: the places the ' +
    "collections leave are taken by the machine's stalls, at the same level. So RustyDB's p99 over the " +
    "floor's (1.07–1.20× in three bench runs; in ten A/B runs the per-turn median 0.81–1.39×, once 4.9×) is not a tail of its " +
    'own: the slowest round trips of both are stalls of the loaded 2-core machine, which a server meets ' +
    'in proportion to the time it runs per request — RustyDB ~13% longer (CPU per round trip), and it ' +
    'collects more often. What would close it is less work per request, spread over many steps of under ' +
    'a µs each. Clock reads looked not to be it (`performance.now()` took 66–122 ns and `Date.now()` 58–77 ' +
    'ns in a tight loop here, six per query ~0.4 µs), yet in the round trip they were: see session 11 ' +
    'below. Nor are the ' +
    "engine view's three wrappers: a copy of the build whose keyed path skipped all three (metrics, audit " +
    'and catalog scope lost: an experiment, not a change) against this one (round-trip-ab.ts ' +
    '--builds-only, 40 turns of 1,000, three runs, load 5–6): CPU per round trip with them 0.993×, ' +
    '1.031×, 1.015×, p50 1.00×, 1.02×, 1.01× (per-turn medians) — within the noise.',
  '',
  'The keyed router moved a statement off the event loop for good after three inline runs in a row over ' +
    'its 2 ms budget. This bench never triggers it (a copy of the build logging the inline runs over ' +
    '0.5 ms: 10 in 45,000 queries at load 5, one over 2 ms, never two in a row), but three stalls of a ' +
    "loaded machine in a row would have made the hot statement pay the read worker's thread hop for the " +
    'life of the process. It now comes back after 1 s, on probation: one slow run sends it off again for ' +
    'twice as long (up to 10 minutes), a fast one clears the record (test/inline-demotion.test.ts). A/B against ' +
    'the build before (round-trip-ab.ts --builds-only, 40 turns of 1,000, three runs, load 7.6–8.8): CPU ' +
    'per round trip 0.982×, 0.992×, 0.990× (per-turn medians), p50 0.98–1.00×, p99 1.00×, 0.93×, 0.95×: ' +
    'the keyed path pays nothing for it.',
  '',
  'Session 11: fewer clock reads, and no `JSON.parse` for the keyed query. A/B on copies of the build ' +
    'showed what the tight loop did not: a copy whose keyed path read no clock at all used 3.5–6% less ' +
    'server CPU per round trip (round-trip-ab.ts --builds-only, 40 turns of 1,000, three runs: the build ' +
    'with its six reads 1.054×, 1.035×, 1.060×; per-turn medians), and three more reads per query cost ' +
    "1.8–2.0% (two runs): ~0.6% each, where doubling the reply's text and its encoding cost 0.3–0.5% " +
    "and 1 KB more garbage per query nothing measurable (1.000×, 0.994×). Now the inline run's two " +
    "`performance.now()` serve the metrics' latency too (lastInlineRun, instead of two reads of their own) " +
    "and the answer's timestamp (timestampAt: the wall clock is read once per millisecond, not per " +
    "answer; a new millisecond's text is made from its second's, not by `toISOString`); and a query " +
    'message in the layout clients write is read from its text without `JSON.parse` (query-text-scan.ts: ' +
    '~0.4 µs against ~0.9 µs in a tight loop; anything else, valid or not, goes to `JSON.parse` and the ' +
    "full check, as before). Three reads remain per keyed query: the socket's last-heard time " +
    "(`Date.now()`) and the inline run's start and end (its 2 ms budget). A/B against main without these " +
    'changes (round-trip-ab.ts --builds-only, 40 turns of 1,000, four runs, load 12–15): CPU per round ' +
    'trip 0.965×, 0.984×, 0.956×, 0.954×, p50 0.988×, 0.988×, 0.966×, 0.978× (per-turn medians). A copy ' +
    "without the last-heard read and the run's start read (an experiment: the idle timeout and the " +
    'inline budget lost) against this build: 1.010×, 1.017×, 0.994× (load 10–12): one reading shared by ' +
    'the two would save ~1% more.',
  '',
  'Blocks whose p50 differ by a third (63 and 45 µs in one quiet run) are where the scheduler put the ' +
    'client and the server. Pinned with `taskset` (20,000-query loops on the loaded machine): both on one ' +
    'CPU, RustyDB p50 33–35 µs (echo 19–29, floor 29–30); on two CPUs 48–61 µs (echo 34–43, floor 49–55), ' +
    "and the server's CPU per round trip rises from 28 to 41–53 µs: waking a task on the other vCPU of " +
    'this KVM guest costs an inter-processor interrupt through the host, and a halted vCPU must first be ' +
    'run again by it. On two CPUs the p99 of all three servers was 1.5–3 ms. Which placement a block ' +
    "gets is the kernel's choice, made again as tasks sleep and wake; an idle machine tends to wake the " +
    'idle CPU.',
  '',
  'Warm-up: with 1,000 warm-up round trips the first measured block was the slowest for all three ' +
    "(RustyDB 56–58 µs, then 34–38 µs; the floor 39–42 µs, then 27–30 µs): the server's paths were not " +
    'yet optimized. Each target now gets 5,000 warm-up round trips before the measured blocks.',
];

/** The request text: the same bytes go to the echo server (which returns them) and to RustyDB. */
function queryText(i: number, key: number): string {
  return JSON.stringify({ type: 'query', id: `rt-${i}`, payload: { sql: SQL, params: [key] } });
}

/**
 * The client loop shared by both targets: send, wait for the next message, parse it, check it answers
 * this request. Stops after n round trips or budgetMs. Returns each round trip's duration in ms.
 */
export async function roundTrips(
  ws: WebSocket,
  n: number,
  budgetMs: number,
  keys: () => number,
  expectType: string,
): Promise<number[]> {
  const deadline = performance.now() + budgetMs;
  const durations: number[] = [];
  let deliver: ((data: Buffer) => void) | undefined;
  const onMessage = (data: WebSocket.RawData): void => deliver?.(data as Buffer);
  ws.on('message', onMessage);
  try {
    for (let i = 0; i < n && performance.now() < deadline; i++) {
      const text = queryText(i, keys());
      const reply = new Promise<Buffer>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no reply in ${REPLY_TIMEOUT_MS} ms`)),
          REPLY_TIMEOUT_MS,
        );
        deliver = (data) => {
          clearTimeout(timer);
          resolve(data);
        };
      });
      const started = performance.now();
      ws.send(text);
      const message = JSON.parse((await reply).toString()) as { type: string; id?: string };
      durations.push(performance.now() - started);
      if (message.type !== expectType || message.id !== `rt-${i}`) {
        throw new Error(`unexpected reply to round trip ${i}: ${JSON.stringify(message).slice(0, 300)}`);
      }
    }
  } finally {
    ws.off('message', onMessage);
  }
  return durations;
}

interface Side {
  /** Round-trip times of each measured block, ms. */
  blocks: number[][];
  cpu: number;
}

/** The p50 of each measured block, in order: a step between blocks means the server changed path. */
function blockP50s(side: Side): string[] {
  return side.blocks.map((block) =>
    block.length === BLOCK_SIZE
      ? ms(percentile(block, 50))
      : `${ms(percentile(block, 50))} (n=${block.length})`,
  );
}

/** The median and range of `values`, e.g. "1.52× (1.47–1.60×)". */
function spread(values: readonly number[]): string {
  const f = (v: number): string => v.toFixed(2);
  return `${f(percentile(values, 50))}× (${f(Math.min(...values))}–${f(Math.max(...values))}×)`;
}

/**
 * The ratio `side` / `base` at percentile p in each of GROUPS consecutive groups of turns: how far the
 * figure moves when measured on a fifth of the samples, within one run.
 */
function groupRatios(side: Side, base: Side, p: number): number[] {
  const per = Math.max(1, Math.floor(side.blocks.length / GROUPS));
  const ratios: number[] = [];
  for (let g = 0; g + per <= side.blocks.length; g += per) {
    const a = side.blocks.slice(g, g + per).flat();
    const b = base.blocks.slice(g, g + per).flat();
    ratios.push(percentile(a, p) / percentile(b, p));
  }
  return ratios;
}

/**
 * What the spread of the run's fifths says of a ratio's verdict: when they fall on both sides of the
 * target, the verdict is within this run's noise, and the summary says so (the issue asks every figure
 * whose spread crosses its margin to say so).
 */
function noiseNote(groups: readonly number[], target: number): string {
  const low = Math.min(...groups);
  const high = Math.max(...groups);
  return low <= target && high > target
    ? `; its fifths ${low.toFixed(2)}–${high.toFixed(2)}×, on both sides of the target: within this run's noise`
    : '';
}

/**
 * A ratio for the summary, with the floor's when the floor alone is over the target: in that run the
 * target is out of reach, not just missed (the section's text says so at length).
 */
function againstFloor(measured: number, floor: number, target: number): string {
  return floor > target
    ? `${ratio(measured)} (out of reach: the floor alone is ${ratio(floor)})`
    : ratio(measured);
}

export async function runRoundTrip(ctx: BenchContext): Promise<BenchReport> {
  const server = await startRustyServer({
    dataDir: ctx.dataDir,
    ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
  });
  // Profiled like the server when asked: the two profiles side by side show what RustyDB adds.
  const profile = ctx.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfileDir] : [];
  const echo = spawnNode(profile, 'bench/lib/echo-server.mjs', [], process.env);
  const floorServer = spawnNode(
    profile,
    'bench/lib/keyed-read-server.mjs',
    [databasePath(ctx.dataDir), KV_TABLE],
    process.env,
  );
  try {
    const echoUrl = (await echo.waitFor(/echo listening on (ws:\/\/\S+)/))[1]!;
    const floorUrl = (await floorServer.waitFor(/keyed reads listening on (ws:\/\/\S+)/))[1]!;
    const rusty = await StreamConnection.open(server.streamUrl, await login(server.url));
    const raw = await openSocket(echoUrl);
    const floorSocket = await openSocket(floorUrl);
    const random = prng(42);
    const keys = (): number => 1 + Math.floor(random() * KV_ROWS);

    // Warm-up: JIT on all three processes; the server plans the statement and caches its route.
    await roundTrips(rusty.ws, WARMUP, WARMUP_BUDGET_MS, keys, 'data');
    await roundTrips(raw, WARMUP, WARMUP_BUDGET_MS, keys, 'query');
    await roundTrips(floorSocket, WARMUP, WARMUP_BUDGET_MS, keys, 'data');

    const sides: Record<'rusty' | 'echo' | 'floor', Side> = {
      rusty: { blocks: [], cpu: 0 },
      echo: { blocks: [], cpu: 0 },
      floor: { blocks: [], cpu: 0 },
    };
    const measure = async (side: Side, ws: WebSocket, pid: number, expectType: string): Promise<void> => {
      // Every thread's run time from schedstat, in nanoseconds (utime and stime step by 10 ms).
      const cpuBefore = threadCpuSeconds(pid).total;
      side.blocks.push(await roundTrips(ws, BLOCK_SIZE, BLOCK_BUDGET_MS, keys, expectType));
      side.cpu += threadCpuSeconds(pid).total - cpuBefore;
    };
    for (let block = 0; block < BLOCKS; block++) {
      // Alternating blocks: a noisy moment on the machine lands on both targets, not on one.
      await measure(sides.rusty, rusty.ws, server.pid, 'data');
      await measure(sides.echo, raw, echo.pid, 'query');
      await measure(sides.floor, floorSocket, floorServer.pid, 'data');
    }
    await rusty.close();
    raw.close();
    floorSocket.close();

    const stat = (side: Side) => {
      const all = side.blocks.flat();
      return {
        n: all.length,
        p50: percentile(all, 50),
        p99: percentile(all, 99),
        p999: percentile(all, 99.9),
        cpuPerTrip: (side.cpu / all.length) * 1000,
      };
    };
    const r = stat(sides.rusty);
    const e = stat(sides.echo);
    const f = stat(sides.floor);
    const p50Ratio = r.p50 / e.p50;
    const p99Ratio = r.p99 / e.p99;
    const floorP50 = f.p50 / e.p50;
    const floorP99 = f.p99 / e.p99;
    // The ratios on each fifth of the run: the spread line, and the verdicts' noise notes.
    const rustyEchoP50s = groupRatios(sides.rusty, sides.echo, 50);
    const rustyEchoP99s = groupRatios(sides.rusty, sides.echo, 99);
    const p50Noise = noiseNote(rustyEchoP50s, TARGET_P50);
    const p99Noise = noiseNote(rustyEchoP99s, TARGET_P99);
    const floorVerdict = [
      floorP50 > TARGET_P50
        ? `the floor alone is ${ratio(floorP50)} the echo at p50, above the ${TARGET_P50}× target: no ` +
          `server that parses the request, reads the row with libsql and writes the answer meets it on this ` +
          `machine (RustyDB is ${ratio(r.p50 / f.p50)} the floor)`
        : `the floor is ${ratio(floorP50)} the echo at p50, within the ${TARGET_P50}× target: by this run ` +
          `the p50 target is not out of reach, and what RustyDB adds to the floor (${ratio(r.p50 / f.p50)}) ` +
          `is what misses it`,
      floorP99 > TARGET_P99
        ? `at p99 the floor is ${ratio(floorP99)} the echo, above the ${TARGET_P99}× target (RustyDB ` +
          `${ratio(r.p99 / f.p99)} the floor)`
        : `at p99 the floor is ${ratio(floorP99)} the echo, within the ${TARGET_P99}× target: RustyDB's ` +
          `tail above it (${ratio(r.p99 / f.p99)} the floor, with ${ratio(r.cpuPerTrip / f.cpuPerTrip)} its ` +
          `CPU per round trip) comes from its longer work per request: its slowest round trips are the ` +
          `machine's stalls, as the floor's are, and its own work in them is as much longer as at p50 ` +
          `(measured with bench/tools/round-trip-ab.ts --handler-times: see below)`,
    ].join('; ');
    const markdown = [
      `\`${SQL}\` with random keys in 1..${KV_ROWS}, sequential on one socket; ${r.n} (RustyDB), ` +
        `${e.n} (echo) and ${f.n} (floor) round trips in ${BLOCKS} alternating blocks of up to ` +
        `${BLOCK_SIZE} (${BLOCK_BUDGET_MS / 1000} s at most each), after up to ${WARMUP} warm-up round ` +
        `trips each. The echo server (\`bench/lib/echo-server.mjs\`, its own process) gets the same request ` +
        `text back. The floor (\`bench/lib/keyed-read-server.mjs\`, its own process) is that echo server ` +
        `plus only what any server answering the query must do: parse the request's JSON, read the row from ` +
        `the same database file with a prepared libsql statement, write a reply shaped like RustyDB's. The ` +
        `client loop, including JSON.parse of the reply, is the same code for all three.`,
      '',
      table(
        ['', 'p50', 'p99', 'p99.9', 'server CPU per round trip'],
        [
          ['raw `ws` echo', ms(e.p50), ms(e.p99), ms(e.p999), ms(e.cpuPerTrip)],
          ['floor: echo + JSON + libsql keyed read', ms(f.p50), ms(f.p99), ms(f.p999), ms(f.cpuPerTrip)],
          ['RustyDB query', ms(r.p50), ms(r.p99), ms(r.p999), ms(r.cpuPerTrip)],
          [
            'RustyDB / echo',
            ratio(p50Ratio),
            ratio(p99Ratio),
            ratio(r.p999 / e.p999),
            ratio(r.cpuPerTrip / e.cpuPerTrip),
          ],
          [
            'floor / echo',
            ratio(floorP50),
            ratio(floorP99),
            ratio(f.p999 / e.p999),
            ratio(f.cpuPerTrip / e.cpuPerTrip),
          ],
          [
            'RustyDB / floor',
            ratio(r.p50 / f.p50),
            ratio(r.p99 / f.p99),
            ratio(r.p999 / f.p999),
            ratio(r.cpuPerTrip / f.cpuPerTrip),
          ],
        ],
      ),
      '',
      `**p50 ${ratio(p50Ratio)}** (target ≤ ${TARGET_P50}: ${verdict(p50Ratio <= TARGET_P50)}${p50Noise}), ` +
        `**p99 ${ratio(p99Ratio)}** (target ≤ ${TARGET_P99}: ${verdict(p99Ratio <= TARGET_P99)}${p99Noise}). ` +
        `The floor, measured in the same run: ${floorVerdict}. Server CPU is every thread's run time ` +
        `(/proc/PID/task/*/schedstat), summed over the ${BLOCKS} blocks.`,
      '',
      `Spread: the same ratios worked out on each fifth of the run (${GROUPS} groups of ` +
        `${Math.floor(BLOCKS / GROUPS)} consecutive turns, ~${(Math.floor(BLOCKS / GROUPS) * BLOCK_SIZE).toLocaleString('en-US')} ` +
        `round trips per target each), median (range): RustyDB / echo p50 ` +
        `${spread(rustyEchoP50s)}, p99 ${spread(rustyEchoP99s)}; ` +
        `floor / echo p50 ${spread(groupRatios(sides.floor, sides.echo, 50))}, ` +
        `p99 ${spread(groupRatios(sides.floor, sides.echo, 99))}; RustyDB / floor p50 ` +
        `${spread(groupRatios(sides.rusty, sides.floor, 50))}, p99 ${spread(groupRatios(sides.rusty, sides.floor, 99))}.`,
      '',
      `Per block, p50 — RustyDB: ${blockP50s(sides.rusty).join(', ')}; ` +
        `echo: ${blockP50s(sides.echo).join(', ')}; floor: ${blockP50s(sides.floor).join(', ')}.`,
      '',
      ...NOTES,
    ].join('\n');
    return {
      key: 'b',
      title: 'Small-query round trip',
      markdown,
      targets: [
        {
          name: `p50 ≤ ${TARGET_P50}× echo`,
          measured: againstFloor(p50Ratio, floorP50, TARGET_P50) + p50Noise,
          met: p50Ratio <= TARGET_P50,
        },
        {
          name: `p99 ≤ ${TARGET_P99}× echo`,
          measured: againstFloor(p99Ratio, floorP99, TARGET_P99) + p99Noise,
          met: p99Ratio <= TARGET_P99,
        },
      ],
    };
  } finally {
    await floorServer.stop();
    await echo.stop();
    await server.stop();
  }
}
