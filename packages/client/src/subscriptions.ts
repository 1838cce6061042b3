/**
 * Live data as async iterables: table subscriptions (row changes), live queries (a result kept
 * current) and change streams over document collections (MongoDB-like events).
 *
 * Each remembers where it is in the server's change log: the last sequence (tables) or resume token
 * (collections) it delivered, starting from the point the server acknowledged. After a reconnect it
 * attaches again from exactly there, and drops anything at or before it, so the application sees no
 * gap and no duplicate. When the server no longer holds that history it answers `reset`: the
 * subscription yields a typed reset event and starts over (tables: with a fresh snapshot).
 */
import type {
  FilterCondition,
  QueryDiffPayload,
  ResetPayload,
  RowChangePayload,
  RowFilter,
  SqlValue,
  SubscribedPayload,
  WatchMessage,
} from '@rustydb/protocol';
import { Channel } from './channel.ts';
import type { Connection, InboundMessage, OutboundMessage, Route } from './connection.ts';
import { Emitter } from './emitter.ts';
import { RustyDBError, errorFromPayload } from './errors.ts';
import { shapeRow, shapeRows, toArray, type ObjectRow, type RowMode, type RowModeOption } from './rows.ts';

export type { FilterCondition, RowFilter };

/** A row as an object: the default row type of subscriptions. */
export type Row = ObjectRow;

/** Where a subscription stands; `on('status', …)` reports every change. */
export type SubscriptionStatus = 'subscribing' | 'active' | 'disconnected' | 'ended';

/**
 * What `subscription.on(event, listener)` reports. Every subscription has these; each kind adds its
 * own (`change`, `snapshot`, `reset`).
 */
export interface SubscriptionEvents<E = unknown> extends Record<string, unknown> {
  status: SubscriptionStatus;
  /** The server acknowledged (again): `resumed` is true when it attached from a remembered position. */
  subscribed: { sequence: number; resumed: boolean };
  /** Every event the loop gets, in order. */
  event: E;
  /** The subscription failed for good (refused, privilege revoked, the client gave up); not a normal end. */
  error: RustyDBError;
}

/** The listeners that take the subscription's data (they make the iterator optional). */
const DATA_EVENTS = ['event', 'change', 'snapshot', 'reset'] as const;

export interface SubscriptionOptions {
  /** Events buffered for a slow consumer before reading from the socket may pause (Node). Default 1000. */
  highWaterMark?: number | undefined;
}

/** What every subscription offers besides being an async iterator. */
export interface Subscription<
  E,
  Events extends SubscriptionEvents<E> = SubscriptionEvents<E>,
> extends AsyncIterableIterator<E> {
  readonly id: string;
  readonly status: SubscriptionStatus;
  /** Resolves once the server has acknowledged the subscription the first time. */
  ready(): Promise<void>;
  /** Ends the subscription (the server is told); the loop reading it ends. Safe to call twice. */
  unsubscribe(): Promise<void>;
  /**
   * Calls `listener` for every `event` (several listeners may listen); returns the function that
   * removes it. Listening to the data (`change`, `snapshot`, `reset`, `event`) instead of looping is
   * fine: while no loop reads the subscription, nothing is kept for one.
   */
  on<K extends keyof Events & string>(event: K, listener: (value: Events[K]) => void): () => void;
}

abstract class LiveSubscription<
  E,
  Events extends SubscriptionEvents<E> = SubscriptionEvents<E>,
> implements Subscription<E, Events> {
  readonly id: string;
  protected readonly connection: Connection;
  protected readonly channel: Channel<E>;
  readonly #events = new Emitter<Events>();
  /** A loop has started reading: from then on every event is kept for it. */
  #iterating = false;
  readonly #highWaterMark: number;
  #status: SubscriptionStatus = 'subscribing';
  #ready: Promise<void>;
  #readyResolve!: () => void;
  #readyReject!: (error: unknown) => void;
  #acknowledged = false;

  constructor(connection: Connection, prefix: string, options: SubscriptionOptions) {
    this.connection = connection;
    this.id = connection.nextId(prefix);
    this.#highWaterMark = Math.max(1, options.highWaterMark ?? 1000);
    this.channel = new Channel<E>(
      () => this.#detach(),
      () => connection.flowChanged(),
    );
    this.#ready = new Promise<void>((resolve, reject) => {
      this.#readyResolve = resolve;
      this.#readyReject = reject;
    });
    // Nobody may ever call ready(); its rejection must not count as unhandled.
    this.#ready.catch(() => {});
  }

  /** Registers with the connection; called by subclasses once their fields are set. */
  protected start(): void {
    const route: Route = {
      onMessage: (message) => this.#onMessage(message),
      onFail: (error) => this.fail(error),
      resubscribe: () => {
        this.setStatus('subscribing');
        return this.subscribeMessage();
      },
      onDisconnect: () => this.setStatus('disconnected'),
      starving: () => this.channel.waiting,
      pressured: () => this.channel.size >= this.#highWaterMark,
    };
    this.connection.attach(this.id, route);
  }

  get status(): SubscriptionStatus {
    return this.#status;
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  on<K extends keyof Events & string>(event: K, listener: (value: Events[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  protected setStatus(status: SubscriptionStatus): void {
    if (this.#status === status || this.#status === 'ended') return;
    this.#status = status;
    this.#emit('status', status);
  }

  #emit<K extends keyof SubscriptionEvents<E>>(event: K, value: SubscriptionEvents<E>[K]): void {
    (this.#events as unknown as Emitter<SubscriptionEvents<E>>).emit(event, value);
  }

  /**
   * Hands one event over: to the listeners of its kind and of `event`, and to the loop. Kept for a
   * loop that has not started only when nobody listens to the data (else it would pile up unread).
   */
  protected deliver(value: E, kind: 'change' | 'snapshot' | 'reset' | undefined): void {
    if (kind) (this.#events as unknown as Emitter<Record<string, unknown>>).emit(kind, value);
    this.#emit('event', value);
    if (this.#iterating || !DATA_EVENTS.some((name) => this.#events.has(name))) this.channel.push(value);
  }

  /** The `subscribe` / `watch` message for the current position. */
  protected abstract subscribeMessage(): OutboundMessage;

  /** Handles one message of this subscription; true when it ended the subscription. */
  protected abstract handle(message: InboundMessage): boolean;

  #onMessage(message: InboundMessage): boolean {
    if (message.type === 'subscribed') {
      const payload = message.payload as SubscribedPayload;
      const resumed = this.acknowledged(payload);
      this.setStatus('active');
      this.#emit('subscribed', { sequence: payload.sequence ?? -1, resumed });
      if (!this.#acknowledged) {
        this.#acknowledged = true;
        this.#readyResolve();
      }
      return false;
    }
    if (message.type === 'unsubscribed') {
      this.setStatus('ended');
      this.channel.end();
      this.#readyReject(new RustyDBError('NOT_FOUND', 'the subscription ended before it started'));
      return true;
    }
    if (message.type === 'error') {
      const error = errorFromPayload(message.payload);
      if (error.code === 'SLOW_CONSUMER') {
        // The server dropped us for falling behind: attach again from the last event delivered.
        this.setStatus('subscribing');
        this.connection.resubscribe(this.id);
        return false;
      }
      this.fail(error);
      return true;
    }
    return this.handle(message);
  }

  /** Records the acknowledged position; returns whether the subscription resumed from a remembered one. */
  protected abstract acknowledged(payload: SubscribedPayload): boolean;

  /** Ends the subscription with `error`; closing the client is a normal end (the loop finishes). */
  protected fail(error: RustyDBError): void {
    this.setStatus('ended');
    if (error.code === 'CLIENT_CLOSED') this.channel.end();
    else {
      this.#emit('error', error);
      this.channel.fail(error);
    }
    this.#readyReject(error);
  }

  #detach(): void {
    this.setStatus('ended');
    this.connection.detach(this.id, true);
    this.#readyReject(new RustyDBError('CLIENT_CLOSED', 'unsubscribed before the server acknowledged'));
  }

  next(): Promise<IteratorResult<E>> {
    this.#iterating = true;
    return this.channel.next();
  }

  return(): Promise<IteratorResult<E>> {
    return this.channel.return();
  }

  async unsubscribe(): Promise<void> {
    await this.channel.return();
  }

  [Symbol.asyncIterator](): this {
    this.#iterating = true;
    return this;
  }
}

// ---- table subscriptions ------------------------------------------------------------------------

export interface TableSubscribeOptions extends SubscriptionOptions, RowModeOption {
  /** Only changes to rows matching every condition (a bare value means equality). */
  filter?: RowFilter | undefined;
  /** Only these kinds of change. Default: all. */
  events?: ('insert' | 'update' | 'delete')[] | undefined;
  /** Start with the table's current (filtered) rows, consistent with the first change. Default false. */
  snapshot?: boolean | undefined;
  /** Start after this sequence instead of now (a position saved earlier). */
  since?: number | undefined;
}

/**
 * One row change. `enter` / `leave`: an update made the row start / stop matching the filter. `R`: the
 * row type (objects by default; arrays in the order of `columns` with `rowMode: 'array'`).
 */
export interface TableChangeEvent<R = Row> {
  type: 'change';
  sequence: number;
  table: string;
  op: RowChangePayload['op'];
  /** The changed row's primary key columns (always an object). */
  key: ObjectRow | null;
  /** The row after the change (insert, update, enter). */
  row: R | null;
  /** The row before the change (update, delete, leave). */
  oldRow: R | null;
  /** The row's columns, in table order: the order of an array row's values. */
  columns: string[];
  timestamp: string;
  /** op `schema`: the table was created, altered or dropped. */
  schema?: RowChangePayload['schema'];
}

/** The table's rows as of `sequence`: first with `snapshot: true`, and after every reset. */
export interface TableSnapshotEvent<R = Row> {
  type: 'snapshot';
  sequence: number;
  columns: string[];
  rows: R[];
}

/** The server no longer holds the changes after the last delivered sequence: some were missed. */
export interface ResetEvent {
  type: 'reset';
  reason: ResetPayload['reason'];
  /** The oldest sequence the server could still resume from. */
  oldestResumable: number;
  /** The server's newest sequence when it refused. */
  sequence: number;
  /** The sequence this subscription had reached. */
  lastSequence: number | undefined;
}

export type TableEvent<R = Row> = TableChangeEvent<R> | TableSnapshotEvent<R> | ResetEvent;

export interface TableSubscriptionEvents<R = Row> extends SubscriptionEvents<TableEvent<R>> {
  change: TableChangeEvent<R>;
  snapshot: TableSnapshotEvent<R>;
  reset: ResetEvent;
}

export class TableSubscription<R = Row> extends LiveSubscription<TableEvent<R>, TableSubscriptionEvents<R>> {
  readonly table: string;
  readonly #options: TableSubscribeOptions;
  readonly #mode: RowMode;
  #lastSequence: number | undefined;
  #wantSnapshot: boolean;

  constructor(connection: Connection, table: string, options: TableSubscribeOptions = {}) {
    super(connection, 'sub-', options);
    this.table = table;
    this.#options = options;
    this.#mode = options.rowMode ?? 'object';
    this.#lastSequence = options.since;
    this.#wantSnapshot = options.since === undefined && options.snapshot === true;
    this.start();
  }

  /** The sequence of the last change delivered (or acknowledged): where a resume starts. */
  get lastSequence(): number | undefined {
    return this.#lastSequence;
  }

  protected subscribeMessage(): OutboundMessage {
    const { filter, events } = this.#options;
    const resume = this.#lastSequence !== undefined && !this.#wantSnapshot;
    return {
      type: 'subscribe',
      id: this.id,
      payload: {
        table: this.table,
        ...(filter ? { filter } : {}),
        ...(events ? { events } : {}),
        ...(resume ? { since: this.#lastSequence } : {}),
        ...(this.#wantSnapshot ? { snapshot: true } : {}),
      },
    } as OutboundMessage;
  }

  protected acknowledged(payload: SubscribedPayload): boolean {
    const resumed = this.#lastSequence !== undefined && !this.#wantSnapshot;
    if (!this.#wantSnapshot) this.#lastSequence = Math.max(this.#lastSequence ?? -1, payload.sequence);
    return resumed;
  }

  protected handle(message: InboundMessage): boolean {
    switch (message.type) {
      case 'data': {
        const p = message.payload as { columns: string[]; rows: SqlValue[][]; sequence: number };
        this.#wantSnapshot = false;
        this.#lastSequence = p.sequence;
        this.deliver(
          {
            type: 'snapshot',
            sequence: p.sequence,
            columns: p.columns,
            rows: shapeRows(this.#mode, p.columns, p.rows) as R[],
          },
          'snapshot',
        );
        return false;
      }
      case 'change': {
        const p = message.payload as RowChangePayload;
        // Already delivered before a reconnect: never twice.
        if (this.#lastSequence !== undefined && p.sequence <= this.#lastSequence) return false;
        this.#lastSequence = p.sequence;
        // The server sends changed rows as objects whose keys follow the table's column order.
        const columns = Object.keys(p.row ?? p.old_row ?? {});
        const shape = (row: Record<string, unknown> | null): R | null =>
          row === null ? null : ((this.#mode === 'array' ? toArray(columns, row) : row) as R);
        this.deliver(
          {
            type: 'change',
            sequence: p.sequence,
            table: p.table,
            op: p.op,
            key: p.key as ObjectRow | null,
            row: shape(p.row),
            oldRow: shape(p.old_row),
            columns,
            timestamp: p.timestamp,
            ...(p.schema ? { schema: p.schema } : {}),
          },
          'change',
        );
        return false;
      }
      case 'reset': {
        const p = message.payload as ResetPayload;
        this.deliver(
          {
            type: 'reset',
            reason: p.reason,
            oldestResumable: p.oldest_resumable,
            sequence: p.sequence,
            lastSequence: this.#lastSequence,
          },
          'reset',
        );
        // Start over from the table as it is now.
        this.#wantSnapshot = true;
        this.setStatus('subscribing');
        this.connection.resubscribe(this.id);
        return false;
      }
      default:
        return false;
    }
  }
}

// ---- live queries -------------------------------------------------------------------------------

export interface LiveQueryOptions extends SubscriptionOptions, RowModeOption {
  query: string;
  params?: readonly SqlValue[] | undefined;
}

/** The whole result: first, and again after every reconnect. `R`: the row type, as for table events. */
export interface LiveResultEvent<R = Row> {
  type: 'result';
  sequence: number;
  columns: string[];
  rows: R[];
}

/** How the result moved. `changed` rows kept their key (`id` or `_id`) but not their other values. */
export interface LiveDiffEvent<R = Row> {
  type: 'diff';
  sequence: number;
  columns: string[];
  added: R[];
  removed: R[];
  changed: { old: R; new: R }[];
}

export type LiveQueryEvent<R = Row> = LiveResultEvent<R> | LiveDiffEvent<R>;

export interface LiveQuerySubscriptionEvents<R = Row> extends SubscriptionEvents<LiveQueryEvent<R>> {
  /** The whole result (`type: 'result'`): first, and after every reconnect. */
  snapshot: LiveResultEvent<R>;
  /** How the result moved (`type: 'diff'`). */
  change: LiveDiffEvent<R>;
}

export class LiveQuerySubscription<R = Row> extends LiveSubscription<
  LiveQueryEvent<R>,
  LiveQuerySubscriptionEvents<R>
> {
  readonly query: string;
  readonly params: readonly SqlValue[];
  readonly #mode: RowMode;
  #lastSequence: number | undefined;

  constructor(connection: Connection, options: LiveQueryOptions) {
    super(connection, 'live-', options);
    this.query = options.query;
    this.params = options.params ?? [];
    this.#mode = options.rowMode ?? 'object';
    this.start();
  }

  get lastSequence(): number | undefined {
    return this.#lastSequence;
  }

  protected subscribeMessage(): OutboundMessage {
    return { type: 'subscribe', id: this.id, payload: { query: this.query, params: [...this.params] } };
  }

  protected acknowledged(): boolean {
    // A live query always starts from a fresh result: there is nothing to resume.
    return false;
  }

  protected handle(message: InboundMessage): boolean {
    if (message.type === 'data') {
      const p = message.payload as { columns: string[]; rows: SqlValue[][]; sequence: number };
      this.#lastSequence = p.sequence;
      this.deliver(
        {
          type: 'result',
          sequence: p.sequence,
          columns: p.columns,
          rows: shapeRows(this.#mode, p.columns, p.rows) as R[],
        },
        'snapshot',
      );
    } else if (message.type === 'change') {
      const p = message.payload as QueryDiffPayload;
      if (this.#lastSequence !== undefined && p.sequence <= this.#lastSequence) return false;
      this.#lastSequence = p.sequence;
      const row = (values: SqlValue[]): R => shapeRow(this.#mode, p.columns, values) as R;
      this.deliver(
        {
          type: 'diff',
          sequence: p.sequence,
          columns: p.columns,
          added: p.added.map(row),
          removed: p.removed.map(row),
          changed: p.changed.map((c) => ({ old: row(c.old), new: row(c.new) })),
        },
        'change',
      );
    }
    return false;
  }
}

// ---- change streams -----------------------------------------------------------------------------

export type ResumeToken = { _data: string };

export interface WatchOptions extends SubscriptionOptions {
  /** `$match` stages, and-ed together. */
  pipeline?: Record<string, unknown>[] | undefined;
  fullDocument?: 'default' | 'updateLookup' | 'whenAvailable' | 'required' | undefined;
  /** Start after the event with this `_id` (a token saved earlier). */
  resumeAfter?: ResumeToken | undefined;
  startAfter?: ResumeToken | undefined;
  /** Milliseconds since the epoch: events committed at or after this time. */
  startAtOperationTime?: number | undefined;
}

/** A document of a collection: what documents are unless a document type says more. */
export type Document = Record<string, unknown>;

/** A document's `_id`, as the document type declares it. */
export type DocumentId<D> = D extends { _id: infer I } ? I : unknown;

/** A MongoDB-like change event; `_id` is its resume token. `D`: the collection's document type. */
export interface ChangeStreamEvent<D = Document> {
  _id: ResumeToken;
  operationType: 'insert' | 'update' | 'replace' | 'delete' | 'drop' | 'invalidate';
  documentKey?: { _id: DocumentId<D> };
  /** The document after the change: inserts and replaces, and updates with `fullDocument` set. */
  fullDocument?: D;
  /** Updates: the fields set (by path, such as `a.b`) and the paths removed. */
  updateDescription?: { updatedFields: Record<string, unknown>; removedFields: string[] };
  ns?: { db: string; coll: string };
  clusterTime?: number;
  wallTime?: string;
}

/** The server no longer holds the events after the last resume token: some were missed. */
export interface ChangeStreamResetEvent {
  operationType: 'reset';
  reason: ResetPayload['reason'];
  oldestResumable: number;
  sequence: number;
  lastToken: ResumeToken | undefined;
}

export type WatchEvent<D = Document> = ChangeStreamEvent<D> | ChangeStreamResetEvent;

export interface ChangeStreamEvents<D = Document> extends SubscriptionEvents<WatchEvent<D>> {
  change: ChangeStreamEvent<D>;
  reset: ChangeStreamResetEvent;
}

/** Resume tokens are opaque, but this server's are fixed-width hex: compare them when they look so. */
function tokenAtOrBefore(token: ResumeToken, last: ResumeToken): boolean {
  const a = token._data;
  const b = last._data;
  if (a.length !== b.length || !/^[0-9a-f]+$/.test(a) || !/^[0-9a-f]+$/.test(b)) return a === b;
  return a <= b;
}

export class ChangeStream<D = Document> extends LiveSubscription<WatchEvent<D>, ChangeStreamEvents<D>> {
  readonly collection: string;
  readonly #options: WatchOptions;
  #lastToken: ResumeToken | undefined;
  #fromNow = false;

  constructor(connection: Connection, collection: string, options: WatchOptions = {}) {
    super(connection, 'watch-', options);
    this.collection = collection;
    this.#options = options;
    this.#lastToken = options.resumeAfter;
    this.start();
  }

  /** The `_id` of the last event delivered (or the acknowledged start): where a resume starts. */
  get resumeToken(): ResumeToken | undefined {
    return this.#lastToken;
  }

  protected subscribeMessage(): OutboundMessage {
    const { pipeline, fullDocument, startAfter, startAtOperationTime } = this.#options;
    const payload: WatchMessage['payload'] = { collection: this.collection };
    if (pipeline) payload.pipeline = pipeline;
    if (fullDocument) payload.fullDocument = fullDocument;
    if (this.#lastToken) payload.resumeAfter = this.#lastToken;
    else if (!this.#fromNow) {
      if (startAfter) payload.startAfter = startAfter;
      else if (startAtOperationTime !== undefined) payload.startAtOperationTime = startAtOperationTime;
    }
    return { type: 'watch', id: this.id, payload };
  }

  protected acknowledged(payload: SubscribedPayload): boolean {
    const resumed = this.#lastToken !== undefined;
    if (!this.#lastToken && payload.resume_token) this.#lastToken = payload.resume_token;
    return resumed;
  }

  protected handle(message: InboundMessage): boolean {
    if (message.type === 'change') {
      const event = message.payload as ChangeStreamEvent<D>;
      if (this.#lastToken && event._id && tokenAtOrBefore(event._id, this.#lastToken)) return false;
      if (event._id) this.#lastToken = event._id;
      this.deliver(event, 'change');
    } else if (message.type === 'reset') {
      const p = message.payload as ResetPayload;
      this.deliver(
        {
          operationType: 'reset',
          reason: p.reason,
          oldestResumable: p.oldest_resumable,
          sequence: p.sequence,
          lastToken: this.#lastToken,
        },
        'reset',
      );
      this.#lastToken = undefined;
      this.#fromNow = true;
      this.setStatus('subscribing');
      this.connection.resubscribe(this.id);
    }
    return false;
  }
}

// ---- metrics ------------------------------------------------------------------------------------

export interface MetricsOptions extends SubscriptionOptions {
  /** Metric names (see docs/metrics.md). Default: every metric. */
  metrics?: string[] | undefined;
  /** How often a sample is sent, 100 to 60 000 ms. Default: the server's (1000). */
  intervalMs?: number | undefined;
}

/** One sample of `ws /api/v1/metrics/stream`. */
export interface MetricsSample {
  /** When the server took the sample. */
  timestamp: string;
  intervalMs: number;
  metrics: Record<string, number | Record<string, number>>;
}

/**
 * Live server metrics (MONITOR privilege), over the metrics endpoint's own connection. Samples are
 * not resumable: after a reconnect the subscription is made again and samples simply continue.
 */
export class MetricsSubscription extends LiveSubscription<MetricsSample> {
  readonly #options: MetricsOptions;

  constructor(connection: Connection, options: MetricsOptions = {}) {
    super(connection, 'metrics-', options);
    this.#options = options;
    this.start();
  }

  protected subscribeMessage(): OutboundMessage {
    const { metrics, intervalMs } = this.#options;
    return {
      type: 'subscribe',
      id: this.id,
      payload: {
        ...(metrics ? { metrics } : {}),
        ...(intervalMs !== undefined ? { interval_ms: intervalMs } : {}),
      },
    } as OutboundMessage;
  }

  protected acknowledged(): boolean {
    return false;
  }

  protected handle(message: InboundMessage): boolean {
    if (message.type === 'data') {
      const p = message.payload as { metrics: MetricsSample['metrics']; interval_ms: number };
      this.deliver(
        { timestamp: message.timestamp ?? '', intervalMs: p.interval_ms, metrics: p.metrics },
        undefined,
      );
    }
    return false;
  }
}
