/**
 * The difference between two results of the same query. Rows are matched by their `id` (or `_id`)
 * column when the result has one — then a row whose other values moved is "changed" — and otherwise
 * by their whole content, counting duplicates.
 */
import type { SqlValue } from '@rustydb/protocol';

export interface ResultDiff {
  added: SqlValue[][];
  removed: SqlValue[][];
  changed: { old: SqlValue[]; new: SqlValue[] }[];
}

export function keyColumn(columns: readonly string[]): number {
  const id = columns.indexOf('id');
  return id !== -1 ? id : columns.indexOf('_id');
}

export function diffResults(
  columns: readonly string[],
  before: SqlValue[][],
  after: SqlValue[][],
): ResultDiff {
  const diff: ResultDiff = { added: [], removed: [], changed: [] };
  const keyAt = keyColumn(columns);
  if (keyAt !== -1) {
    const old = new Map<string, SqlValue[]>();
    for (const row of before) old.set(JSON.stringify(row[keyAt]), row);
    for (const row of after) {
      const key = JSON.stringify(row[keyAt]);
      const previous = old.get(key);
      if (!previous) diff.added.push(row);
      else {
        old.delete(key);
        if (JSON.stringify(previous) !== JSON.stringify(row)) diff.changed.push({ old: previous, new: row });
      }
    }
    diff.removed.push(...old.values());
    return diff;
  }
  const counts = new Map<string, { row: SqlValue[]; n: number }>();
  for (const row of before) {
    const key = JSON.stringify(row);
    const entry = counts.get(key);
    if (entry) entry.n++;
    else counts.set(key, { row, n: 1 });
  }
  for (const row of after) {
    const entry = counts.get(JSON.stringify(row));
    if (entry && entry.n > 0) entry.n--;
    else diff.added.push(row);
  }
  for (const { row, n } of counts.values()) for (let i = 0; i < n; i++) diff.removed.push(row);
  return diff;
}

export function isEmpty(diff: ResultDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}
