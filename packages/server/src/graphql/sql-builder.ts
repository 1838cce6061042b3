/**
 * Builds the SQL of every generated field. Identifiers come only from the table model (quoted SQL
 * names read from the catalog); every value a caller gives is bound to a `?`. Nothing a caller sends
 * is ever pasted into SQL text.
 */
import type { SqlValue } from '@rustydb/protocol';
import { RustyError } from '../errors/rusty-error.ts';
import type { ColumnModel, TableModel } from './table-model.ts';
import { toSqlValue } from './type-mapping.ts';

export interface Statement {
  sql: string;
  params: SqlValue[];
}

/** `where` input: column conditions and the and/or/not combinators (GraphQL names as keys). */
export type WhereInput = Record<string, unknown>;
export type OrderByInput = Record<string, unknown>[];

/** Conditions a single `where` may hold, and how deep and/or/not may nest: bounds on the SQL built. */
const MAX_CONDITIONS = 1000;
const MAX_NESTING = 32;
const MAX_IN_VALUES = 1000;

const COMPARISONS: Record<string, string> = { lt: '<', lte: '<=', gt: '>', gte: '>=' };

function invalid(message: string): RustyError {
  return new RustyError('INVALID_MESSAGE', message);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** A comparison input: `{ eq, neq, lt, lte, gt, gte, in, like, isNull }`, or a bare value for `eq`. */
function compileComparison(column: ColumnModel, condition: unknown, params: SqlValue[]): string[] {
  const col = column.ident;
  if (!isObject(condition) || '$base64' in condition) {
    params.push(toSqlValue(condition));
    return [`${col} IS NOT DISTINCT FROM ?`];
  }
  const parts: string[] = [];
  for (const [op, operand] of Object.entries(condition)) {
    if (operand === undefined) continue;
    switch (op) {
      case 'eq':
        parts.push(`${col} IS NOT DISTINCT FROM ?`);
        params.push(toSqlValue(operand));
        break;
      case 'neq':
        parts.push(`${col} IS DISTINCT FROM ?`);
        params.push(toSqlValue(operand));
        break;
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        parts.push(`${col} ${COMPARISONS[op]} ?`);
        params.push(toSqlValue(operand));
        break;
      case 'in': {
        if (!Array.isArray(operand)) throw invalid(`where.${column.gql}.in: expected a list`);
        if (operand.length > MAX_IN_VALUES)
          throw invalid(`where.${column.gql}.in: at most ${MAX_IN_VALUES} values`);
        if (operand.length === 0) parts.push('FALSE');
        else {
          parts.push(`${col} IN (${operand.map(() => '?').join(', ')})`);
          for (const value of operand) params.push(toSqlValue(value));
        }
        break;
      }
      case 'like':
        if (typeof operand !== 'string') throw invalid(`where.${column.gql}.like: expected a string pattern`);
        parts.push(`${col} LIKE ?`);
        params.push(operand);
        break;
      case 'isNull':
        if (typeof operand !== 'boolean') throw invalid(`where.${column.gql}.isNull: expected true or false`);
        parts.push(operand ? `${col} IS NULL` : `${col} IS NOT NULL`);
        break;
      default:
        throw invalid(`where.${column.gql}: unknown operator '${op}'`);
    }
  }
  return parts;
}

/** A `where` input as a SQL condition (TRUE when empty; TRUE/FALSE are understood by both engines). */
export function compileWhere(table: TableModel, where: WhereInput | null | undefined): Statement {
  const params: SqlValue[] = [];
  let conditions = 0;
  const walk = (input: unknown, depth: number): string => {
    if (depth > MAX_NESTING) throw invalid(`where: and/or/not nest deeper than ${MAX_NESTING}`);
    if (input === null || input === undefined) return 'TRUE';
    if (!isObject(input)) throw invalid('where: expected an object of column conditions');
    const parts: string[] = [];
    for (const [key, value] of Object.entries(input)) {
      if (value === undefined) continue;
      if (++conditions > MAX_CONDITIONS) throw invalid(`where: more than ${MAX_CONDITIONS} conditions`);
      if (key === 'and' || key === 'or') {
        if (!Array.isArray(value)) throw invalid(`where.${key}: expected a list`);
        if (value.length === 0) {
          parts.push(key === 'and' ? 'TRUE' : 'FALSE');
          continue;
        }
        const joined = value.map((v) => `(${walk(v, depth + 1)})`).join(key === 'and' ? ' AND ' : ' OR ');
        parts.push(`(${joined})`);
      } else if (key === 'not') {
        parts.push(`NOT (${walk(value, depth + 1)})`);
      } else {
        const column = table.byGql.get(key);
        if (!column) throw invalid(`where: table ${table.gql} has no column '${key}'`);
        parts.push(...compileComparison(column, value, params));
      }
    }
    return parts.length === 0 ? 'TRUE' : parts.join(' AND ');
  };
  return { sql: walk(where, 0), params };
}

export interface OrderTerm {
  /** SQL expression (a quoted column or a rowid alias). */
  expr: string;
  desc: boolean;
  /** Index of the column in the table model, or -1 for a key expression outside the columns. */
  column: number;
}

/** `orderBy: [{ column: ASC|DESC }, …]`, then the key, so that the order is total. */
export function orderTerms(
  table: TableModel,
  orderBy: OrderByInput | null | undefined,
  withKey: boolean,
): OrderTerm[] {
  const terms: OrderTerm[] = [];
  for (const [i, item] of (orderBy ?? []).entries()) {
    const entries = isObject(item)
      ? Object.entries(item).filter(([, v]) => v !== undefined && v !== null)
      : [];
    if (entries.length !== 1) {
      throw invalid(`orderBy[${i}]: give exactly one column per item, e.g. [{ name: ASC }, { id: DESC }]`);
    }
    const [name, direction] = entries[0]!;
    const index = table.columns.findIndex((c) => c.gql === name);
    if (index === -1) throw invalid(`orderBy[${i}]: table ${table.gql} has no column '${name}'`);
    if (direction !== 'ASC' && direction !== 'DESC')
      throw invalid(`orderBy[${i}].${name}: expected ASC or DESC`);
    terms.push({ expr: table.columns[index]!.ident, desc: direction === 'DESC', column: index });
  }
  if (withKey) {
    for (const expr of table.key) {
      if (terms.some((t) => t.expr === expr)) continue;
      terms.push({ expr, desc: false, column: table.columns.findIndex((c) => c.ident === expr) });
    }
  }
  return terms;
}

function orderSql(terms: readonly OrderTerm[]): string {
  return terms.length === 0
    ? ''
    : ` ORDER BY ${terms.map((t) => `${t.expr}${t.desc ? ' DESC' : ''}`).join(', ')}`;
}

function columnList(table: TableModel): string {
  return table.columns.map((c) => c.ident).join(', ');
}

function positiveInt(value: unknown, what: string, max: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw invalid(`${what}: expected a whole number >= 0`);
  if (n > max) throw invalid(`${what}: at most ${max}`);
  return n;
}

/** Rows a list query may ask for with `limit` (the engine refuses whole results larger than this). */
export const MAX_LIMIT = 100_000;

/** `SELECT <columns> FROM t WHERE … ORDER BY … LIMIT … OFFSET …` */
export function selectStatement(
  table: TableModel,
  args: { where?: WhereInput | null; orderBy?: OrderByInput | null; limit?: unknown; offset?: unknown },
): Statement {
  const where = compileWhere(table, args.where);
  const limit = positiveInt(args.limit, 'limit', MAX_LIMIT);
  const offset = positiveInt(args.offset, 'offset', Number.MAX_SAFE_INTEGER);
  const params = [...where.params];
  let sql = `SELECT ${columnList(table)} FROM ${table.ident} WHERE ${where.sql}${orderSql(orderTerms(table, args.orderBy, true))}`;
  if (limit !== undefined || offset !== undefined) {
    sql += ' LIMIT ?';
    params.push(limit ?? -1);
    if (offset !== undefined) {
      sql += ' OFFSET ?';
      params.push(offset);
    }
  }
  return { sql, params };
}

export function countStatement(table: TableModel, where: WhereInput | null | undefined): Statement {
  const compiled = compileWhere(table, where);
  return { sql: `SELECT count(*) FROM ${table.ident} WHERE ${compiled.sql}`, params: compiled.params };
}

// ---- cursor pagination ---------------------------------------------------------------------------

/** What a cursor holds: the order it was made for, and the last row's values of the order terms. */
interface CursorData {
  o: string[];
  v: SqlValue[];
}

function orderSignature(terms: readonly OrderTerm[]): string[] {
  return terms.map((t) => `${t.expr}${t.desc ? ' DESC' : ''}`);
}

export function encodeCursor(terms: readonly OrderTerm[], values: readonly SqlValue[]): string {
  const data: CursorData = { o: orderSignature(terms), v: [...values] };
  return Buffer.from(JSON.stringify(data)).toString('base64url');
}

function decodeCursor(cursor: string, terms: readonly OrderTerm[]): SqlValue[] {
  let data: CursorData;
  try {
    data = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as CursorData;
  } catch {
    throw invalid('after: not a cursor this server made');
  }
  const signature = orderSignature(terms);
  if (
    !Array.isArray(data?.o) ||
    !Array.isArray(data.v) ||
    data.v.length !== terms.length ||
    JSON.stringify(data.o) !== JSON.stringify(signature)
  ) {
    throw invalid('after: the cursor was made for another orderBy; ask again from the first page');
  }
  return data.v.map(toSqlValue);
}

/**
 * Rows strictly after `values` in the order of `terms` (SQLite sorts NULL first ascending, last
 * descending): for each term i, the earlier terms equal and term i past the cursor's value.
 */
function afterCondition(
  terms: readonly OrderTerm[],
  values: readonly SqlValue[],
  params: SqlValue[],
): string {
  const alternatives: string[] = [];
  for (let i = 0; i < terms.length; i++) {
    const parts: string[] = [];
    for (let j = 0; j < i; j++) {
      parts.push(`${terms[j]!.expr} IS NOT DISTINCT FROM ?`);
      params.push(values[j]!);
    }
    const { expr, desc } = terms[i]!;
    const value = values[i]!;
    if (value === null) {
      if (desc) continue; // nothing sorts after NULL in a descending term
      parts.push(`${expr} IS NOT NULL`);
    } else if (desc) {
      parts.push(`(${expr} < ? OR ${expr} IS NULL)`);
      params.push(value);
    } else {
      parts.push(`${expr} > ?`);
      params.push(value);
    }
    alternatives.push(`(${parts.join(' AND ')})`);
  }
  return alternatives.length === 0 ? 'FALSE' : `(${alternatives.join(' OR ')})`;
}

/** The first page size when `first` is not given, and the largest one may ask for. */
export const DEFAULT_PAGE_SIZE = 20;
export const MAX_PAGE_SIZE = 10_000;

/**
 * A page of a connection: one row more than asked for tells whether there is a next page. The order
 * terms' values are selected after the columns (as `__k0`, …) to build each row's cursor.
 */
export function pageStatement(
  table: TableModel,
  args: { first?: unknown; after?: unknown; where?: WhereInput | null; orderBy?: OrderByInput | null },
): { statement: Statement; terms: OrderTerm[]; first: number } {
  if (table.key.length === 0) {
    throw new RustyError(
      'QUERY_ERROR',
      `table ${table.gql} has no key to page by (no rowid and no primary key)`,
    );
  }
  const terms = orderTerms(table, args.orderBy, true);
  const first = positiveInt(args.first, 'first', MAX_PAGE_SIZE) ?? DEFAULT_PAGE_SIZE;
  const where = compileWhere(table, args.where);
  const params = [...where.params];
  let condition = where.sql;
  if (args.after !== undefined && args.after !== null) {
    if (typeof args.after !== 'string') throw invalid('after: expected a cursor string');
    condition = `(${condition}) AND ${afterCondition(terms, decodeCursor(args.after, terms), params)}`;
  }
  const keys = terms.map((t, i) => `${t.expr} AS "__k${i}"`).join(', ');
  params.push(first + 1);
  return {
    statement: {
      sql: `SELECT ${columnList(table)}, ${keys} FROM ${table.ident} WHERE ${condition}${orderSql(terms)} LIMIT ?`,
      params,
    },
    terms,
    first,
  };
}

// ---- mutations -----------------------------------------------------------------------------------

function writableEntries(table: TableModel, object: unknown, what: string): [ColumnModel, SqlValue][] {
  if (!isObject(object)) throw invalid(`${what}: expected an object of column values`);
  const entries: [ColumnModel, SqlValue][] = [];
  for (const [key, value] of Object.entries(object)) {
    if (value === undefined) continue;
    const column = table.byGql.get(key);
    if (!column || !column.writable)
      throw invalid(`${what}: table ${table.gql} has no writable column '${key}'`);
    entries.push([column, toSqlValue(value)]);
  }
  return entries;
}

function returning(table: TableModel): string {
  return ` RETURNING ${columnList(table)}`;
}

/** Largest number of bound values in one statement (SQLite's limit). */
const MAX_PARAMS = 32766;

/**
 * INSERTs for a list of objects: objects with the same columns share a multi-row statement (at most
 * MAX_PARAMS values each), so each statement names exactly the columns given.
 */
export function insertStatements(table: TableModel, objects: readonly unknown[]): Statement[] {
  const groups = new Map<string, { columns: ColumnModel[]; rows: SqlValue[][] }>();
  objects.forEach((object, i) => {
    const entries = writableEntries(table, object, `objects[${i}]`);
    const key = entries.map(([c]) => c.sql).join('\u0000');
    let group = groups.get(key);
    if (!group) groups.set(key, (group = { columns: entries.map(([c]) => c), rows: [] }));
    group.rows.push(entries.map(([, v]) => v));
  });
  const statements: Statement[] = [];
  for (const { columns, rows } of groups.values()) {
    if (columns.length === 0) {
      for (let i = 0; i < rows.length; i++) {
        statements.push({ sql: `INSERT INTO ${table.ident} DEFAULT VALUES${returning(table)}`, params: [] });
      }
      continue;
    }
    const perStatement = Math.max(1, Math.floor(MAX_PARAMS / columns.length));
    for (let at = 0; at < rows.length; at += perStatement) {
      const chunk = rows.slice(at, at + perStatement);
      const tuple = `(${columns.map(() => '?').join(', ')})`;
      statements.push({
        sql: `INSERT INTO ${table.ident} (${columns.map((c) => c.ident).join(', ')}) VALUES ${chunk.map(() => tuple).join(', ')}${returning(table)}`,
        params: chunk.flat(),
      });
    }
  }
  return statements;
}

/** The rows a *One mutation touches: the first match in key order. */
function firstMatch(table: TableModel, where: Statement): string {
  if (table.key.length === 0) {
    throw new RustyError('QUERY_ERROR', `table ${table.gql} has no key to pick one row by`);
  }
  const key = table.key.length === 1 ? table.key[0]! : `(${table.key.join(', ')})`;
  return `${key} IN (SELECT ${table.key.join(', ')} FROM ${table.ident} WHERE ${where.sql} ORDER BY ${table.key.join(', ')} LIMIT 1)`;
}

export function updateStatement(
  table: TableModel,
  where: WhereInput | null | undefined,
  set: unknown,
  one: boolean,
): Statement {
  const entries = writableEntries(table, set, 'set');
  if (entries.length === 0) throw invalid('set: give at least one column to change');
  const compiled = compileWhere(table, where);
  const condition = one ? firstMatch(table, compiled) : compiled.sql;
  return {
    sql: `UPDATE ${table.ident} SET ${entries.map(([c]) => `${c.ident} = ?`).join(', ')} WHERE ${condition}${returning(table)}`,
    params: [...entries.map(([, v]) => v), ...compiled.params],
  };
}

export function deleteStatement(
  table: TableModel,
  where: WhereInput | null | undefined,
  one: boolean,
): Statement {
  const compiled = compileWhere(table, where);
  const condition = one ? firstMatch(table, compiled) : compiled.sql;
  return { sql: `DELETE FROM ${table.ident} WHERE ${condition}${returning(table)}`, params: compiled.params };
}

/**
 * INSERT … ON CONFLICT (target) DO UPDATE SET the given columns (default: every given column not in
 * the target), or DO NOTHING when there is nothing to update. The target defaults to the primary key.
 */
export function upsertStatement(
  table: TableModel,
  object: unknown,
  onConflict: readonly string[] | null | undefined,
  update: readonly string[] | null | undefined,
): Statement {
  const entries = writableEntries(table, object, 'object');
  if (entries.length === 0) throw invalid('object: give at least one column');
  const byGql = (name: string, what: string): ColumnModel => {
    const column = table.byGql.get(name);
    if (!column) throw invalid(`${what}: table ${table.gql} has no column '${name}'`);
    return column;
  };
  const target = onConflict?.length
    ? onConflict.map((n) => byGql(n, 'onConflict'))
    : table.info.primaryKey.map((sql) => table.columns.find((c) => c.sql === sql)!);
  if (target.length === 0)
    throw invalid(`onConflict: table ${table.gql} has no primary key; name the unique columns`);
  const updated = update
    ? update.map((n) => byGql(n, 'update'))
    : entries.map(([c]) => c).filter((c) => !target.includes(c));
  const action =
    updated.length === 0
      ? 'DO NOTHING'
      : `DO UPDATE SET ${updated.map((c) => `${c.ident} = excluded.${c.ident}`).join(', ')}`;
  return {
    sql: `INSERT INTO ${table.ident} (${entries.map(([c]) => c.ident).join(', ')}) VALUES (${entries.map(() => '?').join(', ')}) ON CONFLICT (${target.map((c) => c.ident).join(', ')}) ${action}${returning(table)}`,
    params: entries.map(([, v]) => v),
  };
}
