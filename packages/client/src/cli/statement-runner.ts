/**
 * Runs one statement for the shell or `rustydb query`: streams the result into a printer while it
 * arrives, reports progress on long results, and can be cancelled (Ctrl-C) through `cancel()`.
 */
import type { ArrayRow, QueryStream, RustyDBClient, SqlValue } from '../index.ts';
import { Progress, printerFor, type OutputFormat, type Write } from './sql-output.ts';

export interface RunOptions {
  format: OutputFormat;
  write: Write;
  /** Where progress goes; none when undefined. */
  progress?: { stream: { write(text: string): unknown; isTTY?: boolean }; intervalMs: number } | undefined;
  /** Rows per chunk asked of the server. */
  chunkSize?: number | undefined;
}

export interface RunOutcome {
  rows: number;
  rowsAffected: number | undefined;
  elapsedMs: number;
}

export class StatementRun {
  readonly #stream: QueryStream<ArrayRow>;
  readonly #options: RunOptions;
  #cancelled = false;

  constructor(client: RustyDBClient, sql: string, params: SqlValue[], options: RunOptions) {
    this.#options = options;
    this.#stream = client.stream(sql, params, {
      ...(options.chunkSize !== undefined ? { chunkSize: options.chunkSize } : {}),
      // A person may be reading slowly; a script's pipe may be slow: either way, hold little.
      highWaterMark: 2,
      // A long statement may take a while to produce its first rows.
      timeout: 0,
      // Printed column by column: arrays keep two columns of the same name apart.
      rowMode: 'array',
    });
  }

  get cancelled(): boolean {
    return this.#cancelled;
  }

  /** Stops the statement (the server is told); `result()` then rejects with QUERY_CANCELLED. */
  cancel(): void {
    this.#cancelled = true;
    void this.#stream.cancel();
  }

  async result(): Promise<RunOutcome> {
    const started = performance.now();
    const { format, write } = this.#options;
    const progress = this.#options.progress
      ? new Progress(this.#options.progress.stream, this.#options.progress.intervalMs)
      : undefined;
    const printer = printerFor(format, (text) => {
      progress?.clear();
      write(text);
    });
    let rows = 0;
    let rowsAffected: number | undefined;
    let lastInsertId: number | undefined;
    try {
      for await (const chunk of this.#stream) {
        printer.chunk(chunk.columns, chunk.rows);
        rows += chunk.rows.length;
        if (chunk.hasMore) progress?.update(rows);
        else {
          rowsAffected = chunk.rowsAffected;
          lastInsertId = chunk.lastInsertId;
        }
      }
    } finally {
      progress?.clear();
    }
    if (this.#cancelled) {
      const error = new Error('query cancelled') as Error & { code: string };
      error.code = 'QUERY_CANCELLED';
      throw error;
    }
    printer.end(rows, rowsAffected, lastInsertId);
    return { rows, rowsAffected, elapsedMs: performance.now() - started };
  }
}
