/**
 * PostgreSQL's errors in the guide's codes. The SQLSTATE always goes along in `details.sqlstate`; what
 * PostgreSQL says about the user's own statement (its message, detail, hint and position) is safe and
 * useful to show. Failures of the database itself (connection lost, out of resources, shutting down)
 * become INTERNAL_ERROR with a generic message.
 */
import { RustyError } from '../../errors/rusty-error.ts';

interface PgErrorLike {
  code?: unknown;
  message?: unknown;
  detail?: unknown;
  hint?: unknown;
  position?: unknown;
  severity?: unknown;
}

/** SQLSTATE classes about the server or the connection (28: a session role could not log in), not the statement. */
const SERVER_CLASSES = new Set(['08', '28', '53', '57', '58', 'XX', 'F0', 'P0']);

function isPgError(err: unknown): err is PgErrorLike & { code: string } {
  const e = err as PgErrorLike | null;
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof e.code === 'string' &&
    /^[0-9A-Z]{5}$/.test(e.code) &&
    typeof e.severity === 'string'
  );
}

/** The client-facing error for anything node-postgres threw; RustyErrors pass through. */
export function translatePgError(err: unknown): unknown {
  if (err instanceof RustyError) return err;
  if (!isPgError(err)) {
    // The connection broke (no SQLSTATE): the database is unreachable or restarted.
    if (
      err instanceof Error &&
      /Connection terminated|ECONNREFUSED|ECONNRESET|EPIPE|not queryable/i.test(err.message)
    ) {
      return new RustyError('INTERNAL_ERROR', 'the database connection was lost; try again');
    }
    return err;
  }
  const sqlstate = err.code;
  const message = typeof err.message === 'string' ? err.message : 'SQL error';
  const details: Record<string, unknown> = { sqlstate };
  if (typeof err.detail === 'string') details.detail = err.detail;
  if (typeof err.hint === 'string') details.hint = err.hint;
  if (typeof err.position === 'string') details.position = Number(err.position);
  if (sqlstate === '42P01') {
    const table = /relation "(.+)" does not exist/.exec(message)?.[1];
    return new RustyError('TABLE_NOT_FOUND', table ? `Table '${table}' not found` : message, {
      ...details,
      ...(table ? { table } : {}),
    });
  }
  if (sqlstate === '42501') return new RustyError('PERMISSION_DENIED', message, details);
  if (sqlstate === '57014') return new RustyError('QUERY_CANCELLED', 'query cancelled', details);
  // P0001 is RAISE in a user's own function: the user's message, about the user's statement.
  if (sqlstate === 'P0001') return new RustyError('QUERY_ERROR', message, details);
  if (SERVER_CLASSES.has(sqlstate.slice(0, 2))) {
    return new RustyError('INTERNAL_ERROR', 'database error; try again', { sqlstate });
  }
  return new RustyError('QUERY_ERROR', message, details);
}
