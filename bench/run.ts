/**
 * `npm run bench`: the performance yardsticks of DESIGN.md, each measured as a ratio against a
 * baseline taken in the same run on the same machine. Prints the results and writes bench/RESULTS.md.
 *
 *   node --import tsx bench/run.ts [--only a,b,g] [--cpu-prof DIR]
 *
 * --only      run some of the benchmarks: their sections and summary rows in RESULTS.md are replaced
 *             (or added), each saying when, at which commit and on how busy a machine it was measured
 * --cpu-prof  start every server with `node --cpu-prof`, profiles written to DIR
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { REPO_ROOT, childOutputs, stopAllChildren } from './lib/children.ts';
import { createDataset } from './lib/dataset.ts';
import { postgresMissing, sharedPostgres, stopSharedPostgres } from './lib/postgres-nodes.ts';
import { machineFacts } from './lib/machine.ts';
import { machineCpu, ownCpuWithChildren } from './lib/proc.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { verdict } from './lib/stats.ts';
import { runStreamThroughput } from './stream-throughput.ts';
import { runRoundTrip } from './round-trip.ts';
import { runIsolation } from './isolation.ts';
import { runSlowReaderMemory } from './slow-reader-memory.ts';
import { runFanOut } from './fan-out.ts';
import { runGraphQLSubscriptions } from './graphql-subscriptions.ts';
import { runSoak } from './soak.ts';
import { preparePostgresStream, runPostgresStream } from './postgres-stream.ts';
import { runConnects } from './connects.ts';
import { runInsertRoundTrip } from './insert-round-trip.ts';
import { runConsoleGrid } from './console-grid.ts';
import { runClusterFanOut } from './cluster-fan-out.ts';
import { runCrossNodeLatency } from './cross-node-latency.ts';

const BENCHMARKS: Record<string, (ctx: BenchContext) => Promise<BenchReport>> = {
  a: runStreamThroughput,
  b: runRoundTrip,
  c: runIsolation,
  d: runSlowReaderMemory,
  e: runFanOut,
  f: runGraphQLSubscriptions,
  g: runSoak,
  h: runPostgresStream,
  i: runConnects,
  j: runInsertRoundTrip,
  k: runConsoleGrid,
  l: runClusterFanOut,
  m: runCrossNodeLatency,
};
/** The benchmarks that read the shared dataset (the others make their own data). */
const NEEDS_DATASET = new Set(['a', 'b', 'c', 'd']);
/** The benchmarks that run on the run's one throwaway PostgreSQL server (each in databases of its own). */
const NEEDS_POSTGRES = new Set(['h', 'l', 'm']);
/** Hard stop for the whole run: the bench must end even if a server hangs. */
const DEADLINE_MS = 10 * 60_000;
/** What issue 10 allows the whole run on this machine. */
const BUDGET_S = 6 * 60;
const COMMAND = 'npm run bench  (node --import tsx bench/run.ts)';

const { values } = parseArgs({
  options: { only: { type: 'string' }, 'cpu-prof': { type: 'string' } },
});
const selected = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(BENCHMARKS);
for (const key of selected) {
  if (!BENCHMARKS[key]) {
    throw new Error(`unknown benchmark '${key}'; expected one of ${Object.keys(BENCHMARKS).join(', ')}`);
  }
}

const log = (line: string): void => void process.stderr.write(`${line}\n`);
const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-bench-'));
let cleanedUp = false;
async function cleanUp(): Promise<void> {
  if (cleanedUp) return;
  cleanedUp = true;
  await stopAllChildren();
  await stopSharedPostgres();
  rmSync(dataDir, { recursive: true, force: true });
}
const abort = (why: string, code: number): void => {
  log(why);
  void cleanUp().finally(() => process.exit(code));
};
process.once('SIGINT', () => abort('interrupted: stopping the servers this bench started', 130));
process.once('SIGTERM', () => abort('terminated: stopping the servers this bench started', 143));
setTimeout(() => abort(`bench exceeded ${DEADLINE_MS / 60_000} minutes: giving up`, 1), DEADLINE_MS).unref();

/** How much of the machine other processes used while the bench ran: noise in every figure. */
interface Interference {
  seconds: number;
  /** CPU seconds used by processes other than the bench and its servers. */
  otherCpu: number;
  stealCpu: number;
  cores: number;
  /** Wall time of the set-up and of each benchmark, in run order (the whole run must stay under 6 minutes). */
  perBenchmark: [string, number][];
}

function describeInterference(i: Interference): string {
  const share = (cpu: number): string => `${((100 * cpu) / (i.seconds * i.cores)).toFixed(0)}%`;
  const text =
    `${i.otherCpu.toFixed(1)} CPU-s (${share(i.otherCpu)} of the machine); ` +
    `hypervisor steal ${i.stealCpu.toFixed(1)} CPU-s (${share(i.stealCpu)})`;
  return i.otherCpu > 0.1 * i.seconds * i.cores
    ? `${text} — **the machine was busy with other work; expect noisy figures**`
    : text;
}

function render(
  facts: ReturnType<typeof machineFacts>,
  reports: BenchReport[],
  interference: Interference,
): string {
  const summary = table(['', 'target', 'measured', 'verdict'], summaryRows(reports));
  return [
    '# RustyDB benchmark results',
    '',
    `Generated by \`${COMMAND}\` — do not edit by hand; run it again.`,
    '',
    table(
      ['fact', 'value'],
      [
        ['date', facts.date],
        ['command', `\`${COMMAND}\``],
        ['nproc', facts.nproc],
        ['total memory', facts.totalMemory],
        ['CPU', facts.cpuModel],
        ['node', facts.node],
        ['kernel', facts.kernel],
        ['libsql / ws', `${facts.libsql} / ${facts.ws}`],
        ['commit', facts.commit],
        ['load average (1 min) at start', facts.load.toFixed(2)],
        [
          'bench wall time',
          selected.length < Object.keys(BENCHMARKS).length
            ? `${interference.seconds.toFixed(0)} s (only ${selected.join(', ')})`
            : `${interference.seconds.toFixed(0)} s: ${interference.seconds < BUDGET_S ? 'under' : '**over**'} ` +
              `the ${BUDGET_S / 60} minutes issue 10 allows`,
        ],
        [
          'wall time per benchmark',
          interference.perBenchmark
            .map(([key, s]) => `${key.length > 1 ? key : `(${key})`} ${s.toFixed(0)} s`)
            .join(', '),
        ],
        ['other processes during the run', describeInterference(interference)],
      ],
    ),
    '',
    '## Summary',
    '',
    summary,
    '',
    ...reports.flatMap((r) => [`## (${r.key}) ${r.title}`, '', r.markdown, '']),
  ].join('\n');
}

/** The summary rows of `reports`, as `render` writes them. */
function summaryRows(reports: BenchReport[]): string[][] {
  return reports.flatMap((r) => r.targets.map((t) => [`(${r.key})`, t.name, t.measured, verdict(t.met)]));
}

/**
 * RESULTS.md with the sections and summary rows of the benchmarks just run (a subset) replaced or added,
 * the others kept as they were. Each replaced section says where its figures come from, since the
 * facts at the top describe the last full run.
 */
function mergeResults(
  existing: string,
  facts: ReturnType<typeof machineFacts>,
  reports: BenchReport[],
  interference: Interference,
): string {
  let text = existing;
  for (const report of reports) {
    const section = [
      `## (${report.key}) ${report.title}`,
      '',
      `Measured in a run of its own (\`node --import tsx bench/run.ts --only ${report.key}\`): ${facts.date}, ` +
        `commit ${facts.commit}, load average ${facts.load.toFixed(2)} at start, other processes ` +
        `${describeInterference(interference)}.`,
      '',
      report.markdown,
      '',
    ].join('\n');
    const start = text.indexOf(`\n## (${report.key}) `);
    if (start === -1) {
      text = `${text.trimEnd()}\n\n${section}`;
    } else {
      const next = text.indexOf('\n## ', start + 1);
      text = `${text.slice(0, start + 1)}${section}${next === -1 ? '' : text.slice(next)}`;
    }
    // The summary table: this benchmark's rows replaced by the new ones, after the others.
    const lines = text.split('\n');
    const kept = lines.filter((line) => !line.startsWith(`| (${report.key}) |`));
    const header = kept.findIndex((line) => line.startsWith('|  | target |'));
    if (header !== -1) {
      let end = header + 2;
      while (kept[end]?.startsWith('| (')) end++;
      const rows = summaryRows([report]).map((cells) => `| ${cells.join(' | ')} |`);
      kept.splice(end, 0, ...rows);
    }
    text = kept.join('\n');
  }
  return `${text.trimEnd()}\n`;
}

try {
  const started = performance.now();
  const cpuAtStart = machineCpu();
  const ownAtStart = ownCpuWithChildren();
  const facts = machineFacts();
  log(`machine: ${facts.nproc} cores, ${facts.totalMemory}, ${facts.cpuModel}, node ${facts.node}`);
  // Each benchmark's log lines say how far into it they were written: where its time went.
  let benchStarted = performance.now();
  const ctx: BenchContext = {
    dataDir,
    log: (line) =>
      log(`${`+${((performance.now() - benchStarted) / 1000).toFixed(1)} s`.padStart(8)} ${line}`),
    ...(values['cpu-prof'] ? { cpuProfileDir: resolve(values['cpu-prof']) } : {}),
  };
  // Set-up, before any benchmark: the PostgreSQL server (initdb and start), and (h)'s table on it, are
  // made while the dataset is written. A failure there is reported by each benchmark that needs them.
  const setUp: Promise<unknown>[] = [];
  if (selected.some((key) => NEEDS_POSTGRES.has(key)) && postgresMissing() === undefined) {
    const postgres = selected.includes('h') ? preparePostgresStream() : sharedPostgres();
    setUp.push(postgres.catch(() => undefined));
  }
  if (selected.some((key) => NEEDS_DATASET.has(key))) setUp.push(createDataset(dataDir, log));
  await Promise.all(setUp);
  const reports: BenchReport[] = [];
  const perBenchmark: [string, number][] = [];
  if (setUp.length > 0) perBenchmark.push(['set-up', (performance.now() - started) / 1000]);
  for (const key of selected) {
    log(`running (${key})`);
    benchStarted = performance.now();
    reports.push(await BENCHMARKS[key]!(ctx));
    perBenchmark.push([key, (performance.now() - benchStarted) / 1000]);
    log(`(${key}) took ${perBenchmark.at(-1)![1].toFixed(1)} s`);
  }
  // Children must have exited (and been reaped) for their CPU time to count as ours.
  await stopAllChildren();
  await stopSharedPostgres();
  const cpuAtEnd = machineCpu();
  const interference: Interference = {
    seconds: (performance.now() - started) / 1000,
    otherCpu: Math.max(0, cpuAtEnd.busy - cpuAtStart.busy - (ownCpuWithChildren() - ownAtStart)),
    stealCpu: cpuAtEnd.steal - cpuAtStart.steal,
    cores: Number(facts.nproc) || 1,
    perBenchmark,
  };
  const markdown = render(facts, reports, interference);
  process.stdout.write(`${markdown}\n`);
  const results = join(REPO_ROOT, 'bench', 'RESULTS.md');
  if (selected.length === Object.keys(BENCHMARKS).length || !existsSync(results)) {
    writeFileSync(results, `${markdown}\n`);
    log('written to bench/RESULTS.md');
  } else {
    writeFileSync(results, mergeResults(readFileSync(results, 'utf8'), facts, reports, interference));
    log(`bench/RESULTS.md: the sections of ${selected.join(', ')} replaced, the others kept`);
  }
} catch (err) {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  log(childOutputs());
  process.exitCode = 1;
} finally {
  await cleanUp();
}
