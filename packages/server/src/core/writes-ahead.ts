/**
 * The writes of one connection that the engine has taken but commits later, in a group with others
 * (see Engine.deferredWrite), until each is answered. Keyed writes used to run inline, in the order
 * their messages arrived, so a later request of the same connection always saw them; a write that
 * waits for its group must not let the connection's later requests overtake it. A later request waits
 * until the writes ahead of it at its arrival are answered (committed or failed); a later deferred
 * write needs no wait: the engine commits deferred writes in their order of arrival, and it may share
 * their group.
 */
import { RustyError } from '../errors/rusty-error.ts';

/** What a request that waits here is said to wait for, should its deadline pass meanwhile. */
export const WAITING_FOR_WRITES = 'the earlier writes of this connection';

export class WritesAhead {
  /** One promise per write not answered yet; each settles (never rejects) once it is answered. */
  readonly #pending = new Set<Promise<void>>();

  get empty(): boolean {
    return this.#pending.size === 0;
  }

  /** Counts `answered` (the write's request, settled once its answer is sent) as ahead until it settles. */
  track(answered: Promise<unknown>): void {
    const settled = answered.then(
      () => undefined,
      () => undefined,
    );
    this.#pending.add(settled);
    void settled.then(() => this.#pending.delete(settled));
  }

  /**
   * The writes ahead now, as one promise that settles once they are all answered: taken when a request
   * arrives, so that writes sent after it are not waited for.
   */
  answered(): Promise<void> {
    return Promise.all(this.#pending).then(() => undefined);
  }
}

/**
 * Waits for `ahead` (see WritesAhead.answered), or until `signal` aborts (QUERY_CANCELLED) or `timeoutMs`
 * passes (QUERY_TIMEOUT): the statement timeout counts waits included.
 */
export function waitForWritesAhead(
  ahead: Promise<void>,
  signal: AbortSignal,
  timeoutMs: number,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const finish = (err?: RustyError): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (err) reject(err);
      else resolve();
    };
    const onAbort = (): void => finish(new RustyError('QUERY_CANCELLED', 'query cancelled'));
    const timer = setTimeout(
      () =>
        finish(
          new RustyError(
            'QUERY_TIMEOUT',
            `waited ${timeoutMs} ms for ${WAITING_FOR_WRITES} without getting it; try again`,
            { waiting_for: WAITING_FOR_WRITES },
          ),
        ),
      timeoutMs,
    );
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    void ahead.then(() => finish());
  });
}
