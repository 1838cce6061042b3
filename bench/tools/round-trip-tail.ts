/**
 * Where bench (b)'s tail comes from: one server (RustyDB of this tree, or the floor), the bench's client
 * loop, each round trip's start and duration kept, and the server's young-generation collections
 * (`--trace-gc`) marked at the round trip during which their line reached the client. Prints how many
 * round trips were slow (over the run's p50 + --over µs), how many of those had a collection at most two
 * round trips away, and the gaps between slow round trips (a timer would show as a period).
 *
 *   node --import tsx bench/tools/round-trip-tail.ts [--target rusty|floor] [--n N] [--over US]
 *     [--node-args '...']
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { spawnNode, type Child } from '../lib/children.ts';
import { StreamConnection, login, openSocket } from '../lib/client.ts';
import { KV_ROWS, KV_TABLE, createKvTable, databasePath } from '../lib/dataset.ts';
import { prng } from '../lib/prng.ts';
import { threadCpuSeconds } from '../lib/proc.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { percentile } from '../lib/stats.ts';
import { SQL } from '../round-trip.ts';
import { option } from '../lib/command-line.ts';

const target = option('--target') ?? 'rusty';
const n = Number(option('--n') ?? 20_000);
const overUs = Number(option('--over') ?? 100);
const nodeArgs = (option('--node-args') ?? '').split(' ').filter(Boolean);
const bin = option('--bin');

/** Each thread's name and run time, ns (/proc/PID/task/TID/schedstat). */
function threads(pid: number): Map<string, number> {
  const byThread = new Map<string, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
      const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      byThread.set(`${name}#${tid}`, ns);
    } catch {
      // The thread ended meanwhile.
    }
  }
  return byThread;
}

const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-rt-tail-'));
const stops: (() => Promise<void>)[] = [];
try {
  const server = await startRustyServer({
    dataDir,
    nodeArgs: ['--trace-gc', ...nodeArgs],
    ...(bin ? { bin } : {}),
  });
  stops.push(() => server.stop());
  const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
  await createKvTable(connection);
  let ws: WebSocket = connection.ws;
  let child: Child = server.child;
  let pid = server.pid;
  let expect = 'data';
  if (target === 'floor') {
    const floor = spawnNode(
      ['--trace-gc', ...nodeArgs],
      'bench/lib/keyed-read-server.mjs',
      [databasePath(dataDir), KV_TABLE],
      process.env,
    );
    stops.push(() => floor.stop());
    ws = await openSocket((await floor.waitFor(/keyed reads listening on (ws:\/\/\S+)/))[1]!);
    child = floor;
    pid = floor.pid;
  } else if (target === 'echo') {
    const echo = spawnNode(['--trace-gc', ...nodeArgs], 'bench/lib/echo-server.mjs', [], process.env);
    stops.push(() => echo.stop());
    ws = await openSocket((await echo.waitFor(/echo listening on (ws:\/\/\S+)/))[1]!);
    child = echo;
    pid = echo.pid;
    expect = 'query';
  }
  const random = prng(42);
  const starts: number[] = [];
  const durations: number[] = [];
  const gcAt: number[] = [];
  let deliver: ((data: Buffer) => void) | undefined;
  ws.on('message', (data) => deliver?.(data as Buffer));
  let cpu0 = threadCpuSeconds(pid);
  let threads0 = threads(pid);
  for (let i = 0; i < 5000 + n; i++) {
    if (i === 5000) {
      cpu0 = threadCpuSeconds(pid);
      threads0 = threads(pid);
      gcAt.length = 0;
      starts.length = 0;
      durations.length = 0;
    }
    const text = JSON.stringify({
      type: 'query',
      id: `rt-${i}`,
      payload: { sql: SQL, params: [1 + Math.floor(random() * KV_ROWS)] },
    });
    const reply = new Promise<Buffer>((resolve) => (deliver = resolve));
    const before = child.output.length;
    const started = performance.now();
    ws.send(text);
    const message = JSON.parse((await reply).toString()) as { type: string; id?: string };
    durations.push(performance.now() - started);
    starts.push(started);
    if (message.type !== expect) throw new Error(JSON.stringify(message).slice(0, 200));
    const added = child.output.length - before;
    if (added > 0 && child.output.slice(-added).includes('Scavenge')) gcAt.push(durations.length - 1);
  }
  const cpu1 = threadCpuSeconds(pid);
  const busy = [...threads(pid)]
    .map(([name, ns]) => [name, (ns - (threads0.get(name) ?? 0)) / n / 1000] as const)
    .filter(([, us]) => us >= 0.05)
    .map(([name, us]) => `${name} ${us.toFixed(2)}`);
  console.log(`threads' run time per round trip, µs: ${busy.join(', ')}`);
  const scavenges = child.output
    .split('\n')
    .filter((l) => l.includes('Scavenge'))
    .slice(-gcAt.length);
  const pauses = scavenges.map((l) => Number(/MB, ([\d.]+) \//.exec(l)?.[1] ?? NaN)).sort((a, b) => a - b);
  console.log(
    `scavenge pauses ms: p50 ${percentile(pauses, 50)} p90 ${percentile(pauses, 90)} max ${pauses.at(-1)}; last: ${scavenges.at(-1)}`,
  );
  const p50 = percentile(durations, 50);
  const limit = p50 + overUs / 1000;
  const slow = durations.map((d, i) => (d > limit ? i : -1)).filter((i) => i >= 0);
  const nearGc = slow.filter((i) => gcAt.some((g) => g >= i && g <= i + 2)).length;
  const gaps = slow.slice(1).map((i, k) => starts[i]! - starts[slow[k]!]!);
  const us = (v: number): string => `${(v * 1000).toFixed(0)}`;
  console.log(
    `${target}: n=${durations.length} p50 ${us(p50)} p99 ${us(percentile(durations, 99))} p99.9 ` +
      `${us(percentile(durations, 99.9))} µs; CPU/trip ${(((cpu1.total - cpu0.total) / n) * 1e6).toFixed(1)} µs ` +
      `(main ${(((cpu1.main - cpu0.main) / n) * 1e6).toFixed(1)}); over p50+${overUs} µs: ${slow.length} ` +
      `(${((slow.length / n) * 100).toFixed(2)}%), of them ${nearGc} with a scavenge; scavenges ${gcAt.length}`,
  );
  const slowDur = slow.map((i) => durations[i]!).sort((a, b) => a - b);
  console.log(
    `slow durations µs: p25 ${us(percentile(slowDur, 25))} p50 ${us(percentile(slowDur, 50))} p75 ${us(percentile(slowDur, 75))}`,
  );
  // Gap histogram in ms (a 10 ms or 1 s timer would pile up at multiples).
  const hist = new Map<number, number>();
  for (const g of gaps) hist.set(Math.round(g), (hist.get(Math.round(g)) ?? 0) + 1);
  console.log(
    'gaps between slow round trips, ms:count ' +
      [...hist.entries()]
        .sort((a, b) => a[0] - b[0])
        .slice(0, 40)
        .map(([k, v]) => `${k}:${v}`)
        .join(' '),
  );
  // Phase of the slow ones in a 10 ms period, in 1 ms bins, against all round trips' phases.
  const phase = (t: number): number => Math.floor(t % 10);
  const slowPhase = new Array(10).fill(0);
  for (const i of slow) slowPhase[phase(starts[i]!)]++;
  console.log('slow round trips by start time mod 10 ms: ' + slowPhase.join(' '));
} finally {
  for (const stop of stops.reverse()) await stop();
  rmSync(dataDir, { recursive: true, force: true });
}
