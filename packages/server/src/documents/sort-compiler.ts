/**
 * Sort specifications (`{age: -1, name: 1}`) as ORDER BY terms over the `doc` column. Each key sorts
 * by MongoDB's type order first (missing and null, numbers, strings, objects, arrays, booleans), then
 * by value within a type (the keys are the dialect's). Approximations: a path is read directly (`a.b` does not look into an array
 * `a` of sub-documents), and objects and arrays sort by their JSON text (in jsonb's order on PostgreSQL), whereas MongoDB compares
 * objects field by field and sorts an array by its smallest (largest, descending) element.
 */
import { documentError } from './document-errors.ts';
import type { DocumentDialect } from './document-dialect.ts';
import { parseFieldPath } from './field-path.ts';
import { isPlainObject } from './json-values.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { raw, sql, type SqlFragment } from './sql-fragment.ts';

export const MAX_SORT_KEYS = 32;

/** The ORDER BY terms for `spec` (empty for an empty spec). `where` names the caller in errors. */
export function sortTerms(
  spec: unknown,
  where: string,
  dialect: DocumentDialect = sqliteDialect,
): SqlFragment[] {
  if (!isPlainObject(spec)) throw documentError(`${where} must be an object such as {"age": -1}`);
  const entries = Object.entries(spec);
  if (entries.length > MAX_SORT_KEYS) throw documentError(`${where}: more than ${MAX_SORT_KEYS} keys`);
  return entries.flatMap(([pathText, direction]) => {
    if (direction !== 1 && direction !== -1) {
      throw documentError(`${where}: direction for '${pathText}' must be 1 or -1`);
    }
    const order = raw(direction === 1 ? 'ASC' : 'DESC');
    return dialect.sortKeys(parseFieldPath(pathText, where)).map((key) => sql`${key} ${order}`);
  });
}
