/**
 * A running request's cancellation: the client's `cancel`, or its connection closing. An AbortSignal
 * and its listener table cost about a kilobyte per request, and most requests are never cancelled: a
 * write waiting for its commit group listens here directly (the engine's CancelSource), and a signal
 * is made only for what asks for one.
 */
import type { CancelSource } from '../engine/engine.ts';

export class RequestCancel implements CancelSource {
  #cancelled = false;
  #controller: AbortController | undefined;
  /** Most requests have one listener at most (their statement's stopper): no Set for them. */
  #listeners: (() => void)[] | undefined;

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Aborted when the request is cancelled; made at the first ask. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#cancelled) this.#controller.abort();
    }
    return this.#controller.signal;
  }

  onCancel(listener: () => void): () => void {
    if (this.#cancelled) {
      listener();
      return () => {};
    }
    (this.#listeners ??= []).push(listener);
    return () => {
      const at = this.#listeners?.indexOf(listener) ?? -1;
      if (at !== -1) this.#listeners!.splice(at, 1);
    };
  }

  /** Cancels the request: its listeners are called once, its signal (if made) aborts. */
  abort(): void {
    if (this.#cancelled) return;
    this.#cancelled = true;
    const listeners = this.#listeners;
    this.#listeners = undefined;
    for (const listener of listeners ?? []) listener();
    this.#controller?.abort();
  }
}
