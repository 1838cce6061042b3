/**
 * The rows of a table kept current by applying a TableSubscription's events: a snapshot replaces
 * them, inserts add, updates replace, deletes remove, `enter` / `leave` add and remove rows that
 * start or stop matching the filter. Rows are matched by key: the table's primary key columns
 * (learnt from the first change, or given as `keyColumns`), or `rowid` for tables without one.
 */
import type { Row, TableEvent } from './subscriptions.ts';

export interface LiveTableOptions {
  /** Columns that identify a row. Default: the key columns the server reports with each change. */
  keyColumns?: readonly string[] | undefined;
}

export class LiveTable {
  #rows: Row[] = [];
  #keyColumns: readonly string[] | undefined;
  #index: Map<string, number> | undefined;
  #sequence: number | undefined;
  #columns: string[] = [];

  constructor(options: LiveTableOptions = {}) {
    this.#keyColumns = options.keyColumns;
  }

  /** The current rows. A new array after every change that altered it (safe for React state). */
  get rows(): readonly Row[] {
    return this.#rows;
  }

  get columns(): readonly string[] {
    return this.#columns;
  }

  /** The sequence the rows are current as of. */
  get sequence(): number | undefined {
    return this.#sequence;
  }

  /** Applies one event; returns true when the rows changed. */
  apply(event: TableEvent): boolean {
    switch (event.type) {
      case 'snapshot':
        this.#rows = event.rows;
        this.#columns = event.columns;
        this.#index = undefined;
        this.#sequence = event.sequence;
        return true;
      case 'reset':
        // A snapshot follows; until then the rows are what they were.
        return false;
      case 'change':
        this.#sequence = event.sequence;
        return this.#applyChange(event);
    }
  }

  #applyChange(event: Extract<TableEvent, { type: 'change' }>): boolean {
    if (event.op === 'schema') {
      if (event.schema?.action === 'drop') {
        this.#rows = [];
        this.#index = undefined;
        return true;
      }
      return false;
    }
    if (event.key && !this.#keyColumns) {
      this.#keyColumns = Object.keys(event.key);
      this.#index = undefined;
    }
    const next = [...this.#rows];
    const at = (row: Row | null, key: Row | null): number => {
      const id = this.#keyOf(row, key);
      return id === undefined ? -1 : (this.#indexOf(next).get(id) ?? -1);
    };
    switch (event.op) {
      case 'insert':
      case 'enter': {
        if (!event.row) return false;
        const found = at(event.row, event.key);
        if (found === -1) next.push(event.row);
        else next[found] = event.row;
        break;
      }
      case 'update': {
        if (!event.row) return false;
        // The key itself may have changed: find the row by its old key.
        const found = at(event.oldRow, event.oldRow ? null : event.key);
        if (found === -1) next.push(event.row);
        else next[found] = event.row;
        break;
      }
      case 'delete':
      case 'leave': {
        const found = at(event.oldRow, event.key);
        if (found === -1) return false;
        next.splice(found, 1);
        break;
      }
    }
    this.#rows = next;
    this.#index = undefined;
    return true;
  }

  /** The identity of a row: its key columns' values. */
  #keyOf(row: Row | null, key: Row | null): string | undefined {
    const columns = this.#keyColumns;
    if (!columns || columns.length === 0) return undefined;
    const source = key && columns.every((c) => c in key) ? key : row;
    if (!source || !columns.every((c) => c in source)) return undefined;
    return JSON.stringify(columns.map((c) => source[c]));
  }

  #indexOf(rows: Row[]): Map<string, number> {
    if (this.#index) return this.#index;
    const index = new Map<string, number>();
    rows.forEach((row, i) => {
      const id = this.#keyOf(row, null);
      if (id !== undefined) index.set(id, i);
    });
    this.#index = index;
    return index;
  }
}
