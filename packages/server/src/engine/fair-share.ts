/**
 * Who gets the next of a fixed set of engine resources (read workers, pooled connections) when several
 * users want one. One user holds at most all but one of them, so one is always left for everyone else;
 * a freed one goes to the waiting user holding fewest now (ties to the longest waiting), so that users
 * take turns however many requests each one sends. The pools own their resources; this only counts
 * what each user holds and keeps the queue.
 */
import { RustyError } from '../errors/rusty-error.ts';

/** A request waiting for a resource, and whom it runs for. */
export interface FairWaiter<T> {
  readonly user: string;
  /**
   * Served before everyone else and not bound by its user's share: work that everyone's writes wait
   * for (the holder of the write gate) must not wait behind its own user's reads.
   */
  readonly urgent: boolean;
  resolve(resource: T): void;
  reject(err: unknown): void;
}

export class FairShare<T> {
  /** Resources each user holds now. */
  readonly #held = new Map<string, number>();
  /** Requests waiting, in arrival order. */
  readonly #waiters: FairWaiter<T>[] = [];
  /** Resources one user may hold at once: one always stays for everyone else. */
  readonly #perUser: number;

  constructor(size: number) {
    this.#perUser = Math.max(1, size - 1);
  }

  #holds(user: string): number {
    return this.#held.get(user) ?? 0;
  }

  /** Whether `user` may take one more now (whether one is free is the pool's to say). */
  mayTake(user: string, urgent = false): boolean {
    return urgent || this.#holds(user) < this.#perUser;
  }

  /** Counts one more held by `user`. */
  take(user: string): void {
    this.#held.set(user, this.#holds(user) + 1);
  }

  /** Counts one fewer held by `user`. */
  give(user: string): void {
    const held = this.#holds(user) - 1;
    if (held > 0) this.#held.set(user, held);
    else this.#held.delete(user);
  }

  /** Waits for the pool to hand `user` a resource; rejects with the signal's reason if it aborts first. */
  wait(user: string, signal: AbortSignal | undefined, urgent = false): Promise<T> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<T>((resolve, reject) => {
      const onAbort = (): void => {
        const at = this.#waiters.indexOf(waiter);
        if (at !== -1) this.#waiters.splice(at, 1);
        reject(signal!.reason);
      };
      const waiter: FairWaiter<T> = {
        user,
        urgent,
        resolve: (resource) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(resource);
        },
        reject: (err) => {
          signal?.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
  }

  /**
   * Takes out of the queue the waiter a freed resource goes to: an urgent one first, else of the users
   * under their share the one holding fewest now. Undefined when nobody waiting may take one.
   */
  next(): FairWaiter<T> | undefined {
    let best = -1;
    for (let i = 0; i < this.#waiters.length; i++) {
      const waiter = this.#waiters[i]!;
      if (waiter.urgent) {
        best = i;
        break;
      }
      if (!this.mayTake(waiter.user)) continue;
      if (best === -1 || this.#holds(waiter.user) < this.#holds(this.#waiters[best]!.user)) best = i;
    }
    return best === -1 ? undefined : this.#waiters.splice(best, 1)[0];
  }

  /** Hands `resource` to a waiter taken by next(), counting it as held by the waiter's user. */
  grant(waiter: FairWaiter<T>, resource: T): void {
    this.take(waiter.user);
    waiter.resolve(resource);
  }

  /** Puts a waiter taken by next() back at the head of the queue (nothing could be handed to it). */
  putBack(waiter: FairWaiter<T>): void {
    this.#waiters.unshift(waiter);
  }

  /** Fails every waiting request: the pool is closing. */
  close(): void {
    for (const waiter of this.#waiters.splice(0))
      waiter.reject(new RustyError('INTERNAL_ERROR', 'engine is closed'));
  }
}
