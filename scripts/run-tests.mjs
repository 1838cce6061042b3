#!/usr/bin/env node
// Runs every *.test.ts under packages/*/test with node's test runner (Node 20's --test takes no globs).
// The tests run the TypeScript sources (tsx, and the `rustydb-source` export condition so that
// `@rustydb/*` imports resolve to the packages' sources). The processes they spawn (`rustydb serve`, the
// CLI) run the compiled JavaScript, as users do: the workspace is built first (incremental, about a
// second when nothing changed), so that what the tests spawn is what the sources say.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

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
// One file at a time (timing-sensitive tests must not share the 2 cores) and every test bounded. No
// --test-force-exit: it ended a file's process while generated tests in a describe were still to run,
// so they silently did not run.
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const build = spawnSync(npm, ['run', 'build', '--silent'], { stdio: 'inherit' });
// tsc emits despite type errors, so a work in progress with one still gets its tests run; say so loudly.
if (build.status !== 0)
  console.error('\nWARNING: `npm run build` failed: spawned processes may run stale JavaScript\n');
const result = spawnSync(
  process.execPath,
  [
    '--conditions=rustydb-source',
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=1',
    '--test-timeout=180000',
    ...files,
  ],
  {
    stdio: 'inherit',
  },
);
process.exit(result.status ?? 1);
