/**
 * Column filters of table subscriptions: `{ column: value }` or `{ column: { gt: 5, lte: 10 } }`,
 * all conditions combined with AND. Applied to the old and new row of each change, which tells whether
 * an update is an update, an enter (starts matching) or a leave (stops matching).
 */
import type { FilterCondition, RowFilter, SqlValue } from '@rustydb/protocol';

export type Row = Record<string, unknown>;

function compare(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

function same(a: unknown, b: SqlValue): boolean {
  if (typeof b === 'boolean') return a === (b ? 1 : 0);
  if (b !== null && typeof b === 'object') return JSON.stringify(a) === JSON.stringify(b);
  return a === b;
}

function conditionHolds(value: unknown, condition: FilterCondition): boolean {
  if (condition === null || typeof condition !== 'object' || '$base64' in condition) {
    return same(value, condition as SqlValue);
  }
  for (const [op, operand] of Object.entries(condition)) {
    if (operand === undefined) continue;
    switch (op) {
      case 'eq':
        if (!same(value, operand as SqlValue)) return false;
        break;
      case 'neq':
        if (same(value, operand as SqlValue)) return false;
        break;
      case 'in':
        if (!(operand as SqlValue[]).some((o) => same(value, o))) return false;
        break;
      default: {
        const order = compare(value, operand);
        if (order === undefined) return false;
        if (op === 'lt' && !(order < 0)) return false;
        if (op === 'lte' && !(order <= 0)) return false;
        if (op === 'gt' && !(order > 0)) return false;
        if (op === 'gte' && !(order >= 0)) return false;
      }
    }
  }
  return true;
}

export function rowMatches(filter: RowFilter | undefined, row: Row | null): boolean {
  if (!row) return false;
  if (!filter) return true;
  for (const [column, condition] of Object.entries(filter)) {
    if (!conditionHolds(row[column], condition)) return false;
  }
  return true;
}

/** The predicate of an empty filter: every row (a missing row, before an insert or after a delete, is none). */
const anyRow = (row: Row | null): boolean => row !== null;

/**
 * The filter read once into a predicate: what rowMatches does, for a subscriber that checks every change
 * of its table (with many subscribers, re-reading each filter per change dominated the fan-out).
 */
export function compileRowFilter(filter: RowFilter | undefined): (row: Row | null) => boolean {
  const conditions = filter ? Object.entries(filter) : [];
  // Most subscribers filter nothing: they share one predicate rather than holding a closure each.
  if (conditions.length === 0) return anyRow;
  return (row) => {
    if (!row) return false;
    for (const [column, condition] of conditions) if (!conditionHolds(row[column], condition)) return false;
    return true;
  };
}

export type RowEvent = 'insert' | 'update' | 'delete' | 'enter' | 'leave';

/** What a change means to a filtered subscriber, or undefined when it does not concern it. */
export function classify(
  filter: RowFilter | undefined | ((row: Row | null) => boolean),
  op: 'insert' | 'update' | 'delete',
  oldRow: Row | null,
  newRow: Row | null,
): RowEvent | undefined {
  const matches = typeof filter === 'function' ? filter : (row: Row | null) => rowMatches(filter, row);
  if (op === 'insert') return matches(newRow) ? 'insert' : undefined;
  if (op === 'delete') return matches(oldRow) ? 'delete' : undefined;
  const before = matches(oldRow);
  const after = matches(newRow);
  if (before && after) return 'update';
  if (after) return 'enter';
  if (before) return 'leave';
  return undefined;
}

/** The filter as a SQL condition with positional parameters, for snapshots. */
export function filterToSql(
  filter: RowFilter | undefined,
  quote: (name: string) => string,
): { where: string; params: SqlValue[] } {
  if (!filter || Object.keys(filter).length === 0) return { where: 'TRUE', params: [] };
  const parts: string[] = [];
  const params: SqlValue[] = [];
  // IS [NOT] DISTINCT FROM: the NULL-safe comparison both engines know (PostgreSQL's IS takes only NULL,
  // TRUE and FALSE, unlike SQLite's).
  const ops: Record<string, string> = {
    eq: '=',
    neq: 'IS DISTINCT FROM',
    lt: '<',
    lte: '<=',
    gt: '>',
    gte: '>=',
  };
  for (const [column, condition] of Object.entries(filter)) {
    const col = quote(column);
    if (condition === null || typeof condition !== 'object' || '$base64' in condition) {
      parts.push(`${col} IS NOT DISTINCT FROM ?`);
      params.push(condition as SqlValue);
      continue;
    }
    for (const [op, operand] of Object.entries(condition)) {
      if (operand === undefined) continue;
      if (op === 'in') {
        const list = operand as SqlValue[];
        if (list.length === 0) parts.push('FALSE');
        else {
          parts.push(`${col} IN (${list.map(() => '?').join(', ')})`);
          params.push(...list);
        }
      } else if (op === 'eq') {
        parts.push(`${col} IS NOT DISTINCT FROM ?`);
        params.push(operand as SqlValue);
      } else {
        parts.push(`${col} ${ops[op]} ?`);
        params.push(operand as SqlValue);
      }
    }
  }
  return { where: parts.join(' AND '), params };
}
