/**
 * One subscription to one table's slice of the change log. It walks the log with a cursor: each record
 * is looked at once, in order, and only if it is newer than the cursor, so catching up from history and
 * receiving live records can overlap without a gap or a duplicate. What a record becomes on the wire
 * (a row event, a MongoDB-style change event, nothing) is up to its renderer.
 */
import type { ChangeRecord, StatementAccess } from '../engine/engine.ts';
import type { ServerMessageType } from '@rustydb/protocol';
import { errorPayload, idTail } from '../core/envelope.ts';
import type { SubscriberOwner } from './subscriber.ts';
import type { Principal } from '../auth/authenticator.ts';
import type { RouteKey } from './subscription-router.ts';

export type EndReason = 'unsubscribed' | 'table_dropped' | 'killed' | 'overflow' | 'revoked' | 'closed';

/** What one record means to a subscriber: messages to send, and whether the subscription ends. */
export interface Rendered {
  messages: { type: ServerMessageType; payload: unknown }[];
  end?: EndReason;
}

export type Renderer = (record: ChangeRecord) => Rendered | undefined;

export interface TableSubscriptionOptions {
  /** Its name server-wide (the hub's key). */
  key: string;
  id: string;
  owner: SubscriberOwner;
  principal: Principal;
  table: string;
  access: StatementAccess;
  render: Renderer;
  /** What the subscriber sees: row events of a table, or change events of a document collection. */
  streamKind: 'table' | 'collection';
  /** Records up to and including this sequence are not delivered. */
  cursor: number;
  /** The column and values its filter pins, for SubscriptionRouter (undefined: every change of the table). */
  route?: RouteKey | undefined;
  maxBuffer: number;
  /** One function for every subscription (a closure each would cost each one ~100 bytes). */
  onEnd: (subscription: TableSubscription, reason: EndReason) => void;
}

export class TableSubscription {
  readonly kind = 'table';
  readonly key: string;
  readonly id: string;
  readonly owner: SubscriberOwner;
  readonly principal: Principal;
  readonly table: string;
  readonly access: StatementAccess;
  readonly streamKind: 'table' | 'collection';
  readonly route: RouteKey | undefined;
  /** Milliseconds since the epoch (a number: a Date would cost every subscription ~100 bytes). */
  readonly createdAt = Date.now();
  /** The position the subscription began after: its owner must have held the privilege since. */
  readonly startedAt: number;
  readonly #render: Renderer;
  /** What ends each of its messages after the shared part (`idTail(id)`), made once. */
  readonly #idTail: string;
  readonly #maxBuffer: number;
  readonly #onEnd: TableSubscriptionOptions['onEnd'];
  #cursor: number;
  /** While catching up from history, live records are left to the catch-up loop. */
  catchingUp = true;
  delivered = 0;
  ended = false;

  constructor(options: TableSubscriptionOptions) {
    this.key = options.key;
    this.id = options.id;
    this.owner = options.owner;
    this.principal = options.principal;
    this.table = options.table;
    this.access = options.access;
    this.#render = options.render;
    this.#idTail = idTail(options.id);
    this.streamKind = options.streamKind;
    this.route = options.route;
    this.#cursor = options.cursor;
    this.startedAt = options.cursor;
    this.#maxBuffer = options.maxBuffer;
    this.#onEnd = options.onEnd;
  }

  get cursor(): number {
    return this.#cursor;
  }

  /**
   * Offers records in log order; returns false once the subscription has ended. `upTo`: the records
   * up to that sequence have all been looked at (those not offered did not concern this subscription).
   */
  offer(records: readonly ChangeRecord[], upTo?: number): boolean {
    for (const record of records) {
      if (this.ended) return false;
      if (record.seq <= this.#cursor) continue;
      if (record.table === this.table && !this.#deliver(record)) return false;
      this.#cursor = record.seq;
    }
    if (this.ended) return false;
    if (upTo !== undefined && upTo > this.#cursor) this.#cursor = upTo;
    return true;
  }

  /** Sends what a record renders to; false when the subscriber is too far behind to take it. */
  #deliver(record: ChangeRecord): boolean {
    const rendered = this.#render(record);
    if (!rendered) return true;
    if (this.owner.bufferedAmount() > this.#maxBuffer) {
      this.owner.deliver(
        'error',
        errorPayload('SLOW_CONSUMER', 'subscriber fell too far behind; resume from details.resume_from', {
          resume_from: this.#cursor,
        }),
        this.id,
      );
      this.end('overflow');
      return false;
    }
    const owner = this.owner;
    for (const message of rendered.messages) {
      this.delivered++;
      const payload = message.payload;
      if (owner.deliverShared !== undefined && typeof payload === 'object' && payload !== null) {
        owner.deliverShared(message.type, payload, this.id, this.#idTail);
      } else owner.deliver(message.type, payload, this.id);
    }
    if (rendered.end) {
      this.#cursor = record.seq;
      this.end(rendered.end);
    }
    return true;
  }

  end(reason: EndReason): void {
    if (this.ended) return;
    this.ended = true;
    this.#onEnd(this, reason);
  }
}
