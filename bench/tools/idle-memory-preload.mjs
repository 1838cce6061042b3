// Loaded into the server by idle-memory-probe.ts (node --import): on SIGUSR2 it writes what the
// process holds into DATA_DIR/idle-probe.json. Not part of the server.
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';
import v8 from 'node:v8';

const require = createRequire(import.meta.url);
const { register } = require('node:module');
const { MessageChannel } = require('node:worker_threads');
const esm = [];
// The hooks run on a loader thread of their own, which adds to RSS: only when the module list is asked for.
if (process.env.IDLE_PROBE_MODULES === '1') {
  const { port1, port2 } = new MessageChannel();
  port1.on('message', (url) => esm.push(url));
  port1.unref();
  register('./idle-memory-hooks.mjs', import.meta.url, { data: { port: port2 }, transferList: [port2] });
}

const dataDir = process.argv[process.argv.indexOf('--data-dir') + 1];
process.on('SIGUSR2', () => {
  const before = process.memoryUsage();
  const spaces = v8.getHeapSpaceStatistics();
  globalThis.gc?.();
  const after = process.memoryUsage();
  const modules = [...new Set([...esm, ...Object.keys(require.cache).map((p) => `file://${p}`)])];
  writeFileSync(`${dataDir}/idle-probe.json`, JSON.stringify({ before, after, spaces, modules }));
});
