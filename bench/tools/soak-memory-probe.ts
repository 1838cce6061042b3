/**
 * Is the soak's RSS slope (bench (g)) a leak? Runs the soak's load (bench/lib/soak-process.ts: 200
 * subscribers, 50 query connections at 30 req/s, 5 writers at 40 rows/s) against a server started with
 * --expose-gc and soak-memory-preload.mjs, in SOAK_PROBE_ROUNDS rounds: each opens every client,
 * subscribes, offers the load for SOAK_PROBE_SECONDS (a full GC reading every SOAK_PROBE_GC_EVERY s while
 * it runs), then closes every client. Before the first round and after each, a full GC and what is left:
 * what a round leaves that the next does not reuse is what a leak would add up. Then
 * SOAK_PROBE_IDLE_SECONDS idle and a last reading. RSS is printed every 5 s throughout. Loopback only;
 * stops by itself.
 *
 * SOAK_PROBE_SNAPSHOTS=1: a heap snapshot (kept in the data directory) after the baseline and after each
 * round, to compare by constructor with heap-snapshot-diff.ts. SOAK_PROBE_MALLOC=<malloc-probe.c,
 * compiled>: the C allocator's memory (in use and free) with every reading, and after the idle reading
 * malloc_trim(0) and the RSS after it.
 *
 *   SOAK_PROBE_ROUNDS=3 SOAK_PROBE_SECONDS=60 node --import tsx bench/tools/soak-memory-probe.ts
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamConnection, login } from '../lib/client.ts';
import { startIpcProcesses, type IpcProcess } from '../lib/ipc-process.ts';
import { cpuSeconds, memory } from '../lib/proc.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { createSoakTables, type LoadReport, type SoakCommand } from '../lib/soak-protocol.ts';
import { sleep } from '../lib/stats.ts';

const PRELOAD = fileURLToPath(new URL('./soak-memory-preload.mjs', import.meta.url));
const ROUNDS = Number(process.env.SOAK_PROBE_ROUNDS ?? 3);
const SECONDS = Number(process.env.SOAK_PROBE_SECONDS ?? 60);
const GC_EVERY = Number(process.env.SOAK_PROBE_GC_EVERY ?? 30);
/** Seconds the server is left idle after the last round, RSS still sampled, before a last reading. */
const IDLE_SECONDS = Number(process.env.SOAK_PROBE_IDLE_SECONDS ?? 40);
const SNAPSHOTS = process.env.SOAK_PROBE_SNAPSHOTS === '1';
/** Left where it was written when set (snapshots are large): the data directory is removed otherwise. */
const KEEP_DIR = process.env.SOAK_PROBE_KEEP === '1' || SNAPSHOTS;
/**
 * The compiled malloc-probe.c (see there): the C allocator's memory in use and free is read with each
 * GC reading, and after the idle reading malloc_trim(0) shows how much of the RSS was free memory the
 * allocator kept.
 */
const MALLOC_PROBE = process.env.SOAK_PROBE_MALLOC;
const SUBSCRIBERS = 200;
const QUERY_CONNECTIONS = 50;
const WRITERS = 5;
const KEYS = 10_000;
const DRAIN_MS = 30_000;
const TIMEOUT_MS = 120_000;

const mb = (bytes: number): string => `${(bytes / (1024 * 1024)).toFixed(1)} MB`;

interface Reading {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  mallocedMemory: number;
  spaces: Record<string, number>;
  spaceSizes: Record<string, number>;
}

const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-soak-probe-'));
// The allocator probe goes into the server only: the environment is copied when it is spawned.
if (MALLOC_PROBE) Object.assign(process.env, { LD_PRELOAD: MALLOC_PROBE, MALLOC_PROBE_DIR: dataDir });
const server = await startRustyServer({
  dataDir,
  rateLimiting: true,
  nodeArgs: ['--expose-gc', '--import', PRELOAD],
});
delete process.env.LD_PRELOAD;
delete process.env.MALLOC_PROBE_DIR;
let mallocReadings = 0;

/** The C allocator's memory: what malloc_info says, summed over its arenas. */
interface MallocReading {
  /** Obtained from the kernel for the arenas, and of it free (kept for reuse), bytes. */
  system: number;
  free: number;
  /** Blocks large enough to get their own mapping. */
  mmapped: number;
}

function parseMallocInfo(xml: string): MallocReading {
  // The totals over all arenas follow the last <heap>.
  const totals = xml.slice(xml.lastIndexOf('</heap>'));
  const size = (tag: string, type: string): number =>
    Number(new RegExp(`<${tag} type="${type}"[^>]* size="(\\d+)"`).exec(totals)?.[1] ?? 0);
  return {
    system: size('system', 'current'),
    free: size('total', 'fast') + size('total', 'rest'),
    mmapped: size('total', 'mmap'),
  };
}

/** Asks the allocator probe in the server for its figures (and to trim first, with `trim`). */
async function readMalloc(trim: boolean): Promise<{ before: MallocReading; after?: MallocReading }> {
  const n = ++mallocReadings;
  const request = join(dataDir, 'malloc-request');
  writeFileSync(request, trim ? 'trim' : 'info');
  const deadline = performance.now() + TIMEOUT_MS;
  while (existsSync(request)) {
    if (performance.now() > deadline) throw new Error('the malloc probe did not answer');
    await sleep(50);
  }
  const read = (tag: string): MallocReading =>
    parseMallocInfo(readFileSync(join(dataDir, `malloc-${n}-${tag}.xml`), 'utf8'));
  return { before: read('before'), ...(trim ? { after: read('after') } : {}) };
}

const mallocText = (m: MallocReading): string =>
  `C allocator ${mb(m.system + m.mmapped)}: in use ${mb(m.system - m.free + m.mmapped)}, free ${mb(m.free)}`;
let processes: IpcProcess<SoakCommand>[] = [];
let collections = 0;
const started = performance.now();
const elapsed = (): string => `${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s`;

/** A full GC in the server, and what is left after it. */
async function collect(label: string, snapshot = false): Promise<Reading> {
  if (snapshot) {
    writeFileSync(join(dataDir, 'snapshot-request'), join(dataDir, `${label}.heapsnapshot`));
  }
  const n = ++collections;
  process.kill(server.pid, 'SIGUSR2');
  const match = await server.child.waitFor(new RegExp(`soak-probe ${n} (\\{.*\\})\\n`), TIMEOUT_MS);
  if (snapshot) await server.child.waitFor(new RegExp(`soak-probe-snapshot \\S*${label}`), TIMEOUT_MS);
  const reading = JSON.parse(match[1]!) as Reading;
  console.log(
    `${elapsed()} ${label.padEnd(22)} after GC: heap used ${mb(reading.heapUsed)} (total ${mb(reading.heapTotal)}), ` +
      `external ${mb(reading.external)} (array buffers ${mb(reading.arrayBuffers)}), malloced ${mb(reading.mallocedMemory)}, ` +
      `RSS ${mb(reading.rss)}; old space ${mb(reading.spaces.old_space ?? 0)}, large objects ${mb(reading.spaces.large_object_space ?? 0)}, ` +
      `code ${mb(reading.spaces.code_space ?? 0)}; resident: young generation ${mb(reading.spaceSizes.new_space ?? 0)}, ` +
      `old ${mb(reading.spaceSizes.old_space ?? 0)}`,
  );
  if (MALLOC_PROBE) {
    // V8 frees the memory of dead ArrayBuffers (Node's Buffers) on a thread of its own after the GC.
    await sleep(500);
    console.log(`${' '.repeat(6)} ${label.padEnd(22)} ${mallocText((await readMalloc(false)).before)}`);
  }
  return reading;
}

const rssTimer = setInterval(() => {
  try {
    const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
    const field = (name: string): string =>
      mb(Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024);
    console.log(
      `${elapsed()} rss ${mb(memory(server.pid).rss)} (anonymous ${field('RssAnon')}, files ${field('RssFile')}, ` +
        `shared ${field('RssShmem')}), threads ${/^Threads:\s+(\d+)/m.exec(status)?.[1]}`,
    );
  } catch {
    // The server is gone; the next command fails through its own channel.
  }
}, 5000);

try {
  const token = await login(server.url);
  const setup = await StreamConnection.open(server.streamUrl, token);
  await createSoakTables(setup, KEYS);
  await setup.close();
  processes = await startIpcProcesses<SoakCommand>('bench/lib/soak-process.ts', 4);
  console.log(`server pid ${server.pid}, data ${dataDir}; ${ROUNDS} rounds of ${SECONDS} s`);
  await sleep(2000);
  const readings = [await collect('baseline', SNAPSHOTS)];
  for (let round = 1; round <= ROUNDS; round++) {
    await Promise.all(
      processes.map((p, i) =>
        p.ask(
          {
            cmd: 'open',
            streamUrl: server.streamUrl,
            token,
            // As the soak: two processes hold the subscribers, two the query connections and writers.
            subscribers: i < 2 ? SUBSCRIBERS / 2 : 0,
            queryConnections: i < 2 ? 0 : QUERY_CONNECTIONS / 2,
            writers: i < 2 ? 0 : Math.floor(WRITERS / 2) + (i === 2 ? WRITERS % 2 : 0),
            indexBase: (i - 2) * 1000,
          },
          TIMEOUT_MS,
        ),
      ),
    );
    await Promise.all(processes.slice(0, 2).map((p) => p.ask({ cmd: 'subscribe' }, TIMEOUT_MS)));
    await collect(`round ${round} open`);
    const cpuBefore = cpuSeconds(server.pid);
    const run = Promise.all(
      processes.slice(2).map((p) =>
        p.ask<LoadReport>(
          {
            cmd: 'run',
            seconds: SECONDS,
            queryRate: 30,
            writeRate: 40,
            scanEvery: 10,
            keys: KEYS,
            drainMs: DRAIN_MS,
          },
          SECONDS * 1000 + DRAIN_MS + TIMEOUT_MS,
        ),
      ),
    );
    let done = false;
    // Settled either way; a failure is thrown by the `await run` below, which stops every process.
    const settle = (): void => void (done = true);
    run.then(settle, settle);
    for (let t = GC_EVERY; t < SECONDS && !done; t += GC_EVERY) {
      await Promise.race([sleep(GC_EVERY * 1000), run]);
      if (!done) await collect(`round ${round} at ${t} s`);
    }
    const reports = await run;
    const answered = reports.reduce(
      (sum, r) => sum + r.answered.read + r.answered.scan + r.answered.write,
      0,
    );
    const offered = reports.reduce((sum, r) => sum + r.offered.read + r.offered.scan + r.offered.write, 0);
    const cpu = cpuSeconds(server.pid) - cpuBefore;
    console.log(
      `${elapsed()} round ${round}: ${answered} of ${offered} requests answered; server CPU ${cpu.toFixed(1)} s ` +
        `(${((cpu / answered) * 1e6).toFixed(0)} µs per answered request, deliveries included)`,
    );
    await Promise.all(processes.map((p) => p.ask({ cmd: 'close' }, TIMEOUT_MS)));
    await sleep(3000);
    readings.push(await collect(`round ${round} closed`, SNAPSHOTS));
  }
  if (IDLE_SECONDS > 0) {
    await sleep(IDLE_SECONDS * 1000);
    await collect(`idle ${IDLE_SECONDS} s`);
    if (MALLOC_PROBE) {
      const rssBefore = memory(server.pid).rss;
      const { before, after } = await readMalloc(true);
      console.log(
        `${elapsed()} malloc_trim(0): RSS ${mb(rssBefore)} -> ${mb(memory(server.pid).rss)}; ${mallocText(before)} -> ${mallocText(after!)}`,
      );
    }
  }
  const first = readings[1]!;
  const last = readings.at(-1)!;
  console.log(
    `heap after GC: baseline ${mb(readings[0]!.heapUsed)}, after round 1 ${mb(first.heapUsed)}, after round ${ROUNDS} ` +
      `${mb(last.heapUsed)}: ${mb((last.heapUsed - first.heapUsed) / Math.max(1, ROUNDS - 1))} a round after the first`,
  );
} finally {
  clearInterval(rssTimer);
  await Promise.all(processes.map((p) => p.stop()));
  await server.stop();
  if (!KEEP_DIR) rmSync(dataDir, { recursive: true, force: true });
}
