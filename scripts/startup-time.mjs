#!/usr/bin/env node
/**
 * Start-up time of the server: from spawning a command to the first `200` from
 * `/api/v1/health/readiness`, repeated, with a data directory that already exists (the admin user is
 * created by one unmeasured warm-up start, as on every start after the first).
 *
 *   node scripts/startup-time.mjs [--runs N] [--fresh] -- COMMAND [ARGS...]
 *   node scripts/startup-time.mjs --runs 10 -- node packages/server/bin/rustydb.js serve
 *   node scripts/startup-time.mjs --runs 10 -- npm start
 *
 * The command gets its port and data directory from RUSTYDB_PORT and RUSTYDB_DATA_DIR, so any command
 * that ends up in `rustydb serve` can be measured. `--fresh` measures first starts instead (a new data
 * directory each run). Prints every run and the median, min and max in milliseconds, of the wall-clock
 * time and of the CPU time the command's processes used until ready (on Linux, from /proc: the figure
 * that stays meaningful on a busy machine).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { performance } from 'node:perf_hooks';

const POLL_MS = 5;
const START_TIMEOUT_MS = 60_000;

function parseCommandLine(argv) {
  const dash = argv.indexOf('--');
  if (dash < 0 || dash === argv.length - 1) {
    console.error('usage: node scripts/startup-time.mjs [--runs N] [--fresh] -- COMMAND [ARGS...]');
    process.exit(2);
  }
  const options = argv.slice(0, dash);
  const runsAt = options.indexOf('--runs');
  const runs = runsAt >= 0 ? Number(options[runsAt + 1]) : 10;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error('--runs takes a positive integer');
    process.exit(2);
  }
  return { runs, fresh: options.includes('--fresh'), command: argv.slice(dash + 1) };
}

/** A port that was free a moment ago (the server needs a known port for us to poll). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

const CLOCK_TICKS_PER_S = existsSync('/proc/self/stat')
  ? Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())
  : undefined;

/** CPU milliseconds (user + system) used so far by the live processes of process group `group`. */
function groupCpuMs(group) {
  if (CLOCK_TICKS_PER_S === undefined) return undefined;
  let ticks = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    let stat;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      continue; // gone meanwhile
    }
    // Fields after the command name (which may contain spaces) start at field 3 (state).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === group) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / CLOCK_TICKS_PER_S) * 1000;
}

async function ready(port) {
  try {
    const response = await globalThis.fetch(`http://127.0.0.1:${port}/api/v1/health/readiness`);
    await response.arrayBuffer();
    return response.status === 200;
  } catch {
    return false;
  }
}

/** One start: wall-clock and CPU milliseconds from spawn to readiness; the process group is stopped afterwards. */
async function measureOnce(command, dataDir) {
  const port = await freePort();
  const env = {
    ...process.env,
    RUSTYDB_PORT: String(port),
    RUSTYDB_HOST: '127.0.0.1',
    RUSTYDB_DATA_DIR: dataDir,
    RUSTYDB_ADMIN_PASSWORD: process.env.RUSTYDB_ADMIN_PASSWORD ?? 'startup-time-password',
  };
  const started = performance.now();
  // Its own process group, so that `npm start` and the server under it stop together.
  const child = spawn(command[0], command.slice(1), {
    env,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk.toString()));
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', () => resolve((exited = true))));
  try {
    while (!(await ready(port))) {
      if (exited) throw new Error(`the command exited before it was ready:\n${stderr}`);
      if (performance.now() - started > START_TIMEOUT_MS) throw new Error('not ready within 60 s');
      await sleep(POLL_MS);
    }
    return { wallMs: performance.now() - started, cpuMs: groupCpuMs(child.pid) };
  } finally {
    if (!exited) process.kill(-child.pid, 'SIGTERM');
    await exit;
  }
}

const { runs, fresh, command } = parseCommandLine(process.argv.slice(2));
const base = mkdtempSync(join(tmpdir(), 'rustydb-startup-'));
try {
  const shared = join(base, 'data');
  if (!fresh) await measureOnce(command, shared);
  const runsMeasured = [];
  for (let run = 0; run < runs; run++) {
    const measured = await measureOnce(command, fresh ? join(base, `data-${run}`) : shared);
    runsMeasured.push(measured);
    const cpu = measured.cpuMs === undefined ? '' : `, ${measured.cpuMs.toFixed(0)} ms CPU`;
    console.log(`run ${run + 1}: ${measured.wallMs.toFixed(0)} ms${cpu}`);
  }
  const summary = (values) => {
    const sorted = [...values].sort((a, b) => a - b);
    const median = sorted[Math.floor(sorted.length / 2)];
    return `median ${median.toFixed(0)} ms (min ${sorted[0].toFixed(0)}, max ${sorted.at(-1).toFixed(0)})`;
  };
  const cpu = runsMeasured.every((m) => m.cpuMs !== undefined)
    ? `; CPU ${summary(runsMeasured.map((m) => m.cpuMs))}`
    : '';
  console.log(
    `${command.join(' ')}: ${summary(runsMeasured.map((m) => m.wallMs))}${cpu} over ${runs} ` +
      `${fresh ? 'first starts' : 'starts'}`,
  );
} finally {
  rmSync(base, { recursive: true, force: true });
}
