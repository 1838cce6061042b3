/**
 * A live query: a read statement whose result is kept current. One LiveQuery serves every subscriber
 * of the same statement and parameters (each was authorized for it on its own), so the statement is
 * evaluated once per change however many watch it. Re-evaluation is coalesced: changes that arrive
 * while it runs, or within the minimum interval, lead to a single further run.
 */
import type { SqlValue, QueryDiffPayload } from '@rustydb/protocol';
import type { Caller, ChangeRecord, Engine, StatementAccess, StatementInput } from '../engine/engine.ts';
import { errorPayload } from '../core/envelope.ts';
import { normalizeError } from '../errors/rusty-error.ts';
import { describeError, type Logger } from '../core/logger.ts';
import { diffResults, isEmpty } from './result-diff.ts';
import type { SubscriberOwner } from './subscriber.ts';
import type { Principal } from '../auth/authenticator.ts';

/** Re-evaluations of one live query are at least this far apart under a burst of writes. */
const MIN_INTERVAL_MS = 20;

export interface LiveQuerySubscriber {
  readonly kind: 'query';
  readonly id: string;
  readonly owner: SubscriberOwner;
  readonly principal: Principal;
  readonly access: StatementAccess;
  readonly createdAt: Date;
  delivered: number;
  /** The sequence of the last result this subscriber was sent. */
  cursor: number;
}

export class LiveQuery {
  readonly key: string;
  readonly statement: StatementInput;
  readonly access: StatementAccess;
  readonly subscribers = new Set<LiveQuerySubscriber>();
  /** Whom the statement runs as: the roles every subscriber of this live query shares. */
  readonly #caller: Caller;
  readonly #engine: Engine;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #tables: Set<string>;
  #columns: string[] = [];
  #rows: SqlValue[][] = [];
  #sequence = -1;
  #running = false;
  #dirty = false;
  #lastRun = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  readonly #limits: { maxBuffer: number; onOverflow: (subscriber: LiveQuerySubscriber) => void };
  evaluations = 0;

  constructor(
    key: string,
    statement: StatementInput,
    access: StatementAccess,
    caller: Caller,
    engine: Engine,
    logger: Logger,
    timeoutMs: number,
    limits: { maxBuffer: number; onOverflow: (subscriber: LiveQuerySubscriber) => void },
  ) {
    this.#limits = limits;
    this.key = key;
    this.statement = statement;
    this.access = access;
    this.#caller = caller;
    this.#engine = engine;
    this.#logger = logger;
    this.#timeoutMs = timeoutMs;
    this.#tables = new Set(access.tables);
  }

  get sequence(): number {
    return this.#sequence;
  }

  /** The first evaluation; its errors go to the caller (the first subscriber). */
  async start(): Promise<void> {
    const { sequence, result } = await this.#engine.snapshot(this.statement, {
      timeoutMs: this.#timeoutMs,
      caller: this.#caller,
    });
    this.#columns = result.columns;
    this.#rows = result.rows;
    this.#sequence = sequence;
    this.evaluations++;
    this.#lastRun = performance.now();
  }

  /** Adds a subscriber and sends it the current result and its acknowledgement. */
  join(subscriber: LiveQuerySubscriber): void {
    this.subscribers.add(subscriber);
    subscriber.cursor = this.#sequence;
    subscriber.owner.deliver(
      'subscribed',
      { status: 'success', kind: 'query', sequence: this.#sequence },
      subscriber.id,
    );
    subscriber.owner.deliver(
      'data',
      {
        status: 'success',
        columns: this.#columns,
        rows: this.#rows,
        has_more: false,
        rows_affected: this.#rows.length,
        sequence: this.#sequence,
      },
      subscriber.id,
    );
    subscriber.delivered++;
  }

  offer(records: readonly ChangeRecord[]): void {
    if (this.#closed) return;
    if (records.some((r) => r.seq > this.#sequence && this.#tables.has(r.table))) this.#markDirty();
  }

  #markDirty(): void {
    this.#dirty = true;
    if (this.#running || this.#timer) return;
    const wait = Math.max(0, MIN_INTERVAL_MS - (performance.now() - this.#lastRun));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#evaluate();
    }, wait);
  }

  async #evaluate(): Promise<void> {
    if (this.#closed || !this.#dirty) return;
    this.#dirty = false;
    this.#running = true;
    try {
      const { sequence, result } = await this.#engine.snapshot(this.statement, {
        timeoutMs: this.#timeoutMs,
        caller: this.#caller,
      });
      this.evaluations++;
      if (this.#closed || sequence <= this.#sequence) return;
      const columnsChanged = JSON.stringify(result.columns) !== JSON.stringify(this.#columns);
      const diff = diffResults(result.columns, columnsChanged ? [] : this.#rows, result.rows);
      const removedAll = columnsChanged ? this.#rows : diff.removed;
      this.#columns = result.columns;
      this.#rows = result.rows;
      this.#sequence = sequence;
      if (!columnsChanged && isEmpty(diff)) return;
      const payload: QueryDiffPayload = {
        sequence,
        op: 'diff',
        columns: result.columns,
        added: diff.added,
        removed: removedAll,
        changed: diff.changed,
      };
      for (const subscriber of [...this.subscribers]) {
        // A subscriber that stopped reading is ended rather than queued for without bound; it
        // re-subscribes and gets the whole current result.
        if (subscriber.owner.bufferedAmount() > this.#limits.maxBuffer) {
          subscriber.owner.deliver(
            'error',
            errorPayload(
              'SLOW_CONSUMER',
              'subscriber fell too far behind; subscribe again for the current result',
              {
                resume_from: subscriber.cursor,
              },
            ),
            subscriber.id,
          );
          this.#limits.onOverflow(subscriber);
          continue;
        }
        subscriber.cursor = sequence;
        subscriber.delivered++;
        subscriber.owner.deliver('change', payload, subscriber.id);
      }
    } catch (err) {
      // The statement no longer runs (its table was dropped, say): every subscriber is told.
      const failure = normalizeError(err, (e) => this.#logger.error('live query failed', describeError(e)));
      for (const subscriber of this.subscribers) {
        subscriber.owner.deliver(
          'error',
          errorPayload(failure.code, failure.message, failure.details),
          subscriber.id,
        );
      }
    } finally {
      this.#running = false;
      this.#lastRun = performance.now();
      if (this.#dirty) this.#markDirty();
    }
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
