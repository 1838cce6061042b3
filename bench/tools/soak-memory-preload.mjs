// Loaded into the server by soak-memory-probe.ts (node --expose-gc --import): on SIGUSR2 a full garbage
// collection, then one JSON line on stderr with what is left (V8's heap, its spaces, RSS, external
// memory); and, when DATA_DIR/snapshot-request names a file, a heap snapshot written there. Not part of
// the server.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import v8 from 'node:v8';
import { isMainThread } from 'node:worker_threads';

const dataDir = process.argv[process.argv.indexOf('--data-dir') + 1];
if (isMainThread && typeof globalThis.gc === 'function') {
  const collect = globalThis.gc;
  let collections = 0;
  process.on('SIGUSR2', () => {
    collect();
    const memory = process.memoryUsage();
    const heap = v8.getHeapStatistics();
    const all = v8.getHeapSpaceStatistics();
    const spaces = Object.fromEntries(all.map((s) => [s.space_name, s.space_used_size]));
    // What each space holds resident, used or not (a grown young generation stays so for a while).
    const spaceSizes = Object.fromEntries(all.map((s) => [s.space_name, s.physical_space_size]));
    process.stderr.write(
      `soak-probe ${++collections} ${JSON.stringify({
        rss: memory.rss,
        heapUsed: heap.used_heap_size,
        heapTotal: heap.total_heap_size,
        external: memory.external,
        arrayBuffers: memory.arrayBuffers,
        mallocedMemory: heap.malloced_memory,
        spaces,
        spaceSizes,
      })}\n`,
    );
    const request = `${dataDir}/snapshot-request`;
    if (existsSync(request)) {
      const file = readFileSync(request, 'utf8').trim();
      rmSync(request);
      v8.writeHeapSnapshot(file);
      process.stderr.write(`soak-probe-snapshot ${file}\n`);
    }
  });
}
