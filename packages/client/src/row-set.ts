/**
 * A set of rows kept by key, in a chosen order, cheap to change one row at a time: what a live table,
 * a live query's result and a watched collection are built on.
 *
 * A change costs O(1) (a Map update) without an order, and O(log n) comparisons with one (a binary
 * search in the sorted array; the array's splice moves memory but runs no JavaScript per row). The
 * rows as an array — what a UI renders — are built only when asked for, at most once per change of the
 * set (`version`), and with a `limit` only the first `limit` of them.
 */
import type { SqlValue } from './rows.ts';

/** Sort by these columns, in the order given; ties are broken by key so that the order is total. */
export type OrderBy = Readonly<Record<string, 'asc' | 'desc'>>;

export interface RowSetOptions {
  order?: OrderBy | undefined;
  /** Only the first `limit` rows (in order) are listed. */
  limit?: number | undefined;
}

/** Reads a column of a row (objects and arrays read columns differently). */
export type FieldReader<R> = (row: R, column: string) => unknown;

const TYPE_RANK: Record<string, number> = { undefined: 0, object: 0, boolean: 1, number: 1, string: 2 };

/** SQLite's order of values: NULL, then numbers, then text, then blobs. */
export function compareValues(a: unknown, b: unknown): number {
  const rankA = a === null || a === undefined ? 0 : typeof a === 'object' ? 3 : (TYPE_RANK[typeof a] ?? 3);
  const rankB = b === null || b === undefined ? 0 : typeof b === 'object' ? 3 : (TYPE_RANK[typeof b] ?? 3);
  if (rankA !== rankB) return rankA - rankB;
  if (rankA === 0) return 0;
  if (rankA === 1) return Number(a) - Number(b);
  if (rankA === 2) return (a as string) < (b as string) ? -1 : (a as string) > (b as string) ? 1 : 0;
  const textA = JSON.stringify(a);
  const textB = JSON.stringify(b);
  return textA < textB ? -1 : textA > textB ? 1 : 0;
}

interface Entry<R> {
  key: string;
  row: R;
}

export class RowSet<R> {
  readonly #field: FieldReader<R>;
  readonly #order: [string, number][] | undefined;
  readonly #limit: number | undefined;
  readonly #byKey = new Map<string, Entry<R>>();
  /** With an order: every entry, sorted. */
  #sorted: Entry<R>[] = [];
  #version = 0;
  #listed: { version: number; rows: readonly R[] } | undefined;

  constructor(field: FieldReader<R>, options: RowSetOptions = {}) {
    this.#field = field;
    const order = Object.entries(options.order ?? {});
    this.#order =
      order.length > 0 ? order.map(([column, dir]) => [column, dir === 'desc' ? -1 : 1]) : undefined;
    this.#limit = options.limit !== undefined && options.limit >= 0 ? options.limit : undefined;
  }

  /** Bumped by every change: the listed rows are rebuilt when it moved. */
  get version(): number {
    return this.#version;
  }

  get size(): number {
    return this.#byKey.size;
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  get(key: string): R | undefined {
    return this.#byKey.get(key)?.row;
  }

  keys(): IterableIterator<string> {
    return this.#byKey.keys();
  }

  /** Replaces every row (a snapshot, a fresh result). */
  replace(entries: Iterable<[key: string, row: R]>): void {
    this.#byKey.clear();
    for (const [key, row] of entries) this.#byKey.set(key, { key, row });
    if (this.#order) this.#sorted = [...this.#byKey.values()].sort((a, b) => this.#compare(a, b));
    this.#version++;
  }

  /** Adds the row, or replaces the row with this key (keeping its place when there is no order). */
  set(key: string, row: R): void {
    const existing = this.#byKey.get(key);
    if (this.#order) {
      if (existing) this.#sorted.splice(this.#position(existing), 1);
      const entry = { key, row };
      this.#sorted.splice(this.#insertionPoint(entry), 0, entry);
      this.#byKey.set(key, entry);
    } else if (existing) existing.row = row;
    else this.#byKey.set(key, { key, row });
    this.#version++;
  }

  /** Removes the row with this key; false when there was none. */
  delete(key: string): boolean {
    const existing = this.#byKey.get(key);
    if (!existing) return false;
    if (this.#order) this.#sorted.splice(this.#position(existing), 1);
    this.#byKey.delete(key);
    this.#version++;
    return true;
  }

  clear(): void {
    if (this.#byKey.size === 0) return;
    this.#byKey.clear();
    this.#sorted = [];
    this.#version++;
  }

  /**
   * The rows in order (the first `limit`). The same array until a change alters what it lists (a
   * change beyond the limit does not), so that a UI re-renders only when there is something new.
   */
  get rows(): readonly R[] {
    const listed = this.#listed;
    if (listed?.version === this.#version) return listed.rows;
    const rows: R[] = [];
    const limit = this.#limit ?? Infinity;
    if (this.#order) {
      for (let i = 0; i < this.#sorted.length && i < limit; i++) rows.push(this.#sorted[i]!.row);
    } else {
      for (const entry of this.#byKey.values()) {
        if (rows.length >= limit) break;
        rows.push(entry.row);
      }
    }
    const same = listed !== undefined && sameRows(listed.rows, rows);
    this.#listed = { version: this.#version, rows: same ? listed.rows : rows };
    return this.#listed.rows;
  }

  #compare(a: Entry<R>, b: Entry<R>): number {
    for (const [column, direction] of this.#order!) {
      const c = compareValues(this.#field(a.row, column), this.#field(b.row, column));
      if (c !== 0) return c * direction;
    }
    return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
  }

  /** Where `entry` goes in the sorted array (binary search). */
  #insertionPoint(entry: Entry<R>): number {
    let low = 0;
    let high = this.#sorted.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.#compare(this.#sorted[mid]!, entry) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** Where `entry` is in the sorted array: the order is total, so the binary search finds it. */
  #position(entry: Entry<R>): number {
    const at = this.#insertionPoint(entry);
    if (this.#sorted[at] === entry) return at;
    // A row object changed in place by the application would break the search: find it the slow way.
    return this.#sorted.indexOf(entry);
  }
}

function sameRows<R>(a: readonly R[], b: readonly R[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Reads a column of an object row. */
export function objectField(row: unknown, column: string): unknown {
  return (row as Record<string, unknown> | null)?.[column];
}

/** Reads a column of an array row whose columns are `columns()` (read when needed: they may arrive late). */
export function arrayField(columns: () => readonly string[]): FieldReader<readonly SqlValue[]> {
  return (row, column) => row[columns().indexOf(column)];
}
