/**
 * Every subscription of the server, whatever connection owns it: table subscriptions walking the
 * change log, and shared live queries. It feeds them from the one ChangeFeed, re-checks their
 * privileges whenever grants change, and lets admins list and end them.
 */
import type { SubscribeMessage, WatchMessage } from '@rustydb/protocol';
import type { ServerConfig } from '../config/config.ts';
import type { ChangeRecord, Engine, StatementAccess } from '../engine/engine.ts';
import { requireAccess, type AccessControl } from '../auth/access-control.ts';
import type { Principal } from '../auth/authenticator.ts';
import type { PrivilegeHistory } from '../auth/privilege-history.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import { errorPayload } from '../core/envelope.ts';
import { describeError, type Logger } from '../core/logger.ts';
import type { ChangeFeed } from './change-feed.ts';
import { DeliveryScheduler, type DeliveryPlan, type DeliveryTarget } from './delivery-scheduler.ts';
import { SubscriptionRouter, routeKeyOfFilter, type RouteKey } from './subscription-router.ts';
import { TableSubscription, type EndReason } from './table-subscription.ts';
import { LiveQuery, type LiveQuerySubscriber } from './live-query.ts';
import type { SubscriberOwner } from './subscriber.ts';
import { filterToSql } from './row-filter.ts';
import { rowEventRenderer } from './row-events.ts';
import {
  changeStreamRenderer,
  compilePipeline,
  resumeToken,
  sequenceOfToken,
} from './change-stream-events.ts';
import { isValidCollectionName } from '../documents/collection-name.ts';
import type { Renderer } from './table-subscription.ts';

/** History is replayed to a resuming subscriber in pages, letting other work run between them. */
const CATCH_UP_PAGE = 1000;
/** How often a catch-up paused for a slow reader looks again. */
const CATCH_UP_WAIT_MS = 5;
/** Rows a table snapshot may hold; larger tables must be read with a streamed query. */
const MAX_SNAPSHOT_ROWS = 100_000;

type AnySubscription = TableSubscription | LiveQuerySubscriber;

export interface SubscriptionInfo {
  key: string;
  id: string;
  kind: 'table' | 'query' | 'collection';
  session: string;
  user: string;
  target: string;
  created_at: string;
  delivered: number;
  cursor: number;
  /** Changes in the log this subscription has not looked at yet. */
  lag: number;
  /** Bytes queued on its connection. */
  queued_bytes: number;
  /** Live queries: how many subscriptions share this one evaluation. */
  shared_by: number;
  /** Live queries: how many times the shared query has been evaluated. */
  evaluations?: number;
}

/** A table subscription done replaying history: the live feed delivers to it. */
const isLive = (subscription: TableSubscription): boolean => !subscription.catchingUp;

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

export class SubscriptionHub {
  readonly #engine: Engine;
  readonly #feed: ChangeFeed;
  readonly #access: AccessControl;
  readonly #config: ServerConfig;
  readonly #logger: Logger;
  /** `${sessionId}\u0000${id}` → subscription */
  readonly #subscriptions = new Map<string, AnySubscription>();
  /**
   * The keys of each connection's subscriptions, so a closing connection is cleaned up directly. Most
   * connections hold one: its key alone, a Set only from the second (an empty Set costs ~200 bytes).
   */
  readonly #byOwner = new Map<SubscriberOwner, string | Set<string>>();
  readonly #tables = new Set<TableSubscription>();
  /** The table subscriptions again, indexed by what their filters pin: who a record may concern. */
  readonly #router = new SubscriptionRouter<TableSubscription>();
  readonly #liveQueries = new Map<string, LiveQuery>();
  readonly #history: PrivilegeHistory;
  readonly #stopListening: () => void;
  readonly #stopWatchingGrants: () => void;
  /**
   * Re-checks of privileges under way. Meanwhile new change records are held back from delivery: a
   * subscription whose owner just lost the privilege must not receive what was committed after the
   * revoke while the check was still loading the new grants.
   */
  #rechecks = 0;
  #held: (readonly ChangeRecord[])[] = [];
  readonly #delivery: DeliveryScheduler;
  /** How every table subscription tells the hub it ended. */
  readonly #onTableEnd = (subscription: TableSubscription, reason: EndReason): void =>
    this.#forget(subscription.key, subscription, reason);

  constructor(
    engine: Engine,
    feed: ChangeFeed,
    access: AccessControl,
    history: PrivilegeHistory,
    config: ServerConfig,
    logger: Logger,
  ) {
    this.#engine = engine;
    this.#feed = feed;
    this.#access = access;
    this.#history = history;
    this.#config = config;
    this.#logger = logger;
    this.#delivery = new DeliveryScheduler((records) => this.#plan(records));
    this.#stopListening = feed.listen(
      (records) => {
        if (this.#rechecks === 0) return this.#delivery.push(records);
        this.#held.push(records);
        return undefined;
      },
      // With no subscription on this node nobody is handed the records: the feed need not read them. A
      // subscription registered later replays from the log what lies before the feed's head (#catchUp).
      { needsRecords: () => this.#subscriptions.size > 0 || this.#liveQueries.size > 0 },
    );
    this.#stopWatchingGrants = access.onChange(() => void this.#recheckPrivileges());
  }

  get count(): number {
    return this.#subscriptions.size;
  }

  /**
   * Who receives the feed's records: live queries (all of them), and table subscriptions done catching
   * up (one still replaying history reads the records from the log itself, up to the feed's head), each
   * given the records the router finds may concern it.
   */
  #plan(records: readonly ChangeRecord[]): DeliveryPlan {
    const routed = this.#router.route(records, isLive);
    const targets: DeliveryTarget[] = [];
    for (const subscription of this.#tables) if (isLive(subscription)) targets.push(subscription);
    for (const query of this.#liveQueries.values()) targets.push(query);
    return {
      targets,
      recordsFor: (target) => (target instanceof TableSubscription ? routed.of(target) : records),
    };
  }

  async subscribe(owner: SubscriberOwner, message: SubscribeMessage, principal: Principal): Promise<void> {
    this.#requireCapture();
    const key = `${owner.sessionId}\u0000${message.id}`;
    if (this.#subscriptions.has(key)) {
      throw new RustyError(
        'INVALID_MESSAGE',
        `subscription '${message.id}' already exists on this connection`,
      );
    }
    if (message.payload.table !== undefined) await this.#subscribeTable(key, owner, message, principal);
    else await this.#subscribeQuery(key, owner, message, principal);
  }

  unsubscribe(owner: SubscriberOwner, id: string): boolean {
    const subscription = this.#subscriptions.get(`${owner.sessionId}\u0000${id}`);
    if (!subscription) return false;
    this.#end(subscription, 'unsubscribed');
    return true;
  }

  /** How many subscriptions a connection holds now. */
  countOf(owner: SubscriberOwner): number {
    const keys = this.#byOwner.get(owner);
    return keys === undefined ? 0 : typeof keys === 'string' ? 1 : keys.size;
  }

  /** Ends every subscription of a connection (it closed); nothing is sent. */
  dropOwner(owner: SubscriberOwner): void {
    const keys = this.#byOwner.get(owner);
    for (const key of typeof keys === 'string' ? [keys] : [...(keys ?? [])]) {
      const subscription = this.#subscriptions.get(key);
      if (subscription) this.#end(subscription, 'closed');
    }
    this.#byOwner.delete(owner);
  }

  #requireCapture(): void {
    if (!this.#engine.changeCapture) {
      throw new RustyError(
        'QUERY_ERROR',
        `subscriptions, live queries and change streams are not available on the ${this.#engine.name} engine yet`,
      );
    }
  }

  /** Registers a subscription under its key and its owner. */
  #register(key: string, subscription: AnySubscription): void {
    this.#subscriptions.set(key, subscription);
    const { owner } = subscription;
    const keys = this.#byOwner.get(owner);
    if (keys === undefined) this.#byOwner.set(owner, key);
    else if (typeof keys === 'string') this.#byOwner.set(owner, new Set([keys, key]));
    else keys.add(key);
  }

  list(): SubscriptionInfo[] {
    return [...this.#subscriptions.entries()].map(([key, s]) => {
      const live = s.kind === 'query' ? this.#liveQueryOf(s) : undefined;
      return {
        key: Buffer.from(key).toString('base64url'),
        id: s.id,
        kind: s.kind === 'table' ? s.streamKind : s.kind,
        session: s.owner.sessionId,
        user: s.owner.user,
        target: s.kind === 'table' ? s.table : (this.#liveQueryOf(s)?.statement.sql ?? ''),
        created_at: new Date(s.createdAt).toISOString(),
        delivered: s.delivered,
        cursor: s.cursor,
        lag: Math.max(0, this.#feed.head - s.cursor),
        queued_bytes: s.owner.bufferedAmount(),
        shared_by: live ? live.subscribers.size : 1,
        ...(live ? { evaluations: live.evaluations } : {}),
      };
    });
  }

  /** Ends a subscription by the key `list()` gave; its owner is told. */
  kill(encodedKey: string): boolean {
    const subscription = this.#subscriptions.get(Buffer.from(encodedKey, 'base64url').toString());
    if (!subscription) return false;
    this.#end(subscription, 'killed');
    return true;
  }

  close(): void {
    this.#stopListening();
    this.#delivery.close();
    this.#stopWatchingGrants();
    for (const live of this.#liveQueries.values()) live.close();
    this.#subscriptions.clear();
    this.#byOwner.clear();
    this.#tables.clear();
    this.#router.clear();
    this.#liveQueries.clear();
  }

  async #subscribeTable(
    key: string,
    owner: SubscriberOwner,
    message: SubscribeMessage,
    principal: Principal,
  ): Promise<void> {
    const { table, events, filter, since, snapshot } = message.payload;
    // Compiling a read of the table checks that it exists and what reading it needs.
    const probe = `SELECT * FROM ${quoteIdent(table!)}`;
    const caller = await this.#access.callerFor(principal);
    const access = await this.#engine.describe(probe, caller);
    await requireAccess(this.#engine, caller, access);

    let cursor = since === undefined && !snapshot ? await this.#feed.startingPoint() : this.#feed.head;
    let snapshotRows: { columns: string[]; rows: unknown[][] } | undefined;
    if (since === undefined && snapshot) {
      const { where, params } = filterToSql(filter, quoteIdent);
      const taken = await this.#engine.snapshot(
        { sql: `${probe} WHERE ${where} LIMIT ${MAX_SNAPSHOT_ROWS + 1}`, params },
        { timeoutMs: this.#config.statement_timeout * 1000, caller },
      );
      if (taken.result.rows.length > MAX_SNAPSHOT_ROWS) {
        throw new RustyError(
          'QUERY_ERROR',
          `snapshot has more than ${MAX_SNAPSHOT_ROWS} rows; narrow the filter`,
        );
      }
      cursor = taken.sequence;
      snapshotRows = taken.result;
    }
    await this.#attach(key, owner, message.id, principal, table!, access, {
      cursor: since ?? cursor,
      resumed: since !== undefined,
      render: rowEventRenderer(filter, events ? new Set(events) : undefined),
      route: routeKeyOfFilter(filter),
      kind: 'table',
      afterAck: snapshotRows
        ? () =>
            owner.deliver(
              'data',
              {
                status: 'success',
                columns: snapshotRows.columns,
                rows: snapshotRows.rows,
                has_more: false,
                rows_affected: snapshotRows.rows.length,
                sequence: cursor,
              },
              message.id,
            )
        : undefined,
    });
  }

  /** Opens a MongoDB-like change stream over a document collection. */
  async watch(
    owner: SubscriberOwner,
    message: WatchMessage,
    collection: string,
    principal: Principal,
  ): Promise<void> {
    this.#requireCapture();
    const key = `${owner.sessionId}\u0000${message.id}`;
    if (this.#subscriptions.has(key)) {
      throw new RustyError(
        'INVALID_MESSAGE',
        `subscription '${message.id}' already exists on this connection`,
      );
    }
    if (!isValidCollectionName(collection))
      throw new RustyError('NOT_FOUND', `collection '${collection}' not found`);
    const caller = await this.#access.callerFor(principal);
    let access: StatementAccess;
    try {
      access = await this.#engine.describe(`SELECT _id, doc FROM ${quoteIdent(collection)}`, caller);
    } catch (err) {
      const failure = normalizeError(err);
      if (failure.code === 'TABLE_NOT_FOUND' || failure.code === 'QUERY_ERROR') {
        throw new RustyError('NOT_FOUND', `collection '${collection}' not found`);
      }
      throw failure;
    }
    await requireAccess(this.#engine, caller, access);
    const options = message.payload;
    const token = options.startAfter ?? options.resumeAfter;
    let since: number | undefined;
    if (token) since = sequenceOfToken(token);
    else if (options.startAtOperationTime !== undefined) {
      since = await this.#engine.changes.sequenceBefore(options.startAtOperationTime);
    }
    await this.#attach(key, owner, message.id, principal, collection, access, {
      cursor: since ?? (await this.#feed.startingPoint()),
      resumed: since !== undefined,
      render: changeStreamRenderer(
        collection,
        options.fullDocument ?? 'default',
        compilePipeline(options.pipeline),
      ),
      kind: 'collection',
    });
  }

  /**
   * Attaches a log subscription at `cursor`: refuses with `reset` when the log no longer reaches back
   * that far, acknowledges, and replays history up to the live feed.
   */
  async #attach(
    key: string,
    owner: SubscriberOwner,
    id: string,
    principal: Principal,
    table: string,
    access: StatementAccess,
    options: {
      cursor: number;
      resumed: boolean;
      render: Renderer;
      route?: RouteKey | undefined;
      kind: 'table' | 'collection';
      afterAck?: (() => void) | undefined;
    },
  ): Promise<void> {
    if (options.resumed) {
      // History is served from the latest of: what the log still holds, the creation of this table
      // (an earlier table of the same name is another table), and the moment the subscriber began to
      // hold the right to read it (changes from before are not theirs to see).
      const floor = Math.max(
        await this.#engine.changes.floor(),
        await this.#engine.changes.incarnation(table),
        await this.#history.selectHeldSince(principal, table),
      );
      // A position the log never reached (or no longer holds, after a restore) cannot be served
      // exactly either: both get the same explicit reset.
      const head = await this.#engine.changes.head();
      if (options.cursor < floor || options.cursor > head) {
        owner.deliver(
          'reset',
          { reason: 'history_unavailable', oldest_resumable: floor, sequence: this.#feed.head },
          id,
        );
        return;
      }
    }
    // The feed reads on from its head once this is registered: it must not lag behind (see there).
    await this.#feed.skipUnneeded();
    const subscription = new TableSubscription({
      key,
      id,
      owner,
      principal,
      table,
      access,
      render: options.render,
      streamKind: options.kind,
      cursor: options.cursor,
      route: options.route,
      maxBuffer: this.#config.subscription_max_buffer,
      onEnd: this.#onTableEnd,
    });
    this.#register(key, subscription);
    this.#tables.add(subscription);
    this.#router.add(subscription);
    owner.deliver(
      'subscribed',
      {
        status: 'success',
        kind: options.kind,
        sequence: options.cursor,
        ...(options.kind === 'collection' ? { resume_token: resumeToken(options.cursor) } : {}),
      },
      id,
    );
    options.afterAck?.();
    await this.#catchUp(subscription);
  }

  /**
   * Replays history from the subscription's cursor up to the feed's head, then hands it to the live
   * feed. The switch happens in the same turn as the last check, so no record falls between the two.
   */
  async #catchUp(subscription: TableSubscription): Promise<void> {
    // History goes out no faster than the subscriber reads it: past half its buffer allowance, wait.
    const allowance = this.#config.subscription_max_buffer / 2;
    try {
      while (!subscription.ended && subscription.cursor < this.#feed.head) {
        const records = await this.#engine.changes.read(subscription.cursor, CATCH_UP_PAGE);
        if (records.length === 0) break;
        for (const record of records) {
          if (record.seq > this.#feed.head) break;
          while (!subscription.ended && subscription.owner.bufferedAmount() > allowance) {
            await new Promise((resolve) => setTimeout(resolve, CATCH_UP_WAIT_MS));
          }
          if (!subscription.offer([record])) return;
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
      subscription.catchingUp = false;
    } catch (err) {
      const failure = normalizeError(err, (e) => this.#logger.error('catch-up failed', describeError(e)));
      subscription.owner.deliver('error', errorPayload(failure.code, failure.message), subscription.id);
      subscription.end('closed');
    }
  }

  async #subscribeQuery(
    key: string,
    owner: SubscriberOwner,
    message: SubscribeMessage,
    principal: Principal,
  ): Promise<void> {
    const statement = { sql: message.payload.query!, params: message.payload.params ?? [] };
    const caller = await this.#access.callerFor(principal);
    const access = await this.#engine.describe(statement.sql, caller);
    await requireAccess(this.#engine, caller, access);
    if (access.kind !== 'read') throw new RustyError('QUERY_ERROR', 'a live query must be a read statement');
    // Shared by callers of the same roles: the statement runs as them (on PostgreSQL, under their roles).
    const liveKey = JSON.stringify([statement.sql, statement.params, caller.roles]);
    // The feed reads on from its head once this is registered: it must not lag behind (see there).
    await this.#feed.skipUnneeded();
    let live = this.#liveQueries.get(liveKey);
    if (!live) {
      live = new LiveQuery(liveKey, statement, access, caller, {
        engine: this.#engine,
        logger: this.#logger,
        timeoutMs: this.#config.statement_timeout * 1000,
        maxBuffer: this.#config.subscription_max_buffer,
        callerFor: (p) => this.#access.callerFor(p),
        onEnd: (subscriber, reason) =>
          this.#forget(`${subscriber.owner.sessionId}\u0000${subscriber.id}`, subscriber, reason),
      });
      this.#liveQueries.set(liveKey, live);
      try {
        await live.start();
      } catch (err) {
        this.#liveQueries.delete(liveKey);
        live.close();
        throw err;
      }
    } else {
      // The shared result was computed from what the statement read at its last evaluation, which may
      // be an older definition of a view than the one just checked: the joiner must be allowed both.
      await requireAccess(this.#engine, caller, live.access);
    }
    const subscriber: LiveQuerySubscriber = {
      kind: 'query',
      id: message.id,
      owner,
      principal,
      createdAt: Date.now(),
      delivered: 0,
      cursor: 0,
    };
    this.#register(key, subscriber);
    live.join(subscriber);
  }

  #liveQueryOf(subscriber: LiveQuerySubscriber): LiveQuery | undefined {
    for (const live of this.#liveQueries.values()) if (live.subscribers.has(subscriber)) return live;
    return undefined;
  }

  #end(subscription: AnySubscription, reason: EndReason): void {
    if (subscription.kind === 'table') {
      subscription.end(reason);
      return;
    }
    const key = `${subscription.owner.sessionId}\u0000${subscription.id}`;
    this.#forget(key, subscription, reason);
  }

  /** Removes an ended subscription and tells its owner why, where it is still listening. */
  #forget(key: string, subscription: AnySubscription, reason: EndReason): void {
    if (this.#subscriptions.get(key) !== subscription) return;
    this.#subscriptions.delete(key);
    const keys = this.#byOwner.get(subscription.owner);
    if (keys === key) this.#byOwner.delete(subscription.owner);
    else if (typeof keys === 'object') keys.delete(key);
    if (subscription.kind === 'table') {
      this.#tables.delete(subscription);
      this.#router.delete(subscription);
    } else {
      const live = this.#liveQueryOf(subscription);
      if (live) {
        live.subscribers.delete(subscription);
        if (live.subscribers.size === 0) {
          live.close();
          this.#liveQueries.delete(live.key);
        }
      }
    }
    if (reason === 'unsubscribed' || reason === 'killed' || reason === 'table_dropped') {
      subscription.owner.deliver('unsubscribed', { status: 'success', reason }, subscription.id);
    }
  }

  /**
   * After a grant change: a table subscription whose owner may no longer read its target, or has not
   * held the right without a break since the subscription began (revoked and granted again), ends;
   * every live query is evaluated again, which authorizes each of its subscribers as a fresh statement
   * would. Table changes are held back until the check is done.
   */
  async #recheckPrivileges(): Promise<void> {
    this.#rechecks++;
    try {
      for (const live of this.#liveQueries.values()) live.reauthorize();
      for (const [key, subscription] of [...this.#subscriptions]) {
        if (subscription.kind !== 'table') continue;
        try {
          const caller = await this.#access.callerFor(subscription.principal);
          await requireAccess(this.#engine, caller, subscription.access);
          const since = await this.#history.selectHeldSince(subscription.principal, subscription.table);
          if (since > subscription.startedAt) {
            throw new RustyError(
              'PERMISSION_DENIED',
              `permission denied: SELECT on table ${subscription.table} was revoked while subscribed`,
              { privilege: 'SELECT', table: subscription.table },
            );
          }
        } catch (err) {
          const failure = normalizeError(err);
          if (this.#subscriptions.get(key) !== subscription) continue;
          subscription.owner.deliver(
            'error',
            errorPayload(failure.code, failure.message, failure.details),
            subscription.id,
          );
          this.#end(subscription, 'revoked');
        }
      }
    } finally {
      this.#rechecks--;
      if (this.#rechecks === 0) {
        const held = this.#held;
        this.#held = [];
        for (const records of held) void this.#delivery.push(records);
      }
    }
  }
}
