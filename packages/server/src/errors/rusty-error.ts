/**
 * The one error class of the server. Every boundary (WebSocket, HTTP, CLI) turns whatever was thrown
 * into one of these with `normalizeError`, so clients only ever see a code and a message meant for them.
 */
import type { ErrorCode } from '@rustydb/protocol';

export class RustyError extends Error {
  /** The server cannot go on serving this connection (storage failure): close it with 1011. */
  readonly fatal: boolean;

  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    options: { fatal?: boolean } = {},
  ) {
    super(message);
    this.name = 'RustyError';
    this.fatal = options.fatal ?? false;
  }
}

/** How long a client told BUSY should wait before trying again. */
const BUSY_RETRY_AFTER_MS = 1000;

/** SQLite result codes that mean the database itself is broken, not the statement. */
const STORAGE_FAILURES = /^SQLITE_(CORRUPT|NOTADB|IOERR|CANTOPEN|NOMEM)/;

/** HTTP status for each error code, used by the REST routes. */
export const HTTP_STATUS: Record<ErrorCode, number> = {
  AUTH_REQUIRED: 401,
  AUTH_FAILED: 401,
  AUTH_EXPIRED: 401,
  PERMISSION_DENIED: 403,
  INVALID_MESSAGE: 400,
  QUERY_ERROR: 400,
  TABLE_NOT_FOUND: 404,
  NOT_FOUND: 404,
  QUERY_CANCELLED: 409,
  QUERY_TIMEOUT: 408,
  BUSY: 503,
  STORAGE_FULL: 507,
  SLOW_CONSUMER: 429,
  CONNECTION_LIMIT: 503,
  RATE_LIMIT_EXCEEDED: 429,
  INTERNAL_ERROR: 500,
};

/** A write refused or failed because the disk holding the database is full. */
export function storageFullError(): RustyError {
  return new RustyError(
    'STORAGE_FULL',
    'the disk holding the database is full: reads and deletes still work; writes are accepted again once space is freed',
  );
}

interface SqliteLikeError {
  code?: unknown;
  message?: unknown;
}

/**
 * Maps an engine error to a client error. SQLite's messages about the user's own SQL ("no such column",
 * "UNIQUE constraint failed") are safe and useful to show; anything else becomes INTERNAL_ERROR with
 * a generic message and is reported to `onInternal` for the server log.
 */
export function normalizeError(err: unknown, onInternal?: (err: unknown) => void): RustyError {
  if (err instanceof RustyError) return err;
  // An AbortSignal fired (the client went away, or cancelled) while the request waited: no failure.
  if ((err as { name?: unknown } | null)?.name === 'AbortError') {
    return new RustyError('QUERY_CANCELLED', 'the request was cancelled');
  }
  const e = (err ?? {}) as SqliteLikeError;
  const code = typeof e.code === 'string' ? e.code : '';
  const message = typeof e.message === 'string' ? e.message : '';
  if (code.startsWith('SQLITE_')) {
    // The disk is full: this write failed, but the database is sound and the connection can go on
    // (reads and deletes work; see the engine's DiskSpace).
    if (code.startsWith('SQLITE_FULL')) return storageFullError();
    if (STORAGE_FAILURES.test(code)) {
      onInternal?.(err);
      return new RustyError('INTERNAL_ERROR', 'database storage failure', undefined, { fatal: true });
    }
    if (code === 'SQLITE_AUTH')
      return new RustyError('PERMISSION_DENIED', message.replace(/^access to /, 'no access to '));
    const missing = /^no such table: (.+)$/.exec(message);
    if (missing)
      return new RustyError('TABLE_NOT_FOUND', `Table '${missing[1]}' not found`, { table: missing[1] });
    if (/^SQLITE_(BUSY|LOCKED)/.test(code)) {
      // The server's own writers take turns and never meet each other's locks: this lock is held by
      // another process (a backup tool, an operator's sqlite3 shell) for longer than the busy timeout.
      return new RustyError('BUSY', 'the database is locked by another process; try again', {
        sqlite_code: code,
        retry_after_ms: BUSY_RETRY_AFTER_MS,
      });
    }
    return new RustyError('QUERY_ERROR', message || 'SQL error', { sqlite_code: code });
  }
  // Binding errors come from the driver as RangeError/TypeError with a message about the parameters.
  if ((err instanceof RangeError || err instanceof TypeError) && /param|bind|value/i.test(message)) {
    return new RustyError('QUERY_ERROR', message);
  }
  onInternal?.(err);
  return new RustyError('INTERNAL_ERROR', 'internal server error');
}
