/**
 * How busy this thread's event loop has been lately: the share of the last window it spent running
 * callbacks rather than waiting for I/O (`performance.eventLoopUtilization`). Work that may run either
 * here or on a worker thread asks it, so that it takes only time the loop has to spare: the loop serves
 * every socket, a worker only its own statement.
 */
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** The shortest window a reading covers: shorter ones swing with each callback. */
const WINDOW_MS = 100;

export class EventLoopLoad {
  #mark: EventLoopUtilization = performance.eventLoopUtilization();
  #markedAt = performance.now();
  #busy = 0;

  /**
   * The busy share (0..1) of the last completed window: from the mark before to the latest, which this
   * call sets when the latest is WINDOW_MS old or more. A caller that reads rarely gets an average over
   * a long window.
   */
  busy(): number {
    const now = performance.now();
    if (now - this.#markedAt >= WINDOW_MS) {
      const mark = performance.eventLoopUtilization();
      this.#busy = performance.eventLoopUtilization(mark, this.#mark).utilization;
      this.#mark = mark;
      this.#markedAt = now;
    }
    return this.#busy;
  }
}
