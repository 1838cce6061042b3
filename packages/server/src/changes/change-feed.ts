/**
 * Reads the change log in order, once, and hands every new record to the subscriptions. Subscriptions,
 * live queries, GraphQL subscriptions and document change streams all listen here, so they all see the
 * same changes in the same order. The feed wakes on every commit the engine reports, and polls slowly
 * as a safety net; it also prunes the log to the configured resume window.
 */
import type { ChangeLog, ChangeRecord, Engine } from '../engine/engine.ts';
import { describeError, type Logger } from '../core/logger.ts';

/** Receives each page of new records; a promise it returns makes the feed wait before reading more. */
export type ChangeListener = (records: readonly ChangeRecord[]) => void | Promise<void>;

const PAGE = 1000;
const POLL_MS = 1000;
const PRUNE_MS = 10_000;

export interface RetentionLimits {
  maxAgeMs: number;
  maxEntries: number;
}

export class ChangeFeed {
  readonly #log: ChangeLog;
  readonly #logger: Logger;
  readonly #retention: RetentionLimits;
  readonly #listeners = new Set<ChangeListener>();
  #head = 0;
  /** The read of the log under way, if any. */
  #pumping: Promise<void> | undefined;
  #again = false;
  #scheduled = false;
  readonly #timers: NodeJS.Timeout[] = [];
  readonly #unsubscribeCommits: () => void;
  #closed = false;

  private constructor(engine: Engine, logger: Logger, retention: RetentionLimits) {
    this.#log = engine.changes;
    this.#logger = logger;
    this.#retention = retention;
    this.#unsubscribeCommits = engine.onCommit(() => this.#schedule());
  }

  static async start(engine: Engine, logger: Logger, retention: RetentionLimits): Promise<ChangeFeed> {
    const feed = new ChangeFeed(engine, logger, retention);
    feed.#head = await engine.changes.head();
    const poll = setInterval(() => feed.#schedule(), POLL_MS);
    const prune = setInterval(() => void feed.prune(), PRUNE_MS);
    poll.unref();
    prune.unref();
    feed.#timers.push(poll, prune);
    return feed;
  }

  /** The last sequence handed to listeners. */
  get head(): number {
    return this.#head;
  }

  get log(): ChangeLog {
    return this.#log;
  }

  listen(listener: ChangeListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Reads whatever the log holds now (after a commit), without waiting for the next turn. */
  async catchUp(): Promise<void> {
    await this.#pump();
  }

  /**
   * Where a new subscription starts: after every change committed before the call (on PostgreSQL the log
   * is written a moment after the commit, by the capture), so a client misses nothing and is not sent
   * again what it saw acknowledged. It may lie ahead of `head`: subscriptions skip what the feed then
   * hands them up to it. Never waits for the feed's delivery to other subscribers.
   */
  async startingPoint(): Promise<number> {
    return Math.max(this.#head, await this.#log.head());
  }

  close(): void {
    this.#closed = true;
    this.#unsubscribeCommits();
    for (const timer of this.#timers) clearInterval(timer);
    this.#listeners.clear();
  }

  /** Coalesces a burst of commits into one read of the log. */
  #schedule(): void {
    if (this.#scheduled || this.#closed) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      void this.#pump();
    });
  }

  #pump(): Promise<void> {
    if (this.#pumping) {
      this.#again = true;
      return this.#pumping;
    }
    this.#pumping = this.#readAll();
    return this.#pumping;
  }

  async #readAll(): Promise<void> {
    try {
      do {
        this.#again = false;
        for (;;) {
          const records = await this.#log.read(this.#head, PAGE);
          if (records.length === 0 || this.#closed) break;
          this.#head = records[records.length - 1]!.seq;
          const waits: Promise<void>[] = [];
          for (const listener of this.#listeners) {
            try {
              const wait = listener(records);
              if (wait) waits.push(wait);
            } catch (err) {
              this.#logger.error('change listener failed', describeError(err));
            }
          }
          // A listener behind on delivery holds the feed: the records wait in the log, not in memory.
          if (waits.length > 0) await Promise.all(waits);
          if (records.length < PAGE) break;
        }
      } while (this.#again && !this.#closed);
    } catch (err) {
      this.#logger.error('reading the change log failed', describeError(err));
    } finally {
      this.#pumping = undefined;
    }
  }

  /** Trims the log to the retention limits now (it also runs on a timer). */
  async prune(): Promise<void> {
    try {
      // The log is pruned in bounded steps; stop when a step removes nothing.
      for (let i = 0; i < 20 && (await this.#log.prune(this.#retention)) > 0; i++) {
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      // A busy database is normal here (a writer holds the lock): try again next time.
      this.#logger.warn('pruning the change log failed', describeError(err));
    }
  }
}
