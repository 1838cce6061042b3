/**
 * The client's side of the server's limits, from `auth_success.limits`: a token bucket that keeps the
 * messages of one connection under `rate_limit_rps` (bursts up to `rate_limit_burst`), and a cap on the
 * `query`/`batch` requests running at once (`max_running_queries`). Both run a little below the
 * advertised figures (`safety`), so that timing jitter between the two ends never tips a burst over.
 */
import type { ServerLimits } from '@rustydb/protocol';

export interface RateLimiterOptions {
  /** Fraction of the advertised rate and burst the client allows itself. Default 0.9. */
  safety?: number;
}

export class ClientRateLimiter {
  readonly #safety: number;
  #rate = Infinity;
  #capacity = Infinity;
  #tokens = Infinity;
  #last = 0;
  #maxRunning = Infinity;

  constructor(options: RateLimiterOptions = {}) {
    this.#safety = options.safety ?? 0.9;
  }

  /**
   * Applies the limits of a newly authenticated connection. `sentSinceOpen` messages (the `auth`) were
   * already counted by the server's fresh bucket. `fresh` is false for a re-authentication on the
   * same socket: the bucket keeps its level, only the figures change.
   */
  configure(limits: ServerLimits | undefined, sentSinceOpen: number, fresh: boolean, now: number): void {
    this.#maxRunning = limits?.max_running_queries ?? Infinity;
    const rps = limits?.rate_limit_rps ?? null;
    if (rps === null) {
      this.#rate = this.#capacity = this.#tokens = Infinity;
      return;
    }
    const burst = limits?.rate_limit_burst ?? rps;
    this.#rate = rps * this.#safety;
    this.#capacity = Math.max(1, Math.floor(burst * this.#safety));
    if (fresh || !Number.isFinite(this.#tokens)) {
      this.#tokens = Math.max(0, this.#capacity - sentSinceOpen);
      this.#last = now;
    } else this.#tokens = Math.min(this.#tokens, this.#capacity);
  }

  /** Forgets the limits (the connection closed; the next one starts with a new server bucket). */
  reset(): void {
    this.#rate = this.#capacity = this.#tokens = Infinity;
    this.#maxRunning = Infinity;
  }

  get maxRunning(): number {
    return this.#maxRunning;
  }

  /** Takes one token: 0 when the message may go now, else the milliseconds until it may. */
  take(now: number): number {
    if (!Number.isFinite(this.#rate)) return 0;
    this.#tokens = Math.min(this.#capacity, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.max(1, Math.ceil(((1 - this.#tokens) * 1000) / this.#rate));
  }
}
