/**
 * A live query's result kept current by applying its events: a `result` replaces the rows, a `diff`
 * removes, adds and replaces rows. Rows are matched by their `id` (or `_id`) column when the result
 * has one, as the server pairs `changed` rows; otherwise by their whole value (equal rows are
 * interchangeable). Diffs carry no positions: without an `order`, rows keep the place the result gave
 * them and added rows go last.
 *
 * One row of a diff costs O(1) (O(log n) comparisons with an `order`); the array of rows is built
 * only when read, once per change.
 */
import { RowSet, arrayField, objectField, type FieldReader, type OrderBy } from './row-set.ts';
import type { Row } from './subscriptions.ts';
import type { LiveQueryEvent } from './subscriptions.ts';

export interface LiveResultOptions {
  /** Keep the rows sorted by these columns; default: the result's order, added rows last. */
  order?: OrderBy | undefined;
  /** List only the first `limit` rows (in order). */
  limit?: number | undefined;
}

const ID_COLUMNS = ['id', '_id'];

export class LiveResult<R = Row> {
  #columns: string[] = [];
  #sequence: number | undefined;
  #idColumn: string | undefined;
  #version = 0;
  /** Rows without an id: how many of each value are held (their keys are value#0, value#1, …). */
  readonly #copies = new Map<string, number>();
  readonly #field: FieldReader<R>;
  readonly #set: RowSet<R>;

  constructor(options: LiveResultOptions = {}) {
    const arrays = arrayField(() => this.#columns) as FieldReader<unknown>;
    this.#field = ((row: unknown, column: string) =>
      Array.isArray(row) ? arrays(row, column) : objectField(row, column)) as FieldReader<R>;
    this.#set = new RowSet<R>(this.#field, options);
  }

  get rows(): readonly R[] {
    return this.#set.rows;
  }

  get columns(): readonly string[] {
    return this.#columns;
  }

  get sequence(): number | undefined {
    return this.#sequence;
  }

  get version(): number {
    return this.#version;
  }

  /** Applies one event; returns true when the rows changed. */
  apply(event: LiveQueryEvent<R>): boolean {
    this.#sequence = event.sequence;
    if (event.type === 'result') {
      this.#columns = event.columns;
      this.#idColumn = ID_COLUMNS.find((c) => event.columns.includes(c));
      this.#copies.clear();
      this.#set.replace(event.rows.map((row) => [this.#addKey(row), row]));
      this.#version++;
      return true;
    }
    for (const row of event.removed) this.#remove(row);
    for (const { old, new: next } of event.changed) {
      if (this.#idColumn) this.#set.set(this.#keyOf(next), next);
      else {
        this.#remove(old);
        this.#set.set(this.#addKey(next), next);
      }
    }
    for (const row of event.added) this.#set.set(this.#addKey(row), row);
    const changed = event.removed.length + event.changed.length + event.added.length > 0;
    if (changed) this.#version++;
    return changed;
  }

  #keyOf(row: R): string {
    return JSON.stringify(this.#field(row, this.#idColumn!) ?? null);
  }

  /** The key a row being added takes. */
  #addKey(row: R): string {
    if (this.#idColumn) return this.#keyOf(row);
    const value = JSON.stringify(row);
    const copies = this.#copies.get(value) ?? 0;
    this.#copies.set(value, copies + 1);
    return `${value}#${copies}`;
  }

  #remove(row: R): void {
    if (this.#idColumn) {
      this.#set.delete(this.#keyOf(row));
      return;
    }
    const value = JSON.stringify(row);
    const copies = this.#copies.get(value) ?? 0;
    if (copies === 0) return;
    if (copies === 1) this.#copies.delete(value);
    else this.#copies.set(value, copies - 1);
    this.#set.delete(`${value}#${copies - 1}`);
  }
}
