/**
 * SQL snippets over SQLite's JSON1 functions shared by the compilers: type tests, MongoDB's ordering
 * of types, exact rendering of computed numbers, and a way to fail a statement with a message.
 */
import { bind, raw, sql, type SqlFragment } from './sql-fragment.ts';

/** `json_type` names of numbers; MongoDB compares integers and doubles with each other. */
export const NUMBER_TYPES = raw(`('integer', 'real')`);

/**
 * MongoDB's sort order of types (missing and null first, then numbers, strings, objects, arrays,
 * booleans), as a number for ORDER BY. `type` is a json_type result (NULL when the path is missing).
 */
export function typeRank(type: SqlFragment): SqlFragment {
  return sql`CASE IFNULL(${type}, 'null') WHEN 'null' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2 WHEN 'text' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 5 ELSE 6 END`;
}

/**
 * JSON text for an SQL number, exact. SQLite writes a REAL into JSON with 15 significant digits,
 * which would store 0.1 + 0.2 as 0.3; this picks the shortest of 15, 16 or 17 digits that reads back
 * as the same double (17 always does), integers as they are, and null for NULL and infinities
 * (as JSON.stringify does). `value` is repeated, so it should be a column, not a computation.
 */
export function renderNumber(value: SqlFragment): SqlFragment {
  return sql`CASE WHEN ${value} IS NULL THEN 'null' WHEN typeof(${value}) = 'integer' THEN CAST(${value} AS TEXT) WHEN abs(${value}) > 1.7976931348623157e308 THEN 'null' WHEN CAST(printf('%.15g', ${value}) AS REAL) = ${value} THEN printf('%.15g', ${value}) WHEN CAST(printf('%.16g', ${value}) AS REAL) = ${value} THEN printf('%.16g', ${value}) ELSE printf('%!.17g', ${value}) END`;
}

/** Marks the messages of statements stopped by `failWith`. */
export const FAILURE_PREFIX = 'rustydb: ';

/**
 * An expression that stops the statement with `message` when (and only when) it is evaluated, for
 * conditions only the data can reveal, such as `$inc` on a string. SQLite has no RAISE outside
 * triggers, but json_extract reports a malformed path verbatim: the statement fails with
 * "bad JSON path: 'rustydb: …'", which `failureMessage` recognises.
 */
export function failWith(message: string): SqlFragment {
  return sql`json_extract('{}', ${bind(FAILURE_PREFIX + message)})`;
}

/** The message given to `failWith`, when `error` is the failure it caused; undefined otherwise. */
export function failureMessage(error: unknown): string | undefined {
  const message = (error as { message?: unknown } | null)?.message;
  if (typeof message !== 'string') return undefined;
  const start = message.indexOf(`'${FAILURE_PREFIX}`);
  if (!message.startsWith('bad JSON path') || start < 0) return undefined;
  // SQLite quotes the path in its message, doubling the quotes inside it.
  return message
    .slice(start + 1 + FAILURE_PREFIX.length)
    .replace(/'$/, '')
    .replaceAll("''", "'");
}
