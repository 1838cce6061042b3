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

export const clientMessageSchema = z.discriminatedUnion('type', [
  authMessageSchema,
  queryMessageSchema,
  batchMessageSchema,
  pingMessageSchema,
  cancelMessageSchema,
]);

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
];

// ---- server → client -------------------------------------------------------------------------

export type ServerMessageType = 'data' | 'error' | 'pong' | 'auth_success' | 'auth_error';

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

export interface ServerLimits {
  max_message_size: number;
  rate_limit_rps: number | null;
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
