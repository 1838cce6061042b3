/**
 * An async iterator fed from outside: a subscription source pushes values (or an error, or the end)
 * and GraphQL pulls them. `return()` — the client unsubscribed or the socket closed — runs the clean-up
 * once, at once, even while a pull is waiting; it is the one release path of a subscription's resources.
 */
export class PushIterator<T> implements AsyncIterableIterator<T> {
  readonly #queue: T[] = [];
  #waiting: { resolve: (r: IteratorResult<T>) => void; reject: (err: unknown) => void } | undefined;
  #error: unknown;
  #failed = false;
  #ended = false;
  #cleanUp: (() => void) | undefined;
  #sink: ((value: T) => boolean) | undefined;

  constructor(cleanUp?: () => void) {
    this.#cleanUp = cleanUp;
  }

  /** Values queued and not yet pulled. */
  get queued(): number {
    return this.#queue.length;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Sets (or replaces) what `return()` and the end run. */
  onCleanUp(cleanUp: () => void): void {
    this.#cleanUp = cleanUp;
  }

  /**
   * Hands values to `sink` instead of the reader, while the reader waits with nothing queued: every
   * value pulled before has then been dealt with, so one taken by the sink cannot overtake it. A value
   * the sink refuses (false) goes to the reader as usual, and so do the ones after it until the reader
   * waits again.
   */
  divert(sink: (value: T) => boolean): void {
    this.#sink = sink;
  }

  push(value: T): void {
    if (this.#ended || this.#failed) return;
    if (this.#waiting && this.#sink?.(value)) return;
    if (this.#waiting) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting.resolve({ value, done: false });
    } else this.#queue.push(value);
  }

  /** Ends with an error once the queued values have been pulled. */
  fail(err: unknown): void {
    if (this.#ended || this.#failed) return;
    this.#failed = true;
    this.#error = err;
    this.#release();
    if (this.#waiting && this.#queue.length === 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting.reject(err);
    }
  }

  /** Ends normally once the queued values have been pulled. */
  end(): void {
    if (this.#ended || this.#failed) return;
    this.#ended = true;
    this.#release();
    if (this.#waiting && this.#queue.length === 0) {
      const waiting = this.#waiting;
      this.#waiting = undefined;
      waiting.resolve({ value: undefined, done: true });
    }
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#queue.length > 0) return Promise.resolve({ value: this.#queue.shift()!, done: false });
    if (this.#failed) {
      this.#failed = false;
      this.#ended = true;
      return Promise.reject(this.#error);
    }
    if (this.#ended) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.#waiting = { resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    this.#ended = true;
    this.#failed = false;
    this.#queue.length = 0;
    this.#release();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.resolve({ value: undefined, done: true });
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(err: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(err);
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #release(): void {
    this.#sink = undefined;
    const cleanUp = this.#cleanUp;
    this.#cleanUp = undefined;
    cleanUp?.();
  }
}
