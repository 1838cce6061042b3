/**
 * SQL snippets over PostgreSQL's jsonb shared by its document dialect (postgres-dialect.ts) and its
 * `$group` (postgres-group.ts): reaching a path's value and binding JSON values.
 */
import { documentError } from './document-errors.ts';
import { nameLiteral } from './field-path.ts';
import { bind, join, raw, sql, type SqlFragment } from './sql-fragment.ts';

export const SEGMENT = /^(?:[A-Za-z_][A-Za-z0-9_]*|\d+)$/;

/** Checked segments as a text[] literal (`'{a,b,0}'`). */
export function pathArray(segments: readonly string[]): SqlFragment {
  // The segments were validated already; this is the last line of defence before SQL text.
  if (!segments.every((s) => SEGMENT.test(s)))
    throw documentError(`invalid field path '${segments.join('.')}'`);
  return raw(`'{${segments.join(',')}}'::text[]`);
}

/** The value at `segments` below `base` (SQL NULL when missing). */
export function at(base: SqlFragment, segments: readonly string[]): SqlFragment {
  return segments.length === 0 ? base : sql`(${base} #> ${pathArray(segments)})`;
}

/** A JSON value, bound, as jsonb. */
export function jsonb(value: unknown): SqlFragment {
  return sql`CAST(${bind(JSON.stringify(value))} AS jsonb)`;
}

/** A jsonb object of the named values that are not SQL NULL (a missing path is left out). */
export function objectOfPresent(fields: readonly (readonly [string, SqlFragment])[]): SqlFragment {
  if (fields.length === 0) return raw(`'{}'::jsonb`);
  const rows = fields.map(([name, value]) => sql`(${nameLiteral(name)}, ${value})`);
  return sql`(SELECT COALESCE(jsonb_object_agg(f.k, f.v), '{}'::jsonb) FROM (VALUES ${join(rows, ', ')}) AS f(k, v) WHERE f.v IS NOT NULL)`;
}
