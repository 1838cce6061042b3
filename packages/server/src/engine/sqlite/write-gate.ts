/**
 * One writer at a time, in arrival order. SQLite lets one connection write at a time; left to race for
 * that lock, connections fail with SQLITE_BUSY or sleep-poll in SQLite's busy handler, which is unfair
 * and wakes late. Every write this process makes takes its turn here instead, so writers wait in a
 * queue bounded by their own deadline and never meet a lock held by another writer of this server.
 */

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class WriteGate {
  #held = false;
  readonly #queue: Waiter[] = [];
  #arrivals = 0;

  /** Writers that asked for the gate so far: one that joins another's turn checks none came since. */
  get arrivals(): number {
    return this.#arrivals;
  }

  /** True when nobody holds the gate and nobody waits for it. */
  get free(): boolean {
    return !this.#held && this.#queue.length === 0;
  }

  /** Takes the gate now if it is free (never ahead of a waiting writer); true when taken. */
  tryEnter(): boolean {
    this.#arrivals++;
    if (!this.free) return false;
    this.#held = true;
    return true;
  }

  /** Waits for the gate. Rejects with the signal's reason if it aborts first. */
  enter(signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    if (this.tryEnter()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#queue.indexOf(waiter);
        if (at !== -1) this.#queue.splice(at, 1);
        reject(signal!.reason);
      };
      const waiter: Waiter = {
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
        reject,
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#queue.push(waiter);
    });
  }

  /** Hands the gate to the next writer in line, or frees it. */
  leave(): void {
    const next = this.#queue.shift();
    if (next) next.resolve();
    else this.#held = false;
  }

  /** Runs `work` holding the gate. */
  async hold<T>(work: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    await this.enter(signal);
    try {
      return await work();
    } finally {
      this.leave();
    }
  }
}
