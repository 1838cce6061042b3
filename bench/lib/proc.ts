/**
 * Reads another process's CPU time and memory from /proc (Linux only). The server runs as a child
 * process, so `process.cpuUsage()` cannot see it; /proc/<pid>/stat counts every thread of the process,
 * including libuv's pool where libsql runs its asynchronous statements.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';

/** Clock ticks per second, the unit of utime/stime in /proc/<pid>/stat (almost always 100). */
export const CLOCK_TICKS: number = (() => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isFinite(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** Fields 14 (utime) and 15 (stime) of /proc/<pid>/stat, in clock ticks. */
function userAndSystemTicks(pid: number): [user: number, system: number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Counted from field 3 (state) at index 0.
  return [Number(fields[11]), Number(fields[12])];
}

/** User + system CPU seconds the process has used so far (resolution 1 / CLOCK_TICKS). */
export function cpuSeconds(pid: number): number {
  const [utime, stime] = userAndSystemTicks(pid);
  return (utime + stime) / CLOCK_TICKS;
}

/** System (kernel) CPU seconds the process has used so far (resolution 1 / CLOCK_TICKS). */
export function systemSeconds(pid: number): number {
  return userAndSystemTicks(pid)[1] / CLOCK_TICKS;
}

/**
 * CPU seconds the process has run so far, to the nanosecond, in all its threads and in its main thread
 * alone (the thread whose id is the process's): the scheduler's own run time of each thread (the first
 * field of /proc/<pid>/task/<tid>/schedstat). utime and stime advance in whole clock ticks (10 ms),
 * which over a short phase is a coarse step: 10 µs per operation over 1,000 operations. What runs off
 * the main thread in Node is V8's optimizing compiler and garbage-collection helpers, and libuv's pool.
 * A thread that ends between two readings takes its time with it, so use this over phases in which the
 * process keeps its threads (Node's are made at start-up and kept). Falls back to `cpuSeconds` (all of
 * it counted as the main thread's) where the kernel keeps no schedstat.
 */
export function threadCpuSeconds(pid: number): { total: number; main: number } {
  let total = 0;
  let main = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ', 1)[0]);
        total += ns;
        if (tid === String(pid)) main = ns;
      } catch {
        // The thread ended while we looked.
      }
    }
  } catch {
    total = 0;
  }
  if (!Number.isFinite(total) || total <= 0) {
    const cpu = cpuSeconds(pid);
    return { total: cpu, main: cpu };
  }
  return { total: total / 1e9, main: main / 1e9 };
}

/**
 * Waits until every process of `pids` ran under `cpuS` seconds (all its threads) during one `stepMs`:
 * the last phase's work is done (its closes, deliveries, collections) and the next starts on a quiet
 * machine. Waits at most `maxMs`, the fixed pause this replaced: a sleep long enough for a loaded
 * machine spent most of its time idle on a quiet one, and the bench has 6 minutes. A process that has
 * ended counts as quiet.
 */
export async function waitUntilQuiet(
  pids: readonly number[],
  maxMs: number,
  { stepMs = 40, cpuS = 0.001 }: { stepMs?: number; cpuS?: number } = {},
): Promise<void> {
  const until = performance.now() + maxMs;
  const cpuOf = (pid: number): number => {
    try {
      return threadCpuSeconds(pid).total;
    } catch {
      return 0; // Ended: quiet from now on.
    }
  };
  const read = (): number[] => pids.map(cpuOf);
  let before = read();
  while (performance.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(stepMs, until - performance.now())));
    const now = read();
    if (now.every((cpu, i) => cpu - before[i]! < cpuS)) return;
    before = now;
  }
}

/**
 * Write system calls the process has made so far (`syscw` of /proc/<pid>/io: write, writev, send…):
 * what batching frames into one write saves shows here, whatever else the machine is doing.
 */
export function writeSyscalls(pid: number): number {
  const io = readFileSync(`/proc/${pid}/io`, 'utf8');
  return Number(/^syscw:\s+(\d+)/m.exec(io)?.[1] ?? NaN);
}

export interface MemoryFacts {
  /** Resident set size now, bytes. */
  rss: number;
  /** Peak resident set size ("high water mark") since start or the last reset, bytes. */
  hwm: number;
}

/**
 * Node flags that let the bench ask a server it started for a full garbage collection (SIGUSR2, see
 * gc-on-signal.mjs), so that memory readings count live objects. Only the bench starts servers so.
 */
export const COLLECT_ON_SIGNAL = ['--expose-gc', '--import', './bench/lib/gc-on-signal.mjs'] as const;

/** Asks a process started with COLLECT_ON_SIGNAL for a full garbage collection (done within ms). */
export function collectGarbage(pid: number): void {
  process.kill(pid, 'SIGUSR2');
}

export function memory(pid: number): MemoryFacts {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status);
    if (!match) throw new Error(`no ${name} in /proc/${pid}/status`);
    return Number(match[1]) * 1024;
  };
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/**
 * Resets the process's peak RSS (VmHWM) to its current RSS, so a later reading covers only what
 * happened since. Needs Linux >= 4.0 and permission over the process; returns false when refused.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/**
 * Samples VmRSS on a timer. The sampler runs on the bench's own event loop, so it can miss a short
 * spike; VmHWM (read at the end) is the kernel's exact peak and is the figure to trust.
 */
export class RssSampler {
  readonly #pid: number;
  readonly #timer: NodeJS.Timeout;
  max = 0;
  samples = 0;

  constructor(pid: number, everyMs: number) {
    this.#pid = pid;
    this.#take();
    this.#timer = setInterval(() => this.#take(), everyMs);
  }

  #take(): void {
    try {
      this.max = Math.max(this.max, memory(this.#pid).rss);
      this.samples++;
    } catch {
      // The process ended; the caller notices through its own channel.
    }
  }

  stop(): { maxRss: number; samples: number } {
    clearInterval(this.#timer);
    this.#take();
    return { maxRss: this.max, samples: this.samples };
  }
}

/** CPU seconds the whole machine has spent busy (all CPUs), and in steal (time a VM host took away). */
export function machineCpu(): { busy: number; steal: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  // cpu user nice system idle iowait irq softirq steal guest guest_nice (guest is inside user)
  const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
  return {
    busy: (user! + nice! + system! + irq! + softirq! + steal!) / CLOCK_TICKS,
    steal: steal! / CLOCK_TICKS,
  };
}

/**
 * CPU seconds used by this process plus its children that have exited and been reaped
 * (utime, stime, cutime, cstime): everything the bench itself made the machine do.
 */
export function ownCpuWithChildren(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) / CLOCK_TICKS;
}

/**
 * CPU seconds of a process and its direct children (PostgreSQL: the postmaster and its backends,
 * walsenders and workers), read from /proc; a child that exits in between is simply not counted.
 */
export function treeCpuSeconds(rootPid: number): number {
  let total = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Field 4 (ppid) is at index 1, counted from field 3 (state).
      if (Number(entry) === rootPid || Number(fields[1]) === rootPid) {
        total += (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
      }
    } catch {
      // The process ended while we looked.
    }
  }
  return total;
}
