/**
 * Bench-only preload (`node --expose-gc --import bench/lib/gc-on-signal.mjs ...`): a full garbage
 * collection on SIGUSR2, so that a memory reading counts live objects rather than garbage V8 has not
 * collected yet, and reports the heap left on stderr. The servers themselves expose nothing of the kind; only the bench starts them with it.
 */
import { getHeapSpaceStatistics, getHeapStatistics } from 'node:v8';
import { isMainThread } from 'node:worker_threads';

if (isMainThread && typeof globalThis.gc === 'function') {
  const collect = globalThis.gc;
  let collections = 0;
  process.on('SIGUSR2', () => {
    collect();
    // The live JavaScript heap left, for a reader that wants it rather than the RSS; and the young
    // generation's resident pages, which a reader of the RSS may want to leave out (bench (e)).
    const young = getHeapSpaceStatistics()
      .filter((space) => space.space_name === 'new_space' || space.space_name === 'new_large_object_space')
      .reduce((sum, space) => sum + space.physical_space_size, 0);
    process.stderr.write(
      `gc ${++collections}: heap used ${getHeapStatistics().used_heap_size}, young generation ${young}\n`,
    );
  });
}
