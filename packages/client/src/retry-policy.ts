/**
 * When and how soon the client tries again after a failed connection attempt or a lost connection.
 *
 * The default: a retry about every second for the first ten, about ten seconds (a server restarted or
 * briefly unreachable is found within about a second of returning), then each wait 1.5 times the one before, capped (5 s by default); every wait
 * with jitter so that many clients do not come back in step; and no limit on the number of attempts
 * once the client has been open (the first connection has `initialConnectTimeout` instead). The application may decide instead, as with graphql-ws: `shouldRetry` says whether to try
 * again at all, `retryWait` how long to wait before an attempt.
 */
import type { RustyDBError } from './errors.ts';

/** What a retry decision is made on. */
export interface RetryContext {
  /** The attempt about to be made: 1 for the first retry after a loss or a failed first attempt. */
  attempt: number;
  /** Why the previous attempt failed or the connection was lost. */
  error: RustyDBError;
  /** Whether this client has been open since it was created or last opened. */
  everConnected: boolean;
}

/** Whether to try again. Returning false closes the client with CONNECTION_FAILED. */
export type ShouldRetry = (context: RetryContext) => boolean;

/** How long to wait before an attempt: milliseconds, or a promise that settles when it may go. */
export type RetryWait = (attempt: number, context: RetryContext) => number | Promise<void>;

export interface RetryPolicyOptions {
  /** Reconnect after a retryable close. Default true. */
  reconnect: boolean;
  /** Attempts in a row before the client closes with CONNECTION_FAILED. Default: no limit. */
  maxReconnectAttempts: number;
  /** The wait before the first retry, ms. Default 1000. */
  reconnectDelay: number;
  /** The longest wait, ms. Default 5000. */
  maxReconnectDelay: number;
  /** Each wait is scaled by a random factor in [1 - jitter, 1 + jitter]. Default 0.25. */
  reconnectJitter: number;
  /** Decides whether to try again (after `maxReconnectAttempts` and `reconnect` allowed it). */
  shouldRetry: ShouldRetry | undefined;
  /** Replaces the default wait. */
  retryWait: RetryWait | undefined;
}

/** Retries made `reconnectDelay` apart before the waits start to grow. */
export const STEADY_RETRIES = 10;

/** How much longer each wait after the steady ones is than the one before. */
export const BACKOFF_FACTOR = 1.5;

/**
 * The default wait before retry `attempt` (from 1): `reconnectDelay` for the first STEADY_RETRIES, then
 * `reconnectDelay × 1.5^(attempt − STEADY_RETRIES)`, capped at `maxReconnectDelay`, ± jitter.
 */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryPolicyOptions, 'reconnectDelay' | 'maxReconnectDelay' | 'reconnectJitter'>,
  random: () => number = Math.random,
): number {
  const { reconnectDelay, maxReconnectDelay, reconnectJitter } = options;
  const base = Math.min(
    maxReconnectDelay,
    reconnectDelay * BACKOFF_FACTOR ** Math.max(0, attempt - STEADY_RETRIES),
  );
  return Math.max(0, base * (1 - reconnectJitter + 2 * reconnectJitter * random()));
}

/** Whether the policy allows another attempt. */
export function allowsRetry(options: RetryPolicyOptions, context: RetryContext): boolean {
  if (!options.reconnect || context.attempt > options.maxReconnectAttempts) return false;
  return options.shouldRetry ? options.shouldRetry(context) : true;
}

/**
 * One pending wait at a time: `start` arms it, `fireNow` skips what is left of it (the network came
 * back), `cancel` forgets it. A wait that was cancelled or skipped never calls back late.
 */
export class RetryTimer {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due: (() => void) | undefined;
  #token = 0;

  get pending(): boolean {
    return this.#due !== undefined;
  }

  start(options: RetryPolicyOptions, context: RetryContext, due: () => void): void {
    this.cancel();
    const token = this.#token;
    this.#due = due;
    const go = (): void => {
      if (token === this.#token) this.fireNow();
    };
    let wait: number | Promise<void>;
    try {
      wait = options.retryWait
        ? options.retryWait(context.attempt, context)
        : backoffDelay(context.attempt, options);
    } catch {
      // A failing hook must not stall reconnection: fall back to the default wait.
      wait = backoffDelay(context.attempt, options);
    }
    if (typeof wait === 'number') this.#timer = setTimeout(go, Number.isFinite(wait) ? Math.max(0, wait) : 0);
    else wait.then(go, go);
  }

  /** Runs the pending attempt now, if there is one. */
  fireNow(): void {
    const due = this.#due;
    if (!due) return;
    this.cancel();
    due();
  }

  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#due = undefined;
    this.#token++;
  }
}
