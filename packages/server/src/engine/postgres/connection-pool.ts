/**
 * A bounded pool of PostgreSQL connections that all log in as one role. A statement or transaction
 * holds one connection for its whole run; a connection whose statement was stopped or failed in a way
 * that leaves its state unknown is discarded, never handed to the next caller. Idle connections close
 * after a while, so a role that stopped being used (a user's set of roles) gives its connections back.
 * Every user of one set of roles shares its pool, so the connections are shared fairly between them (see
 * FairShare): one user's many long statements never take them all.
 */
import { RustyError } from '../../errors/rusty-error.ts';
import { FairShare, type FairWaiter } from '../fair-share.ts';
import type { PgClient } from './driver.ts';

const IDLE_CLOSE_MS = 30_000;

export class PgConnectionPool {
  readonly #open: () => Promise<PgClient>;
  readonly #max: number;
  readonly #idle: { client: PgClient; since: number }[] = [];
  /** Who gets a connection next, and how many each user holds. */
  readonly #share: FairShare<PgClient>;
  /** The user each lent connection runs for, to count it back on release. */
  readonly #lentTo = new Map<PgClient, string>();
  /** Every open connection, idle or in use: closing the pool ends them all. */
  readonly #all = new Set<PgClient>();
  #size = 0;
  #closed = false;
  readonly #sweeper: NodeJS.Timeout;

  constructor(max: number, open: () => Promise<PgClient>) {
    this.#max = max;
    this.#open = open;
    this.#share = new FairShare(max);
    this.#sweeper = setInterval(() => this.#closeIdle(), IDLE_CLOSE_MS / 2);
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#size;
  }

  /**
   * A connection for `user`, given back with release or discard. `undefined` is the server's own work
   * (authentication, the catalog, change capture): not bound by a user's share and served first, as
   * nothing a user does may hold it up.
   */
  async acquire(user: string | undefined, signal?: AbortSignal): Promise<PgClient> {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'the engine is closed');
    signal?.throwIfAborted();
    const holder = user ?? '';
    const urgent = user === undefined;
    if (this.#share.mayTake(holder, urgent)) {
      const idle = this.#idle.pop();
      if (idle) return this.#lend(idle.client, holder);
      if (this.#size < this.#max) return this.#openFor(holder);
    }
    try {
      return await this.#share.wait(holder, signal, urgent);
    } catch (err) {
      if (signal?.aborted && err === signal.reason)
        throw new RustyError('QUERY_CANCELLED', 'query cancelled');
      throw err;
    }
  }

  release(client: PgClient): void {
    this.#giveBack(client);
    if (this.#closed) {
      void this.#end(client);
      return;
    }
    const waiter = this.#share.next();
    if (waiter) this.#grant(waiter, client);
    else this.#idle.push({ client, since: Date.now() });
  }

  /** Closes a connection whose state is unknown; a waiter gets a fresh one. */
  discard(client: PgClient): void {
    this.#giveBack(client);
    void this.#end(client);
    this.#wakeOne();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#share.close();
    this.#idle.splice(0);
    await Promise.all([...this.#all].map((client) => this.#end(client)));
  }

  #forget(client: PgClient): void {
    const at = this.#idle.findIndex((entry) => entry.client === client);
    if (at !== -1) {
      this.#idle.splice(at, 1);
      void this.#end(client);
    }
  }

  async #end(client: PgClient): Promise<void> {
    if (!this.#all.delete(client)) return;
    this.#size--;
    try {
      await client.end();
    } catch {
      // Already broken: nothing more to release.
    }
  }

  #lend(client: PgClient, user: string): PgClient {
    this.#share.take(user);
    this.#lentTo.set(client, user);
    return client;
  }

  #grant(waiter: FairWaiter<PgClient>, client: PgClient): void {
    this.#lentTo.set(client, waiter.user);
    this.#share.grant(waiter, client);
  }

  #giveBack(client: PgClient): void {
    const user = this.#lentTo.get(client);
    if (user === undefined) return;
    this.#lentTo.delete(client);
    this.#share.give(user);
  }

  /** Opens a new connection in a free place, lent to `user`. */
  async #openFor(user: string): Promise<PgClient> {
    this.#size++;
    this.#share.take(user);
    try {
      const client = await this.#open();
      this.#all.add(client);
      this.#lentTo.set(client, user);
      // A connection that breaks while idle (the database restarted) is dropped, not handed out.
      client.on('error', () => this.#forget(client));
      return client;
    } catch (err) {
      this.#size--;
      this.#share.give(user);
      this.#wakeOne();
      throw err;
    }
  }

  /** A place freed up: the next waiter allowed one gets an idle connection or a new one in it. */
  #wakeOne(): void {
    if (this.#closed || (this.#idle.length === 0 && this.#size >= this.#max)) return;
    const waiter = this.#share.next();
    if (!waiter) return;
    const idle = this.#idle.pop();
    if (idle) this.#grant(waiter, idle.client);
    else this.#openFor(waiter.user).then(waiter.resolve, waiter.reject);
  }

  #closeIdle(): void {
    const cutoff = Date.now() - IDLE_CLOSE_MS;
    for (let i = this.#idle.length - 1; i >= 0; i--) {
      const entry = this.#idle[i]!;
      if (entry.since < cutoff) {
        this.#idle.splice(i, 1);
        void this.#end(entry.client);
      }
    }
  }
}
