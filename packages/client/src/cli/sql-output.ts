/**
 * Printing results for people and for scripts: an aligned table printed chunk by chunk while a result
 * streams (column widths from the first chunk), CSV (RFC 4180), JSON, and a progress report of the rows
 * received so far on stderr.
 */
import type { SqlValue } from '../index.ts';

export type OutputFormat = 'table' | 'json' | 'csv';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'csv'];

export type Write = (text: string) => void;

/** A value as text for the table: NULL is empty, blobs are shown by size. */
export function displayValue(value: SqlValue | undefined): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'object') return `<blob ${Math.floor((value.$base64.length * 3) / 4)} bytes>`;
  return String(value).replace(/\r?\n/g, '\\n');
}

/** One CSV field: quoted when it holds a comma, quote, line break or edge space. */
export function csvField(value: SqlValue | undefined): string {
  if (value === null || value === undefined) return '';
  const text = typeof value === 'object' ? value.$base64 : String(value);
  return /[",\r\n]|^\s|\s$/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function pad(text: string, width: number, right: boolean): string {
  const fill = ' '.repeat(Math.max(0, width - text.length));
  return right ? fill + text : text + fill;
}

/** Something that prints a result as it arrives. */
export interface ResultPrinter {
  chunk(columns: string[], rows: SqlValue[][]): void;
  /** The result is complete; `rowsAffected` for writes (no columns). */
  end(rowCount: number, rowsAffected: number | undefined, lastInsertId: number | undefined): void;
}

export class TablePrinter implements ResultPrinter {
  readonly #write: Write;
  #widths: number[] | undefined;
  #numeric: boolean[] = [];
  #columns: string[] = [];

  constructor(write: Write) {
    this.#write = write;
  }

  chunk(columns: string[], rows: SqlValue[][]): void {
    if (columns.length === 0) return;
    if (!this.#widths) {
      this.#columns = columns;
      this.#widths = columns.map((c, i) => Math.max(c.length, ...rows.map((r) => displayValue(r[i]).length)));
      this.#numeric = columns.map(
        (_, i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number' || r[i] === null),
      );
      const header = columns.map((c, i) => ` ${pad(c, this.#widths![i]!, false)} `).join('|');
      const rule = this.#widths.map((w) => '-'.repeat(w + 2)).join('+');
      this.#write(`${header.trimEnd()}\n${rule}\n`);
    }
    const widths = this.#widths;
    let text = '';
    for (const row of rows) {
      const line = this.#columns
        .map((_, i) => ` ${pad(displayValue(row[i]), widths[i]!, this.#numeric[i]!)} `)
        .join('|');
      text += `${line.trimEnd()}\n`;
    }
    if (text) this.#write(text);
  }

  end(rowCount: number, rowsAffected: number | undefined): void {
    if (!this.#widths) {
      // A write, or DDL: no columns.
      const n = rowsAffected ?? 0;
      this.#write(`OK, ${n} ${n === 1 ? 'row' : 'rows'} affected\n`);
      return;
    }
    this.#write(`(${rowCount} ${rowCount === 1 ? 'row' : 'rows'})\n`);
  }
}

export class CsvPrinter implements ResultPrinter {
  readonly #write: Write;
  #headerDone = false;

  constructor(write: Write) {
    this.#write = write;
  }

  chunk(columns: string[], rows: SqlValue[][]): void {
    if (columns.length === 0) return;
    let text = '';
    if (!this.#headerDone) {
      this.#headerDone = true;
      text += `${columns.map((c) => csvField(c)).join(',')}\r\n`;
    }
    for (const row of rows) text += `${columns.map((_, i) => csvField(row[i])).join(',')}\r\n`;
    if (text) this.#write(text);
  }

  end(): void {}
}

/** A JSON array of row objects, written row by row; a write prints `{ rows_affected, last_insert_id }`. */
export class JsonPrinter implements ResultPrinter {
  readonly #write: Write;
  #started = false;
  #sawColumns = false;

  constructor(write: Write) {
    this.#write = write;
  }

  chunk(columns: string[], rows: SqlValue[][]): void {
    if (columns.length === 0) return;
    this.#sawColumns = true;
    let text = '';
    for (const row of rows) {
      const object: Record<string, SqlValue> = {};
      columns.forEach((c, i) => (object[c] = row[i] ?? null));
      text += `${this.#started ? ',\n' : '[\n'}  ${JSON.stringify(object)}`;
      this.#started = true;
    }
    if (text) this.#write(text);
  }

  end(_rowCount: number, rowsAffected: number | undefined, lastInsertId: number | undefined): void {
    if (this.#started) this.#write('\n]\n');
    else if (this.#sawColumns) this.#write('[]\n');
    else {
      const summary = {
        rows_affected: rowsAffected ?? 0,
        ...(lastInsertId !== undefined ? { last_insert_id: lastInsertId } : {}),
      };
      this.#write(`${JSON.stringify(summary)}\n`);
    }
  }
}

export function printerFor(format: OutputFormat, write: Write): ResultPrinter {
  if (format === 'csv') return new CsvPrinter(write);
  if (format === 'json') return new JsonPrinter(write);
  return new TablePrinter(write);
}

/**
 * Rows received so far, on stderr, once a result has taken longer than `intervalMs`: a status line
 * rewritten in place when stderr is a terminal, else one line per interval.
 */
export class Progress {
  readonly #stderr: NodeJS.WriteStream | { write(text: string): unknown; isTTY?: boolean };
  readonly #intervalMs: number;
  readonly #started = performance.now();
  #last: number;
  #shown = false;
  #rows = 0;

  constructor(stderr: { write(text: string): unknown; isTTY?: boolean }, intervalMs: number) {
    this.#stderr = stderr;
    this.#intervalMs = intervalMs;
    this.#last = this.#started;
  }

  update(rows: number): void {
    this.#rows = rows;
    const now = performance.now();
    if (now - this.#last < this.#intervalMs) return;
    this.#last = now;
    const seconds = ((now - this.#started) / 1000).toFixed(1);
    if (this.#stderr.isTTY) {
      this.#stderr.write(`\r\x1b[2K-- ${this.#rows} rows so far (${seconds} s; Ctrl-C cancels)`);
      this.#shown = true;
    } else this.#stderr.write(`rustydb: ${this.#rows} rows so far (${seconds} s)\n`);
  }

  /** Removes the status line (before other output, and at the end). */
  clear(): void {
    if (!this.#shown) return;
    this.#shown = false;
    this.#stderr.write('\r\x1b[2K');
  }
}
