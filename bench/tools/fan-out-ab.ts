/**
 * Bench (e) between two builds of RustyDB: this tree's server and a baseline build, each with N
 * authenticated sockets subscribed to one table (the bench's own client processes), blocks of changes
 * in turns (the order flips every turn), so that load from elsewhere on the machine falls on both.
 * Prints, per build, the server's CPU per delivery (over all blocks, and per block) and the median
 * time to last delivery. With --raw the raw `ws` send loop (bench/lib/broadcast-server.mjs) takes its
 * turns too, for the ratio against it in the same run (three targets of N sockets need 3N ephemeral
 * ports: N at most ~8,000 here).
 *
 *   node --import tsx bench/tools/fan-out-ab.ts --baseline PATH [--n N] [--rounds R] [--raw]
 *        [--cpu-prof DIR] [turns]
 *
 * PATH: the baseline's bin/rustydb.js, relative to the repository, e.g. a copy of the build made before
 * the change: `mkdir -p packages/server/.tmp/base && cp -r packages/server/bin packages/server/dist
 * packages/server/.tmp/base/` (then PATH is packages/server/.tmp/base/bin/rustydb.js).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type WebSocket from 'ws';
import { spawnNode, type Child } from '../lib/children.ts';
import { StreamConnection, login, openSocket } from '../lib/client.ts';
import { readFileSync } from 'node:fs';
import { CLOCK_TICKS, threadCpuSeconds } from '../lib/proc.ts';
import { NO_HEARTBEAT_FLAGS, startRustyServer, type RustyServerProcess } from '../lib/rusty-server.ts';
import { median, ms, sleep } from '../lib/stats.ts';
import { SubscriberPool, sharedClock, type RoundReport, type Side } from '../lib/subscriber-pool.ts';

const { values, positionals } = parseArgs({
  options: {
    baseline: { type: 'string' },
    n: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '5' },
    raw: { type: 'boolean', default: false },
    'cpu-prof': { type: 'string' },
    perf: { type: 'string' },
  },
  allowPositionals: true,
});
if (!values.baseline) {
  console.error('usage: fan-out-ab.ts --baseline PATH/bin/rustydb.js [--n N] [--rounds R] [--raw] [turns]');
  process.exit(2);
}
const CLIENT_PROCESSES = 4;
const n = Math.floor(Number(values.n) / CLIENT_PROCESSES) * CLIENT_PROCESSES;
const roundsPerBlock = Number(values.rounds);
const turns = Number(positionals[0] ?? 6);
const TABLE = 'fan_out';
const NOTE = 'one change, fanned out to every subscriber of the table';
const TIMEOUT_MS = 30_000;
const PAUSE_MS = 200;
const log = (line: string): void => console.log(line);

/**
 * User and system CPU seconds of a process (/proc/<pid>/stat, in clock ticks): the system part is
 * mostly the kernel's send on each socket, the same work for every build; the user part is the
 * JavaScript around it, which is what a change to RustyDB's delivery path changes.
 */
function userSystemSeconds(pid: number): { user: number; system: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(fields[11]) / CLOCK_TICKS, system: Number(fields[12]) / CLOCK_TICKS };
}

interface Target {
  name: string;
  side: Side;
  pid: number;
  /** Sends the round's change; resolves once it is sent (RustyDB: acknowledged). */
  trigger(round: number): Promise<void>;
  blocks: { cpu: number; main: number; user: number; system: number; delivered: number; last: number[] }[];
}

const pool = await SubscriberPool.start(CLIENT_PROCESSES);
const servers: RustyServerProcess[] = [];
const dataDirs: string[] = [];
let raw: Child | undefined;
let trigger: WebSocket | undefined;
const writers: StreamConnection[] = [];
try {
  const profile = values['cpu-prof'] ? { cpuProfileDir: values['cpu-prof'] } : {};
  const targets: Target[] = [];
  const builds = [
    { name: 'this tree', side: 'rusty' as const, bin: undefined },
    { name: `baseline ${values.baseline}`, side: 'one-node' as const, bin: values.baseline },
  ];
  let sample = '';
  for (const build of builds) {
    const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-fan-out-ab-'));
    dataDirs.push(dataDir);
    const server = await startRustyServer({
      dataDir,
      // No heartbeat during the rounds (see NO_HEARTBEAT_FLAGS).
      flags: ['--websocket-max-connections', String(n + 100), ...NO_HEARTBEAT_FLAGS],
      ...(build.bin ? { bin: build.bin } : {}),
      ...profile,
      ...(values.perf ? { nodeArgs: ['--perf-basic-prof'] } : {}),
    });
    servers.push(server);
    const token = await login(server.url);
    const writer = await StreamConnection.open(server.streamUrl, token);
    writers.push(writer);
    await writer.query(`CREATE TABLE ${TABLE} (id INTEGER PRIMARY KEY, round INTEGER NOT NULL, note TEXT)`);
    await pool.all(
      () => ({
        cmd: 'connect',
        side: build.side,
        url: server.streamUrl,
        token,
        count: n / 4,
        concurrency: 50,
      }),
      120_000,
    );
    await pool.all(() => ({ cmd: 'subscribe', side: build.side, table: TABLE, concurrency: 50 }), 120_000);
    log(`${build.name}: pid ${server.pid}, ${n} subscribed`);
    targets.push({
      name: build.name,
      side: build.side,
      pid: server.pid,
      trigger: async (round) => {
        await writer.query(`INSERT INTO ${TABLE} (round, note) VALUES (?, ?)`, [round, NOTE], TIMEOUT_MS);
      },
      blocks: [],
    });
  }
  if (values.raw) {
    raw = spawnNode(
      [
        ...(profile.cpuProfileDir ? ['--cpu-prof', '--cpu-prof-dir', profile.cpuProfileDir] : []),
        ...(values.perf ? ['--perf-basic-prof'] : []),
      ],
      'bench/lib/broadcast-server.mjs',
      [],
      process.env,
    );
    const url = (await raw.waitFor(/broadcast listening on (ws:\/\/\S+)/))[1]!;
    await pool.all(() => ({ cmd: 'connect', side: 'raw', url, count: n / 4, concurrency: 50 }), 120_000);
    const socket = await openSocket(url);
    trigger = socket;
    log(`raw ws loop: pid ${raw.pid}, ${n} connected`);
    targets.push({
      name: 'raw ws loop',
      side: 'raw',
      pid: raw.pid,
      trigger: async (round) => {
        const message = JSON.parse(sample) as { timestamp: string; payload: { row: { round: number } } };
        message.payload.row.round = round;
        message.timestamp = new Date().toISOString();
        socket.send(JSON.stringify(message));
      },
      blocks: [],
    });
  }

  const runRound = async (
    target: Target,
    round: number,
  ): Promise<{ cpu: number; main: number; user: number; system: number; last: number }> => {
    await pool.all(() => ({ cmd: 'arm', side: target.side }), TIMEOUT_MS);
    const threadsAtStart = threadCpuSeconds(target.pid);
    const cpuAtStart = threadsAtStart.total;
    const splitAtStart = userSystemSeconds(target.pid);
    const sentAt = sharedClock();
    const sent = target.trigger(round);
    const complete = await pool.waitComplete(target.side, TIMEOUT_MS);
    const threads = threadCpuSeconds(target.pid);
    const cpu = threads.total - cpuAtStart;
    const main = threads.main - threadsAtStart.main;
    const split = userSystemSeconds(target.pid);
    await sent;
    const reports = await pool.all<RoundReport>(
      () => ({ cmd: 'report', side: target.side, round }),
      TIMEOUT_MS,
    );
    const invalid = reports.reduce((sum, r) => sum + r.invalid + r.extra, 0);
    if (!complete || invalid > 0) {
      throw new Error(`${target.name}: round ${round} incomplete or with ${invalid} unexpected messages`);
    }
    sample ||= reports.find((r) => r.sample !== '')!.sample;
    const last = Math.max(...reports.flatMap((r) => r.receipts)) - sentAt;
    await sleep(PAUSE_MS);
    return {
      cpu,
      main,
      last,
      user: split.user - splitAtStart.user,
      system: split.system - splitAtStart.system,
    };
  };

  let round = 0;
  // Warm-up: two changes each, not counted (the raw loop needs RustyDB's message first).
  for (const target of targets) for (let i = 0; i < 2; i++) await runRound(target, ++round);
  // On the monotonic clock V8's CPU profiles stamp their samples with (µs): to read only the rounds.
  const windowStart = process.hrtime.bigint() / 1000n;
  // With --perf DIR: `perf record` of every server over the measured rounds (CPU time, kernel included).
  const perfs = values.perf
    ? targets.map((t) =>
        spawn(
          'perf',
          [
            'record',
            '-e',
            'cpu-clock',
            '-g',
            '-p',
            String(t.pid),
            '-o',
            join(values.perf!, `${t.side}.data`),
          ],
          {
            stdio: 'ignore',
          },
        ),
      )
    : [];
  // Each turn: one block of rounds per target, the order flipping every turn; within a block the
  // targets' rounds alternate too (A B B A ...), so that a burst of load elsewhere falls on both.
  const pairRatios: number[] = [];
  const userPairRatios: number[] = [];
  for (let turn = 0; turn < turns; turn++) {
    const blocks = targets.map(() => ({
      cpu: 0,
      main: 0,
      user: 0,
      system: 0,
      delivered: 0,
      last: [] as number[],
    }));
    for (let i = 0; i < roundsPerBlock; i++) {
      const order = (turn + i) % 2 === 0 ? targets : [...targets].reverse();
      const perRound = new Map<Target, number>();
      const userPerRound = new Map<Target, number>();
      for (const target of order) {
        const { cpu, main, user, system, last } = await runRound(target, ++round);
        const block = blocks[targets.indexOf(target)]!;
        block.cpu += cpu;
        block.main += main;
        block.user += user;
        block.system += system;
        block.delivered += n;
        block.last.push(last);
        perRound.set(target, cpu);
        userPerRound.set(target, user);
      }
      pairRatios.push(perRound.get(targets[0]!)! / perRound.get(targets[1]!)!);
      userPairRatios.push(userPerRound.get(targets[0]!)! / userPerRound.get(targets[1]!)!);
    }
    targets.forEach((t, i) => t.blocks.push(blocks[i]!));
    log(`turn ${turn + 1}/${turns} done`);
  }
  for (const perf of perfs) perf.kill('SIGINT');
  log(`measured rounds: monotonic ${windowStart}-${process.hrtime.bigint() / 1000n} µs`);
  const perDelivery = (cpu: number, delivered: number): number => (cpu / delivered) * 1e6;
  const sum = (t: Target, key: 'cpu' | 'main' | 'user' | 'system' | 'delivered'): number =>
    t.blocks.reduce((total, b) => total + b[key], 0);
  const overall = targets.map((t) =>
    perDelivery(
      t.blocks.reduce((s, b) => s + b.cpu, 0),
      t.blocks.reduce((s, b) => s + b.delivered, 0),
    ),
  );
  targets.forEach((t, i) => {
    const blocks = t.blocks.map((b) => perDelivery(b.cpu, b.delivered));
    log(
      `${t.name}: server CPU per delivery ${overall[i]!.toFixed(2)} µs (median of blocks ` +
        `${median(blocks).toFixed(2)}; blocks ${blocks.map((b) => b.toFixed(2)).join(' ')}), user ` +
        `${perDelivery(sum(t, 'user'), sum(t, 'delivered')).toFixed(2)} µs, system ` +
        `${perDelivery(sum(t, 'system'), sum(t, 'delivered')).toFixed(2)} µs; main thread ` +
        `${perDelivery(sum(t, 'main'), sum(t, 'delivered')).toFixed(2)} µs, other threads ` +
        `${perDelivery(sum(t, 'cpu') - sum(t, 'main'), sum(t, 'delivered')).toFixed(2)} µs; ` +
        `last delivery median ${ms(median(t.blocks.flatMap((b) => b.last)))}`,
    );
  });
  const sorted = [...pairRatios].sort((a, b) => a - b);
  log(
    `this tree / baseline: ${(overall[0]! / overall[1]!).toFixed(3)} over all rounds; per pair of rounds ` +
      `median ${median(pairRatios).toFixed(3)}, quartiles ${sorted[Math.floor(sorted.length / 4)]!.toFixed(3)}-` +
      `${sorted[Math.floor((sorted.length * 3) / 4)]!.toFixed(3)} (${pairRatios.length} pairs); user CPU ` +
      `${(sum(targets[0]!, 'user') / sum(targets[1]!, 'user')).toFixed(3)} over all rounds, per pair median ` +
      `${median(userPairRatios).toFixed(3)}`,
  );
  if (values.raw) {
    log(
      `this tree / raw: ${(overall[0]! / overall[2]!).toFixed(3)}, baseline / raw: ${(overall[1]! / overall[2]!).toFixed(3)}`,
    );
  }
} finally {
  for (const writer of writers) await writer.close();
  trigger?.close();
  await pool.stop();
  await sleep(2000);
  await raw?.stop();
  for (const server of servers) await server.stop();
  for (const dir of dataDirs) rmSync(dir, { recursive: true, force: true });
}
