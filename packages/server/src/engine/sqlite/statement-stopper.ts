/**
 * Ties a running statement to its deadline and its caller's AbortSignal. Either one interrupts the
 * connection, so the engine really stops; the error that follows is reported as a timeout or a
 * cancellation rather than as a generic SQLite interrupt.
 */
import { RustyError } from '../../errors/rusty-error.ts';

export interface Interruptible {
  interrupt(): void;
}

const REPEAT_INTERRUPT_MS = 25;

export class StatementStopper {
  #reason: 'timeout' | 'cancelled' | undefined;
  #repeat: NodeJS.Timeout | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #signal: AbortSignal | undefined;
  readonly #onAbort = (): void => this.#stop('cancelled');
  readonly #target: Interruptible;
  readonly #timeoutMs: number;

  constructor(target: Interruptible, timeoutMs: number, signal?: AbortSignal) {
    this.#target = target;
    this.#timeoutMs = timeoutMs;
    this.#timer = setTimeout(() => this.#stop('timeout'), timeoutMs);
    this.#signal = signal;
    if (signal?.aborted) this.#reason = 'cancelled';
    else signal?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #stop(reason: 'timeout' | 'cancelled'): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#target.interrupt();
    // SQLite drops an interrupt that arrives before the statement has started on its worker thread,
    // so keep interrupting until the statement is over and this stopper is disposed.
    this.#repeat = setInterval(() => this.#target.interrupt(), REPEAT_INTERRUPT_MS);
  }

  /** Throws if the statement was stopped, for checks between chunks. */
  throwIfStopped(): void {
    if (this.#reason) throw this.#stoppedError();
  }

  /** The error to report for `err`, thrown while this statement ran. */
  translate(err: unknown): unknown {
    if (this.#reason) return this.#stoppedError();
    return err;
  }

  #stoppedError(): RustyError {
    return this.#reason === 'timeout'
      ? new RustyError(
          'QUERY_TIMEOUT',
          `statement exceeded the ${this.#timeoutMs} ms timeout and was stopped`,
        )
      : new RustyError('QUERY_CANCELLED', 'query cancelled');
  }

  dispose(): void {
    clearTimeout(this.#timer);
    clearInterval(this.#repeat);
    this.#signal?.removeEventListener('abort', this.#onAbort);
  }
}
