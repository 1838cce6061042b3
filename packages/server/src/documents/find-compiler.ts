/**
 * `find` and `count` over a collection table, as single SELECT statements. A find returns one
 * column, `doc`, holding each (projected) document as JSON text.
 *
 * `limit` and `skip` follow MongoDB: non-negative integers, and a limit of 0 means no limit. A sort
 * is made deterministic by ending it with `_id`, so pages taken with skip/limit neither repeat nor
 * miss documents; without a sort, the order is the engine's (usually insertion order), as MongoDB's
 * natural order is unspecified.
 */
import { collectionTable } from './collection-name.ts';
import type { DocumentDialect } from './document-dialect.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { documentError } from './document-errors.ts';
import { filterSql } from './filter-compiler.ts';
import { parseProjection } from './projection-compiler.ts';
import { sortTerms } from './sort-compiler.ts';
import { AliasSource, join, raw, sql, toCompiled, type CompiledSql } from './sql-fragment.ts';

export interface FindOptions {
  filter?: unknown;
  projection?: unknown;
  sort?: unknown;
  limit?: unknown;
  skip?: unknown;
}

export interface CountOptions {
  limit?: unknown;
  skip?: unknown;
}

/** Checks a limit or skip: undefined when absent, else a non-negative integer. */
export function countOption(value: unknown, name: string): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw documentError(`${name} must be a non-negative integer`);
  }
  return value;
}

export function compileFind(
  collection: string,
  options: FindOptions = {},
  dialect: DocumentDialect = sqliteDialect,
): CompiledSql {
  const table = collectionTable(collection);
  const aliases = new AliasSource();
  const plan = parseProjection(options.projection ?? {}, { computed: false, where: 'projection' });
  const projection = plan && dialect.project(plan, aliases);
  const where = filterSql(options.filter ?? {}, { aliases, idColumn: true, dialect });
  const terms =
    options.sort === undefined || options.sort === null ? [] : sortTerms(options.sort, 'sort', dialect);
  const orderBy = terms.length > 0 ? sql` ORDER BY ${join([...terms, dialect.idOrder], ', ')}` : raw('');
  const limits = dialect.limitClause(countOption(options.limit, 'limit'), countOption(options.skip, 'skip'));
  // ORDER BY names `doc` inside expressions, which SQLite resolves to the table's column, not to
  // the projected output column of the same name.
  return toCompiled(
    sql`SELECT ${projection ?? raw('doc')} AS doc FROM ${table} WHERE ${where}${orderBy}${limits}`,
  );
}

/** `SELECT COUNT(*)` of the documents matching `filter` (after skip, up to limit when given). */
export function compileCount(
  collection: string,
  filter: unknown = {},
  options: CountOptions = {},
  dialect: DocumentDialect = sqliteDialect,
): CompiledSql {
  const table = collectionTable(collection);
  const where = filterSql(filter ?? {}, { aliases: new AliasSource(), idColumn: true, dialect });
  const limits = dialect.limitClause(countOption(options.limit, 'limit'), countOption(options.skip, 'skip'));
  if (limits.sql === '') return toCompiled(sql`SELECT COUNT(*) FROM ${table} WHERE ${where}`);
  return toCompiled(sql`SELECT COUNT(*) FROM (SELECT 1 FROM ${table} WHERE ${where}${limits}) AS page`);
}
