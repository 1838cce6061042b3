/**
 * (i) Authenticated connects: 1,000 sockets that each open `/api/v1/stream?token=<JWT>` and wait for
 * `auth_success` (the connection is then usable), against 1,000 bare `ws` upgrades to the echo server
 * (`bench/lib/echo-server.mjs`, its own process) that wait only for the socket to open, and 1,000
 * authenticated connects to the floor (`bench/lib/auth-floor-server.mjs`: the bare upgrade plus the
 * token check no server can leave out). Every target gets the same number, IN_FLIGHT at a time each,
 * from this process, all at once (see REPETITIONS). The yardstick is server CPU per connect (read from /proc),
 * which the 2-core machine's shared clients do not blur; connects/s of wall time is reported beside it.
 */
import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket from 'ws';
import { spawnNode } from './lib/children.ts';
import { login } from './lib/client.ts';
import { systemSeconds, threadCpuSeconds, waitUntilQuiet } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { startRustyServer } from './lib/rusty-server.ts';
import { count, median, ms, ratio, verdict } from './lib/stats.ts';

const SOCKETS = 1000;
/** Connects in flight at once: enough to keep the server busy, few enough not to queue in the kernel. */
const IN_FLIGHT = 32;
/**
 * Measured rounds (one phase of each target: RustyDB, the bare upgrade, the floor). Ratios are the
 * median of the rounds' ratios. A round's phases run at the same time, each target with its own
 * IN_FLIGHT connects, so that whatever else the shared 2 cores run (other work moved a server's CPU per
 * connect up to 2× from one second to the next) falls on every side of a round alike and cancels in its
 * ratios. Measured on the AMD EPYC host at load 4–7 with two targets, against phases run back to back
 * (the order alternating), 7 runs at once and 5 back to back: the ratios within a run scatter less
 * (standard deviation of their logarithm 0.11 against 0.13, median of runs; the widest runs 0.53–0.95×
 * and 0.41–0.95×, one stray round each), but the runs' medians did not move less (0.53–0.61× at once,
 * 0.53–0.58× back to back): the machine's load is not the only noise; where V8's collections fall in a
 * phase is its own. Which target's connects the client starts first rotates between rounds: six rounds
 * put each first twice (nine did so three times, for ~5 s more of the bench's 6 minutes).
 */
const REPETITIONS = 6;
/**
 * Unmeasured phases per target first. An authenticated connect runs several times the code of a bare
 * upgrade (HTTP, ws, the session, the token check), and V8 was measured still optimizing it (a fifth of
 * the server's CPU samples in its compiler threads) through the second and third thousand connects:
 * with one warm-up phase the first measured phases counted the JIT's start-up, not the connect.
 */
const WARMUP_PHASES = 3;
const CONNECT_TIMEOUT_MS = 10_000;
/**
 * Closes (and the server's clean-up of them) finish before the next measured phase starts: the server
 * counts as settled once it used under 1 ms of CPU in 40 ms (waitUntilQuiet's default), waited for at most
 * SETTLE_MAX_MS (a fixed 300 ms sleep spent most of its time idle, and the bench has 6 minutes).
 */
const SETTLE_MAX_MS = 1000;
const TARGET_RATIO = 0.6;

export interface Phase {
  seconds: number;
  /** Server CPU seconds over the phase. */
  cpu: number;
  /** Of which off the main thread (V8's compiler and GC helpers, libuv's pool). */
  offMain: number;
  /** Of which in the kernel (system time, in whole clock ticks: coarse over one phase). */
  system: number;
}

/** Opens one socket; resolves once it is usable (open, and authenticated when `authenticated`). */
export function connect(url: string, authenticated: boolean): Promise<WebSocket> {
  const ws = new WebSocket(url, { perMessageDeflate: false, skipUTF8Validation: true });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`not connected after ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    const done = (err?: Error): void => {
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(ws);
    };
    ws.on('error', (err) => done(err));
    ws.once('close', (code) => done(new Error(`closed (${code}) while connecting`)));
    if (!authenticated) {
      ws.once('open', () => done());
      return;
    }
    ws.once('message', (data) => {
      const reply = JSON.parse(String(data)) as { type: string };
      if (reply.type === 'auth_success') done();
      else done(new Error(`expected auth_success, got ${String(data).slice(0, 200)}`));
    });
  });
}

/** One server to connect to: its URL, whether its connects authenticate, its process. */
export interface Target {
  url: string;
  authenticated: boolean;
  pid: number;
}

/**
 * Opens SOCKETS sockets to each target, IN_FLIGHT at a time per target, all targets at once; measures
 * each target's wall time and its server's CPU from the start until its own last socket is open; then
 * closes them all and waits for the servers to settle.
 */
export async function phase(targets: Target[]): Promise<Phase[]> {
  const sockets: WebSocket[] = [];
  const before = targets.map((t) => threadCpuSeconds(t.pid));
  const systemBefore = targets.map((t) => systemSeconds(t.pid));
  const started = performance.now();
  const results = await Promise.all(
    targets.map(async (target, i): Promise<Phase> => {
      let next = 0;
      await Promise.all(
        Array.from({ length: IN_FLIGHT }, async () => {
          while (next < SOCKETS) {
            next++;
            sockets.push(await connect(target.url, target.authenticated));
          }
        }),
      );
      const seconds = (performance.now() - started) / 1000;
      const after = threadCpuSeconds(target.pid);
      const cpu = after.total - before[i]!.total;
      const system = systemSeconds(target.pid) - systemBefore[i]!;
      return { seconds, cpu, offMain: cpu - (after.main - before[i]!.main), system };
    }),
  );
  await Promise.all(
    sockets.map(
      (ws) =>
        new Promise<void>((resolve) => {
          ws.removeAllListeners('close');
          ws.once('close', () => resolve());
          ws.close();
        }),
    ),
  );
  // The servers' clean-up of the closed sockets is done before the next phase.
  for (const target of targets) await waitUntilQuiet([target.pid], SETTLE_MAX_MS);
  return results;
}

export async function runConnects(ctx: BenchContext): Promise<BenchReport> {
  const dataDir = mkdtempSync(join(ctx.dataDir, 'connects-'));
  const server = await startRustyServer({
    dataDir,
    ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
  });
  // Profiled like the server when asked: the two profiles side by side show what RustyDB adds.
  const profile = ctx.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfileDir] : [];
  const echo = spawnNode(profile, 'bench/lib/echo-server.mjs', [], process.env);
  // The floor reads the server's own database file and signing secret (see auth-floor-server.mjs).
  const floor = spawnNode(profile, 'bench/lib/auth-floor-server.mjs', [dataDir], process.env);
  try {
    const echoUrl = (await echo.waitFor(/echo listening on (ws:\/\/\S+)/))[1]!;
    const floorUrl = (await floor.waitFor(/auth floor listening on (ws:\/\/\S+)/))[1]!;
    const token = encodeURIComponent(await login(server.url));
    const rustyTarget: Target = {
      url: `${server.streamUrl}?token=${token}`,
      authenticated: true,
      pid: server.pid,
    };
    const rawTarget: Target = { url: echoUrl, authenticated: false, pid: echo.pid };
    const floorTarget: Target = { url: `${floorUrl}/?token=${token}`, authenticated: true, pid: floor.pid };
    // A round's phases run at once; which target's connects the client starts first rotates.
    const targets = [rustyTarget, rawTarget, floorTarget];
    const round = async (i: number): Promise<Phase[]> => {
      const first = i % targets.length;
      const order = [...targets.slice(first), ...targets.slice(0, first)];
      const phases = await phase(order);
      return targets.map((target) => phases[order.indexOf(target)]!);
    };
    // Warm-up: JIT on every server and here.
    for (let i = 0; i < WARMUP_PHASES; i++) await round(i);
    const rusty: Phase[] = [];
    const raw: Phase[] = [];
    const floors: Phase[] = [];
    for (let i = 0; i < REPETITIONS; i++) {
      const [r, b, f] = await round(i);
      rusty.push(r!);
      raw.push(b!);
      floors.push(f!);
      ctx.log(
        `  (i) round ${i + 1}: RustyDB ${ms((r!.cpu / SOCKETS) * 1000)} CPU/connect, ` +
          `bare ws ${ms((b!.cpu / SOCKETS) * 1000)}, floor ${ms((f!.cpu / SOCKETS) * 1000)}, ` +
          `ratio ${ratio(b!.cpu / r!.cpu)} (floor ${ratio(b!.cpu / f!.cpu)})`,
      );
    }
    const cpuPer = (phases: Phase[]): number => median(phases.map((p) => p.cpu / SOCKETS));
    const offMainPer = (phases: Phase[]): number => median(phases.map((p) => p.offMain / SOCKETS));
    const perSecond = (phases: Phase[]): number => median(phases.map((p) => SOCKETS / p.seconds));
    // Bare upgrades' CPU over RustyDB's, pair by pair: connects per CPU-second, RustyDB's over bare.
    const pairRatios = raw.map((p, i) => p.cpu / rusty[i]!.cpu);
    const cpuRatio = median(pairRatios);
    const wallRatio = perSecond(rusty) / perSecond(raw);
    const rawCpus = raw.map((p) => p.cpu / SOCKETS);
    const spread = Math.max(...rawCpus) / Math.min(...rawCpus);
    const [lowest, highest] = [Math.min(...pairRatios), Math.max(...pairRatios)];
    // The floor's connects per CPU-second over bare upgrades', and RustyDB's over the floor's, round by round.
    const floorRatios = raw.map((p, i) => p.cpu / floors[i]!.cpu);
    const floorRatio = median(floorRatios);
    const ofFloor = median(floors.map((p, i) => p.cpu / rusty[i]!.cpu));
    const outOfReach = floorRatio < TARGET_RATIO;
    const markdown = [
      `${count(SOCKETS)} sockets per phase, ${IN_FLIGHT} connecting at once to each target from one ` +
        `client process; ${REPETITIONS} rounds of three phases (one per target, all at the same time, so ` +
        `that the machine's other load falls on each alike) after ${WARMUP_PHASES} warm-up rounds; a ` +
        `ratio is the median of the rounds' ratios. RustyDB: ` +
        `\`/api/v1/stream?token=<JWT>\`, done at \`auth_success\` (token verified, user and revocations ` +
        `checked, session registered). Bare \`ws\`: the echo server's upgrade, done at \`open\`. The floor ` +
        `(bench/lib/auth-floor-server.mjs): the bare upgrade plus only what no server can leave out, done ` +
        `as RustyDB does it at its cheapest — the token's signature checked once per token and its expiry ` +
        `at every connect, the user's row and the revocations read with RustyDB's statement from its own ` +
        `SQLite file at every connect (the upgrades read in one turn checked back to back, as RustyDB's ` +
        `gateway does), auth_success in the upgrade's write — done at \`auth_success\`. ` +
        `Server CPU over each phase: the sum of its threads' scheduler run time ` +
        `(/proc/<pid>/task/*/schedstat, nanoseconds), not utime+stime, whose 10 ms ticks are 10 µs per ` +
        `connect at 1,000 connects.`,
      '',
      table(
        [
          '',
          'server CPU per connect',
          'of which off the main thread',
          'connects/s (wall)',
          'CPU per connect, each phase',
        ],
        [
          [
            'bare `ws` upgrade',
            ms(cpuPer(raw) * 1000),
            ms(offMainPer(raw) * 1000),
            count(perSecond(raw)),
            rawCpus.map((c) => ms(c * 1000)).join(', '),
          ],
          [
            'floor: bare upgrade + token check + auth_success',
            ms(cpuPer(floors) * 1000),
            ms(offMainPer(floors) * 1000),
            count(perSecond(floors)),
            floors.map((p) => ms((p.cpu / SOCKETS) * 1000)).join(', '),
          ],
          [
            'RustyDB, JWT in the URL',
            ms(cpuPer(rusty) * 1000),
            ms(offMainPer(rusty) * 1000),
            count(perSecond(rusty)),
            rusty.map((p) => ms((p.cpu / SOCKETS) * 1000)).join(', '),
          ],
        ],
      ),
      '',
      `**Authenticated connects per server CPU-second: ${ratio(cpuRatio)}** those of bare upgrades ` +
        `(median of ${REPETITIONS} rounds, which ranged ${ratio(lowest)}–${ratio(highest)}; the ratio of ` +
        `the two medians above is ${ratio(cpuPer(raw) / cpuPer(rusty))}; target ≥ ${TARGET_RATIO}: ` +
        `${verdict(cpuRatio >= TARGET_RATIO)}); the floor's ${ratio(floorRatio)} (rounds ` +
        `${ratio(Math.min(...floorRatios))}–${ratio(Math.max(...floorRatios))}), ` +
        (outOfReach
          ? `**under the target: ${TARGET_RATIO}× is out of reach on this machine**`
          : `so ${TARGET_RATIO}× is within reach of a server doing only the unavoidable work`) +
        `; RustyDB's connects per CPU-second are ${ratio(ofFloor)} the floor's. Wall-clock connects/s ` +
        `${ratio(wallRatio)} of bare (all targets at once from one client, on the 2 cores the servers ` +
        `share: more the client's pace than theirs).` +
        (spread > 1 / TARGET_RATIO
          ? ` **The baseline's CPU per connect varied ${ratio(spread)} between phases: within noise.**`
          : ''),
      '',
      `Where RustyDB's CPU goes, measured this round on the AMD EPYC host (load 3–6: other helpers' work) ` +
        `with bench/tools/connects-ab.ts (this section's phases between two builds and the bare server, ` +
        `with a tracer attached over one phase). **System calls** (\`strace -f -c\` over a phase of 1,000 ` +
        `connects and their closes): both servers make the same accept4, setsockopt, 3 reads, 3 ` +
        `epoll_ctl, shutdown and close per connect and one write of the upgrade's answer (RustyDB's a ` +
        `writev that carries auth_success too); RustyDB adds two fcntl (SQLite's read lock on the WAL ` +
        `index in the -shm file, taken and dropped by the step's read transaction) and one getpeername ` +
        `(the peer address, for the per-address limits); futex 0.2 a connect against 0.1, no timer ` +
        `system calls. Kernel time (stime) ~50 µs a connect against ~30 (10 µs ticks). **Garbage ` +
        `collection** (\`--trace-gc-nvp\` over 6 phases): 1.7 scavenges per 1,000 connects against 1.3, ` +
        `16 ms against 9 ms (22 MB allocated per 1,000 against 18: ~4 KB more per connect), 0.33 ` +
        `mark-compacts per 1,000 on both; 1,000 open connections hold 4.8 MB against 3.2 MB (heap ` +
        `snapshot diff). Scavenging on every thread again (\`--parallel-scavenge\`, 16 rounds: 1.02× the ` +
        `CPU per connect) or a 32 MB semi-space (24 rounds: 0.99×) changed nothing measurable: the young ` +
        `generation's start-up settings cost connects nothing. **The split** (builds with parts cut ` +
        `out, each in rounds at once with the bare server, 8–12 rounds, CPU per connect over the bare ` +
        `server's, paired median): a second, bare \`ws\` server inside RustyDB's process 1.13× the ` +
        `standalone one (a larger heap and more code: colder caches); RustyDB's HTTP server handing the ` +
        `upgrade to a bare \`ws\` server 1.07–1.14×; with the gateway's routing, origin check, cork and ` +
        `FlowControlledWebSocket 1.11–1.23× (within noise of each other); with the admission counts and ` +
        `the peer address 1.22–1.38×; with the session but no token check 1.44×; with the token check ` +
        `but its SQLite step answered by the row read at the first connect 1.46–1.63×; whole, ` +
        `1.70–1.93×. The SQLite step costs 0.20–0.41× a bare upgrade in place (25–50 µs), where a hot ` +
        `loop of it costs 7.8 µs (2.4 µs of them the fcntl pair) and of \`SELECT 1\` 1.2 µs; in the server, ` +
        `\`SELECT 1\` in place of the step still cost 1.67× against 1.47× without it (in another run, ` +
        `one 1.77× and four in a row 1.79× against 1.63×): a connect's first call into libsql pays for its cold native path (N-API, tokio's ` +
        `block_on, SQLite's VM) after the client and the other processes ran on the core, whatever the ` +
        `query; the read may not be cached, so it stays. ` +
        `**What changed:** that cold call is paid once per turn of the event loop, not once per ` +
        `connect: the gateway completes the upgrades that arrive in one turn together ` +
        `(websocket-gateway.ts #flush) — first the URL token of each checked, back to back (each its own ` +
        `SQLite step, its own user's row and revocations, in the tick that answers it; nothing cached), ` +
        `then each upgraded, admitted and served in turn with its own outcome, as alone. At ${IN_FLIGHT} ` +
        `connects in flight a turn held 4.4 upgrades on average. \`bench/tools/connects-ab.ts --baseline ` +
        `<the build before> --rounds 16\` (load 1.2–4.6), CPU per connect over the build before's, median ` +
        `of paired rounds: 0.78, 0.79 and 0.79 in three runs (rounds 0.65–1.22; 15–16 of 16 under 1); ` +
        `a prototype with the upgrades deferred to the end of the turn but no checks ahead: 0.85 — ` +
        `running the connects' other work in a row helps too, the checks ahead most. The floor checks ` +
        `its batches' tokens back to back too: paying the cold step at every connect, it reached ` +
        `0.69–0.77× (RustyDB then 0.54–0.59×; with the batch, 0.74 and 0.79× against that floor's 0.72 ` +
        `and 0.73×); batched, 0.87–0.93× in four runs, RustyDB 0.68–0.77× beside it. ` +
        `What RustyDB adds to the floor is its layers, none of them ` +
        `large: Fastify's HTTP server, routing and origin check, admission counts with the peer address ` +
        `and the deadline to authenticate, the session (its own registry and expiry entry, with the ` +
        `socket as its transport), in a process whose heap and code are larger. Idle, RustyDB's process uses ` +
        `4.2 ms of CPU a second (the event-loop delay histogram's 10 ms timer, the metrics and ` +
        `change-feed ticks), ~2.5 µs per connect over a phase; the echo server none. Earlier rounds' ` +
        `cuts, each A/B on this machine: the upgrade's path and token read without URL and ` +
        `URLSearchParams (0.92), the revocations as two primary-key probes and no password hash read ` +
        `(0.93), auth_success framed in one buffer in the upgrade's write (0.91), one SQLite step ` +
        `instead of two, the deadline to authenticate on one shared timer, auth_success's text kept per ` +
        `principal. A phase's CPU per connect moves up to 2× on every server alike with the machine's ` +
        `load and with where V8's garbage collections fall, which is why ratios are taken round by ` +
        `round; after three warm-up rounds the threads off the main one take a few µs per connect: the ` +
        `JIT has settled.`,
    ].join('\n');
    return {
      key: 'i',
      title: 'Authenticated connects (issue 10 (g))',
      markdown,
      targets: [
        {
          name: `connects per CPU-s ≥ ${TARGET_RATIO}× bare ws`,
          measured:
            `${ratio(cpuRatio)} (rounds ${ratio(lowest)}–${ratio(highest)}; wall ${ratio(wallRatio)}; ` +
            `floor ${ratio(floorRatio)}${outOfReach ? ': out of reach' : ''})`,
          met: cpuRatio >= TARGET_RATIO,
        },
      ],
    };
  } finally {
    await echo.stop();
    await floor.stop();
    await server.stop();
  }
}
