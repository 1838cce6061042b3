/**
 * No code path can abort the process. libsql's native binding calls abort() (a Rust panic in a
 * `panic = "abort"` build) when a thread is torn down during a native call, and it can deadlock the
 * event loop when a statement is freed while its connection runs another. This loops cancel, statement
 * timeout, client disconnect (WebSocket and HTTP) and server shutdown over long statements of every
 * kind, 200 times, in a child process, and requires it to end normally: no abort signal, no panic
 * message, every iteration done in time.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ITERATIONS = 200;
const CHILD = fileURLToPath(new URL('./abort-stress-child.ts', import.meta.url));
/** Far more than the loop needs (about a minute on a quiet machine): reaching it means a hang. */
const DEADLINE_MS = 600_000;

test(
  `cancel, timeout, disconnect and shutdown during long statements, ${ITERATIONS} times: no abort`,
  { timeout: DEADLINE_MS + 20_000 },
  async (t) => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-stress-'));
    try {
      const child = spawn(
        process.execPath,
        ['--conditions=rustydb-source', '--import', 'tsx', CHILD, String(ITERATIONS), dataDir],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
      child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
      const started = Date.now();
      const result = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), DEADLINE_MS);
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          resolve({ code, signal });
        });
      });
      const done = out.split('\n').filter((line) => / ok$/.test(line)).length;
      t.diagnostic(`${done} iterations in ${Date.now() - started} ms`);
      const context = `after ${done} iterations; stderr:\n${err.slice(-2000)}`;
      assert.equal(result.signal, null, `the child died of ${result.signal} ${context}`);
      assert.doesNotMatch(err, /panicked/, context);
      assert.equal(result.code, 0, `the child exited ${result.code} ${context}`);
      assert.equal(done, ITERATIONS, context);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  },
);
