/**
 * Bench (i) between two builds of RustyDB: this tree's server and a baseline build, each taking bench
 * (i)'s phases of authenticated connects (`/api/v1/stream?token=<JWT>` to `auth_success`), the two
 * builds' phases at once as the bench runs its pairs, the order flipping every round. Prints each
 * round's server CPU per connect (all threads, from /proc/<pid>/task/<tid>/schedstat) and the paired
 * ratio, then the medians and ranges. For measuring a change to RustyDB's connects on a shared machine.
 *
 *   node --import tsx bench/tools/connects-ab.ts --baseline PATH [--rounds N] [--echo]
 *     [--strace DIR] [--perf-stat DIR] [--perf-record DIR] [--trace-gc DIR]
 *     [--node-args '...'] [--base-node-args '...'] [--this-node-args '...']
 *
 * PATH: the baseline's bin/rustydb.js, relative to the repository (see round-trip-ab.ts for making a
 * copy of the build). --echo puts the bare `ws` echo server (bench/lib/echo-server.mjs) in every round
 * as a third target. --strace DIR attaches `strace -c -f` to each server over one round before the
 * measured ones and writes its summary to DIR/<name>.strace; --perf-stat DIR likewise `perf stat` of
 * software counters (context switches, page faults), --perf-record DIR `perf record -g` (start the
 * servers with --node-args '--perf-basic-prof' to name JavaScript frames); a traced round is left out
 * of the figures. --trace-gc DIR starts each server with --trace-gc and writes the lines printed during
 * each measured round to DIR/<name>.gc (a child keeps only its last 16 KB of output: enough for
 * --trace-gc, not for --trace-gc-nvp). --node-args adds node flags to both builds' servers,
 * --base-node-args and --this-node-args to one (e.g. '--parallel-scavenge' to try a V8 setting).
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { phase, type Phase, type Target } from '../connects.ts';
import { spawnNode, type Child } from '../lib/children.ts';
import { login } from '../lib/client.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { median, ms } from '../lib/stats.ts';
import { baselineOrExit, option } from '../lib/command-line.ts';

const baseline = baselineOrExit('usage: connects-ab.ts --baseline PATH/bin/rustydb.js [--rounds N] [--echo]');
const rounds = Number(option('--rounds') ?? 16);
const straceDir = option('--strace');
const gcDir = option('--trace-gc');
const perfDir = option('--perf-stat');
const recordDir = option('--perf-record');
const words = (text: string | undefined): string[] => (text ?? '').split(/\s+/).filter(Boolean);
/** Extra node flags for both servers, and for the baseline or this tree's alone. */
const extraNodeArgs = words(option('--node-args'));
const baseNodeArgs = words(option('--base-node-args'));
const thisNodeArgs = words(option('--this-node-args'));
const WARMUP_ROUNDS = 3;
const SOCKETS = 1000;

interface Named extends Target {
  name: string;
  child: Child;
  phases: Phase[];
}

const dirs: string[] = [];
const stops: (() => Promise<void>)[] = [];

async function rusty(name: string, bin: string | undefined, nodeArgs: string[]): Promise<Named> {
  const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-connects-ab-'));
  dirs.push(dataDir);
  const server = await startRustyServer({
    dataDir,
    ...(bin ? { bin } : {}),
    nodeArgs: [...(gcDir ? ['--trace-gc'] : []), ...extraNodeArgs, ...nodeArgs],
  });
  stops.push(() => server.stop());
  const url = `${server.streamUrl}?token=${encodeURIComponent(await login(server.url))}`;
  return { name, url, authenticated: true, pid: server.pid, child: server.child, phases: [] };
}

async function echo(): Promise<Named> {
  const child = spawnNode(gcDir ? ['--trace-gc'] : [], 'bench/lib/echo-server.mjs', [], process.env);
  stops.push(() => child.stop());
  const url = (await child.waitFor(/echo listening on (ws:\/\/\S+)/))[1]!;
  return { name: 'echo', url, authenticated: false, pid: child.pid, child, phases: [] };
}

const targets: Named[] = [];
try {
  targets.push(await rusty('base', baseline, baseNodeArgs), await rusty('this', undefined, thisNodeArgs));
  if (process.argv.includes('--echo')) targets.push(await echo());
  const order = (i: number): Named[] => (i % 2 === 0 ? targets : [...targets].reverse());
  for (let i = 0; i < WARMUP_ROUNDS; i++) await phase(order(i));
  // A tracer attached to each server over one round (left out of the figures): strace's count of
  // system calls, or perf's software counters (context switches, page faults).
  const tracers: [string | undefined, (pid: number, file: string) => string[], string][] = [
    [straceDir, (pid, file) => ['strace', '-c', '-f', '-p', String(pid), '-o', file], 'strace'],
    [
      recordDir,
      (pid, file) => ['perf', 'record', '-g', '-F', '2000', '-p', String(pid), '-o', file],
      'perf.data',
    ],
    [
      perfDir,
      (pid, file) => [
        'perf',
        'stat',
        '-e',
        'task-clock,context-switches,cpu-migrations,page-faults',
        '-p',
        String(pid),
        '-o',
        file,
      ],
      'perf',
    ],
  ];
  for (const [dir, command, suffix] of tracers) {
    if (!dir) continue;
    mkdirSync(dir, { recursive: true });
    const running = targets.map((t) => {
      const [file, ...rest] = command(t.pid, join(dir, `${t.name}.${suffix}`));
      const proc = spawn(file!, rest, { stdio: 'ignore' });
      return { proc, exited: new Promise<void>((resolve) => proc.once('exit', () => resolve())) };
    });
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await phase(targets);
    for (const t of running) t.proc.kill('SIGINT');
    await Promise.all(running.map((t) => t.exited));
    console.log(`${suffix} summaries in ${dir}`);
  }
  for (let i = 0; i < rounds; i++) {
    const marks = targets.map((t) => t.child.output.length);
    const results = await phase(order(i));
    const ordered = order(i);
    ordered.forEach((t, j) => t.phases.push(results[j]!));
    if (gcDir) {
      mkdirSync(gcDir, { recursive: true });
      targets.forEach((t, j) => {
        const text = t.child.output.slice(marks[j]!);
        writeFileSync(join(gcDir, `${t.name}.gc`), `--- round ${i + 1}\n${text}`, { flag: 'a' });
      });
    }
    const per = targets.map((t) => `${t.name} ${ms((t.phases[i]!.cpu / SOCKETS) * 1000)}`).join(', ');
    const r = targets[1]!.phases[i]!.cpu / targets[0]!.phases[i]!.cpu;
    console.log(`round ${i + 1}: ${per}; this/base ${r.toFixed(3)}`);
  }
  for (const t of targets) {
    const cpus = t.phases.map((p) => (p.cpu / SOCKETS) * 1e6);
    const off = t.phases.map((p) => (p.offMain / SOCKETS) * 1e6);
    const system = t.phases.map((p) => (p.system / SOCKETS) * 1e6);
    console.log(
      `${t.name}: CPU/connect median ${median(cpus).toFixed(1)} µs (${Math.min(...cpus).toFixed(1)}–${Math.max(...cpus).toFixed(1)}), off main ${median(off).toFixed(1)} µs, in the kernel ${median(system).toFixed(1)} µs`,
    );
  }
  const ratios = targets[1]!.phases.map((p, i) => p.cpu / targets[0]!.phases[i]!.cpu);
  console.log(
    `this/base paired: median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)}), ${rounds} rounds`,
  );
} finally {
  for (const stop of stops.reverse()) await stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
