/**
 * A fixed set of asynchronous SQLite connections for statements that must not run on the event loop:
 * scans, DDL, streamed results and transactions. A connection is held by one statement (or one
 * transaction) at a time, so interrupting it stops exactly that work.
 */
import type { AsyncDatabase } from './driver.ts';
import { RustyError } from '../../errors/rusty-error.ts';
import { FairShare } from '../fair-share.ts';

export type PooledConnection = AsyncDatabase;

/**
 * A connection holding more statements and cursors than this is replaced when it comes back: it keeps
 * them until it closes (see openAsync), and that must not grow without end.
 */
const MAX_RETAINED = 256;

export class ConnectionPool {
  #idle: PooledConnection[] = [];
  /** Who gets a connection next: connections are shared fairly between users (see FairShare). */
  readonly #share: FairShare<PooledConnection>;
  #size: number;
  #open: number = 0;
  #closed = false;
  readonly #openConnection: () => Promise<PooledConnection>;

  constructor(size: number, openConnection: () => Promise<PooledConnection>) {
    this.#size = size;
    this.#share = new FairShare(size);
    this.#openConnection = openConnection;
  }

  /**
   * A connection for `user`, who gives it back with release or discard. `urgent`: the caller holds the
   * write gate, which every writer waits for; it is served first and may take the last free connection.
   */
  async acquire(user: string, signal?: AbortSignal, urgent = false): Promise<PooledConnection> {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'engine is closed');
    if (this.#share.mayTake(user, urgent)) {
      const idle = this.#idle.pop();
      if (idle) {
        this.#share.take(user);
        return idle;
      }
      if (this.#open < this.#size) {
        this.#share.take(user);
        return this.#openFor(user);
      }
    }
    return this.#share.wait(user, signal, urgent);
  }

  /** Opens a new connection in a free place, counted as held by `user`. */
  async #openFor(user: string): Promise<PooledConnection> {
    this.#open++;
    try {
      return await this.#openConnection();
    } catch (err) {
      this.#open--;
      this.#share.give(user);
      throw err;
    }
  }

  release(user: string, conn: PooledConnection): void {
    if (this.#closed) {
      this.#share.give(user);
      conn.close();
      return;
    }
    if (conn.retained > MAX_RETAINED) {
      this.discard(user, conn);
      return;
    }
    this.#share.give(user);
    const waiter = this.#share.next();
    if (waiter) this.#share.grant(waiter, conn);
    else this.#idle.push(conn);
  }

  /**
   * Drops a connection whose state is no longer trusted (a statement left unfinished holds a read
   * snapshot until the driver frees it), and frees its place for a fresh one.
   */
  discard(user: string, conn: PooledConnection): void {
    try {
      conn.close();
    } catch {
      // Closing an already broken connection may throw; its place is freed either way.
    }
    this.#open--;
    this.#share.give(user);
    if (this.#closed) return;
    const waiter = this.#share.next();
    if (!waiter) return;
    // Its user may be the one that just gave a connection back, while another one is idle.
    const idle = this.#idle.pop();
    if (idle) {
      this.#share.grant(waiter, idle);
      return;
    }
    this.#share.take(waiter.user);
    this.#openFor(waiter.user).then(waiter.resolve, waiter.reject);
  }

  close(): void {
    this.#closed = true;
    for (const conn of this.#idle) conn.close();
    this.#idle = [];
    this.#share.close();
  }
}
