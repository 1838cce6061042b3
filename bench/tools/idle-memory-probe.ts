/**
 * What the idle server holds: starts the compiled server as bench (d) does, opens one authenticated
 * `/api/v1/stream` socket, waits, and reads /proc/PID/status and smaps_rollup; a preload module in the
 * server (idle-memory-preload.mjs) writes process.memoryUsage(), V8's heap spaces and the modules
 * loaded, before and after a full GC. Repeats N times (default 5) and prints median and spread.
 *
 *   node --import tsx bench/tools/idle-memory-probe.ts [runs] [--modules]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { StreamConnection, login } from '../lib/client.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { sleep } from '../lib/stats.ts';

const PRELOAD = fileURLToPath(new URL('./idle-memory-preload.mjs', import.meta.url));
/** As bench (d): a moment after the socket authenticated (IDLE_PROBE_SETTLE_MS to wait longer). */
const SETTLE_MS = Number(process.env.IDLE_PROBE_SETTLE_MS ?? 1000);
/** Node flags to try on the server, e.g. IDLE_PROBE_NODE_ARGS='--max-semi-space-size=1'. */
const EXTRA_NODE_ARGS = (process.env.IDLE_PROBE_NODE_ARGS ?? '').split(' ').filter(Boolean);

function kbField(text: string, name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
  return match ? Number(match[1]) / 1024 : NaN;
}

interface Sample {
  rss: number;
  anon: number;
  file: number;
  heapUsed: number;
  heapTotal: number;
  heapUsedAfterGc: number;
  heapTotalAfterGc: number;
  rssAfterGc: number;
  external: number;
  modules: number;
  packages: Record<string, number>;
  spaces: { space_name: string; space_size: number; space_used_size: number }[];
}

/** The process's largest resident mappings (from /proc/PID/smaps): where RSS outside the V8 heap is. */
function printLargestMappings(pid: number): void {
  const mappings: { name: string; rss: number; anon: number }[] = [];
  let current: { name: string; rss: number; anon: number } | undefined;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const header = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (header) {
      current = { name: header[1] || '[anon]', rss: 0, anon: 0 };
      mappings.push(current);
    } else if (current && line.startsWith('Rss:')) current.rss = Number(line.split(/\s+/)[1]) / 1024;
    else if (current && line.startsWith('Anonymous:')) current.anon = Number(line.split(/\s+/)[1]) / 1024;
  }
  const byName = new Map<string, { rss: number; anon: number; count: number }>();
  for (const m of mappings) {
    const entry = byName.get(m.name) ?? { rss: 0, anon: 0, count: 0 };
    entry.rss += m.rss;
    entry.anon += m.anon;
    entry.count++;
    byName.set(m.name, entry);
  }
  console.log('largest mappings (MB rss / anon, count):');
  for (const [name, e] of [...byName].sort((a, b) => b[1].rss - a[1].rss).slice(0, 8))
    console.log(
      `  ${e.rss.toFixed(1).padStart(6)} ${e.anon.toFixed(1).padStart(6)} ${String(e.count).padStart(4)}  ${name}`,
    );
  const anon = mappings.filter((m) => m.name === '[anon]' && m.anon > 0).sort((a, b) => b.anon - a.anon);
  console.log(
    `  largest anonymous mappings: ${anon
      .slice(0, 12)
      .map((m) => m.anon.toFixed(1))
      .join(', ')}`,
  );
}

async function measureOnce(withModules: boolean, bin?: string): Promise<Sample> {
  if (withModules) process.env.IDLE_PROBE_MODULES = '1';
  else delete process.env.IDLE_PROBE_MODULES;
  const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-idle-'));
  const out = join(dataDir, 'probe.json');
  // As in bench (d), whose data directory earlier benchmarks' servers already started on: the first
  // start creates the admin user, whose password hash (scrypt, 16 MB of memory on a thread-pool thread)
  // would otherwise be counted in the idle reading, where no restarted server has it.
  const firstStart = await startRustyServer({ dataDir: join(dataDir, 'data'), ...(bin ? { bin } : {}) });
  await firstStart.stop();
  const server = await startRustyServer({
    dataDir: join(dataDir, 'data'),
    nodeArgs: ['--expose-gc', ...EXTRA_NODE_ARGS, '--import', PRELOAD],
    ...(bin ? { bin } : {}),
  });
  try {
    const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
    await sleep(SETTLE_MS);
    const status = readFileSync(`/proc/${server.pid}/status`, 'utf8');
    if (!withModules && process.argv.includes('--smaps')) printLargestMappings(server.pid);
    process.kill(server.pid, 'SIGUSR2');
    let probe:
      | {
          before: NodeJS.MemoryUsage;
          after: NodeJS.MemoryUsage;
          modules: string[];
          spaces: Sample['spaces'];
        }
      | undefined;
    for (let i = 0; i < 50 && !probe; i++) {
      await sleep(100);
      try {
        probe = JSON.parse(readFileSync(out.replace('probe.json', 'data/idle-probe.json'), 'utf8'));
      } catch {
        // not written yet
      }
    }
    if (!probe) throw new Error('the server wrote no probe');
    await connection.close();
    const packages: Record<string, number> = {};
    for (const url of probe.modules) {
      const match = /node_modules\/((?:@[^/]+\/)?[^/]+)|packages\/([^/]+)\/dist/.exec(url);
      const key = match ? (match[1] ?? `@rustydb/${match[2]}`) : url.startsWith('node:') ? 'node:' : url;
      packages[key] = (packages[key] ?? 0) + 1;
    }
    const MB = 1024 * 1024;
    return {
      rss: kbField(status, 'VmRSS'),
      anon: kbField(status, 'RssAnon'),
      file: kbField(status, 'RssFile'),
      heapUsed: probe.before.heapUsed / MB,
      heapTotal: probe.before.heapTotal / MB,
      heapUsedAfterGc: probe.after.heapUsed / MB,
      heapTotalAfterGc: probe.after.heapTotal / MB,
      rssAfterGc: probe.after.rss / MB,
      external: probe.before.external / MB,
      modules: probe.modules.length,
      packages,
      spaces: probe.spaces,
    };
  } finally {
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const runs = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 5);
const samples: Sample[] = [];
const withModules = process.argv.includes('--modules');
/** `--baseline PATH`: another build's bin/rustydb.js, measured in turns with this tree's. */
const baselineAt = process.argv.indexOf('--baseline');
const baseline = baselineAt > 0 ? process.argv[baselineAt + 1] : undefined;
const baseSamples: Sample[] = [];
// The module list needs a loader thread in the server (more RSS): it is taken in one extra run of its own.
for (let i = 0; i < runs; i++) {
  if (baseline) baseSamples.push(await measureOnce(false, baseline));
  samples.push(await measureOnce(false));
}
const fields = [
  'rss',
  'anon',
  'file',
  'heapTotal',
  'heapUsed',
  'heapUsedAfterGc',
  'heapTotalAfterGc',
  'rssAfterGc',
  'external',
] as const;
function summary(of: Sample[], field: (typeof fields)[number]): string {
  const values = of.map((s) => s[field]).sort((a, b) => a - b);
  const median = values[Math.floor(values.length / 2)]!;
  return `median ${median.toFixed(1).padStart(6)}  min ${values[0]!.toFixed(1).padStart(6)}  max ${values.at(-1)!.toFixed(1).padStart(6)}`;
}
console.log(`MB, ${runs} runs${baseline ? `, this tree | baseline ${baseline}` : ''}`);
for (const field of fields) {
  console.log(
    `${field.padEnd(16)} ${summary(samples, field)}${baseline ? `  |  ${summary(baseSamples, field)}` : ''}`,
  );
}
if (withModules) {
  const listed = await measureOnce(true);
  console.log(`modules loaded: ${listed.modules}`);
  console.log('V8 heap spaces (before GC, MB size/used):');
  for (const space of samples[0]!.spaces)
    console.log(
      `  ${space.space_name.padEnd(24)} ${(space.space_size / 1048576).toFixed(1)} / ${(space.space_used_size / 1048576).toFixed(1)}`,
    );
  const byPackage = Object.entries(listed.packages).sort((a, b) => b[1] - a[1]);
  for (const [name, n] of byPackage) console.log(`${String(n).padStart(5)}  ${name}`);
}
