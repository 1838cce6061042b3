/**
 * The two shapes a row can take, chosen per call with `rowMode`: an object keyed by column name (the
 * default: `{ id: 1, name: 'a' }`) or an array in column order (`[1, 'a']`, compact, and the only shape
 * that keeps two columns of the same name apart). Query results, streams, table events and live-query
 * diffs all follow the same choice.
 */
import type { SqlValue } from '@rustydb/protocol';

export type { SqlValue };

export type RowMode = 'object' | 'array';

/** A row as an object: what rows are unless a row type says more. */
export type ObjectRow = Record<string, SqlValue>;

/** A row as an array, values in column order. */
export type ArrayRow = SqlValue[];

/** Options of every call that returns rows. */
export interface RowModeOption {
  /** `'object'` (default): rows keyed by column name; `'array'`: values in column order. */
  rowMode?: RowMode | undefined;
}

/** Asks for rows as objects (the default). */
export interface ObjectRowsOption {
  rowMode?: 'object' | undefined;
}

/** Asks for rows as arrays. */
export interface ArrayRowsOption {
  rowMode: 'array';
}

/** Rows as objects keyed by column name (a later duplicate column name wins). */
export function toObjects(columns: readonly string[], rows: readonly (readonly SqlValue[])[]): ObjectRow[] {
  return rows.map((row) => toObject(columns, row));
}

export function toObject(columns: readonly string[], row: readonly SqlValue[]): ObjectRow {
  const object: ObjectRow = {};
  for (let i = 0; i < columns.length; i++) object[columns[i]!] = row[i] ?? null;
  return object;
}

/** An object row's values in the order of `columns`. */
export function toArray(columns: readonly string[], row: Readonly<Record<string, unknown>>): ArrayRow {
  return columns.map((column) => (row[column] ?? null) as SqlValue);
}

/** Rows received as arrays, in the shape the caller asked for. */
export function shapeRows(
  mode: RowMode,
  columns: readonly string[],
  rows: SqlValue[][],
): (ObjectRow | ArrayRow)[] {
  return mode === 'array' ? rows : toObjects(columns, rows);
}

/** One row received as an array, in the shape the caller asked for. */
export function shapeRow(mode: RowMode, columns: readonly string[], row: SqlValue[]): ObjectRow | ArrayRow {
  return mode === 'array' ? row : toObject(columns, row);
}
