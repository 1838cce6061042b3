/**
 * A live query: a read statement whose result is kept current. One LiveQuery serves every subscriber
 * of the same statement and parameters, so the statement is evaluated once per change however many
 * watch it. Re-evaluation is coalesced: changes that arrive while it runs, or within the minimum
 * interval, lead to a single further run.
 *
 * Every evaluation is authorized like a fresh statement, for every subscriber, against what the engine
 * compiled for it at that moment: a view redefined since the subscription (or a table replaced by a
 * view) may read tables a subscriber may not, and that subscriber is then ended with PERMISSION_DENIED
 * before anything of the new result is sent. A schema change anywhere re-evaluates the query, since the
 * tables it reads through views are not known from the change records alone.
 */
import type { SqlValue, QueryDiffPayload } from '@rustydb/protocol';
import type { Caller, ChangeRecord, Engine, StatementAccess, StatementInput } from '../engine/engine.ts';
import { errorPayload } from '../core/envelope.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import { describeError, type Logger } from '../core/logger.ts';
import { diffResults, isEmpty } from './result-diff.ts';
import type { SubscriberOwner } from './subscriber.ts';
import type { Principal } from '../auth/authenticator.ts';

/** Re-evaluations of one live query are at least this far apart under a burst of writes. */
const MIN_INTERVAL_MS = 20;
/**
 * The longest wait between evaluations that keep reading a snapshot without a change they were told
 * of (see #announced): the wait doubles from MIN_INTERVAL_MS up to this.
 */
const MAX_CATCH_UP_INTERVAL_MS = 1000;

export interface LiveQuerySubscriber {
  readonly kind: 'query';
  readonly id: string;
  readonly owner: SubscriberOwner;
  readonly principal: Principal;
  /** Milliseconds since the epoch. */
  readonly createdAt: number;
  delivered: number;
  /** The sequence of the last result this subscriber was sent. */
  cursor: number;
}

export interface LiveQueryOptions {
  engine: Engine;
  logger: Logger;
  timeoutMs: number;
  /** Bytes queued on a subscriber's connection beyond which it is ended as a slow consumer. */
  maxBuffer: number;
  /** A subscriber as a caller, with the privileges they hold now. */
  callerFor: (principal: Principal) => Promise<Caller>;
  /** The subscriber is gone (overflow, or no longer allowed; it was already told why). */
  onEnd: (subscriber: LiveQuerySubscriber, reason: 'overflow' | 'revoked') => void;
}

export class LiveQuery {
  readonly key: string;
  readonly statement: StatementInput;
  /** What the statement touched at its last evaluation. */
  #access: StatementAccess;
  readonly subscribers = new Set<LiveQuerySubscriber>();
  /** Whom the statement runs as: the roles every subscriber of this live query shares. */
  readonly #caller: Caller;
  readonly #options: LiveQueryOptions;
  #tables: Set<string>;
  #columns: string[] = [];
  #rows: SqlValue[][] = [];
  #sequence = -1;
  /**
   * The last sequence of a change offered that the result must reflect. An engine may announce a change
   * a moment before new snapshots see it (PostgreSQL decodes a commit from the WAL before the committing
   * transaction is visible), so an evaluation can read a snapshot older than the change that caused it;
   * the live query then evaluates again until its result reaches this sequence, with no further write.
   */
  #announced = -1;
  /** How long to wait before the next evaluation when the last one fell short of #announced. */
  #catchUpInterval = MIN_INTERVAL_MS;
  #running = false;
  #dirty = false;
  #lastRun = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** No evaluation runs before the first one has set the result it would be compared with. */
  #started = false;
  /**
   * Subscribers that joined while an evaluation ran. That run may already have read a newer result
   * than the one kept, and they were not authorized for it: the next run authorizes them and sends
   * them its whole result, so none is left with a result older than the others'.
   */
  readonly #joining = new Set<LiveQuerySubscriber>();
  evaluations = 0;

  constructor(
    key: string,
    statement: StatementInput,
    access: StatementAccess,
    caller: Caller,
    options: LiveQueryOptions,
  ) {
    this.key = key;
    this.statement = statement;
    this.#access = access;
    this.#caller = caller;
    this.#options = options;
    this.#tables = new Set(access.tables);
  }

  get sequence(): number {
    return this.#sequence;
  }

  get access(): StatementAccess {
    return this.#access;
  }

  /**
   * The first evaluation, as the caller the live query was made for (the subscriber about to join);
   * its errors go to that subscriber.
   */
  async start(): Promise<void> {
    const caller = this.#caller;
    const { sequence, result } = await this.#options.engine.snapshot(this.statement, {
      timeoutMs: this.#options.timeoutMs,
      caller: {
        user: caller.user,
        roles: caller.roles,
        authorize: (access) => {
          caller.authorize(access);
          this.#access = access;
        },
      },
    });
    this.#tables = new Set(this.#access.tables);
    this.#columns = result.columns;
    this.#rows = result.rows;
    this.#sequence = sequence;
    this.evaluations++;
    this.#lastRun = performance.now();
    this.#started = true;
    // Changes written while it ran were offered but could not be evaluated yet.
    if (this.#dirty) this.#markDirty();
  }

  /**
   * Adds a subscriber and sends it the current result and its acknowledgement — at once, or after the
   * next evaluation when one is running (see #joining).
   */
  join(subscriber: LiveQuerySubscriber): void {
    this.subscribers.add(subscriber);
    if (this.#running) {
      this.#joining.add(subscriber);
      return;
    }
    this.#welcome(subscriber);
  }

  #welcome(subscriber: LiveQuerySubscriber): void {
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
    let relevant = -1;
    for (const r of records) {
      if (r.seq > this.#sequence && (r.op === 'ddl' || this.#tables.has(r.table))) relevant = r.seq;
    }
    if (relevant < 0) return;
    if (relevant > this.#announced) this.#announced = relevant;
    this.#markDirty();
  }

  /** Evaluates again (and so re-authorizes every subscriber) even if no data changed: grants did. */
  reauthorize(): void {
    if (!this.#closed) this.#markDirty();
  }

  #markDirty(): void {
    this.#dirty = true;
    if (!this.#started || this.#running || this.#timer) return;
    const interval = this.#sequence < this.#announced ? this.#catchUpInterval : MIN_INTERVAL_MS;
    const wait = Math.max(0, interval - (performance.now() - this.#lastRun));
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#evaluate();
    }, wait);
  }

  async #evaluate(): Promise<void> {
    if (this.#closed || !this.#dirty) return;
    this.#dirty = false;
    this.#running = true;
    let refusedAll = false;
    // Those who joined during the previous run are authorized by this one, then sent its whole result.
    const welcoming = new Set(this.#joining);
    this.#joining.clear();
    try {
      const subscribers = [...this.subscribers];
      const callers = await Promise.all(subscribers.map((s) => this.#options.callerFor(s.principal)));
      let refused: { subscriber: LiveQuerySubscriber; failure: RustyError }[] = [];
      let outcome;
      try {
        outcome = await this.#options.engine.snapshot(this.statement, {
          timeoutMs: this.#options.timeoutMs,
          caller: {
            user: this.#caller.user,
            roles: this.#caller.roles,
            // Called with what the engine compiled for this very run: each subscriber is checked, with
            // the privileges they hold now, as if they sent the statement now. The statement runs only
            // if someone may still see its result.
            authorize: (access) => {
              refused = [];
              subscribers.forEach((subscriber, i) => {
                try {
                  callers[i]!.authorize(access);
                } catch (err) {
                  refused.push({ subscriber, failure: normalizeError(err) });
                }
              });
              if (refused.length === subscribers.length) {
                refusedAll = true;
                throw refused[0]?.failure ?? new RustyError('PERMISSION_DENIED', 'no subscriber left');
              }
              this.#access = access;
            },
          },
        });
      } finally {
        for (const { subscriber, failure } of refused) this.#refuse(subscriber, failure);
      }
      const { sequence, result } = outcome;
      this.#tables = new Set(this.#access.tables);
      this.evaluations++;
      if (this.#closed) return;
      if (sequence > this.#sequence) this.#publish(sequence, result, subscribers, welcoming);
      if (sequence < this.#announced) {
        // The snapshot did not see a change already announced: it is committed and becomes visible in
        // a moment. Evaluate again, backing off while it stays invisible.
        this.#dirty = true;
        this.#catchUpInterval = Math.min(this.#catchUpInterval * 2, MAX_CATCH_UP_INTERVAL_MS);
      } else {
        this.#catchUpInterval = MIN_INTERVAL_MS;
      }
      for (const subscriber of welcoming) if (this.subscribers.has(subscriber)) this.#welcome(subscriber);
    } catch (err) {
      // Everyone was refused: each was already told why.
      if (refusedAll) return;
      const failure = normalizeError(err, (e) =>
        this.#options.logger.error('live query failed', describeError(e)),
      );
      // The statement itself is refused now: nobody may keep it.
      if (failure.code === 'PERMISSION_DENIED') {
        for (const subscriber of [...this.subscribers]) this.#refuse(subscriber, failure);
        return;
      }
      // The statement no longer runs (its table was dropped, say): every subscriber is told.
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
      if (this.#joining.size > 0) this.#dirty = true;
      if (this.#dirty) this.#markDirty();
    }
  }

  /** Keeps a newer result and sends its difference from the last to those it was computed for. */
  #publish(
    sequence: number,
    result: { columns: string[]; rows: SqlValue[][] },
    subscribers: readonly LiveQuerySubscriber[],
    welcoming: ReadonlySet<LiveQuerySubscriber>,
  ): void {
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
    // Only those authorized for this very run and sent the result before it (a subscriber that joined
    // meanwhile gets the whole result after the next run; those welcomed now get it whole below).
    for (const subscriber of subscribers) {
      if (!this.subscribers.has(subscriber) || welcoming.has(subscriber)) continue;
      // A subscriber that stopped reading is ended rather than queued for without bound; it
      // re-subscribes and gets the whole current result.
      if (subscriber.owner.bufferedAmount() > this.#options.maxBuffer) {
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
        this.#options.onEnd(subscriber, 'overflow');
        continue;
      }
      subscriber.cursor = sequence;
      subscriber.delivered++;
      subscriber.owner.deliver('change', payload, subscriber.id);
    }
  }

  /** Ends a subscriber that may no longer read what the query reads. */
  #refuse(subscriber: LiveQuerySubscriber, failure: RustyError): void {
    if (!this.subscribers.has(subscriber)) return;
    subscriber.owner.deliver(
      'error',
      errorPayload(failure.code, failure.message, failure.details),
      subscriber.id,
    );
    this.#options.onEnd(subscriber, 'revoked');
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }
}
