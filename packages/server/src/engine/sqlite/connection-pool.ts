/**
 * A fixed set of asynchronous SQLite connections for statements that must not run on the event loop:
 * scans, DDL, streamed results and transactions. A connection is held by one statement (or one
 * transaction) at a time, so interrupting it stops exactly that work.
 */
import type { AsyncDatabase } from './driver.ts';
import { RustyError } from '../../errors/rusty-error.ts';

export type PooledConnection = AsyncDatabase;

/**
 * A connection holding more statements and cursors than this is replaced when it comes back: it keeps
 * them until it closes (see openAsync), and that must not grow without end.
 */
const MAX_RETAINED = 256;

interface Waiter {
  resolve(conn: PooledConnection): void;
  reject(err: unknown): void;
}

export class ConnectionPool {
  #idle: PooledConnection[] = [];
  #waiters: Waiter[] = [];
  #size: number;
  #open: number = 0;
  #closed = false;
  readonly #openConnection: () => Promise<PooledConnection>;

  constructor(size: number, openConnection: () => Promise<PooledConnection>) {
    this.#size = size;
    this.#openConnection = openConnection;
  }

  async acquire(signal?: AbortSignal): Promise<PooledConnection> {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'engine is closed');
    const idle = this.#idle.pop();
    if (idle) return idle;
    if (this.#open < this.#size) {
      this.#open++;
      try {
        return await this.#openConnection();
      } catch (err) {
        this.#open--;
        throw err;
      }
    }
    return new Promise<PooledConnection>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.#waiters.indexOf(waiter);
          if (at !== -1) {
            this.#waiters.splice(at, 1);
            reject(signal.reason);
          }
        },
        { once: true },
      );
    });
  }

  release(conn: PooledConnection): void {
    if (this.#closed) {
      conn.close();
      return;
    }
    if (conn.retained > MAX_RETAINED) {
      this.discard(conn);
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#idle.push(conn);
  }

  /**
   * Drops a connection whose state is no longer trusted (a statement left unfinished holds a read
   * snapshot until the driver frees it), and frees its place for a fresh one.
   */
  discard(conn: PooledConnection): void {
    try {
      conn.close();
    } catch {
      // Closing an already broken connection may throw; its place is freed either way.
    }
    this.#open--;
    const waiter = this.#waiters.shift();
    if (waiter) {
      this.acquire().then(waiter.resolve, waiter.reject);
    }
  }

  close(): void {
    this.#closed = true;
    for (const conn of this.#idle) conn.close();
    this.#idle = [];
    for (const waiter of this.#waiters) waiter.reject(new RustyError('INTERNAL_ERROR', 'engine is closed'));
    this.#waiters = [];
  }
}
