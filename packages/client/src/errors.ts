/**
 * The one error class of the SDK, and the one place that decides what a close code means.
 *
 * Server errors keep the server's code and take `retryable` from the protocol's ERROR_CODES table.
 * Failures that happen on the client side (a timeout, a lost connection, a full offline queue) have
 * codes of their own, listed in CLIENT_ERROR_CODES with the same shape.
 */
import {
  ERROR_CODES,
  RETRYABLE_CLOSE_CODES,
  isErrorCode,
  type CommonErrorDetails,
  type ErrorCode,
  type ErrorDetailsByCode,
} from '@rustydb/protocol';

export const CLIENT_ERROR_CODES = {
  CONNECTION_LOST: {
    description: 'The connection dropped before the request was answered; it may or may not have run',
    retryable: true,
  },
  CONNECTION_FAILED: {
    description: 'The client gave up connecting (reconnect attempts exhausted or a fatal close)',
    retryable: false,
  },
  REQUEST_TIMEOUT: { description: 'No answer within the request timeout', retryable: true },
  QUEUE_FULL: { description: 'The offline queue is full', retryable: true },
  CLIENT_CLOSED: { description: 'The client was closed', retryable: false },
  INVALID_USE: {
    description:
      'The SDK was used in a way it does not support: a second reader of one iterator, a URL that is not one',
    retryable: false,
  },
  HTTP_ERROR: { description: 'An HTTP request failed without a RustyDB error body', retryable: true },
} as const satisfies Record<string, { description: string; retryable: boolean }>;

export type ClientErrorCode = keyof typeof CLIENT_ERROR_CODES;
export type RustyDBErrorCode = ErrorCode | ClientErrorCode;

type NoDetails = Record<never, never>;

/** What `details` may carry for the client's own codes. */
export interface ClientErrorDetailsByCode {
  /** A stream that lost its connection: the rows it had received. */
  CONNECTION_LOST: { rows_received?: number };
  CONNECTION_FAILED: NoDetails;
  /** Whether the request had left the queue (was sent) when it timed out. */
  REQUEST_TIMEOUT: { sent?: boolean };
  QUEUE_FULL: NoDetails;
  CLIENT_CLOSED: NoDetails;
  HTTP_ERROR: NoDetails;
  INVALID_USE: NoDetails;
}

/** Fields any error's details may carry: a batch statement's `index`, a stream's `rows_received`. */
export interface AnyCodeDetails extends CommonErrorDetails {
  /** Set on every error a stream ends with: the rows it had delivered. */
  rows_received?: number;
}

type DetailsTable = ErrorDetailsByCode & ClientErrorDetailsByCode;
type UnionToIntersection<U> = (U extends unknown ? (x: U) => void : never) extends (x: infer I) => void
  ? I
  : never;
/** Every field any code's details may carry, all optional. */
export type AnyErrorDetails = Partial<UnionToIntersection<DetailsTable[RustyDBErrorCode]>> & AnyCodeDetails;

/**
 * The details of an error with code `C`: that code's fields, and the other codes' fields typed as
 * absent. So once the code is known (`isRustyDBError(err, 'TABLE_NOT_FOUND')`, or a check of
 * `err.code` after `isRustyDBError(err)`), `details` says exactly what it may hold; before, every
 * known field can be read.
 */
export type RustyDBErrorDetails<C extends RustyDBErrorCode = RustyDBErrorCode> = C extends RustyDBErrorCode
  ? DetailsTable[C] &
      AnyCodeDetails & {
        [K in Exclude<keyof AnyErrorDetails, keyof DetailsTable[C] | keyof AnyCodeDetails>]?: undefined;
      }
  : never;

export interface RustyDBErrorOptions<C extends RustyDBErrorCode = RustyDBErrorCode> {
  details?: RustyDBErrorDetails<C> | undefined;
  /** The WebSocket close code, for errors caused by a close. */
  closeCode?: number | undefined;
  /** The HTTP status, for errors of HTTP calls. */
  status?: number | undefined;
  cause?: unknown;
}

/**
 * Every failure the SDK reports. `code` is a server code (ERROR_CODES) or one of the client's
 * (CLIENT_ERROR_CODES); `details` is typed per code.
 */
export class RustyDBError<C extends RustyDBErrorCode = RustyDBErrorCode> extends Error {
  readonly code: C;
  /** Sending the same request again later, unchanged, can succeed. */
  readonly retryable: boolean;
  readonly details: RustyDBErrorDetails<C> | undefined;
  readonly closeCode: number | undefined;
  readonly status: number | undefined;

  constructor(code: C, message: string, options: RustyDBErrorOptions<C> = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RustyDBError';
    this.code = code;
    this.retryable = isRetryableCode(code);
    this.details = options.details;
    this.closeCode = options.closeCode;
    this.status = options.status;
  }
}

export function isRetryableCode(code: string): boolean {
  if (isErrorCode(code)) return ERROR_CODES[code].retryable;
  if (Object.hasOwn(CLIENT_ERROR_CODES, code)) return CLIENT_ERROR_CODES[code as ClientErrorCode].retryable;
  return false;
}

/**
 * A RustyDBError of any one code: checking `err.code` narrows `details` too. What
 * `isRustyDBError(err)` narrows to.
 */
export type AnyRustyDBError = { [C in RustyDBErrorCode]: RustyDBError<C> }[RustyDBErrorCode];

/** Narrows an unknown failure to a RustyDBError with the given code (one, or any of several). */
export function isRustyDBError<C extends RustyDBErrorCode>(
  err: unknown,
  code: C | readonly C[],
): err is RustyDBError<C>;
/** Narrows an unknown failure to a RustyDBError; `switch (err.code)` then narrows its details. */
export function isRustyDBError(err: unknown): err is AnyRustyDBError;
export function isRustyDBError(err: unknown, code?: RustyDBErrorCode | readonly RustyDBErrorCode[]): boolean {
  if (!(err instanceof RustyDBError)) return false;
  if (code === undefined) return true;
  return typeof code === 'string' ? err.code === code : code.includes(err.code);
}

/** Builds the error of a server `error` / `auth_error` payload. */
export function errorFromPayload(payload: unknown): RustyDBError {
  const p = (payload ?? {}) as { code?: unknown; message?: unknown; details?: unknown };
  const code = isErrorCode(p.code) ? p.code : 'INTERNAL_ERROR';
  const message = typeof p.message === 'string' ? p.message : 'server error';
  const details =
    p.details !== null && typeof p.details === 'object' ? (p.details as RustyDBErrorDetails) : undefined;
  return new RustyDBError<RustyDBErrorCode>(code, message, { details });
}

/** What the client does after the socket closed. */
export type CloseDisposition =
  /** Reconnect with backoff and the same token. */
  | 'reconnect'
  /** Get a new token (refresh callback or login), then reconnect. */
  | 'reauthenticate'
  /** Stop: reconnecting without a change on the client's side would fail the same way. */
  | 'fatal';

/**
 * The one decision about close codes. `lastError` is the error message the server sent just before
 * closing (the server always explains a 1008).
 *
 * - codes in the protocol's RETRYABLE_CLOSE_CODES (1001 shutdown / idle, 1006 dropped, 1011, 1012, 1013,
 *   4013 fell behind)
 *   reconnect with the same credentials;
 * - 1008 after AUTH_EXPIRED (token expired or revoked) reauthenticates when the client has a way to get
 *   a new token; every other 1008 (rate limit flood, refused token) is fatal, as are 1002/1003/1007/1009;
 * - 1000 is only ever the answer to our own close.
 */
export function closeDisposition(
  code: number,
  lastError: RustyDBError | undefined,
  canReauthenticate: boolean,
): CloseDisposition {
  if (RETRYABLE_CLOSE_CODES.has(code)) return 'reconnect';
  if (code === 1008 && lastError?.code === 'AUTH_EXPIRED' && canReauthenticate) return 'reauthenticate';
  return 'fatal';
}

/** The error a request or subscription fails with when the socket closes under it. */
export function closeError(code: number, reason: string, lastError: RustyDBError | undefined): RustyDBError {
  if (lastError) {
    return new RustyDBError<RustyDBErrorCode>(lastError.code, lastError.message, {
      details: lastError.details,
      closeCode: code,
    });
  }
  return new RustyDBError('CONNECTION_LOST', `connection closed (${code}${reason ? `: ${reason}` : ''})`, {
    closeCode: code,
  });
}
