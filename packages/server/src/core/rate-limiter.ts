/**
 * A token bucket per connection: `rate` messages a second on average, bursts up to `burst`.
 * Rejections are counted over a sliding window so that a client that keeps flooding can be cut off.
 */
export class TokenBucket {
  #tokens: number;
  #last: number;
  readonly #rate: number;
  readonly #burst: number;

  constructor(rate: number, burst: number = rate) {
    this.#rate = rate;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = performance.now();
  }

  /** Takes one token; returns 0 when allowed, or the milliseconds until one is available. */
  take(now: number = performance.now()): number {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) * this.#rate) / 1000);
    this.#last = now;
    if (this.#tokens >= 1) {
      this.#tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - this.#tokens) * 1000) / this.#rate);
  }
}

/** Counts events in fixed windows; `exceeded` once a window holds more than `limit` of them. */
export class ViolationCounter {
  #windowStart = performance.now();
  #count = 0;
  readonly #windowMs: number;
  readonly #limit: number;

  constructor(limit: number, windowMs: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  /** Records one violation; true when the limit for the current window is passed. */
  record(now: number = performance.now()): boolean {
    if (now - this.#windowStart > this.#windowMs) {
      this.#windowStart = now;
      this.#count = 0;
    }
    this.#count++;
    return this.#count > this.#limit;
  }
}
