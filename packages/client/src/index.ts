/**
 * `@rustydb/client`: the RustyDB SDK for browsers and Node 20. Every module is side-effect free;
 * import only what you use.
 */
export {
  RustyDBClient,
  connect,
  resolveUrls,
  METRICS_PATH,
  STREAM_PATH,
  type ClientOptions,
  type HttpRequestOptions,
} from './client.ts';
export {
  Connection,
  DEFAULT_CONNECTION_OPTIONS,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  type InboundMessage,
  type OutboundMessage,
  type Route,
  type SessionInfo,
} from './connection.ts';
export { AuthManager, login, type AuthOptions, type RefreshTokenCallback, type TokenInfo } from './auth.ts';
export { ClientRateLimiter, type RateLimiterOptions } from './rate-limiter.ts';
export {
  BACKOFF_FACTOR,
  STEADY_RETRIES,
  backoffDelay,
  type RetryContext,
  type RetryPolicyOptions,
  type RetryWait,
  type ShouldRetry,
} from './retry-policy.ts';
export {
  toArray,
  toObject,
  toObjects,
  type ArrayRow,
  type ArrayRowsOption,
  type ObjectRow,
  type ObjectRowsOption,
  type RowMode,
  type RowModeOption,
} from './rows.ts';
export {
  QueryStream,
  runQuery,
  type QueryChunk,
  type QueryOptions,
  type QueryResult,
  type SqlValue,
  type StreamOptions,
} from './query.ts';
export { runBatch, type BatchItemResult, type BatchOptions, type BatchStatement } from './batch.ts';
export {
  ChangeStream,
  LiveQuerySubscription,
  MetricsSubscription,
  TableSubscription,
  type ChangeStreamEvent,
  type ChangeStreamEvents,
  type ChangeStreamResetEvent,
  type Document,
  type DocumentId,
  type FilterCondition,
  type LiveDiffEvent,
  type LiveQueryEvent,
  type LiveQuerySubscriptionEvents,
  type LiveQueryOptions,
  type LiveResultEvent,
  type MetricsOptions,
  type MetricsSample,
  type ResetEvent,
  type ResumeToken,
  type Row,
  type RowFilter,
  type Subscription,
  type SubscriptionEvents,
  type SubscriptionOptions,
  type SubscriptionStatus,
  type TableChangeEvent,
  type TableEvent,
  type TableSnapshotEvent,
  type TableSubscriptionEvents,
  type TableSubscribeOptions,
  type WatchEvent,
  type WatchOptions,
} from './subscriptions.ts';
export { LiveTable, type LiveTableOptions } from './live-table.ts';
export { LiveResult, type LiveResultOptions } from './live-result.ts';
export {
  LiveCollection,
  type DocumentFilter,
  type LiveCollectionEvents,
  type LiveCollectionStatus,
} from './live-collection.ts';
export { RowSet, compareValues, type OrderBy, type RowSetOptions } from './row-set.ts';
export {
  CLIENT_ERROR_CODES,
  RustyDBError,
  closeDisposition,
  isRetryableCode,
  isRustyDBError,
  type AnyErrorDetails,
  type AnyRustyDBError,
  type ClientErrorCode,
  type ClientErrorDetailsByCode,
  type CloseDisposition,
  type RustyDBErrorCode,
  type RustyDBErrorDetails,
} from './errors.ts';
export type { DatabaseSchema, SchemaColumn, SchemaTable } from './schema.ts';
export type { WebSocketConstructor, WebSocketLike } from './transport/socket.ts';
export type { FetchLike } from './http.ts';
export {
  GRAPHQL_PATH,
  GRAPHQL_WS_PATH,
  type GraphQLError,
  type GraphQLRequest,
  type GraphQLResult,
} from './graphql.ts';
