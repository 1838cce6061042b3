/**
 * Slows down password guessing. Failed logins are counted per username and client address; after
 * `maxAttempts` failures each further failure makes the next attempt wait, the wait doubling with
 * every failure up to `maxBackoffMs`. While a key waits, attempts are refused without checking the
 * password at all (so guessing costs nothing but time, and the server spends no hashing on it). A
 * success clears the username's record.
 *
 * Attempts still being checked count too: once the allowance is used up, no second attempt starts
 * while one is in flight, so a thousand guesses sent at once are not all checked before the first
 * failure is recorded.
 *
 * A client address that fails across many usernames is limited the same way, with ten times the
 * allowance, so spraying one password over many accounts is slowed as well.
 *
 * Both count a client as the per-address limits do (client-address.ts): an IPv6 client by its /64, in
 * which it may pick a fresh address for every guess.
 */
import { addressKey } from '../core/client-address.ts';

export interface LoginLimits {
  maxAttempts: number;
  baseBackoffMs: number;
  maxBackoffMs: number;
}

interface Entry {
  /** Failures, counting the attempts still in flight. */
  failures: number;
  inFlight: number;
  /** performance.now() before which attempts are refused. */
  blockedUntil: number;
  lastActivity: number;
}

/** Keys tracked at most; the least recently active are forgotten first. */
const MAX_ENTRIES = 100_000;
/** Per-address allowance, as a multiple of the per-username one. */
const ADDRESS_FACTOR = 10;

/** One login attempt that was let through; report how it ended exactly once. */
export interface LoginAttempt {
  succeeded(): void;
  failed(): void;
}

export class LoginLimiter {
  readonly #limits: LoginLimits;
  readonly #entries = new Map<string, Entry>();

  constructor(limits: LoginLimits) {
    this.#limits = limits;
  }

  get limits(): LoginLimits {
    return this.#limits;
  }

  /**
   * Starts an attempt: either the milliseconds the caller must wait (nothing was recorded), or the
   * attempt, counted as a failure until it reports otherwise.
   */
  attempt(username: string, address: string, now: number = performance.now()): number | LoginAttempt {
    const keys: [string, number][] = [
      [usernameFailuresKey(username, address), this.#limits.maxAttempts],
      [clientFailuresKey(address), this.#limits.maxAttempts * ADDRESS_FACTOR],
    ];
    const wait = Math.max(...keys.map(([key, allowance]) => this.#wait(key, allowance, now)));
    if (wait > 0) return Math.ceil(wait);
    const entries = keys.map(([key]) => this.#begin(key, now));
    let reported = false;
    return {
      succeeded: () => {
        if (reported) return;
        reported = true;
        for (const entry of entries) entry.inFlight--;
        this.#entries.delete(keys[0]![0]);
        // The address keeps its other failures; this attempt was not one.
        entries[1]!.failures = Math.max(0, entries[1]!.failures - 1);
      },
      failed: () => {
        if (reported) return;
        reported = true;
        const at = performance.now();
        keys.forEach(([, allowance], i) => {
          const entry = entries[i]!;
          entry.inFlight--;
          entry.lastActivity = at;
          const over = entry.failures - allowance;
          if (over > 0) {
            entry.blockedUntil =
              at + Math.min(this.#limits.baseBackoffMs * 2 ** (over - 1), this.#limits.maxBackoffMs);
          }
        });
      },
    };
  }

  #wait(key: string, allowance: number, now: number): number {
    const entry = this.#entries.get(key);
    if (!entry) return 0;
    if (this.#stale(entry, now)) {
      this.#entries.delete(key);
      return 0;
    }
    if (entry.blockedUntil > now) return entry.blockedUntil - now;
    // The allowance is spent and an attempt is still being checked: wait for its outcome.
    if (entry.failures > allowance && entry.inFlight > 0) return this.#limits.baseBackoffMs;
    return 0;
  }

  #begin(key: string, now: number): Entry {
    let entry = this.#entries.get(key);
    if (entry && this.#stale(entry, now)) entry = undefined;
    entry ??= { failures: 0, inFlight: 0, blockedUntil: 0, lastActivity: now };
    entry.failures++;
    entry.inFlight++;
    entry.lastActivity = now;
    // Re-insert so the map's order is least recently active first.
    this.#entries.delete(key);
    this.#entries.set(key, entry);
    if (this.#entries.size > MAX_ENTRIES) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined && oldest !== key) this.#entries.delete(oldest);
    }
    return entry;
  }

  /** A key quiet for twice the longest wait, with nothing in flight, starts afresh. */
  #stale(entry: Entry, now: number): boolean {
    return (
      entry.inFlight === 0 &&
      now > entry.blockedUntil &&
      now - entry.lastActivity > 2 * this.#limits.maxBackoffMs
    );
  }
}

/** The failures of one username from one client. */
function usernameFailuresKey(username: string, address: string): string {
  return `u\u0000${username.toLowerCase()}\u0000${addressKey(address)}`;
}

/** The failures of one client, whatever the username. */
function clientFailuresKey(address: string): string {
  return `a\u0000${addressKey(address)}`;
}
