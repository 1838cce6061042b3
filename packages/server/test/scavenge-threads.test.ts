/**
 * scavengeOnMainThreadOnSmallMachines: turns V8's parallel scavenge off on two cores or fewer, unless the
 * operator chose. Each case runs in a node of its own, since the flag it sets is process-wide.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const moduleUrl = new URL('../src/cli/young-generation.ts', import.meta.url).href;

/** What the function returns in a fresh node given `cores` and extra node flags. */
function decision(cores: number, nodeFlags: string[] = []): string {
  const script = `const m = await import(${JSON.stringify(moduleUrl)}); console.log(String(m.scavengeOnMainThreadOnSmallMachines(${cores})));`;
  return execFileSync(
    process.execPath,
    [...nodeFlags, '--import', 'tsx', '--input-type=module', '-e', script],
    {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      env: { ...process.env, NODE_OPTIONS: '' },
      encoding: 'utf8',
    },
  ).trim();
}

test('two cores or fewer: the scavenge runs on the main thread alone', () => {
  assert.equal(decision(2), 'true');
  assert.equal(decision(1), 'true');
});

test('more cores: V8 keeps its parallel scavenge', () => {
  assert.equal(decision(3), 'false');
  assert.equal(decision(16), 'false');
});

test("an operator's own choice on node's command line is left alone", () => {
  assert.equal(decision(2, ['--parallel-scavenge']), 'false');
  assert.equal(decision(2, ['--no-parallel-scavenge']), 'false');
});
