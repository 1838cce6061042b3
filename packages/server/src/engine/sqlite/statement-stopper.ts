/**
 * Ties a request to its deadline and its caller's AbortSignal. The clock starts when the request
 * does, so time spent waiting for a connection or for its turn to write counts too. When either fires,
 * `signal` aborts (ending any wait) and the attached connection is interrupted, so the engine really
 * stops; the error that follows is reported as a timeout or a cancellation rather than as a generic
 * SQLite interrupt.
 */
import { RustyError } from '../../errors/rusty-error.ts';
import type { CancelSource } from '../engine.ts';

export interface Interruptible {
  interrupt(): void;
}

const REPEAT_INTERRUPT_MS = 25;

export class StatementStopper {
  #reason: 'timeout' | 'cancelled' | undefined;
  #repeat: NodeJS.Timeout | undefined;
  #target: Interruptible | undefined;
  /** What the request was doing, for the timeout message. */
  #waitingFor: string | undefined;
  readonly #timer: NodeJS.Timeout;
  readonly #callerSignal: AbortSignal | undefined;
  /** Forgets this stopper's listener on the caller's CancelSource. */
  readonly #forgetCancel: (() => void) | undefined;
  readonly #onAbort = (): void => this.#stop('cancelled');
  /** Made when a wait first asks for `signal`: most requests never wait on one (see onStop). */
  #controller: AbortController | undefined;
  /** Called once when the request is stopped (see onStop). */
  #stopListeners: Set<() => void> | undefined;
  readonly #timeoutMs: number;

  /** @param caller what stops the request from outside: its AbortSignal, or its CancelSource */
  constructor(
    timeoutMs: number,
    caller: { signal?: AbortSignal | undefined; cancel?: CancelSource | undefined } = {},
  ) {
    this.#timeoutMs = timeoutMs;
    this.#timer = setTimeout(() => this.#stop('timeout'), timeoutMs);
    const { signal, cancel } = caller;
    this.#callerSignal = signal;
    if (signal?.aborted || cancel?.cancelled) this.#stop('cancelled');
    else {
      signal?.addEventListener('abort', this.#onAbort, { once: true });
      this.#forgetCancel = cancel?.onCancel(this.#onAbort);
    }
  }

  /** Aborts when the request is stopped; waits (for a connection, for the write lock) listen to it. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#reason) this.#controller.abort(this.#stoppedError());
    }
    return this.#controller.signal;
  }

  /**
   * Calls `listener` once should the request be stopped from now on; the returned function forgets
   * it. What an AbortSignal listener does, without making one per request: a keyed write waiting for
   * its commit group listens here (see CommitGroups.submit).
   */
  onStop(listener: () => void): () => void {
    (this.#stopListeners ??= new Set()).add(listener);
    return () => this.#stopListeners?.delete(listener);
  }

  /** The error a stopped request fails with. */
  get stoppedError(): RustyError | undefined {
    return this.#reason ? this.#stoppedError() : undefined;
  }

  /** Runs `wait`, naming what is awaited in the timeout message should the deadline pass meanwhile. */
  waitFor<T>(what: string, wait: (signal: AbortSignal) => Promise<T>): Promise<T> {
    return this.waitOn(what, () => wait(this.signal));
  }

  /** As waitFor, for a wait that listens to this stopper itself (see onStop). */
  async waitOn<T>(what: string, wait: () => Promise<T>): Promise<T> {
    this.throwIfStopped();
    this.#waitingFor = what;
    try {
      return await wait();
    } catch (err) {
      throw this.translate(err);
    } finally {
      this.#waitingFor = undefined;
    }
  }

  /** The connection the request now runs on: a stop from here on interrupts it. */
  attach(target: Interruptible): void {
    this.#target = target;
    if (this.#reason) this.#interruptRepeatedly();
  }

  /** Forgets the connection (before it is closed or handed to someone else). */
  detach(): void {
    this.#target = undefined;
    clearInterval(this.#repeat);
    this.#repeat = undefined;
  }

  #stop(reason: 'timeout' | 'cancelled'): void {
    if (this.#reason) return;
    this.#reason = reason;
    this.#controller?.abort(this.#stoppedError());
    const listeners = this.#stopListeners;
    this.#stopListeners = undefined;
    for (const listener of listeners ?? []) listener();
    if (this.#target) this.#interruptRepeatedly();
  }

  #interruptRepeatedly(): void {
    this.#target!.interrupt();
    // SQLite drops an interrupt that arrives before the statement has started on its worker thread,
    // so keep interrupting until the statement is over and the connection detached.
    this.#repeat ??= setInterval(() => this.#target?.interrupt(), REPEAT_INTERRUPT_MS);
  }

  get stopped(): boolean {
    return this.#reason !== undefined;
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
    if (this.#reason === 'cancelled') return new RustyError('QUERY_CANCELLED', 'query cancelled');
    return this.#waitingFor
      ? new RustyError(
          'QUERY_TIMEOUT',
          `waited ${this.#timeoutMs} ms for ${this.#waitingFor} without getting it; try again`,
          { waiting_for: this.#waitingFor },
        )
      : new RustyError(
          'QUERY_TIMEOUT',
          `statement exceeded the ${this.#timeoutMs} ms timeout and was stopped`,
        );
  }

  dispose(): void {
    clearTimeout(this.#timer);
    this.detach();
    this.#callerSignal?.removeEventListener('abort', this.#onAbort);
    this.#forgetCancel?.();
  }
}
