/**
 * (e) Fan-out: one change delivered to 10,000 subscribers. N authenticated `/api/v1/stream` sockets,
 * spread over several client processes, each subscribe to one table; one INSERT through another
 * connection must reach all of them. The yardstick is a raw `ws` broadcast server (its own process)
 * sending a message of the same size to the same number of sockets held by the same client processes,
 * in one plain loop: the least any WebSocket server on this machine can do. Both are timed from the
 * send of the trigger (the INSERT, or the message to broadcast) to the last subscriber's receipt, on
 * the clock all processes share. The same run measures the servers' memory per connection and per
 * subscription from /proc.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { spawnNode, type Child } from './lib/children.ts';
import { StreamConnection, login, openSocket } from './lib/client.ts';
import { COLLECT_ON_SIGNAL, collectGarbage, cpuSeconds, memory, waitUntilQuiet } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { NO_HEARTBEAT_FLAGS, startRustyServer, type RustyServerProcess } from './lib/rusty-server.ts';
import { count, max, mb, median, ms, percentile, ratio, verdict } from './lib/stats.ts';
import {
  SubscriberPool,
  sharedClock,
  type ConnectResult,
  type RoundReport,
  type Side,
  type SubscribeResult,
} from './lib/subscriber-pool.ts';

/** Subscribers wanted; fewer if this machine's file-descriptor or port limits cannot hold them. */
const SUBSCRIBERS = 10_000;
/** Client processes the sockets are spread over (each holds its share of both targets' sockets). */
const CLIENT_PROCESSES = 4;
/** Sockets each client process opens (or subscribes) at the same time. */
const CONNECT_CONCURRENCY = 50;
/**
 * Measured changes per target, alternating between the targets, after WARMUP_ROUNDS each. With 7 the
 * time ratio read 0.83–1.18× in nine runs on one day (server CPU per delivery 0.92–1.11×); a round
 * costs ~0.5 s, so 4 more cost the section ~4 s.
 */
const ROUNDS = 11;
const WARMUP_ROUNDS = 1;
/**
 * INSERTs timed before anyone subscribes: the server CPU of the change itself (the statement, its
 * durable commit, the change-log read that follows), which the raw loop has no counterpart for.
 */
const BARE_INSERTS = 100;
/** A round that has not reached every subscriber by then is reported incomplete. */
const ROUND_TIMEOUT_MS = 20_000;
/**
 * Between rounds: until the servers and the client processes are quiet (the last round's deliveries,
 * checks and collections done), at most this long.
 */
const PAUSE_MS = 500;
/**
 * Before each memory reading, and again after the full collection it asks for: until the servers are
 * quiet (no CPU over QUIET's step: their work and the collection's unmapping done), at most this long.
 * A fixed 1.5 s twice per reading was 9 s of the section.
 */
const SETTLE_MS = 1500;
const QUIET = { stepMs: 100, cpuS: 0.001 };
/** Bounds of the set-up phases (all N sockets). */
const PHASE_TIMEOUT_MS = 90_000;
/** File descriptors and ephemeral ports kept free for everything else. */
const FD_MARGIN = 500;
const PORT_MARGIN = 2000;
const TABLE = 'fan_out';
/** The row text: makes the change message about as large as a small real row's. */
const NOTE = 'one change, fanned out to every subscriber of the table';
/** Time to last delivery, and server CPU per delivery, against the raw loop (issue 10). */
const TARGET_RATIO = 1.15;
const TARGET_MEMORY = 1.3;
/** What one table subscription may add to a connection's memory. */
const TARGET_SUBSCRIPTION_BYTES = 1024;

/** One memory reading of a server: RSS settled, RSS after a full GC, live JavaScript heap after it. */
interface MemoryReading {
  settled: number;
  collected: number;
  /** `collected` less the young generation's pages: what the connections hold (see perConnection). */
  retained: number;
  heap: number;
}

const MEMORY_KINDS: readonly (readonly [keyof MemoryReading, string])[] = [
  ['settled', 'RSS, settled'],
  ['collected', 'RSS after a full GC'],
  ['retained', 'RSS after a full GC, young generation left out'],
  ['heap', 'live JS heap after a full GC'],
];

/**
 * The last GC a process started with COLLECT_ON_SIGNAL reported: its number (they count up from 1) and
 * the live heap it left; `{ gc: 0 }` before the first.
 */
function lastHeapReport(child: Child): { gc: number; heap?: number; young?: number } {
  const match = [...child.output.matchAll(/gc (\d+): heap used (\d+), young generation (\d+)/g)].at(-1);
  return match ? { gc: Number(match[1]), heap: Number(match[2]), young: Number(match[3]) } : { gc: 0 };
}

/** How many subscribers this machine can hold, and why not more. */
function subscriberCount(): { n: number; limitedBy?: string } {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const softFds = Number(/^Max open files\s+(\d+|unlimited)/m.exec(limits)?.[1] ?? 1024) || Infinity;
  const [low, high] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/);
  const ports = Number(high) - Number(low) + 1;
  // Each server holds N sockets; each client process holds 2N/CLIENT_PROCESSES (both targets);
  // the client side of all 2N connections takes an ephemeral port from the one range.
  const byFds = Math.min(softFds - FD_MARGIN, ((softFds - FD_MARGIN) * CLIENT_PROCESSES) / 2);
  const byPorts = (ports - PORT_MARGIN) / 2;
  const n = Math.floor(Math.min(SUBSCRIBERS, byFds, byPorts) / CLIENT_PROCESSES) * CLIENT_PROCESSES;
  if (n >= SUBSCRIBERS) return { n };
  return {
    n,
    limitedBy:
      byFds < byPorts
        ? `open-file limit ${softFds} (ulimit -n) per process`
        : `ephemeral port range ${low}-${high}`,
  };
}

/** Resolves with the next message on `ws` (text), or rejects after `timeoutMs`. */
function nextMessage(ws: WebSocket, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no message in ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData): void => {
      clearTimeout(timer);
      resolve((data as Buffer).toString());
    };
    ws.once('message', onMessage);
  });
}

interface Round {
  side: Side;
  round: number;
  /** Every subscriber received the change within ROUND_TIMEOUT_MS. */
  complete: boolean;
  delivered: number;
  expected: number;
  /** Delivery times from the trigger's send, ms. */
  first: number;
  p50: number;
  last: number;
  /** Server CPU seconds during the round (all threads; /proc resolution 10 ms). */
  cpu: number;
  invalid: number;
  invalidSample?: string;
  extra: number;
  bytes: number;
  sample: string;
  /** Raw server only: how long its send loop took, by its own clock. */
  loopMs?: number;
  /** RustyDB only: when the INSERT's answer reached the writer, ms from its send. */
  ackMs?: number;
}

function summarize(
  side: Side,
  round: number,
  sentAt: number,
  reports: RoundReport[],
  complete: boolean,
  cpu: number,
): Round {
  const latencies = reports.flatMap((r) => r.receipts.filter((t) => t > 0).map((t) => t - sentAt));
  const invalidSample = reports.find((r) => r.invalidSample !== undefined)?.invalidSample;
  const sample = reports.find((r) => r.sample !== '')?.sample ?? '';
  return {
    side,
    round,
    complete,
    delivered: latencies.length,
    expected: reports.reduce((sum, r) => sum + r.expected, 0),
    first: latencies.reduce((a, b) => Math.min(a, b), Infinity),
    p50: percentile(latencies, 50),
    last: complete ? max(latencies) : Infinity,
    cpu,
    invalid: reports.reduce((sum, r) => sum + r.invalid, 0),
    ...(invalidSample !== undefined ? { invalidSample } : {}),
    extra: reports.reduce((sum, r) => sum + r.extra, 0),
    bytes: Buffer.byteLength(sample),
    sample,
  };
}

/** The baseline's message: RustyDB's own change message for the round, so both carry the same bytes. */
function baselineText(rustySample: string, round: number): string {
  const message = JSON.parse(rustySample) as { timestamp: string; payload: { row: { round: number } } };
  message.payload.row.round = round;
  message.timestamp = new Date().toISOString();
  return JSON.stringify(message);
}

const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
/** CPU per delivery (given in ms): a few µs, shown to a tenth. */
const perDelivery = (value: number): string => `${(value * 1000).toFixed(1)} µs`;

export async function runFanOut(ctx: BenchContext): Promise<BenchReport> {
  const { n, limitedBy } = subscriberCount();
  if (limitedBy) ctx.log(`fan-out: ${n} subscribers only, limited by the ${limitedBy}`);
  const perProcess = n / CLIENT_PROCESSES;
  const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-fan-out-'));
  let server: RustyServerProcess | undefined;
  let broadcast: Child | undefined;
  let pool: SubscriberPool | undefined;
  try {
    // The servers and the client processes start at once (set-up; whichever fails, the bench's children
    // registry stops the others).
    const profile = ctx.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', ctx.cpuProfileDir] : [];
    broadcast = spawnNode(
      [...profile, ...COLLECT_ON_SIGNAL],
      'bench/lib/broadcast-server.mjs',
      [],
      process.env,
    );
    const raw = broadcast;
    let broadcastUrl: string;
    [server, pool, broadcastUrl] = await Promise.all([
      // A fresh database of its own: the change log holds only this benchmark's changes.
      startRustyServer({
        dataDir,
        // No heartbeat during the rounds (the raw loop sends none either).
        flags: ['--websocket-max-connections', String(n + 100), ...NO_HEARTBEAT_FLAGS],
        collectOnSignal: true,
        ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
      }),
      SubscriberPool.start(CLIENT_PROCESSES),
      raw.waitFor(/broadcast listening on (ws:\/\/\S+)/).then((match) => match[1]!),
    ]);
    const rusty = server;
    ctx.log(
      `fan-out: RustyDB server pid ${rusty.pid}, raw ws server pid ${raw.pid}, clients ${pool.pids.join(', ')}`,
    );
    const clients = pool;
    /**
     * Each server's RSS once the phase settled, then its RSS and live JavaScript heap after it ran a
     * full GC (asked for by SIGUSR2, answered on its stderr by bench/lib/gc-on-signal.mjs).
     */
    const readMemory = async (children: readonly Child[]): Promise<MemoryReading[]> => {
      const pids = children.map((child) => child.pid);
      await waitUntilQuiet(pids, SETTLE_MS, QUIET);
      const settled = children.map((child) => memory(child.pid).rss);
      const before = children.map((child) => lastHeapReport(child).gc);
      for (const child of children) collectGarbage(child.pid);
      // The collection's report, then its pages given back (V8 unmaps them on its own threads). A report
      // that does not come is the error below.
      await Promise.all(
        children.map((child, i) =>
          child.waitFor(new RegExp(`(?:^|\\n)gc ${before[i]! + 1}: `), SETTLE_MS).catch(() => undefined),
        ),
      );
      await waitUntilQuiet(pids, SETTLE_MS, QUIET);
      return children.map((child, i) => {
        const { gc, heap, young } = lastHeapReport(child);
        if (gc <= before[i]! || heap === undefined || young === undefined)
          throw new Error(`process ${child.pid} did not report its heap after a GC`);
        const collected = memory(child.pid).rss;
        return { settled: settled[i]!, collected, retained: collected - young, heap };
      });
    };

    const token = await login(rusty.url);
    const writer = await StreamConnection.open(rusty.streamUrl, token);
    await writer.query(`CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, round INTEGER NOT NULL, note TEXT)`);
    const trigger = await openSocket(broadcastUrl);

    // Memory: each server idle (one connection: the writer or the trigger), then with N sockets.
    const [rawIdle, rustyIdle] = await readMemory([raw, rusty.child]);
    const connect = async (side: Side, url: string, withToken?: string): Promise<number> => {
      const results = await clients.all<ConnectResult>(
        () => ({
          cmd: 'connect',
          side,
          url,
          count: perProcess,
          concurrency: CONNECT_CONCURRENCY,
          ...(withToken !== undefined ? { token: withToken } : {}),
        }),
        PHASE_TIMEOUT_MS,
      );
      return max(results.map((r) => r.ms));
    };
    // Both targets at once: the client processes are the slow part of connecting (they are CPU-bound),
    // and each server's memory and CPU are its own process's, whatever the other one does meanwhile.
    ctx.log(`fan-out: opening ${count(n)} sockets to each server (RustyDB ones authenticated)`);
    const cpuBefore = { raw: cpuSeconds(raw.pid), rusty: cpuSeconds(rusty.pid) };
    const [rawConnectMs, rustyConnectMs] = await Promise.all([
      connect('raw', broadcastUrl),
      connect('rusty', rusty.streamUrl, token),
    ]);
    const rawConnectCpu = cpuSeconds(raw.pid) - cpuBefore.raw;
    const rustyConnectCpu = cpuSeconds(rusty.pid) - cpuBefore.rusty;
    const [rawConnected, rustyConnected] = await readMemory([raw, rusty.child]);

    // The change alone, before anyone subscribes: its server CPU, and how soon it is acknowledged.
    const bareCpuBefore = cpuSeconds(rusty.pid);
    const bareAcks: number[] = [];
    for (let i = 0; i < BARE_INSERTS; i++) {
      const sent = sharedClock();
      await writer.query(`INSERT INTO ${TABLE} (round, note) VALUES (?, ?)`, [-100 - i, NOTE]);
      bareAcks.push(sharedClock() - sent);
    }
    const bareCpuPerInsert = ((cpuSeconds(rusty.pid) - bareCpuBefore) / BARE_INSERTS) * 1000;

    ctx.log(`fan-out: subscribing ${count(n)} sockets to ${TABLE}`);
    const subscribeCpuBefore = cpuSeconds(rusty.pid);
    const subscribed = await clients.all<SubscribeResult>(
      () => ({ cmd: 'subscribe', table: TABLE, concurrency: CONNECT_CONCURRENCY }),
      PHASE_TIMEOUT_MS,
    );
    const subscribeMs = max(subscribed.map((r) => r.ms));
    const subscribeCpu = cpuSeconds(rusty.pid) - subscribeCpuBefore;
    const [rustySubscribed] = await readMemory([rusty.child]);
    const clock = await clients.clockCheck();

    const ask = async (side: Side, round: number): Promise<RoundReport[]> =>
      clients.all<RoundReport>(() => ({ cmd: 'report', side, round }), PHASE_TIMEOUT_MS);
    const arm = async (side: Side): Promise<void> => {
      await clients.all(() => ({ cmd: 'arm', side }), PHASE_TIMEOUT_MS);
    };

    const rustyRound = async (round: number): Promise<Round> => {
      await arm('rusty');
      const cpuAtStart = cpuSeconds(rusty.pid);
      const sentAt = sharedClock();
      // Settled into a value, so that a failed insert is reported below rather than left unhandled.
      let ackMs = NaN;
      const inserted = writer
        .query(`INSERT INTO ${TABLE} (round, note) VALUES (?, ?)`, [round, NOTE], ROUND_TIMEOUT_MS)
        .then(
          () => void (ackMs = sharedClock() - sentAt),
          (err: Error) => err,
        );
      const complete = await clients.waitComplete('rusty', ROUND_TIMEOUT_MS);
      const cpu = cpuSeconds(rusty.pid) - cpuAtStart;
      const failed = await inserted;
      if (failed) throw failed;
      return { ...summarize('rusty', round, sentAt, await ask('rusty', round), complete, cpu), ackMs };
    };
    let rustySample = '';
    const rawRound = async (round: number): Promise<Round> => {
      await arm('raw');
      const text = baselineText(rustySample, round);
      const loopReply = nextMessage(trigger, ROUND_TIMEOUT_MS).then(
        (reply) => (JSON.parse(reply) as { loop_ms: number }).loop_ms,
        () => NaN,
      );
      const cpuAtStart = cpuSeconds(raw.pid);
      const sentAt = sharedClock();
      trigger.send(text);
      const complete = await clients.waitComplete('raw', ROUND_TIMEOUT_MS);
      const cpu = cpuSeconds(raw.pid) - cpuAtStart;
      const loopMs = await loopReply;
      return { ...summarize('raw', round, sentAt, await ask('raw', round), complete, cpu), loopMs };
    };

    const pause = (): Promise<void> => waitUntilQuiet([rusty.pid, raw.pid, ...clients.pids], PAUSE_MS);
    ctx.log(`fan-out: ${WARMUP_ROUNDS} warm-up and ${ROUNDS} measured changes per target`);
    const warmUps: Round[] = [];
    for (let round = -WARMUP_ROUNDS; round < 0; round++) {
      const warm = await rustyRound(round);
      if (!warm.complete) {
        throw new Error(`warm-up change reached ${warm.delivered} of ${warm.expected} subscribers`);
      }
      rustySample ||= warm.sample;
      warmUps.push(warm);
      await pause();
      warmUps.push(await rawRound(round));
      await pause();
    }
    const rounds: Round[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      // Alternating which target goes first: neither always follows the other's clean-up.
      const order: Side[] = round % 2 === 1 ? ['rusty', 'raw'] : ['raw', 'rusty'];
      for (const side of order) {
        rounds.push(side === 'rusty' ? await rustyRound(round) : await rawRound(round));
        await pause();
      }
    }
    await writer.close();
    trigger.close();

    const of = (side: Side): Round[] => rounds.filter((r) => r.side === side);
    const r = of('rusty');
    const e = of('raw');
    const stat = (list: Round[]) => {
      const delivered = list.reduce((sum, x) => sum + x.delivered, 0);
      const cpu = list.reduce((sum, x) => sum + x.cpu, 0);
      return {
        last: median(list.map((x) => x.last)),
        worst: max(list.map((x) => x.last)),
        p50: median(list.map((x) => x.p50)),
        first: median(list.map((x) => x.first)),
        cpuPerDelivery: delivered > 0 ? (cpu / delivered) * 1000 : NaN,
        cpuPerRound: (cpu / list.length) * 1000,
        ack: median(list.map((x) => x.ackMs ?? NaN)),
        incomplete: list.filter((x) => !x.complete).length,
        invalid: list.reduce((sum, x) => sum + x.invalid, 0),
        extra: list.reduce((sum, x) => sum + x.extra, 0),
        bytes: median(list.map((x) => x.bytes)),
      };
    };
    const rs = stat(r);
    const es = stat(e);
    const lastRatio = rs.last / es.last;
    const worstRatio = rs.worst / es.worst;
    // The baseline's round-to-round spread: when it exceeds the target's margin, so can noise.
    const spread = es.worst / Math.min(...e.map((x) => x.last));
    const noisy = spread > TARGET_RATIO;
    const cpuRatio = rs.cpuPerDelivery / es.cpuPerDelivery;
    const fanOutMet =
      rs.incomplete === 0 && rs.invalid === 0 && lastRatio <= TARGET_RATIO && cpuRatio <= TARGET_RATIO;

    // Per connection: RSS after a full GC (a socket's native parts count too, on both servers), less
    // the young generation's pages. Those grow while the sockets connect, to ~25 MB on either server
    // with 10,000, and a full GC gives them back only when the process has allocated little for the
    // last few seconds (V8 shrinks the young generation then): a server that finished its connects
    // seconds before the other shrank it and the other did not (one run on the loaded machine read
    // 2.22× by RSS, 1.21× by live heap).
    // Per subscription: the live JavaScript heap after a full GC, since a subscription is JavaScript
    // objects only; RSS would count heap space V8 grew for the subscribe requests' garbage and keeps.
    const per = (from: MemoryReading, to: MemoryReading, key: keyof MemoryReading): number =>
      (to[key] - from[key]) / n;
    const perConnection = per(rustyIdle!, rustyConnected!, 'retained');
    const rawPerConnection = per(rawIdle!, rawConnected!, 'retained');
    const perSubscription = per(rustyConnected!, rustySubscribed!, 'heap');
    const memoryRatio = perConnection / rawPerConnection;
    const memoryMet = memoryRatio <= TARGET_MEMORY;
    const heapPerConnection = per(rustyIdle!, rustyConnected!, 'heap');
    const rawHeapPerConnection = per(rawIdle!, rawConnected!, 'heap');
    const heapRatio = heapPerConnection / rawHeapPerConnection;
    const subscriptionMet = perSubscription <= TARGET_SUBSCRIPTION_BYTES;

    const invalidNote = [...r, ...e].find((x) => x.invalidSample !== undefined)?.invalidSample;
    const loopMs = median(e.map((x) => x.loopMs ?? NaN).filter(Number.isFinite));
    const serverBusy = (rs.cpuPerRound / rs.last) * 100;
    // What is left once the change's own cost is taken out: its CPU measured alone, and the time until
    // it was acknowledged (its durable commit), before which nothing can be sent.
    const fanOutCpuPerDelivery = (rs.cpuPerRound - bareCpuPerInsert) / (n || 1);
    const afterAck = median(r.map((x) => x.last - (x.ackMs ?? NaN)));
    const rawBusy = (es.cpuPerRound / es.last) * 100;
    const markdown = [
      `${count(n)} subscribers${limitedBy ? ` (not ${count(SUBSCRIBERS)}: limited by the ${limitedBy})` : ''}, ` +
        `${CLIENT_PROCESSES} client processes × ${count(perProcess)} sockets for each target, loopback. ` +
        `RustyDB: every socket authenticated and subscribed to \`${TABLE}\` (\`subscribe {table}\`); one ` +
        `\`INSERT\` through another connection; timed from its send to the last subscriber's receipt of the ` +
        `\`change\` (${rs.bytes} bytes). Baseline: a raw \`ws\` server (\`bench/lib/broadcast-server.mjs\`, ` +
        `its own process, plain JavaScript with no loader, as the RustyDB server runs its compiled ` +
        `JavaScript) that sends a message of the same size (${es.bytes} bytes) to every connected socket ` +
        `in one loop when the trigger socket sends it; the same client processes. ` +
        `${ROUNDS} changes per target, alternating, after ${WARMUP_ROUNDS} warm-up each; before each, the ` +
        `bench waits until the servers and client processes are quiet (under 1 ms of CPU in 40 ms each), ` +
        `at most ${PAUSE_MS} ms. ` +
        `RustyDB's heartbeat is off for the run (its pings, 10,000 every 30 s, are no delivery's work and ` +
        `would fall in some rounds only on a slow run; the raw loop sends none). ` +
        `Receipts are stamped on arrival (the message is parsed and checked afterwards) with ` +
        `\`performance.timeOrigin + performance.now()\`; the processes' clocks agreed within ` +
        `${ms(clock.skewMs)} (IPC round trip ${ms(clock.roundTripMs)}).`,
      '',
      table(
        [
          '',
          'last delivery (median)',
          'last delivery (worst)',
          'median subscriber',
          'first delivery',
          'server CPU per round',
          'server CPU per delivery',
        ],
        [
          [
            'raw `ws` send loop',
            ms(es.last),
            ms(es.worst),
            ms(es.p50),
            ms(es.first),
            ms(es.cpuPerRound),
            perDelivery(es.cpuPerDelivery),
          ],
          [
            'RustyDB `INSERT` → `change`',
            ms(rs.last),
            ms(rs.worst),
            ms(rs.p50),
            ms(rs.first),
            ms(rs.cpuPerRound),
            perDelivery(rs.cpuPerDelivery),
          ],
          [
            'ratio',
            ratio(lastRatio),
            ratio(worstRatio),
            ratio(rs.p50 / es.p50),
            ratio(rs.first / es.first),
            ratio(rs.cpuPerRound / es.cpuPerRound),
            ratio(rs.cpuPerDelivery / es.cpuPerDelivery),
          ],
        ],
      ),
      '',
      `**Time to last delivery: ${ratio(lastRatio)}** the raw send loop (median of ${ROUNDS}), server CPU per ` +
        `delivery ${ratio(cpuRatio)} (target ≤ ${TARGET_RATIO} for both: ${verdict(fanOutMet)}); worst round ` +
        `${ratio(worstRatio)}.` +
        (rs.incomplete > 0 ? ` **${rs.incomplete} RustyDB round(s) did not reach every subscriber.**` : '') +
        (es.incomplete > 0 ? ` ${es.incomplete} baseline round(s) did not reach every socket.` : '') +
        (rs.invalid + es.invalid > 0
          ? ` ${rs.invalid + es.invalid} unexpected messages, e.g. \`${invalidNote ?? ''}\`.`
          : '') +
        (rs.extra + es.extra > 0 ? ` ${rs.extra + es.extra} further messages after the change.` : ''),
      '',
      `Each round, last delivery — RustyDB: ${r.map((x) => ms(x.last)).join(', ')}; raw: ` +
        `${e.map((x) => ms(x.last)).join(', ')}. Warm-up: ${warmUps.map((x) => `${x.side} ${ms(x.last)}`).join(', ')}.` +
        (noisy
          ? ` **The baseline's own rounds varied ${ratio(spread)} from fastest to slowest, more than the ` +
            `${TARGET_RATIO}× margin: the time-to-last-delivery ratio (and its verdict) is within noise in this ` +
            `run; server CPU per delivery (${ratio(rs.cpuPerDelivery / es.cpuPerDelivery)}) is the steadier figure.**`
          : ''),
      '',
      table(
        [
          'server memory (RSS)',
          'idle',
          `${count(n)} sockets`,
          'all subscribed',
          'per connection',
          'per subscription',
        ],
        [
          ...MEMORY_KINDS.map(([key, what]): string[] => [
            `raw \`ws\`: ${what}`,
            mb(rawIdle![key]),
            mb(rawConnected![key]),
            '—',
            kb(per(rawIdle!, rawConnected!, key)),
            '—',
          ]),
          ...MEMORY_KINDS.map(([key, what]): string[] => [
            `RustyDB (authenticated): ${what}`,
            mb(rustyIdle![key]),
            mb(rustyConnected![key]),
            mb(rustySubscribed![key]),
            kb(per(rustyIdle!, rustyConnected!, key)),
            kb(per(rustyConnected!, rustySubscribed!, key)),
          ]),
        ],
      ),
      '',
      `**Memory per authenticated connection: ${ratio(memoryRatio)}** a raw \`ws\` connection (target ≤ ` +
        `${TARGET_MEMORY}: ${verdict(memoryMet)}); each subscription adds ${kb(perSubscription)} on top ` +
        `(target ≤ ${kb(TARGET_SUBSCRIPTION_BYTES)}: ${verdict(subscriptionMet)}). ` +
        `Connections by RSS after a full GC less the young generation's pages (V8's nursery grows to ` +
        `~25 MB on either server while the ${count(n)} sockets connect, and a full GC gives it ` +
        `back only if the process allocated little in the last few seconds: a server that finished ` +
        `connecting seconds before the other shrank it and the other did not, and the RSS alone then ` +
        `read 2.22× in one run on the loaded machine, where the live heaps read 1.21×; the RSS rows ` +
        `with it are in the table), ` +
        `subscriptions by the live JavaScript heap after it (a ` +
        `subscription is JavaScript objects only; the RSS after the GC still holds heap space V8 grew for ` +
        `the garbage of ${count(n)} subscribe requests, whose parsing, access checks and replies are ` +
        `collected but not given back to the system). RSS from /proc/<pid>/status; "settled" is ` +
        `once the servers are quiet after each phase (under 1 ms of CPU in 100 ms, at most ` +
        `${SETTLE_MS / 1000} s), with garbage not yet collected; then the bench asks each ` +
        `server for a full GC (both started with \`--expose-gc\` and a bench-only preload, ` +
        `bench/lib/gc-on-signal.mjs, that collects on SIGUSR2 and reports the heap left; the server itself ` +
        `exposes no such thing) and reads again once that is reported and the servers are quiet again. ` +
        `The baseline ran under \`--import tsx\` until 7 December 2026; tsx's module loader is a thread of ` +
        `its own with its own V8 heap (~26 MB of RSS), and memory that thread and its malloc arena gave back ` +
        `while the sockets connected (one arena shrank by 3.4 MB in one probe) came off the baseline's ` +
        `growth: 3.1–3.5 KB per connection under tsx against 3.8–4.0 KB as plain JavaScript (10,000 ` +
        `sockets, alternating probes; the live heap 2.5 KB in both), which had put this ratio at ` +
        `1.05–1.45× in the twelve runs of 6–7 December. RustyDB's RSS per connection comes out near or ` +
        `under the baseline's though its live heap per connection is the larger (${ratio(heapRatio)}): ` +
        `after the full GC the baseline's old generation held 8.5–9.3 MB of free room between its live ` +
        `objects at 10,000 sockets (1.0 MB at idle), RustyDB's 4.2–4.7 MB (3.6–3.9 MB at idle; V8's space ` +
        `statistics, two runs). Live heap per connection: ${kb(heapPerConnection)} against raw ws's ` +
        `${kb(rawHeapPerConnection)}. Each token's expiry (warning, then close) is one small ` +
        `entry in a heap shared by all sessions and driven by one timer, not a timer per session. ` +
        `Where a connection's heap goes (heap snapshots of the compiled server, 1,000 idle authenticated ` +
        `sockets over 200, by object): what Node and \`ws\` make for any socket (the TCP handle and its ` +
        `native wrap, net.Socket and its stream states, ws's WebSocket, Receiver and Sender and their ` +
        `listener tables), ~2.9 KB as for raw ws (bench/tools/connection-heap-probe.ts, both servers); ` +
        `RustyDB's own, ~0.46 KB (Dec 2026; ~0.86 KB before): its fields on the WebSocket (flow control ` +
        `with its states in one field, when the client was last heard from and pinged, its admission), ` +
        `~0.14 KB; the session, ~0.22 KB, which is also its own entry in the session registry and in ` +
        `the token-expiry queue (whose times are small integers, stored in the object); the socket is the ` +
        `session's transport and its own admission, with no adapter, ticket or deadline object per ` +
        `connection; and entries in the user's set, the gateway's and the expiry heap. \`ws\`'s receiver ` +
        `keeps no room for the client's first message once a read is done, and the upgrade's own error ` +
        `listener is gone once \`ws\` has put its own on the socket. The bench's servers run with the ` +
        `per-connection rate limits off (they would throttle other benchmarks); on, as they are by ` +
        `default, a connection that has sent a message also holds its token bucket, ~0.07 KB more ` +
        `(bench/tools/connection-heap-probe.ts --rate-limiting: 3,416 against 3,347 B), and its count of ` +
        `refused messages only once one was refused. ` +
        `Connections of one token share one frozen principal while the user's row says the same (it is ` +
        `read at every connect), and a connection's listener table holds three events: the gateway's ` +
        `close and heard-from bookkeeping runs in the socket's own emit, not as listeners.`,
      '',
      `Set-up (informational; not the connect benchmark): both targets' sockets were opened at the same ` +
        `time, ${count(n)} raw ones in ${ms(rawConnectMs)} (server CPU ${ms((rawConnectCpu / n) * 1000)} ` +
        `each) and ${count(n)} RustyDB ones, authenticated, in ${ms(rustyConnectMs)} (server CPU ` +
        `${ms((rustyConnectCpu / n) * 1000)} each); then subscribed in ${ms(subscribeMs)} (server CPU ` +
        `${ms((subscribeCpu / n) * 1000)} each).`,
      '',
      `The change itself, which the raw loop has no counterpart for: ${BARE_INSERTS} INSERTs timed before ` +
        `anyone subscribed cost the server ${ms(bareCpuPerInsert)} of CPU each (the statement, its durable ` +
        `commit, the change-log read that follows) and were acknowledged after ${ms(median(bareAcks))} ` +
        `(median; p90 ${ms(percentile(bareAcks, 90))}); during the rounds the INSERT was acknowledged ` +
        `${ms(rs.ack)} after its send (median) and the first subscriber had the change after ` +
        `${ms(rs.first)}. Without them: server CPU per delivery ${perDelivery(fanOutCpuPerDelivery)}, ` +
        `**${ratio(fanOutCpuPerDelivery / es.cpuPerDelivery)}** the raw loop's; last delivery after the ` +
        `INSERT's acknowledgement ${ms(afterAck)}, ${ratio(afterAck / es.last)} the raw loop's time to last ` +
        `delivery.`,
      '',
      `What limits it: the raw server spends ${perDelivery(es.cpuPerDelivery)} of CPU per delivery (its send loop ` +
        `took ${ms(loopMs)} by its own clock) and RustyDB ${perDelivery(rs.cpuPerDelivery)}; the ` +
        `${perDelivery(rs.cpuPerDelivery - es.cpuPerDelivery)} difference is the change itself (above) and RustyDB's ` +
        `own work per subscriber: offering the record to each subscription (its cursor, the row filter, ` +
        `the event rendered once per change and shared), checking its socket's backlog (the slow-consumer ` +
        `limit), and building its frame — the change's envelope is serialized to bytes once per round (and ` +
        `again only when the millisecond of its timestamp changes), and each subscriber's frame is the frame ` +
        `header, those bytes and its subscription id's end (made once per subscription), built and queued ` +
        `by the socket itself (the subscription reaches it through its session alone, not the socket ` +
        `adapter) and written straight to the TCP socket with no framing by \`ws\`; a socket without ` +
        `compression does not look at \`ws\`'s sender at all. Where the time goes (Dec 2026): \`perf ` +
        `record\` of both servers (CPU time, kernel included; bench/tools/fan-out-ab.ts \`--perf\`, 8,000 ` +
        `subscribers, 12 alternating rounds each, machine under load) puts about two thirds of either ` +
        `server's CPU in the kernel's send on each socket (one \`write\` per socket for RustyDB, ws's ` +
        `\`writev\` of header and payload for the raw loop: 4,614 and 4,904 samples for RustyDB after and ` +
        `before the changes above, 5,454 for the raw loop); the user-space rest was 2,775 samples before ` +
        `them, 2,479 after them and 2,366 for the raw loop. By /proc over 32 alternating rounds each: user CPU per delivery ` +
        `4.45 µs before, 4.14 µs after, 3.79 µs for the raw loop, and RustyDB's other threads (the INSERT's ` +
        `commit on libuv's pool, V8's collector) 0.2 to 0.4 µs per delivery against the raw loop's 0.03. ` +
        `What is left of RustyDB's own JavaScript is mostly the first load of each subscriber's objects ` +
        `(the subscription, its session, the socket and its stream state: the hottest line of a ` +
        `\`--cpu-prof\` profile is the slow-consumer check, the first read of the socket's queued bytes), ` +
        `not arithmetic: caching and copying tricks in the framing measured nothing. Before the profiles ` +
        `were acted on (Dec 2026), a pass ` +
        `built a [subscription, records] pair per subscriber through a generator before offering anything ` +
        `(about 7 ms per round with 10,000 subscribers, all of it before the first frame), and frames were ` +
        `written only at the end of the pass's first 5 ms slice; now a pass builds one list of targets and ` +
        `writes each batch of 32 sockets' frames as soon as it is framed, so the first subscriber has the ` +
        `change about when the writer has its acknowledgement. RustyDB's server was busy ` +
        `${serverBusy.toFixed(0)}% of the time to last delivery, the raw server ${rawBusy.toFixed(0)}%: ` +
        `the rest of it the server waited for a CPU, shared with the ${CLIENT_PROCESSES} client processes ` +
        `receiving ${count(n)} messages (and with anything else running here), or, for RustyDB, for the ` +
        `INSERT's durable commit (an fsync: its time, not its CPU, varies with the disk's other work). ` +
        `Run with \`--cpu-prof DIR\` for both servers' profiles (the PIDs are logged).`,
    ].join('\n');
    return {
      key: 'e',
      title: `Fan-out: one change to ${count(n)} subscribers`,
      markdown,
      targets: [
        {
          name: `last delivery and server CPU per delivery ≤ ${TARGET_RATIO}× raw ws loop`,
          measured: `${ratio(lastRatio)}, CPU per delivery ${ratio(cpuRatio)}${noisy ? ' (time within noise)' : ''}`,
          met: fanOutMet,
        },
        {
          name: `memory per connection ≤ ${TARGET_MEMORY}× raw ws`,
          measured:
            `${ratio(memoryRatio)} (${kb(perConnection)} vs ${kb(rawPerConnection)}; ` +
            `live heap ${ratio(heapRatio)})`,
          met: memoryMet,
        },
        {
          name: `a table subscription adds ≤ ${kb(TARGET_SUBSCRIPTION_BYTES)}`,
          measured: kb(perSubscription),
          met: subscriptionMet,
        },
      ],
    };
  } finally {
    if (pool) {
      // The server closes N sockets at once when the clients go: let it finish before stopping it,
      // so that a --cpu-prof profile is written rather than cut off by SIGKILL.
      await pool.stop();
      if (server) await waitUntilQuiet([server.pid], 20_000, { stepMs: 500, cpuS: 0.02 });
    }
    await broadcast?.stop();
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}
