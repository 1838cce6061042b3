/**
 * Bench (b) between two builds of RustyDB: this tree's server and a baseline build, each answering the
 * bench's keyed query on one socket with the bench's own client loop, in blocks taken in turns (the
 * order flips every turn), with the raw `ws` echo in the same turns for scale. Prints, per target, the
 * server's CPU per round trip (all threads and the main thread, from /proc/<pid>/task/<tid>/schedstat:
 * nanoseconds, not clock ticks), and p50/p99/p99.9 over all blocks with the range of the per-block
 * figures. For measuring a change to RustyDB before and after, on a machine that others share.
 *
 *   node --import tsx bench/tools/round-trip-ab.ts --baseline PATH [--turns N] [--block N]
 *     [--cpu-prof DIR]
 *
 * PATH: the baseline's bin/rustydb.js, relative to the repository, e.g. a copy of the build made before
 * the change: `mkdir -p packages/server/.tmp/base && cp -r packages/server/bin packages/server/dist
 * packages/server/.tmp/base/` (and, if the change touches the protocol package, a copy of its
 * package.json and dist/ in packages/server/.tmp/base/node_modules/@rustydb/protocol/).
 * --cpu-prof DIR profiles both servers (every 50 µs) into DIR. --handler-times times, in every server,
 * the handling of each request on its main thread (bench/tools/round-trip-handler-preload.mjs) and
 * splits each target's round trips into that part and the rest (the kernel's, the scheduler's, the
 * client's), for all round trips and for those at or over the target's p99.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { spawnNode } from '../lib/children.ts';
import { StreamConnection, login, openSocket } from '../lib/client.ts';
import { KV_ROWS, KV_TABLE, createKvTable, databasePath } from '../lib/dataset.ts';
import { prng } from '../lib/prng.ts';
import { threadCpuSeconds } from '../lib/proc.ts';
import { startRustyServer, type RustyServerProcess } from '../lib/rusty-server.ts';
import { median, ms, percentile } from '../lib/stats.ts';
import { roundTrips } from '../round-trip.ts';
import { baselineOrExit, option } from '../lib/command-line.ts';

const baseline = baselineOrExit(
  'usage: round-trip-ab.ts --baseline PATH/bin/rustydb.js [--turns N] [--block N]',
);
const turns = Number(option('--turns') ?? 10);
const blockSize = Number(option('--block') ?? 2000);
const profileDir = option('--cpu-prof');
/** Only the two builds (no echo, no floor): twice the turns in the same time, for a paired comparison. */
const buildsOnly = process.argv.includes('--builds-only');
const WARMUP = 5000;
const profile = profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-interval', '50'] : [];
const BUDGET_MS = 20_000;
const handlerTimes = process.argv.includes('--handler-times')
  ? mkdtempSync(join(tmpdir(), 'rustydb-rt-handlers-'))
  : undefined;
if (handlerTimes) process.env.RT_HANDLER_TIMES = handlerTimes;
const preload = handlerTimes ? ['--import', './bench/tools/round-trip-handler-preload.mjs'] : [];

interface Target {
  name: string;
  ws: WebSocket;
  pid: number;
  expect: string;
  blocks: { trips: number[]; cpu: number; main: number }[];
}

/** A server of the given build on a data directory of its own, with the bench's kv table. */
async function rustyTarget(name: string, bin: string | undefined, dirs: string[]): Promise<Target> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-rt-ab-'));
  dirs.push(dataDir);
  const server: RustyServerProcess = await startRustyServer({
    dataDir,
    ...(bin ? { bin } : {}),
    ...(profileDir ? { cpuProfileDir: profileDir } : {}),
    nodeArgs: [...(profileDir ? ['--cpu-prof-interval', '50'] : []), ...preload],
  });
  stops.push(() => server.stop());
  const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
  await createKvTable(connection);
  return { name, ws: connection.ws, pid: server.pid, expect: 'data', blocks: [] };
}

/** The raw `ws` echo and the floor (bench/lib/keyed-read-server.mjs, on this tree's database file). */
async function addYardsticks(targets: Target[]): Promise<void> {
  const echo = spawnNode([...profile, ...preload], 'bench/lib/echo-server.mjs', [], process.env);
  stops.push(() => echo.stop());
  const echoUrl = (await echo.waitFor(/echo listening on (ws:\/\/\S+)/))[1]!;
  targets.push({
    name: 'raw ws echo',
    ws: await openSocket(echoUrl),
    pid: echo.pid,
    expect: 'query',
    blocks: [],
  });
  // The floor (bench/lib/keyed-read-server.mjs) on this tree's database file.
  const floor = spawnNode(
    [...profile, ...preload],
    'bench/lib/keyed-read-server.mjs',
    [databasePath(dirs[0]!), KV_TABLE],
    process.env,
  );
  stops.push(() => floor.stop());
  const floorUrl = (await floor.waitFor(/keyed reads listening on (ws:\/\/\S+)/))[1]!;
  targets.push({ name: 'floor', ws: await openSocket(floorUrl), pid: floor.pid, expect: 'data', blocks: [] });
}

const stops: (() => Promise<void>)[] = [];
const dirs: string[] = [];
const targets: Target[] = [];
try {
  targets.push(await rustyTarget('this tree', undefined, dirs));
  targets.push(await rustyTarget(`baseline ${baseline}`, baseline, dirs));
  if (!buildsOnly) await addYardsticks(targets);
  const random = prng(42);
  const keys = (): number => 1 + Math.floor(random() * KV_ROWS);
  for (const t of targets) await roundTrips(t.ws, WARMUP, BUDGET_MS, keys, t.expect);
  for (let turn = 0; turn < turns; turn++) {
    for (const t of turn % 2 === 0 ? targets : [...targets].reverse()) {
      const before = threadCpuSeconds(t.pid);
      const trips = await roundTrips(t.ws, blockSize, BUDGET_MS, keys, t.expect);
      const after = threadCpuSeconds(t.pid);
      t.blocks.push({ trips, cpu: after.total - before.total, main: after.main - before.main });
    }
  }
  const us = (seconds: number): string => `${(seconds * 1e6).toFixed(1)} µs`;
  const range = (values: number[], f: (v: number) => string): string =>
    `${f(median(values))} (${f(Math.min(...values))}–${f(Math.max(...values))})`;
  for (const t of targets) {
    const all = t.blocks.flatMap((b) => b.trips);
    const perBlock = (p: number): number[] => t.blocks.map((b) => percentile(b.trips, p));
    const cpu = t.blocks.reduce((s, b) => s + b.cpu, 0) / all.length;
    const main = t.blocks.reduce((s, b) => s + b.main, 0) / all.length;
    console.log(
      `${t.name}: n=${all.length}; CPU/trip ${us(cpu)} (main thread ${us(main)}; blocks ` +
        `${range(
          t.blocks.map((b) => b.cpu / b.trips.length),
          us,
        )}); p50 ${ms(percentile(all, 50))} ` +
        `(blocks ${range(perBlock(50), ms)}), p99 ${ms(percentile(all, 99))} (blocks ${range(perBlock(99), ms)}), ` +
        `p99.9 ${ms(percentile(all, 99.9))}, over 300 µs ${all.filter((d) => d > 0.3).length}`,
    );
  }
  // Paired by turn: the two builds' blocks of one turn ran back to back, under much the same load.
  const paired = targets[0]!.blocks.map((b, i) => {
    const other = targets[1]!.blocks[i]!;
    return b.cpu / b.trips.length / (other.cpu / other.trips.length);
  });
  const f3 = (v: number): string => v.toFixed(3);
  /** The ratio of target a's percentile p to target b's, turn by turn: median (min–max). */
  const perTurn = (a: Target, b: Target, p: number): string =>
    range(
      a.blocks.map((block, i) => percentile(block.trips, p) / percentile(b.blocks[i]!.trips, p)),
      f3,
    );
  console.log(
    `this tree / baseline, per turn: CPU per trip ${range(paired, f3)}, p50 ${perTurn(targets[0]!, targets[1]!, 50)}, ` +
      `p99 ${perTurn(targets[0]!, targets[1]!, 99)} (median (min–max) of ${paired.length} turns)`,
  );
  if (!buildsOnly) {
    for (const t of targets.slice(0, 2)) {
      console.log(
        `${t.name} / floor, per turn: p50 ${perTurn(t, targets[3]!, 50)}, p99 ${perTurn(t, targets[3]!, 99)}`,
      );
    }
  }
  if (!buildsOnly) {
    const [mine, base, raw, bare] = targets.map((t) => t.blocks.flatMap((b) => b.trips)) as number[][];
    for (const p of [50, 99, 99.9]) {
      const over = (a: number[]): string => `${(percentile(a!, p) / percentile(raw!, p)).toFixed(3)}×`;
      console.log(`p${p} / echo: this tree ${over(mine!)}, baseline ${over(base!)}, floor ${over(bare!)}`);
    }
  }
} finally {
  for (const stop of stops.reverse()) await stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
if (handlerTimes) {
  try {
    for (const t of targets) reportHandlerTimes(t);
  } finally {
    rmSync(handlerTimes, { recursive: true, force: true });
  }
}

/**
 * Splits a target's round trips into its server's handling of the request (the preload's times, the
 * last ones matched to the measured round trips in order: the server got nothing else meanwhile) and
 * the rest, for all round trips and for the slowest 1%.
 */
function reportHandlerTimes(t: Target): void {
  let times: {
    starts: number[];
    writes: number[];
    ends: number[];
    activeAtStart: number[];
    idleAtStart: number[];
    activeAtEnd: number[];
    collections: [number, number][];
    timers: [number, number][];
  };
  try {
    times = JSON.parse(readFileSync(join(handlerTimes!, `${t.pid}.json`), 'utf8')) as typeof times;
  } catch {
    console.log(`${t.name}: no handler times`);
    return;
  }
  const trips = t.blocks.flatMap((b) => b.trips);
  const skip = times.ends.length - trips.length;
  if (skip < 0) throw new Error(`${t.name}: ${times.ends.length} handled, ${trips.length} round trips`);
  const own = trips.map((_, i) => times.writes[skip + i]! - times.starts[skip + i]!);
  const whole = trips.map((_, i) => times.ends[skip + i]! - times.starts[skip + i]!);
  const rest = trips.map((trip, i) => trip - whole[i]!);
  // Since the previous handler's end: the event loop's other work, and its wait in epoll.
  const otherWork = trips.map((_, i) => times.activeAtStart[skip + i]! - times.activeAtEnd[skip + i - 1]!);
  const waited = trips.map((_, i) => times.idleAtStart[skip + i]! - times.idleAtStart[skip + i - 1]!);
  const slow = percentile(trips, 99);
  const tail = trips.flatMap((trip, i) => (trip >= slow ? [i] : []));
  const at = (values: number[], p: number, of: number[] = trips.map((_, i) => i)): string =>
    `${(
      percentile(
        of.map((i) => values[i]!),
        p,
      ) * 1000
    ).toFixed(1)}`;
  const ownP99 = percentile(own, 99);
  // An answer not written within its request's handler was deferred (to the tick's flush, say).
  const deferred = trips.filter((_, i) => times.writes[skip + i] === times.ends[skip + i]).length;
  console.log(
    `${t.name}: handler, own work to the write p50/p99/p99.9 ${at(own, 50)}/${at(own, 99)}/${at(own, 99.9)} µs, ` +
      `with the write ${at(whole, 50)}/${at(whole, 99)}/${at(whole, 99.9)} µs; rest of the round trip ` +
      `${at(rest, 50)}/${at(rest, 99)} µs. Round trips ≥ p99 (${tail.length}): own work median ${at(own, 50, tail)} ` +
      `(p90 ${at(own, 90, tail)}), with the write ${at(whole, 50, tail)} (p90 ${at(whole, 90, tail)}), rest ` +
      `${at(rest, 50, tail)} µs; own work over its p99 in ${tail.filter((i) => own[i]! > ownP99).length}; ` +
      `answers not written within their handler ${deferred}`,
  );
  console.log(
    `  before each handler, the loop's other work p50/p99 ${at(otherWork, 50)}/${at(otherWork, 99)} µs and ` +
      `its wait ${at(waited, 50)}/${at(waited, 99)} µs; before the round trips ≥ p99: other work median ` +
      `${at(otherWork, 50, tail)} (p90 ${at(otherWork, 90, tail)}), wait ${at(waited, 50, tail)} ` +
      `(p90 ${at(waited, 90, tail)}) µs; other work over 100 µs before ${tail.filter((i) => otherWork[i]! > 0.1).length}`,
  );
  // What that other work was, for the round trips ≥ p99 with over 100 µs of it: a collection or a
  // timer's callback between the previous handler's end and this one's start.
  const busy = tail.filter((i) => otherWork[i]! > 0.1);
  const within = (spans: [number, number][], i: number): boolean => {
    const from = times.ends[skip + i - 1]!;
    const to = times.starts[skip + i]!;
    return spans.some(([a, b]) => b >= from && a <= to);
  };
  const gc = busy.filter((i) => within(times.collections, i)).length;
  const timer = busy.filter((i) => within(times.timers, i)).length;
  console.log(
    `  of those ${busy.length}: a collection before ${gc}, a timer's callback before ${timer}; ` +
      `collections in all ${times.collections.length}, timer callbacks ${times.timers.length}`,
  );
}
