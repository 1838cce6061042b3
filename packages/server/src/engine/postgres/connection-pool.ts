/**
 * A bounded pool of PostgreSQL connections that all log in as one role. A statement or transaction
 * holds one connection for its whole run; a connection whose statement was stopped or failed in a way
 * that leaves its state unknown is discarded, never handed to the next caller. Idle connections close
 * after a while, so a role that stopped being used (a user's set of roles) gives its connections back.
 */
import { RustyError } from '../../errors/rusty-error.ts';
import type { PgClient } from './driver.ts';

const IDLE_CLOSE_MS = 30_000;

interface Waiter {
  resolve: (client: PgClient) => void;
  reject: (err: unknown) => void;
}

export class PgConnectionPool {
  readonly #open: () => Promise<PgClient>;
  readonly #max: number;
  readonly #idle: { client: PgClient; since: number }[] = [];
  readonly #waiters: Waiter[] = [];
  /** Every open connection, idle or in use: closing the pool ends them all. */
  readonly #all = new Set<PgClient>();
  #size = 0;
  #closed = false;
  readonly #sweeper: NodeJS.Timeout;

  constructor(max: number, open: () => Promise<PgClient>) {
    this.#max = max;
    this.#open = open;
    this.#sweeper = setInterval(() => this.#closeIdle(), IDLE_CLOSE_MS / 2);
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#size;
  }

  async acquire(signal?: AbortSignal): Promise<PgClient> {
    if (this.#closed) throw new RustyError('INTERNAL_ERROR', 'the engine is closed');
    signal?.throwIfAborted();
    const idle = this.#idle.pop();
    if (idle) return idle.client;
    if (this.#size < this.#max) {
      this.#size++;
      try {
        const client = await this.#open();
        this.#all.add(client);
        // A connection that breaks while idle (the database restarted) is dropped, not handed out.
        client.on('error', () => this.#forget(client));
        return client;
      } catch (err) {
        this.#size--;
        this.#wakeOne();
        throw err;
      }
    }
    return new Promise<PgClient>((resolve, reject) => {
      const waiter: Waiter = { resolve, reject };
      this.#waiters.push(waiter);
      signal?.addEventListener(
        'abort',
        () => {
          const at = this.#waiters.indexOf(waiter);
          if (at !== -1) {
            this.#waiters.splice(at, 1);
            reject(new RustyError('QUERY_CANCELLED', 'query cancelled'));
          }
        },
        { once: true },
      );
    });
  }

  release(client: PgClient): void {
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(client);
    else if (this.#closed) void this.#end(client);
    else this.#idle.push({ client, since: Date.now() });
  }

  /** Closes a connection whose state is unknown; a waiter gets a fresh one. */
  discard(client: PgClient): void {
    void this.#end(client);
    this.#wakeOne();
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const waiter of this.#waiters.splice(0)) {
      waiter.reject(new RustyError('INTERNAL_ERROR', 'the engine is closed'));
    }
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

  /** A slot freed up: a waiter opens a new connection in it. */
  #wakeOne(): void {
    const waiter = this.#waiters.shift();
    if (!waiter) return;
    this.acquire().then(waiter.resolve, waiter.reject);
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
