/**
 * Wire messages of `ws /api/v1/stream`. Each schema is the single source of the message's shape:
 * the server parses with it and the TypeScript types are inferred from it.
 */
import { z } from 'zod';
import type { ErrorCode } from './codes.ts';

/** Values a statement parameter may take: JSON scalars, or `{ "$base64": "…" }` for a blob. */
export const sqlValueSchema = z.union([
  z.string(),
  z.number(),
  z.boolean(),
  z.null(),
  z.strictObject({ $base64: z.string() }),
]);
export type SqlValue = z.infer<typeof sqlValueSchema>;

const id = z.string().min(1).max(128);
const timestamp = z.string().optional();
const sql = z.string().min(1);
const params = z.array(sqlValueSchema).max(32766).optional();

export const authMessageSchema = z.object({
  type: z.literal('auth'),
  id: id.optional(),
  timestamp,
  payload: z.object({ token: z.string().min(1) }),
});

export const queryMessageSchema = z.object({
  type: z.literal('query'),
  id: id.optional(),
  timestamp,
  payload: z.object({
    sql,
    params,
    streaming: z.boolean().optional(),
    /** Rows per `data` message when streaming. */
    chunk_size: z.number().int().min(1).max(100_000).optional(),
  }),
});

export const batchMessageSchema = z.object({
  type: z.literal('batch'),
  id: id.optional(),
  timestamp,
  payload: z.object({
    queries: z.array(z.object({ sql, params })).min(1).max(1000),
    transaction: z.boolean().optional(),
  }),
});

export const pingMessageSchema = z.object({
  type: z.literal('ping'),
  id: id.optional(),
  timestamp,
  payload: z.unknown().optional(),
});

export const cancelMessageSchema = z.object({
  type: z.literal('cancel'),
  id: id.optional(),
  timestamp,
  /** `payload.id` names the query to stop. */
  payload: z.object({ id }),
});

/** A column condition of a table subscription; a bare value means `eq`. */
const filterCondition = z.union([
  sqlValueSchema,
  z
    .strictObject({
      eq: sqlValueSchema.optional(),
      neq: sqlValueSchema.optional(),
      lt: sqlValueSchema.optional(),
      lte: sqlValueSchema.optional(),
      gt: sqlValueSchema.optional(),
      gte: sqlValueSchema.optional(),
      in: z.array(sqlValueSchema).max(1000).optional(),
    })
    .refine((c) => Object.keys(c).length > 0, 'a condition needs an operator'),
]);
export const rowFilterSchema = z.record(z.string().min(1).max(128), filterCondition);
export type RowFilter = z.infer<typeof rowFilterSchema>;
export type FilterCondition = z.infer<typeof filterCondition>;

export const CHANGE_EVENTS = ['insert', 'update', 'delete'] as const;

export const subscribeMessageSchema = z.object({
  type: z.literal('subscribe'),
  /** The subscription's id: every event it produces carries it, and `unsubscribe` names it. */
  id,
  timestamp,
  payload: z
    .object({
      /** Table changes: the table to watch. */
      table: z.string().min(1).max(128).optional(),
      events: z.array(z.enum(CHANGE_EVENTS)).min(1).max(3).optional(),
      filter: rowFilterSchema.optional(),
      /** Live query: a read statement whose result is kept current. */
      query: z.string().min(1).optional(),
      params,
      /** Resume: deliver every change after this sequence (table subscriptions). */
      since: z.number().int().min(0).optional(),
      /** Send the table's current (filtered) rows first, consistent with the acknowledged sequence. */
      snapshot: z.boolean().optional(),
    })
    .refine((p) => (p.table === undefined) !== (p.query === undefined), {
      message: "give exactly one of 'table' or 'query'",
    }),
});

const resumeTokenSchema = z.strictObject({ _data: z.string().min(1).max(32) });

/** A MongoDB-like change stream over a document collection. */
export const watchMessageSchema = z.object({
  type: z.literal('watch'),
  /** The stream's id, as for `subscribe`; `unsubscribe` with it ends the stream. */
  id,
  timestamp,
  payload: z
    .object({
      /** Needed on /api/v1/stream; on the collection's own watch endpoint it comes from the URL. */
      collection: z.string().min(1).max(63).optional(),
      pipeline: z.array(z.record(z.string(), z.unknown())).max(20).optional(),
      fullDocument: z.enum(['default', 'updateLookup', 'whenAvailable', 'required']).optional(),
      resumeAfter: resumeTokenSchema.optional(),
      startAfter: resumeTokenSchema.optional(),
      /** Milliseconds since the epoch: events committed at or after this time. */
      startAtOperationTime: z.number().int().min(0).optional(),
    })
    .default({}),
});
export type WatchMessage = z.infer<typeof watchMessageSchema>;

export const unsubscribeMessageSchema = z.object({
  type: z.literal('unsubscribe'),
  /** The id of the subscription to end. */
  id,
  timestamp,
  payload: z.unknown().optional(),
});

export const clientMessageSchema = z.discriminatedUnion('type', [
  authMessageSchema,
  queryMessageSchema,
  batchMessageSchema,
  pingMessageSchema,
  cancelMessageSchema,
  subscribeMessageSchema,
  unsubscribeMessageSchema,
  watchMessageSchema,
]);
export type SubscribeMessage = z.infer<typeof subscribeMessageSchema>;

export type ClientMessage = z.infer<typeof clientMessageSchema>;
export type AuthMessage = z.infer<typeof authMessageSchema>;
export type QueryMessage = z.infer<typeof queryMessageSchema>;
export type BatchMessage = z.infer<typeof batchMessageSchema>;
export type CancelMessage = z.infer<typeof cancelMessageSchema>;
export type ClientMessageType = ClientMessage['type'];
export const CLIENT_MESSAGE_TYPES: readonly ClientMessageType[] = [
  'auth',
  'query',
  'batch',
  'ping',
  'cancel',
  'subscribe',
  'unsubscribe',
  'watch',
];

// ---- server → client -------------------------------------------------------------------------

export type ServerMessageType =
  | 'data'
  | 'error'
  | 'pong'
  | 'auth_success'
  | 'auth_error'
  | 'auth_expiring'
  | 'subscribed'
  | 'change'
  | 'unsubscribed'
  | 'reset';

/** `subscribed`: the subscription is attached; every change after `sequence` will be delivered. */
export interface SubscribedPayload {
  status: 'success';
  kind: 'table' | 'query' | 'collection';
  sequence: number;
  /** Change streams: the token to resume from this point. */
  resume_token?: { _data: string };
}

/** `change` of a table subscription: one row event, or a schema change of the table. */
export interface RowChangePayload {
  sequence: number;
  table: string;
  /** enter/leave: an update made the row start/stop matching the subscription's filter. */
  op: 'insert' | 'update' | 'delete' | 'enter' | 'leave' | 'schema';
  key: Record<string, unknown> | null;
  row: Record<string, unknown> | null;
  old_row: Record<string, unknown> | null;
  timestamp: string;
  /** For op 'schema': what happened to the table. */
  schema?: { action: 'create' | 'alter' | 'drop'; sql: string | null };
}

/** `change` of a live query: how its result moved, as of `sequence`. */
export interface QueryDiffPayload {
  sequence: number;
  op: 'diff';
  columns: string[];
  added: SqlValue[][];
  removed: SqlValue[][];
  /** Rows whose key (`id` or `_id` column) stayed while other values changed. */
  changed: { old: SqlValue[]; new: SqlValue[] }[];
}

/** `unsubscribed`: the subscription ended (asked for, or the table was dropped). */
export interface UnsubscribedPayload {
  status: 'success';
  reason: 'unsubscribed' | 'table_dropped' | 'killed';
}

/** `reset`: the change log no longer reaches back to `since`; re-subscribe with a snapshot. */
export interface ResetPayload {
  reason: 'history_unavailable';
  /** Oldest sequence still resumable from. */
  oldest_resumable: number;
  sequence: number;
}

export interface ServerEnvelope<T extends ServerMessageType, P> {
  type: T;
  payload: P;
  timestamp: string;
  id?: string;
}

/** One `data` message of a query result; the last one of a result has `has_more: false`. */
export interface QueryChunkPayload {
  status: 'success';
  columns: string[];
  rows: SqlValue[][];
  has_more: boolean;
  /** On the last chunk: rows returned (reads) or rows changed (writes). */
  rows_affected?: number;
  /** On the last chunk of a write: the rowid of the last inserted row. */
  last_insert_id?: number;
}

export interface StatementResult {
  status: 'success';
  columns: string[];
  rows: SqlValue[][];
  rows_affected: number;
  last_insert_id?: number;
}

export interface StatementFailure {
  status: 'error';
  code: ErrorCode;
  message: string;
}

export interface BatchPayload {
  status: 'success';
  results: (StatementResult | StatementFailure)[];
}

export interface CancelAckPayload {
  status: 'success';
  /** Whether a running query with that id was found and stopped. */
  cancelled: boolean;
}

export interface ErrorPayload {
  status: 'error';
  message: string;
  code: ErrorCode;
  details?: Record<string, unknown>;
}

/** The limits a connection runs under, sent in `auth_success`. `null` means "no such limit". */
export interface ServerLimits {
  max_message_size: number;
  /** Messages per second on average; null when rate limiting is off. */
  rate_limit_rps: number | null;
  /** Messages that may be sent at once before the per-second rate applies. */
  rate_limit_burst: number | null;
  /** Refused messages within `rate_limit_violation_window_ms` after which the connection is closed (1008). */
  rate_limit_max_violations: number | null;
  rate_limit_violation_window_ms: number | null;
  /** `query`/`batch` requests that may run at once on one connection. */
  max_running_queries: number;
  /** Subscriptions, live queries and change streams one connection may hold at once; null: no limit. */
  max_subscriptions: number | null;
  /** Open WebSocket connections from one address, and authenticated ones of one user. */
  max_connections_per_ip: number | null;
  max_connections_per_user: number | null;
  /** Failed logins per username and address before further attempts are refused with HTTP 429. */
  login_max_attempts: number;
  ping_interval_ms: number;
  idle_timeout_ms: number;
}

export interface AuthSuccessPayload {
  status: 'success';
  user: string;
  roles: string[];
  expires_at: string;
  limits: ServerLimits;
}

export type ServerMessage =
  | ServerEnvelope<'data', QueryChunkPayload | BatchPayload | CancelAckPayload>
  | ServerEnvelope<'error', ErrorPayload>
  | ServerEnvelope<'pong', Record<string, never>>
  | ServerEnvelope<'auth_success', AuthSuccessPayload>
  | ServerEnvelope<'auth_error', ErrorPayload>;
