/**
 * One subscription to a table's changes. It walks the change log with a cursor: each record is looked
 * at once, in order, and delivered only if it is newer than the cursor, so catching up from history
 * and receiving live records can overlap without a gap or a duplicate.
 */
import type { RowChangePayload, RowFilter } from '@rustydb/protocol';
import type { ChangeRecord, StatementAccess } from '../engine/engine.ts';
import { envelope, errorPayload } from '../core/envelope.ts';
import { classify } from './row-filter.ts';
import type { SubscriberOwner } from './subscriber.ts';
import type { Principal } from '../auth/authenticator.ts';

export type EndReason = 'unsubscribed' | 'table_dropped' | 'killed' | 'overflow' | 'revoked' | 'closed';

export interface TableSubscriptionOptions {
  id: string;
  owner: SubscriberOwner;
  principal: Principal;
  table: string;
  access: StatementAccess;
  events: ReadonlySet<'insert' | 'update' | 'delete'> | undefined;
  filter: RowFilter | undefined;
  /** Records up to and including this sequence are not delivered. */
  cursor: number;
  maxBuffer: number;
  onEnd: (subscription: TableSubscription, reason: EndReason) => void;
}

export class TableSubscription {
  readonly kind = 'table';
  readonly id: string;
  readonly owner: SubscriberOwner;
  readonly principal: Principal;
  readonly table: string;
  readonly access: StatementAccess;
  readonly createdAt = new Date();
  readonly #events: TableSubscriptionOptions['events'];
  readonly #filter: RowFilter | undefined;
  readonly #maxBuffer: number;
  readonly #onEnd: TableSubscriptionOptions['onEnd'];
  #cursor: number;
  /** While catching up from history, live records are left to the catch-up loop. */
  catchingUp = true;
  delivered = 0;
  ended = false;

  constructor(options: TableSubscriptionOptions) {
    this.id = options.id;
    this.owner = options.owner;
    this.principal = options.principal;
    this.table = options.table;
    this.access = options.access;
    this.#events = options.events;
    this.#filter = options.filter;
    this.#cursor = options.cursor;
    this.#maxBuffer = options.maxBuffer;
    this.#onEnd = options.onEnd;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /** Offers records in log order; returns false once the subscription has ended. */
  offer(records: readonly ChangeRecord[]): boolean {
    for (const record of records) {
      if (this.ended) return false;
      if (record.seq <= this.#cursor) continue;
      if (record.table === this.table && !this.#deliver(record)) return false;
      this.#cursor = record.seq;
    }
    return !this.ended;
  }

  /** Sends one record if it concerns this subscriber; false when the subscriber is too far behind. */
  #deliver(record: ChangeRecord): boolean {
    if (record.op === 'ddl') {
      const schema = record.new as { action: 'create' | 'alter' | 'drop'; sql: string | null };
      this.#send({
        sequence: record.seq,
        table: record.table,
        op: 'schema',
        key: null,
        row: null,
        old_row: null,
        timestamp: new Date(record.ts).toISOString(),
        schema,
      });
      if (schema.action === 'drop') {
        this.#cursor = record.seq;
        this.end('table_dropped');
      }
      return true;
    }
    const event = classify(this.#filter, record.op, record.old, record.new);
    if (!event) return true;
    const base = event === 'enter' || event === 'leave' ? 'update' : event;
    if (this.#events && !this.#events.has(base)) return true;
    if (this.owner.bufferedAmount() > this.#maxBuffer) {
      this.owner.send(
        envelope(
          'error',
          errorPayload('SLOW_CONSUMER', 'subscriber fell too far behind; resume with since', {
            resume_from: this.#cursor,
          }),
          this.id,
        ),
      );
      this.end('overflow');
      return false;
    }
    this.#send({
      sequence: record.seq,
      table: record.table,
      op: event,
      key: record.key,
      row: event === 'delete' ? null : record.new,
      old_row: record.old,
      timestamp: new Date(record.ts).toISOString(),
    });
    return true;
  }

  #send(payload: RowChangePayload): void {
    this.delivered++;
    this.owner.send(envelope('change', payload, this.id));
  }

  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.#onEnd(this, reason);
  }
}
