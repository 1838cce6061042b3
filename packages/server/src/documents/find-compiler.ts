/**
 * `find` and `count` over a collection table, as single SELECT statements. A find returns one
 * column, `doc`, holding each (projected) document as JSON text.
 *
 * `limit` and `skip` follow MongoDB: non-negative integers, and a limit of 0 means no limit. A sort
 * is made deterministic by ending it with `_id`, so pages taken with skip/limit neither repeat nor
 * miss documents; without a sort, the order is SQLite's (usually insertion order), as MongoDB's
 * natural order is unspecified.
 */
import { collectionTable } from './collection-name.ts';
import { documentError } from './document-errors.ts';
import { filterSql } from './filter-compiler.ts';
import { compileProjection } from './projection-compiler.ts';
import { sortTerms } from './sort-compiler.ts';
import {
  AliasSource,
  bindNumber,
  join,
  raw,
  sql,
  toCompiled,
  type CompiledSql,
  type SqlFragment,
} from './sql-fragment.ts';

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

/** `LIMIT … OFFSET …` with bound values; empty when neither applies. */
export function limitClause(limit: number | undefined, skip: number | undefined): SqlFragment {
  const hasLimit = limit !== undefined && limit > 0;
  const hasSkip = skip !== undefined && skip > 0;
  if (!hasLimit && !hasSkip) return raw('');
  // LIMIT -1 is SQLite's "no limit", needed to write an OFFSET alone.
  const limitSql = hasLimit ? bindNumber(limit) : raw('-1');
  return hasSkip ? sql` LIMIT ${limitSql} OFFSET ${bindNumber(skip)}` : sql` LIMIT ${limitSql}`;
}

export function compileFind(collection: string, options: FindOptions = {}): CompiledSql {
  const table = collectionTable(collection);
  const aliases = new AliasSource();
  const projection = compileProjection(
    options.projection ?? {},
    { computed: false, where: 'projection' },
    aliases,
  );
  const where = filterSql(options.filter ?? {}, { aliases, idColumn: true });
  const terms = options.sort === undefined || options.sort === null ? [] : sortTerms(options.sort, 'sort');
  const orderBy = terms.length > 0 ? sql` ORDER BY ${join([...terms, raw('_id')], ', ')}` : raw('');
  const limits = limitClause(countOption(options.limit, 'limit'), countOption(options.skip, 'skip'));
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
): CompiledSql {
  const table = collectionTable(collection);
  const where = filterSql(filter ?? {}, { aliases: new AliasSource(), idColumn: true });
  const limits = limitClause(countOption(options.limit, 'limit'), countOption(options.skip, 'skip'));
  if (limits.sql === '') return toCompiled(sql`SELECT COUNT(*) FROM ${table} WHERE ${where}`);
  return toCompiled(sql`SELECT COUNT(*) FROM (SELECT 1 FROM ${table} WHERE ${where}${limits})`);
}
