/**
 * What the first scan after a server's start costs (the read worker starts on it, see
 * packages/server/src/engine/sqlite/read-workers.ts), and what the server holds before and after it.
 * Each start: a data directory with a 200-row table, the server restarted on it, one authenticated
 * socket, 1 s of quiet; then a keyed read (inline: no worker), three scans of the table (the first
 * starts the worker), and RSS 1 s later. Prints each start and, per build, medians and ranges.
 *
 *   node --import tsx bench/tools/first-scan-latency.ts [starts] [--baseline path/to/bin/rustydb.js]
 *
 * With --baseline the two builds are started in turns, alternating which goes first.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamConnection, login } from '../lib/client.ts';
import { startRustyServer } from '../lib/rusty-server.ts';
import { sleep } from '../lib/stats.ts';

const ROWS = 200;
const starts = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 6);
const baselineAt = process.argv.indexOf('--baseline');
const builds: [string, string | undefined][] = [['this tree', undefined]];
if (baselineAt > 0) builds.push(['baseline', process.argv[baselineAt + 1]]);

function rssMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;
}

const FIGURES = ['keyed read', 'scan 1', 'scan 2', 'scan 3', 'RSS idle', 'RSS after'] as const;
type Figures = Record<(typeof FIGURES)[number], number>;

async function measureOnce(bin: string | undefined): Promise<Figures> {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-first-scan-'));
  const dataDir = join(dir, 'data');
  try {
    const filling = await startRustyServer({ dataDir, ...(bin ? { bin } : {}) });
    try {
      const conn = await StreamConnection.open(filling.streamUrl, await login(filling.url));
      await conn.query('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      for (let id = 1; id <= ROWS; id++)
        await conn.query('INSERT INTO t (id, v) VALUES (?, ?)', [id, `row ${id}`]);
      await conn.close();
    } finally {
      await filling.stop();
    }
    const server = await startRustyServer({ dataDir, ...(bin ? { bin } : {}) });
    try {
      const conn = await StreamConnection.open(server.streamUrl, await login(server.url));
      await sleep(1000);
      const idle = rssMb(server.pid);
      const timed = async (sql: string, params: unknown[], rows: number): Promise<number> => {
        const started = performance.now();
        const result = await conn.query(sql, params);
        const took = performance.now() - started;
        if (result.rows.length !== rows) throw new Error(`${sql}: ${result.rows.length} rows`);
        return took;
      };
      const keyed = await timed('SELECT v FROM t WHERE id = ?', [5], 1);
      const scans: number[] = [];
      for (let i = 0; i < 3; i++) scans.push(await timed('SELECT id, v FROM t', [], ROWS));
      await sleep(1000);
      const after = rssMb(server.pid);
      await conn.close();
      return {
        'keyed read': keyed,
        'scan 1': scans[0]!,
        'scan 2': scans[1]!,
        'scan 3': scans[2]!,
        'RSS idle': idle,
        'RSS after': after,
      };
    } finally {
      await server.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = new Map<string, Figures[]>(builds.map(([name]) => [name, []]));
for (let i = 0; i < starts; i++) {
  for (const [name, bin] of i % 2 ? [...builds].reverse() : builds) {
    const figures = await measureOnce(bin);
    results.get(name)!.push(figures);
    console.log(
      `${name.padEnd(10)} ${FIGURES.map((f) => `${f} ${figures[f].toFixed(1)}`).join(', ')}  (ms, MB)`,
    );
  }
}
for (const [name, runs] of results) {
  console.log(`${name}, ${runs.length} starts (median, range):`);
  for (const figure of FIGURES) {
    const values = runs.map((r) => r[figure]).sort((a, b) => a - b);
    const median = values[Math.floor(values.length / 2)]!;
    console.log(
      `  ${figure.padEnd(11)} ${median.toFixed(1).padStart(6)}  ${values[0]!.toFixed(1)}-${values.at(-1)!.toFixed(1)} ${figure.startsWith('RSS') ? 'MB' : 'ms'}`,
    );
  }
}
