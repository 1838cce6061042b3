/**
 * GraphQL subscriptions over the server's one change log. Table changes, live queries and document
 * change streams are SubscriptionHub subscriptions — the very ones `/api/v1/stream` uses — whose owner
 * turns the hub's typed messages into values of an async iterator. So `since` resumes with the same
 * exactly-once guarantee, grants are re-checked the same way, and an administrator sees and can end
 * them in `GET /api/v1/subscriptions`. Metrics subscriptions read the shared sampler.
 */
import {
  rowFilterSchema,
  type QueryDiffPayload,
  type ResetPayload,
  type RowChangePayload,
  type RowFilter,
  type SqlValue,
} from '@rustydb/protocol';
import type { GraphQLError } from 'graphql';
import type { ServerMessageType } from '@rustydb/protocol';
import type { SubscriberOwner } from '../changes/subscriber.ts';
import { resumeToken, sequenceOfToken, type FullDocumentMode } from '../changes/change-stream-events.ts';
import { DerivedSlot } from '../core/derived-slot.ts';
import { RustyError } from '../errors/rusty-error.ts';
import type { MetricValues, Totals } from '../metrics/sampler.ts';
import { HIGH_WATER_MARK } from '../ws/flow-controlled-socket.ts';
import type { GraphQLContext, GraphQLDeps } from './context.ts';
import { graphQLErrorOf, toGraphQLError } from './errors.ts';
import { PushIterator } from './push-iterator.ts';
import {
  orderTerms,
  selectStatement,
  type OrderByInput,
  type OrderTerm,
  type WhereInput,
} from './sql-builder.ts';
import type { TableModel } from './table-model.ts';

/** What a queued event is assumed to weigh, for the hub's slow-consumer check. */
const QUEUED_EVENT_BYTES = 512;

/**
 * Registers a hub subscription whose messages go to `onMessage`, and resolves once the hub has
 * acknowledged it (or refused it, or signalled a reset) — not after the history replay, which flows
 * through the iterator as the client reads it.
 */
async function attach<T>(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  onMessage: (type: ServerMessageType, payload: unknown, it: PushIterator<T>) => void,
  start: (owner: SubscriberOwner, id: string) => Promise<void>,
): Promise<PushIterator<T>> {
  const it = new PushIterator<T>();
  let acknowledge!: () => void;
  const acknowledged = new Promise<void>((resolve) => (acknowledge = resolve));
  const owner: SubscriberOwner = {
    sessionId: ctx.sessionId,
    user: ctx.principal.user,
    deliver: (type, payload) => {
      if (type === 'subscribed' || type === 'reset' || type === 'error') acknowledge();
      if (type !== 'subscribed') onMessage(type, payload, it);
    },
    bufferedAmount: () => ctx.bufferedAmount() + it.queued * QUEUED_EVENT_BYTES,
  };
  const id = ctx.operationId;
  it.onCleanUp(() => deps.hub.unsubscribe(owner, id));
  const started = start(owner, id);
  started.catch((err) => it.fail(toGraphQLError(err, deps.logger)));
  await Promise.race([started, acknowledged]);
  return it;
}

/** The hub's `error` payload as a GraphQL error with its code. */
function hubError(payload: unknown): GraphQLError {
  const { code, message, details } = payload as {
    code: never;
    message: string;
    details?: Record<string, unknown>;
  };
  return graphQLErrorOf(code, message, details);
}

function endedBy(payload: unknown): GraphQLError | undefined {
  const reason = (payload as { reason?: string }).reason;
  if (reason === 'killed')
    return graphQLErrorOf('QUERY_CANCELLED', 'the subscription was ended by an administrator');
  return undefined;
}

// ---- table changes -------------------------------------------------------------------------------

export interface TableChangeEvent {
  table: string;
  changeType: 'INSERT' | 'UPDATE' | 'DELETE' | 'ENTER' | 'LEAVE' | 'SCHEMA' | 'RESET';
  row: Record<string, unknown> | null;
  oldRow: Record<string, unknown> | null;
  key: Record<string, unknown> | null;
  sequence: number;
  timestamp: string;
  schema: { action: string; sql: string | null } | null;
  oldestResumable: number | null;
}

/**
 * Events already made from a hub payload: subscribers that receive the same change the same way (the
 * hub shares one payload among them) get the same event, so its JSON is built once (event-execution.ts).
 */
const changeEvents = new DerivedSlot<RowChangePayload, TableChangeEvent>('table change event');

function changeEventOf(change: RowChangePayload): TableChangeEvent {
  let event = changeEvents.get(change);
  if (!event) {
    event = {
      table: change.table,
      changeType: change.op.toUpperCase() as TableChangeEvent['changeType'],
      row: change.row,
      oldRow: change.old_row,
      key: change.key,
      sequence: change.sequence,
      timestamp: change.timestamp,
      schema: change.schema ?? null,
      oldestResumable: null,
    };
    changeEvents.set(change, event);
  }
  return event;
}

export function parseRowFilter(where: unknown): RowFilter | undefined {
  if (where === undefined || where === null) return undefined;
  const parsed = rowFilterSchema.safeParse(where);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new RustyError(
      'INVALID_MESSAGE',
      `where: ${issue?.path.join('.') ?? ''} ${issue?.message ?? 'invalid filter'}; expected {column: value} or {column: {eq|neq|lt|lte|gt|gte|in: …}}`,
    );
  }
  return parsed.data;
}

export async function tableChanges(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  options: { where?: unknown; since?: number | string | null; events?: ('insert' | 'update' | 'delete')[] },
): Promise<PushIterator<TableChangeEvent>> {
  const filter = parseRowFilter(options.where);
  const since = options.since === undefined || options.since === null ? undefined : Number(options.since);
  if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) {
    throw new RustyError('INVALID_MESSAGE', 'since: expected a sequence number >= 0');
  }
  return attach<TableChangeEvent>(
    deps,
    ctx,
    (type, payload, it) => {
      if (type === 'change') it.push(changeEventOf(payload as RowChangePayload));
      else if (type === 'reset') {
        const reset = payload as ResetPayload;
        it.push({
          table: table.sql,
          changeType: 'RESET',
          row: null,
          oldRow: null,
          key: null,
          sequence: reset.sequence,
          timestamp: new Date().toISOString(),
          schema: null,
          oldestResumable: reset.oldest_resumable,
        });
        it.end();
      } else if (type === 'error') it.fail(hubError(payload));
      else if (type === 'unsubscribed') {
        const error = endedBy(payload);
        if (error) it.fail(error);
        else it.end();
      }
    },
    (owner, id) =>
      deps.hub.subscribe(
        owner,
        {
          type: 'subscribe',
          id,
          payload: {
            table: table.sql,
            ...(filter ? { filter } : {}),
            ...(since !== undefined ? { since } : {}),
            ...(options.events ? { events: options.events } : {}),
          },
        },
        ctx.principal,
      ),
  );
}

// ---- live queries --------------------------------------------------------------------------------

export interface LiveResult {
  table: string;
  sequence: number;
  /** SQL column names. */
  columns: string[];
  /** Current rows, in the query's order, each holding the table's columns then the order terms. */
  rows: SqlValue[][];
}

/** SQLite's order of values: NULL, numbers, text, blobs. */
function rank(value: SqlValue): number {
  if (value === null) return 0;
  if (typeof value === 'number' || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return 2;
  return 3;
}

function compareValues(a: SqlValue, b: SqlValue): number {
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (ra === 1) return Number(a) - Number(b);
  // Text: JavaScript compares UTF-16 units where SQLite's BINARY collation compares UTF-8 bytes; the
  // two agree except between characters beyond U+FFFF and those in U+E000–U+FFFF.
  const sa = ra === 2 ? (a as string) : (a as { $base64: string }).$base64;
  const sb = ra === 2 ? (b as string) : (b as { $base64: string }).$base64;
  return sa < sb ? -1 : sa > sb ? 1 : 0;
}

function sortRows(rows: SqlValue[][], terms: readonly OrderTerm[], offset: number): void {
  rows.sort((x, y) => {
    for (let i = 0; i < terms.length; i++) {
      const order = compareValues(x[offset + i]!, y[offset + i]!);
      if (order !== 0) return terms[i]!.desc ? -order : order;
    }
    return 0;
  });
}

/**
 * A live query of a table: the same shared LiveQuery as a `subscribe` with `query` on
 * `/api/v1/stream`. The hub sends the whole result once, then diffs; the current rows are kept here and
 * re-sorted after each diff, so every event carries the whole result in the query's order.
 */
export async function liveTable(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: {
    where?: WhereInput | null;
    orderBy?: OrderByInput | null;
    limit?: number | null;
    offset?: number | null;
  },
): Promise<PushIterator<LiveResult>> {
  const terms = orderTerms(table, args.orderBy, true);
  const base = selectStatement(table, args);
  // The order terms' values ride along after the columns, for sorting after a diff.
  const extra = terms.map((t, i) => `, ${t.expr} AS "__k${i}"`).join('');
  const fromAt = base.sql.indexOf(` FROM ${table.ident} WHERE `);
  const statement = {
    sql: `${base.sql.slice(0, fromAt)}${extra}${base.sql.slice(fromAt)}`,
    params: base.params,
  };
  const width = table.columns.length;
  let rows: SqlValue[][] = [];
  const columns = table.columns.map((c) => c.sql);
  return attach<LiveResult>(
    deps,
    ctx,
    (type, payload, it) => {
      if (type === 'data') {
        const data = payload as { rows: SqlValue[][]; sequence: number };
        rows = data.rows.map((r) => [...r]);
        it.push({ table: table.sql, sequence: data.sequence, columns, rows });
      } else if (type === 'change') {
        const diff = payload as QueryDiffPayload;
        const key = (row: readonly SqlValue[]): string => JSON.stringify(row);
        const removed = new Map<string, number>();
        for (const row of [...diff.removed, ...diff.changed.map((c) => c.old)]) {
          removed.set(key(row), (removed.get(key(row)) ?? 0) + 1);
        }
        const kept = rows.filter((row) => {
          const n = removed.get(key(row)) ?? 0;
          if (n === 0) return true;
          removed.set(key(row), n - 1);
          return false;
        });
        rows = [...kept, ...diff.added, ...diff.changed.map((c) => c.new)];
        sortRows(rows, terms, width);
        it.push({ table: table.sql, sequence: diff.sequence, columns, rows });
      } else if (type === 'error') it.fail(hubError(payload));
      else if (type === 'unsubscribed') {
        const error = endedBy(payload);
        if (error) it.fail(error);
        else it.end();
      }
    },
    (owner, id) =>
      deps.hub.subscribe(
        owner,
        { type: 'subscribe', id, payload: { query: statement.sql, params: statement.params } },
        ctx.principal,
      ),
  );
}

// ---- document change streams ---------------------------------------------------------------------

export interface DocumentChangeEvent {
  collection: string;
  operationType: string;
  documentKey: unknown;
  fullDocument: unknown;
  updateDescription: unknown;
  sequence: number;
  resumeToken: unknown;
  timestamp: string | null;
}

export async function documentChanges(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  args: { collection: string; since?: number | string | null; fullDocument?: FullDocumentMode | null },
): Promise<PushIterator<DocumentChangeEvent>> {
  const since = args.since === undefined || args.since === null ? undefined : Number(args.since);
  if (since !== undefined && (!Number.isSafeInteger(since) || since < 0)) {
    throw new RustyError('INVALID_MESSAGE', 'since: expected a sequence number >= 0');
  }
  return attach<DocumentChangeEvent>(
    deps,
    ctx,
    (type, payload, it) => {
      if (type === 'change') {
        const event = payload as Record<string, unknown>;
        it.push({
          collection: args.collection,
          operationType: String(event.operationType),
          documentKey: event.documentKey ?? null,
          fullDocument: event.fullDocument ?? null,
          updateDescription: event.updateDescription ?? null,
          sequence: sequenceOfToken(event._id),
          resumeToken: event._id,
          timestamp: typeof event.wallTime === 'string' ? event.wallTime : null,
        });
        if (event.operationType === 'invalidate') it.end();
      } else if (type === 'reset') {
        const reset = payload as ResetPayload;
        it.fail(
          graphQLErrorOf(
            'NOT_FOUND',
            'the change log no longer reaches back to `since`; read the collection again',
            {
              reason: 'history_unavailable',
              oldest_resumable: reset.oldest_resumable,
              sequence: reset.sequence,
            },
          ),
        );
      } else if (type === 'error') it.fail(hubError(payload));
      else if (type === 'unsubscribed') {
        const error = endedBy(payload);
        if (error) it.fail(error);
        else it.end();
      }
    },
    (owner, id) =>
      deps.hub.watch(
        owner,
        {
          type: 'watch',
          id,
          payload: {
            ...(since !== undefined ? { resumeAfter: resumeToken(since) } : {}),
            ...(args.fullDocument ? { fullDocument: args.fullDocument } : {}),
          },
        },
        args.collection,
        ctx.principal,
      ),
  );
}

// ---- metrics -------------------------------------------------------------------------------------

export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 60_000;

/**
 * Metrics every `intervalMs` (MONITOR required): the first at once, with the sampler's last-second
 * rates; later ones with rates over exactly the interval since the previous one.
 */
export async function metricsStream<T>(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  intervalMs: number,
  shape: (values: MetricValues) => T,
): Promise<PushIterator<T>> {
  if (!Number.isFinite(intervalMs) || intervalMs < MIN_INTERVAL_MS || intervalMs > MAX_INTERVAL_MS) {
    throw new RustyError(
      'INVALID_MESSAGE',
      `interval must be between ${MIN_INTERVAL_MS} ms and ${MAX_INTERVAL_MS / 1000} s`,
    );
  }
  await deps.access.requireGlobal(ctx.principal, 'MONITOR');
  let timer: NodeJS.Timeout | undefined;
  const release = deps.sampler.trackStream();
  const it = new PushIterator<T>(() => {
    clearTimeout(timer);
    release();
  });
  let previous: Totals | undefined;
  const tick = async (): Promise<void> => {
    try {
      // graphql-ws sends the next reading only once the previous one has left, so a client that stops
      // reading stops the pulls: a reading it has not taken yet, or a connection already behind, means
      // this one is skipped rather than queued (as on /api/v1/metrics/stream). The next one's rates cover
      // the whole time since the last reading taken.
      if (it.queued > 0 || ctx.bufferedAmount() >= HIGH_WATER_MARK) {
        timer = setTimeout(() => void tick(), intervalMs);
        return;
      }
      const { values, totals } = await deps.sampler.read(previous);
      previous = totals;
      if (it.ended) return;
      it.push(shape(values));
      timer = setTimeout(() => void tick(), intervalMs);
    } catch (err) {
      it.fail(toGraphQLError(err, deps.logger));
    }
  };
  await tick();
  return it;
}
