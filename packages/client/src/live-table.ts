/**
 * The rows of a table kept current by applying a TableSubscription's events: a snapshot replaces
 * them, inserts add, updates replace, deletes remove, `enter` / `leave` add and remove rows that
 * start or stop matching the filter. Rows are matched by key: the table's primary key columns
 * (given as `keyColumns`, or learnt from the first change), or `rowid` for tables without one.
 *
 * One change costs O(1) (O(log n) comparisons with an `order`): the rows are kept in a RowSet, and
 * the array of rows is built only when read, once per change of the table.
 */
import { RowSet, arrayField, objectField, type FieldReader, type OrderBy } from './row-set.ts';
import type { Row, TableChangeEvent, TableEvent } from './subscriptions.ts';

export interface LiveTableOptions {
  /** Columns that identify a row. Default: the key columns the server reports with each change. */
  keyColumns?: readonly string[] | undefined;
  /** Keep the rows sorted by these columns (`{ created_at: 'desc' }`); default: in arrival order. */
  order?: OrderBy | undefined;
  /** List only the first `limit` rows (in order). All matching rows are still kept. */
  limit?: number | undefined;
}

export class LiveTable<R = Row> {
  #keyColumns: readonly string[] | undefined;
  #columns: string[] = [];
  #sequence: number | undefined;
  readonly #field: FieldReader<R>;
  readonly #set: RowSet<R>;
  /**
   * Rows of a snapshot taken before the key columns were known: listed under stand-in keys until the
   * first change tells the key columns.
   */
  #unkeyed: R[] | undefined;
  #version = 0;

  constructor(options: LiveTableOptions = {}) {
    this.#keyColumns = options.keyColumns;
    const arrays = arrayField(() => this.#columns) as FieldReader<unknown>;
    // Rows are arrays or objects as the subscription delivers them; the shape is told by the rows.
    this.#field = ((row: unknown, column: string) =>
      Array.isArray(row) ? arrays(row, column) : objectField(row, column)) as FieldReader<R>;
    this.#set = new RowSet<R>(this.#field, { order: options.order, limit: options.limit });
  }

  /** The current rows (the first `limit`, in order): a new array after each change, else the same. */
  get rows(): readonly R[] {
    return this.#set.rows;
  }

  get columns(): readonly string[] {
    return this.#columns;
  }

  /** The sequence the rows are current as of. */
  get sequence(): number | undefined {
    return this.#sequence;
  }

  /** Every matching row, `limit` or not. */
  get size(): number {
    return this.#set.size;
  }

  /** Bumped by every change of the rows. */
  get version(): number {
    return this.#version;
  }

  /** Applies one event; returns true when the rows changed. */
  apply(event: TableEvent<R>): boolean {
    const changed = this.#apply(event);
    if (changed) this.#version++;
    return changed;
  }

  #apply(event: TableEvent<R>): boolean {
    switch (event.type) {
      case 'snapshot':
        this.#columns = event.columns;
        this.#sequence = event.sequence;
        if (this.#keyColumns) {
          this.#unkeyed = undefined;
          this.#set.replace(event.rows.map((row) => [this.#keyOf(row), row]));
        } else {
          this.#unkeyed = event.rows;
          this.#set.replace(event.rows.map((row, i) => [`#${i}`, row]));
        }
        return true;
      case 'reset':
        // A snapshot follows; until then the rows are what they were.
        return false;
      case 'change':
        this.#sequence = event.sequence;
        // Kept as they are unless they changed (an ALTER TABLE): a UI compares them by identity.
        if (event.columns.length > 0 && event.columns.join('\u0000') !== this.#columns.join('\u0000')) {
          this.#columns = event.columns;
        }
        return this.#applyChange(event);
    }
  }

  #applyChange(event: TableChangeEvent<R>): boolean {
    if (event.op === 'schema') {
      if (event.schema?.action !== 'drop') return false;
      this.#unkeyed = undefined;
      this.#set.clear();
      return true;
    }
    if (!this.#keyColumns) {
      if (!event.key) return false;
      this.#keyColumns = Object.keys(event.key);
    }
    if (this.#unkeyed) {
      // The first change told the key columns: key the snapshot's rows now, once.
      const rows = this.#unkeyed;
      this.#unkeyed = undefined;
      this.#set.replace(rows.map((row) => [this.#keyOf(row), row]));
    }
    const key = event.key ? this.#keyOfKey(event.key) : undefined;
    switch (event.op) {
      case 'insert':
      case 'enter':
        if (!event.row) return false;
        this.#set.set(key ?? this.#keyOf(event.row), event.row);
        return true;
      case 'update': {
        if (!event.row) return false;
        // The key itself may have changed: the row goes from its old key to its new one.
        const oldKey = event.oldRow ? this.#keyOf(event.oldRow) : key;
        const newKey = this.#keyOf(event.row);
        if (oldKey !== undefined && oldKey !== newKey) this.#set.delete(oldKey);
        this.#set.set(newKey, event.row);
        return true;
      }
      case 'delete':
      case 'leave': {
        const oldKey = key ?? (event.oldRow ? this.#keyOf(event.oldRow) : undefined);
        return oldKey !== undefined && this.#set.delete(oldKey);
      }
    }
  }

  /** The identity of a row: its key columns' values. */
  #keyOf(row: R): string {
    return JSON.stringify(this.#keyColumns!.map((column) => this.#field(row, column) ?? null));
  }

  #keyOfKey(key: Readonly<Record<string, unknown>>): string | undefined {
    const columns = this.#keyColumns!;
    if (!columns.every((column) => column in key)) return undefined;
    return JSON.stringify(columns.map((column) => key[column] ?? null));
  }
}
