/**
 * Bench-only preload (`node --expose-gc --import bench/lib/gc-on-signal.mjs ...`): a full garbage
 * collection on SIGUSR2, so that a memory reading counts live objects rather than garbage V8 has not
 * collected yet. The servers themselves expose nothing of the kind; only the bench starts them with it.
 */
import { isMainThread } from 'node:worker_threads';

if (isMainThread && typeof globalThis.gc === 'function') {
  const collect = globalThis.gc;
  process.on('SIGUSR2', () => collect());
}
