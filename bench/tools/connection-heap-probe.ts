/**
 * What one idle authenticated `/api/v1/stream` connection costs the server's heap, by constructor:
 * starts the compiled server (or another build: --bin), opens FIRST authenticated sockets, takes a heap
 * snapshot after a full GC, opens SECOND more, takes another, and prints the difference per connection
 * (bench/tools/heap-snapshot-diff.ts's groups, divided by SECOND). Also RSS and heap used after the GC.
 *
 *   node --import tsx bench/tools/connection-heap-probe.ts [first=200] [second=1000] [--bin path] [--keep]
 *     [--rate-limiting] [--raw]
 *
 * --raw probes (e)'s baseline instead, bench/lib/broadcast-server.mjs (a bare `ws` server), with plain
 * sockets: the same groups side by side show what RustyDB's connection adds.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnNode, type Child } from '../lib/children.ts';
import { StreamConnection, login, openSocket } from '../lib/client.ts';
import { eachHeapNode } from '../lib/heap-snapshot.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { sleep } from '../lib/stats.ts';

const PRELOAD = fileURLToPath(new URL('./soak-memory-preload.mjs', import.meta.url));
const args = process.argv.slice(2);
const binAt = args.indexOf('--bin');
const bin = binAt >= 0 ? args.splice(binAt, 2)[1] : undefined;
const keep = args.includes('--keep');
/** The server's default per-connection rate limits on (the bench's servers run with them off). */
const rateLimiting = args.includes('--rate-limiting');
const raw = args.includes('--raw');
const [first, second] = args.filter((a) => !a.startsWith('--')).map(Number);
const FIRST = first || 200;
const SECOND = second || 1000;

interface Probe {
  rss: number;
  heapUsed: number;
}

function groups(path: string): Map<string, { count: number; bytes: number }> {
  const out = new Map<string, { count: number; bytes: number }>();
  eachHeapNode(path, ({ type, name, size }) => {
    const key =
      type === 'object' || type === 'closure' || type === 'hidden' || type === 'array' || type === 'code'
        ? `${type}:${name.slice(0, 50)}`
        : type;
    const g = out.get(key) ?? { count: 0, bytes: 0 };
    g.count++;
    g.bytes += size;
    out.set(key, g);
  });
  return out;
}

const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-conn-heap-'));
const probeArgs = ['--expose-gc', '--import', PRELOAD];
/** The probed process, and how to open one more of its sockets. */
let target: {
  child: Child;
  pid: number;
  stop: () => Promise<void>;
  connect: () => Promise<{ close(): void }>;
};
if (raw) {
  // The server ignores --data-dir; the preload reads it, for where to write its heap snapshots.
  const child = spawnNode(probeArgs, 'bench/lib/broadcast-server.mjs', ['--data-dir', dataDir], process.env);
  const url = (await child.waitFor(/broadcast listening on (ws:\/\/\S+)/))[1]!;
  target = {
    child,
    pid: child.pid,
    stop: () => child.stop(),
    connect: async () => {
      const ws = await openSocket(url);
      return { close: () => ws.terminate() };
    },
  };
} else {
  const server = await startRustyServer({
    dataDir,
    rateLimiting,
    flags: [
      '--websocket-max-connections',
      String(FIRST + SECOND + 100),
      '--websocket-ping-interval',
      '86400',
      '--websocket-timeout',
      '86400',
    ],
    nodeArgs: probeArgs,
    ...(bin ? { bin } : {}),
  });
  const token = await login(server.url);
  target = {
    child: server.child,
    pid: server.pid,
    stop: () => server.stop(),
    connect: async () => {
      const connection = await StreamConnection.open(server.streamUrl, token);
      return { close: () => connection.ws.terminate() };
    },
  };
}
const sockets: { close(): void }[] = [];
try {
  const open = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i += 50) {
      const batch = Math.min(50, count - i);
      sockets.push(...(await Promise.all(Array.from({ length: batch }, () => target.connect()))));
    }
  };
  let probes = 0;
  const snap = async (name: string): Promise<Probe> => {
    await sleep(1000);
    const file = join(dataDir, `${name}.heapsnapshot`);
    writeFileSync(join(dataDir, 'snapshot-request'), file);
    const seen = probes;
    process.kill(target.pid, 'SIGUSR2');
    const match = await target.child.waitFor(new RegExp(`soak-probe ${seen + 1} (\\{.*\\})`));
    await target.child.waitFor(new RegExp(`soak-probe-snapshot ${file}`), 120_000);
    probes++;
    const probe = JSON.parse(match[1]!) as Probe;
    return probe;
  };
  await open(FIRST);
  const a = await snap('a');
  await open(SECOND);
  const b = await snap('b');
  console.log(
    `RSS after GC per connection ${((b.rss - a.rss) / SECOND).toFixed(0)} B; heap used per connection ${((b.heapUsed - a.heapUsed) / SECOND).toFixed(0)} B`,
  );
  const ga = groups(join(dataDir, 'a.heapsnapshot'));
  const gb = groups(join(dataDir, 'b.heapsnapshot'));
  const rows = [...new Set([...ga.keys(), ...gb.keys()])]
    .map((name) => {
      const x = ga.get(name) ?? { count: 0, bytes: 0 };
      const y = gb.get(name) ?? { count: 0, bytes: 0 };
      return { name, count: (y.count - x.count) / SECOND, bytes: (y.bytes - x.bytes) / SECOND };
    })
    .filter((r) => Math.abs(r.bytes) >= 2)
    .sort((p, q) => q.bytes - p.bytes);
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  // Compiled code and its metadata grow with what the JIT did meanwhile, not with the connections.
  const objects = rows.filter((r) => !r.name.startsWith('code')).reduce((s, r) => s + r.bytes, 0);
  console.log(
    `snapshot bytes per connection (groups of >= 2 B): ${total.toFixed(0)} B; without code: ${objects.toFixed(0)} B`,
  );
  for (const r of rows)
    console.log(`${r.bytes.toFixed(1).padStart(8)} B ${r.count.toFixed(2).padStart(6)} obj  ${r.name}`);
} finally {
  for (const s of sockets) s.close();
  await target.stop();
  if (!keep) rmSync(dataDir, { recursive: true, force: true });
  else console.log(`kept ${dataDir}`);
}
