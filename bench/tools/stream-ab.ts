/**
 * Bench (a) between two builds of RustyDB: this tree's server and a baseline build, each streaming the
 * bench's 1M-row SELECT over one socket, in turns (the order flips every turn), with the in-process loop
 * of bench (a) in the same turns for scale. Prints, per build, the server's CPU per row (all threads, the
 * read worker, the main thread, from /proc/<pid>/task/<tid>/schedstat) and rows/s, medians and ranges,
 * each server's peak RSS, and the paired ratios this tree / baseline. For measuring a change to the stream path before and
 * after, on a machine that others share.
 *
 *   node --import tsx bench/tools/stream-ab.ts --baseline PATH [--turns N]
 *
 * PATH: the baseline's bin/rustydb.js, relative to the repository, e.g. a copy of the build made before
 * the change (see bench/tools/round-trip-ab.ts).
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamConnection, login } from '../lib/client.ts';
import { ROWS_TOTAL, createDataset, databasePath } from '../lib/dataset.ts';
import { startRustyServer, type RustyServerProcess } from '../lib/rusty-server.ts';
import { memory } from '../lib/proc.ts';
import { mb, median } from '../lib/stats.ts';
import { inProcessLimit, rate, streamOverWebSocket } from '../stream-throughput.ts';
import { baselineOrExit, option } from '../lib/command-line.ts';

const baseline = baselineOrExit('usage: stream-ab.ts --baseline PATH/bin/rustydb.js [--turns N]');
const turns = Number(option('--turns') ?? 6);

interface Sample {
  rate: number;
  cpu: number;
  worker: number;
  main: number;
  /** Shares of the wall time the read worker ran and waited for a core. */
  ran: number;
  waited: number;
}
interface Target {
  name: string;
  server: RustyServerProcess;
  connection: StreamConnection;
  samples: Sample[];
}

const dirs: string[] = [];
const targets: Target[] = [];
try {
  const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-stream-ab-'));
  dirs.push(dataDir);
  await createDataset(dataDir, console.log);
  const copy = mkdtempSync(join(tmpdir(), 'rustydb-stream-ab-'));
  dirs.push(copy);
  cpSync(dataDir, copy, { recursive: true });
  for (const [name, dir, bin] of [
    ['this tree', dataDir, undefined],
    [`baseline ${baseline}`, copy, baseline],
  ] as const) {
    const server = await startRustyServer({ dataDir: dir, ...(bin ? { bin } : {}) });
    const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
    targets.push({ name, server, connection, samples: [] });
  }
  const loop: Sample[] = [];
  const stream = async (t: Target): Promise<void> => {
    const { run, threads } = await streamOverWebSocket(t.connection.ws, t.server.pid, ROWS_TOTAL);
    t.samples.push({
      rate: rate(run),
      cpu: (run.cpu / run.rows) * 1e6,
      worker: threads.worker,
      main: threads.main,
      ran: threads.workerRan,
      waited: threads.workerWaited,
    });
  };
  const inProcess = async (): Promise<void> => {
    const run = await inProcessLimit(databasePath(dataDir), ROWS_TOTAL);
    loop.push({
      rate: rate(run),
      cpu: (run.cpu / run.rows) * 1e6,
      worker: NaN,
      main: NaN,
      ran: run.ran,
      waited: NaN,
    });
  };
  for (const t of targets) await streamOverWebSocket(t.connection.ws, t.server.pid, 100_000);
  await inProcessLimit(databasePath(dataDir), 100_000);
  for (let turn = 0; turn < turns; turn++) {
    const order = turn % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) await stream(t);
    await inProcess();
    console.log(
      `turn ${turn + 1}: ` +
        targets
          .map((t) => {
            const s = t.samples.at(-1)!;
            return `${t.name} ${Math.round(s.rate)} rows/s, worker ${s.worker.toFixed(3)} µs/row`;
          })
          .join('; ') +
        `; loop ${Math.round(loop.at(-1)!.rate)} rows/s, ${loop.at(-1)!.cpu.toFixed(3)} µs/row`,
    );
  }
  const show = (values: number[], digits: number): string =>
    `${median(values).toFixed(digits)} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
  for (const t of targets) {
    const of = (key: keyof Sample): number[] => t.samples.map((s) => s[key]);
    console.log(
      `${t.name}: rows/s ${show(of('rate'), 0)}; CPU µs/row all threads ${show(of('cpu'), 3)}, ` +
        `read worker ${show(of('worker'), 3)}, main ${show(of('main'), 3)}; read worker ran ` +
        `${show(of('ran'), 2)} of the wall time, waited for a core ${show(of('waited'), 2)}; ` +
        `peak RSS (VmHWM) ${mb(memory(t.server.pid).hwm)}; rate / loop's in the same turn ${show(
          t.samples.map((s, i) => s.rate / loop[i]!.rate),
          3,
        )}`,
    );
  }
  console.log(
    `in-process loop: rows/s ${show(
      loop.map((s) => s.rate),
      0,
    )}; CPU µs/row ${show(
      loop.map((s) => s.cpu),
      3,
    )}; ran ${show(
      loop.map((s) => s.ran),
      2,
    )} of the wall time`,
  );
  const [mine, base] = targets as [Target, Target];
  const paired = (key: keyof Sample): number[] => mine.samples.map((s, i) => s[key] / base.samples[i]![key]);
  console.log(
    `this tree / baseline, per turn: rows/s ${show(paired('rate'), 3)}, read worker CPU ${show(
      paired('worker'),
      3,
    )}, main CPU ${show(paired('main'), 3)}, all threads ${show(paired('cpu'), 3)}`,
  );
} finally {
  for (const t of targets) {
    await t.connection.close();
    await t.server.stop();
  }
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
