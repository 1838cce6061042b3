/**
 * Error codes and WebSocket close codes: the one table both the server and the client read.
 * `docs/protocol.md` lists the same codes; a test keeps the two in step.
 */

export const ERROR_CODES = {
  AUTH_REQUIRED: { description: 'The connection has not authenticated yet', retryable: false },
  AUTH_FAILED: { description: 'Credentials or token were rejected', retryable: false },
  AUTH_EXPIRED: { description: 'The token has expired', retryable: false },
  PERMISSION_DENIED: { description: 'The caller lacks a privilege the operation needs', retryable: false },
  INVALID_MESSAGE: {
    description: 'The message is not valid JSON or does not have the expected shape',
    retryable: false,
  },
  QUERY_ERROR: { description: 'The SQL statement failed', retryable: false },
  TABLE_NOT_FOUND: { description: 'A table named by the statement does not exist', retryable: false },
  NOT_FOUND: { description: 'The user, role, session or collection named does not exist', retryable: false },
  QUERY_CANCELLED: { description: 'The query was stopped by a cancel message', retryable: false },
  QUERY_TIMEOUT: {
    description:
      'The query ran longer than the statement timeout, or waited that long for its turn to write, and was stopped',
    retryable: true,
  },
  BUSY: {
    description:
      'Another process held the database lock too long, or a transient conflict persisted; wait retry_after_ms and send again',
    retryable: true,
  },
  STORAGE_FULL: {
    description:
      'The disk holding the database is full: the write was not applied; reads and deletes still work',
    retryable: true,
  },
  SLOW_CONSUMER: {
    description: 'The client fell too far behind a subscription; resume from details.resume_from',
    retryable: true,
  },
  CONNECTION_LIMIT: { description: 'The server has no room for another connection', retryable: true },
  RATE_LIMIT_EXCEEDED: {
    description: 'Too many messages; wait retry_after_ms before sending again',
    retryable: true,
  },
  INTERNAL_ERROR: { description: 'The server failed unexpectedly', retryable: true },
} as const satisfies Record<string, { description: string; retryable: boolean }>;

export type ErrorCode = keyof typeof ERROR_CODES;

type NoDetails = Record<never, never>;

/**
 * What an error's `details` may carry, per code (docs/protocol.md says when each is set). Every field
 * may be missing. Whatever the code, a failed statement of a transactional batch adds `index`.
 */
export interface ErrorDetailsByCode {
  AUTH_REQUIRED: NoDetails;
  AUTH_FAILED: NoDetails;
  AUTH_EXPIRED: NoDetails;
  /** The privilege that is missing, and the table it is missing on (for a table privilege). */
  PERMISSION_DENIED: { privilege?: string; table?: string };
  /** For an unknown metric name: the names there are. */
  INVALID_MESSAGE: { known?: string[] };
  /** SQLite's result code name, such as `SQLITE_CONSTRAINT_UNIQUE`. */
  QUERY_ERROR: { sqlite_code?: string };
  TABLE_NOT_FOUND: { table?: string };
  NOT_FOUND: NoDetails;
  QUERY_CANCELLED: NoDetails;
  /** When the request timed out waiting: what for (`the write lock`, `a database connection`). */
  QUERY_TIMEOUT: { waiting_for?: string };
  /** How long to wait before sending again, and SQLite's result code (`SQLITE_BUSY`). */
  BUSY: { retry_after_ms?: number; sqlite_code?: string };
  STORAGE_FULL: NoDetails;
  /** The sequence to resume the subscription from. */
  SLOW_CONSUMER: { resume_from?: number };
  CONNECTION_LIMIT: NoDetails;
  /** How long to wait before sending again. */
  RATE_LIMIT_EXCEEDED: { retry_after_ms?: number };
  /** The failure ended the connection. */
  INTERNAL_ERROR: { fatal?: boolean };
}

/** Fields any error's details may carry. */
export interface CommonErrorDetails {
  /** The position (from 0) of the batch statement that failed. */
  index?: number;
}

// Compile-time check: every code has an entry in ErrorDetailsByCode, and every entry is a code.
type SameKeys<A, B> = [Exclude<keyof A, keyof B>, Exclude<keyof B, keyof A>] extends [never, never]
  ? true
  : false;
type Expect<T extends true> = T;
type _DetailsCoverEveryCode = Expect<SameKeys<ErrorDetailsByCode, typeof ERROR_CODES>>;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CODES, value);
}

export const CLOSE_CODES = {
  NORMAL: { code: 1000, description: 'Normal closure' },
  GOING_AWAY: { code: 1001, description: 'The server is shutting down' },
  PROTOCOL_ERROR: { code: 1002, description: 'WebSocket protocol violation' },
  UNSUPPORTED_DATA: { code: 1003, description: 'Binary frames are not accepted' },
  INVALID_PAYLOAD: { code: 1007, description: 'A text frame was not valid UTF-8' },
  POLICY_VIOLATION: {
    code: 1008,
    description: 'Authentication failed, expired or was revoked, or a policy was broken',
  },
  MESSAGE_TOO_BIG: { code: 1009, description: 'A message exceeded websocket_max_message_size' },
  INTERNAL_ERROR: { code: 1011, description: 'The server failed unexpectedly' },
  TRY_AGAIN_LATER: { code: 1013, description: 'The server is at websocket_max_connections' },
  SEND_BUFFER_FULL: {
    code: 4013,
    description: 'The client fell more than websocket_max_send_buffer bytes behind in reading',
  },
} as const;

export type CloseCodeName = keyof typeof CLOSE_CODES;

/** Close codes after which a client may reconnect with the same credentials and expect success. */
export const RETRYABLE_CLOSE_CODES: ReadonlySet<number> = new Set([1001, 1006, 1011, 1012, 1013, 4013]);
