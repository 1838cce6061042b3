/**
 * Reads the change log in order, once, and hands every new record to the subscriptions. Subscriptions,
 * live queries, GraphQL subscriptions and document change streams all listen here, so they all see the
 * same changes in the same order. The feed wakes on every commit the engine reports, and polls slowly
 * as a safety net; it also prunes the log to the configured resume window.
 *
 * While no listener needs the records (no subscription of any kind on this node), the feed does not
 * read them: it moves its head to the newest record the log holds, one cheap look instead of reading
 * and parsing every record a write made, and no more than one look every SKIP_LOOK_MS (see there).
 * Nothing is lost by it: a subscription starts at a position of the log and replays from the log
 * itself whatever lies between that position and the feed's head (SubscriptionHub's catch-up), and the
 * feed reads again as soon as one is registered (SubscriptionHub first brings the head up to date:
 * skipUnneeded).
 */
import type { ChangeLog, ChangeRecord, Engine } from '../engine/engine.ts';
import { describeError, type Logger } from '../core/logger.ts';

/** Receives each page of new records; a promise it returns makes the feed wait before reading more. */
export type ChangeListener = (records: readonly ChangeRecord[]) => void | Promise<void>;

export interface ListenOptions {
  /**
   * Whether the listener needs the records now (default: always). When no listener does, the feed
   * moves past new records without reading them, and no listener is handed those. A listener whose
   * answer turns true must itself read from the log what lies before the feed's head (see the class
   * comment); one that takes the records only as a hint (it checks what it needs another way) answers
   * false.
   */
  needsRecords?: () => boolean;
}

const PAGE = 1000;
/**
 * While no listener needs the records, the feed looks at the log's head no more often than this. A look
 * is a read of the log: on SQLite a read transaction on the event loop, 16–18 µs after a commit of
 * nine single-row INSERTs (a loop of such commits, each followed by the look). Looking after every
 * round of commits cost a busy writer about 3 µs per row, with 16 INSERTs on the wire and groups of 9
 * on average. A subscription brings the head up to date before it registers (skipUnneeded).
 */
const SKIP_LOOK_MS = 50;
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
  /** How each listener that does not always need the records says whether it needs them now. */
  readonly #needs = new Map<ChangeListener, () => boolean>();
  #head = 0;
  /** The read of the log under way, if any. */
  #pumping: Promise<void> | undefined;
  #again = false;
  #scheduled = false;
  /** When the feed last looked at the log's head while nobody needed the records (performance.now()). */
  #skippedAt = -Infinity;
  /** The look scheduled for the end of SKIP_LOOK_MS, if any. */
  #skipTimer: NodeJS.Timeout | undefined;
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

  listen(listener: ChangeListener, options: ListenOptions = {}): () => void {
    this.#listeners.add(listener);
    if (options.needsRecords) this.#needs.set(listener, options.needsRecords);
    return () => {
      this.#listeners.delete(listener);
      this.#needs.delete(listener);
    };
  }

  /** Whether any listener needs the records now. */
  #recordsNeeded(): boolean {
    for (const listener of this.#listeners) {
      const needs = this.#needs.get(listener);
      if (needs === undefined || needs()) return true;
    }
    return false;
  }

  /** Reads whatever the log holds now (after a commit), without waiting for the next turn. */
  async catchUp(): Promise<void> {
    await this.#pump();
  }

  /**
   * While no listener needs the records, moves the head to the log's newest record now, not at the
   * next throttled look (SKIP_LOOK_MS): called just before a listener registers something that will
   * need them, so that the feed then reads on from the log's head and hands nobody the records written
   * while nobody needed them (a listener that takes records as a hint, like the GraphQL schema's, would
   * see old schema changes again).
   */
  async skipUnneeded(): Promise<void> {
    if (this.#recordsNeeded()) return;
    const newest = await this.#log.recorded();
    if (!this.#recordsNeeded() && newest > this.#head) this.#head = newest;
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
    clearTimeout(this.#skipTimer);
    this.#listeners.clear();
    this.#needs.clear();
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
    // Checked here, not only in #readAll: a read that ended without waiting for anything would clear
    // #pumping before it is set.
    if (!this.#recordsNeeded() && this.#lookLater()) return Promise.resolve();
    this.#pumping = this.#readAll();
    return this.#pumping;
  }

  async #readAll(): Promise<void> {
    try {
      do {
        this.#again = false;
        if (!this.#recordsNeeded()) {
          // Never true on the first pass (#pump has just asked); a pass again waits its time too.
          if (this.#lookLater()) continue;
          this.#skippedAt = performance.now();
          const newest = await this.#log.recorded();
          // Asked again after the wait: a subscription registered meanwhile may be live from a position
          // before `newest`, and must be handed what follows the head; then the records are read below.
          if (!this.#recordsNeeded()) {
            if (newest > this.#head) this.#head = newest;
            continue;
          }
        }
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

  /**
   * Whether the look at the log's head, while nobody needs the records, must wait: the last one was
   * less than SKIP_LOOK_MS ago. It then runs when that time is up (unless one runs before).
   */
  #lookLater(): boolean {
    const wait = this.#skippedAt + SKIP_LOOK_MS - performance.now();
    if (wait <= 0) return false;
    if (this.#skipTimer === undefined) {
      this.#skipTimer = setTimeout(() => {
        this.#skipTimer = undefined;
        this.#schedule();
      }, wait);
      this.#skipTimer.unref();
    }
    return true;
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
