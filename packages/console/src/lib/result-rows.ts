/**
 * A query result as it streams in, kept so that a million rows cost the page little: each chunk is
 * stored as it comes, column by column, rather than pushed row by row onto one array.
 *
 * Why: one flat array of a million row arrays is copied whole each time it grows, and every row is an
 * array object of its own, every fractional number a boxed heap number, all of which stay alive; the
 * page's garbage collector then marks millions of objects, and its pauses held the main thread past a
 * frame while rows streamed (a chromium trace showed 70–240 ms mark-compact pauses, most of it updating
 * pointers, and 50 ms scavenges copying the surviving rows). Here a chunk's rows become one store per
 * column: a Float64Array when the column holds only numbers, one joined string and its offsets when it
 * holds only strings, else an array of the values. So the parsed rows and their strings die young, and
 * the heap keeps a few objects per chunk instead of several per row. Rows are rebuilt on demand, which
 * the grid does only for the few dozen in view.
 */
import type { SqlValue } from '@rustydb/client';

/** A column of strings: their concatenation, and where each starts (one more offset: the end). */
interface StringColumn {
  text: string;
  offsets: Uint32Array;
}

type Column = Float64Array | StringColumn | SqlValue[];

function valueAt(column: Column, r: number): SqlValue {
  if (column instanceof Float64Array) return column[r]!;
  if (Array.isArray(column)) return column[r]!;
  return column.text.slice(column.offsets[r]!, column.offsets[r + 1]!);
}

function storeColumn(rows: readonly (readonly SqlValue[])[], c: number): Column {
  const length = rows.length;
  let numbers = true;
  let strings = true;
  for (let r = 0; r < length && (numbers || strings); r++) {
    const type = typeof rows[r]![c];
    numbers &&= type === 'number';
    strings &&= type === 'string';
  }
  if (numbers) {
    const column = new Float64Array(length);
    for (let r = 0; r < length; r++) column[r] = rows[r]![c] as number;
    return column;
  }
  if (strings) {
    const parts: string[] = new Array(length);
    const offsets = new Uint32Array(length + 1);
    let at = 0;
    for (let r = 0; r < length; r++) {
      const value = rows[r]![c] as string;
      parts[r] = value;
      offsets[r] = at;
      at += value.length;
    }
    offsets[length] = at;
    return { text: parts.join(''), offsets };
  }
  const column: SqlValue[] = new Array(length);
  for (let r = 0; r < length; r++) column[r] = rows[r]![c] ?? null;
  return column;
}

interface Block {
  /** Index of the block's first row in the whole result. */
  start: number;
  length: number;
  columns: Column[];
}

export class ResultRows {
  private readonly blocks: Block[] = [];
  private total = 0;

  /** How many rows there are now. */
  get count(): number {
    return this.total;
  }

  /** Appends a chunk of rows (arrays of `width` values), in order. */
  append(rows: readonly (readonly SqlValue[])[], width: number): void {
    const length = rows.length;
    if (length === 0) return;
    const columns: Column[] = [];
    for (let c = 0; c < width; c++) columns.push(storeColumn(rows, c));
    this.blocks.push({ start: this.total, length, columns });
    this.total += length;
  }

  /** Row `index` (0-based) as an array of its values, or undefined past the end. */
  row(index: number): SqlValue[] | undefined {
    if (index < 0 || index >= this.total) return undefined;
    const block = this.blocks[this.blockOf(index)]!;
    const r = index - block.start;
    return block.columns.map((column) => valueAt(column, r));
  }

  /** Every row as an array (for export): builds them all, so only on demand. */
  toArrays(): SqlValue[][] {
    const rows: SqlValue[][] = [];
    for (let i = 0; i < this.total; i++) rows.push(this.row(i)!);
    return rows;
  }

  /** The block holding row `index`: binary search over the blocks' starts (chunks vary in size). */
  private blockOf(index: number): number {
    let low = 0;
    let high = this.blocks.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if (this.blocks[mid]!.start <= index) low = mid;
      else high = mid - 1;
    }
    return low;
  }
}
