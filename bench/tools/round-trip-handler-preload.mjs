/**
 * Preloaded (`node --import`) into the servers of bench/tools/round-trip-ab.ts --handler-times DIR:
 * times each WebSocket `message` event's handling on the main thread — from the event to the first
 * write to a socket during it (the server's own work before its answer leaves) and to its end (the
 * write's system call included: the answers of both RustyDB and the floor are written within the
 * handler) — and writes the times to DIR/<pid>.json at exit. The same measurement in every server, so
 * that their round trips can be split into the server's part and the rest (the kernel, the scheduler,
 * the client).
 */
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import { Duplex } from 'node:stream';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const dir = process.env.RT_HANDLER_TIMES;
if (dir && isMainThread) {
  const MAX = 1 << 20;
  const starts = new Float64Array(MAX);
  const writes = new Float64Array(MAX);
  const ends = new Float64Array(MAX);
  // The event loop's cumulative active and idle (waiting in epoll) time at each handler's start and
  // end: between two handlers, the loop's other work (timers, collections' observers, reads) and its
  // wait for the next request.
  const activeAtStart = new Float64Array(MAX);
  const idleAtStart = new Float64Array(MAX);
  const activeAtEnd = new Float64Array(MAX);
  let n = 0;
  let inHandler = false;
  let firstWrite = 0;
  const emit = EventEmitter.prototype.emit;
  EventEmitter.prototype.emit = function (event, ...args) {
    // A `ws` WebSocket has a _receiver; nested message events (none expected) are not timed apart.
    if (event !== 'message' || inHandler || this._receiver === undefined)
      return emit.call(this, event, ...args);
    inHandler = true;
    firstWrite = 0;
    const start = performance.now();
    const before = performance.eventLoopUtilization();
    try {
      return emit.call(this, event, ...args);
    } finally {
      const end = performance.now();
      inHandler = false;
      if (n < MAX) {
        activeAtStart[n] = before.active;
        idleAtStart[n] = before.idle;
        activeAtEnd[n] = performance.eventLoopUtilization().active;
        starts[n] = start;
        writes[n] = firstWrite || end;
        ends[n++] = end;
      }
    }
  };
  // What else the main thread ran: garbage collections and timer callbacks, each as [start, end].
  const collections = [];
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries())
      collections.push([entry.startTime, entry.startTime + entry.duration]);
  }).observe({ entryTypes: ['gc'] });
  const timers = [];
  for (const name of ['setTimeout', 'setInterval', 'setImmediate']) {
    const original = globalThis[name];
    globalThis[name] = function (callback, ...rest) {
      if (typeof callback !== 'function') return original.call(this, callback, ...rest);
      return original.call(
        this,
        function (...args) {
          const from = performance.now();
          try {
            return callback.apply(this, args);
          } finally {
            if (timers.length < MAX) timers.push([from, performance.now()]);
          }
        },
        ...rest,
      );
    };
  }
  // net.Socket's write is Duplex.prototype.write (copied from Writable's when Duplex was defined).
  const write = Duplex.prototype.write;
  Duplex.prototype.write = function (...args) {
    if (inHandler && firstWrite === 0) firstWrite = performance.now();
    return write.apply(this, args);
  };
  process.on('exit', () => {
    const list = (a) => Array.from(a.subarray(0, n), (v) => Math.round(v * 1000) / 1000);
    writeFileSync(
      `${dir}/${process.pid}.json`,
      JSON.stringify({
        starts: list(starts),
        writes: list(writes),
        ends: list(ends),
        activeAtStart: list(activeAtStart),
        idleAtStart: list(idleAtStart),
        activeAtEnd: list(activeAtEnd),
        collections,
        timers,
      }),
    );
  });
}
