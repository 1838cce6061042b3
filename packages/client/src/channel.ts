/**
 * A one-consumer async queue: producers push values, the consumer pulls them with `for await`.
 * It ends normally (`end`) or with an error (`fail`); `return()` from the consumer (a `break`) runs
 * the owner's `onReturn` once. Used by streams and subscriptions.
 */
import { RustyDBError } from './errors.ts';

export class Channel<T> implements AsyncIterableIterator<T> {
  readonly #buffer: T[] = [];
  #waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  #done = false;
  #error: unknown;
  #hasError = false;
  readonly #onReturn: () => void;
  readonly #onChange: () => void;

  /**
   * `onReturn`: the consumer stopped early. `onChange`: the buffer grew or shrank, or the consumer
   * started or stopped waiting (flow control looks at `size` and `waiting`).
   */
  constructor(onReturn: () => void = () => {}, onChange: () => void = () => {}) {
    this.#onReturn = onReturn;
    this.#onChange = onChange;
  }

  /** Values buffered and not yet taken. */
  get size(): number {
    return this.#buffer.length;
  }

  /** True while the consumer awaits a value and none is buffered. */
  get waiting(): boolean {
    return this.#waiter !== undefined;
  }

  get closed(): boolean {
    return this.#done || this.#hasError;
  }

  push(value: T): void {
    if (this.closed) return;
    const waiter = this.#waiter;
    if (waiter) {
      this.#waiter = undefined;
      waiter.resolve({ value, done: false });
    } else this.#buffer.push(value);
    this.#onChange();
  }

  /** No more values: the consumer gets the buffered ones, then `done`. */
  end(): void {
    if (this.closed) return;
    this.#done = true;
    this.#settleWaiter();
  }

  /** The consumer gets the buffered values, then `error` is thrown. */
  fail(error: unknown): void {
    if (this.closed) return;
    this.#hasError = true;
    this.#error = error;
    this.#settleWaiter();
  }

  #settleWaiter(): void {
    const waiter = this.#waiter;
    if (!waiter || this.#buffer.length > 0) return;
    this.#waiter = undefined;
    if (this.#hasError) waiter.reject(this.#error);
    else waiter.resolve({ value: undefined, done: true });
    this.#onChange();
  }

  next(): Promise<IteratorResult<T>> {
    if (this.#buffer.length > 0) {
      const value = this.#buffer.shift() as T;
      this.#onChange();
      return Promise.resolve({ value, done: false });
    }
    if (this.#hasError) {
      const error = this.#error;
      // The error is thrown once; later calls see the end.
      this.#hasError = false;
      this.#done = true;
      return Promise.reject(error);
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter) {
      return Promise.reject(
        new RustyDBError(
          'INVALID_USE',
          'next() was called while a previous next() is pending: an iterator has one reader at a time',
        ),
      );
    }
    const pending = new Promise<IteratorResult<T>>((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
    this.#onChange();
    return pending;
  }

  return(): Promise<IteratorResult<T>> {
    const wasOpen = !this.closed;
    this.#done = true;
    this.#hasError = false;
    this.#buffer.length = 0;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.resolve({ value: undefined, done: true });
    if (wasOpen) this.#onReturn();
    this.#onChange();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
