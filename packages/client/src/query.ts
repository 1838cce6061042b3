/**
 * Queries over the connection: `runQuery` collects a whole result, `QueryStream` hands it over chunk by
 * chunk as an async iterator. A stream whose consumer falls behind stops the socket from reading
 * (Node), so the server's cursor pauses too; leaving the loop early sends `cancel`.
 */
import type { QueryChunkPayload, SqlValue } from '@rustydb/protocol';
import { Channel } from './channel.ts';
import type { Connection, InboundMessage, Route } from './connection.ts';
import { RustyDBError, errorFromPayload } from './errors.ts';
import { shapeRows, type ObjectRow, type RowMode, type RowModeOption } from './rows.ts';

export type { SqlValue };

/** A whole result. `R`: the row type (objects by default; arrays with `rowMode: 'array'`). */
export interface QueryResult<R = ObjectRow> {
  columns: string[];
  /** The rows, as objects keyed by column name or (`rowMode: 'array'`) arrays in column order. */
  rows: R[];
  /** Rows returned (reads) or changed (writes). */
  rowsAffected: number;
  /** After an INSERT: the rowid of the last inserted row. */
  lastInsertId: number | undefined;
}

export interface QueryChunk<R = ObjectRow> {
  columns: string[];
  rows: R[];
  /** False on the last chunk. */
  hasMore: boolean;
  /** Last chunk only. */
  rowsAffected?: number | undefined;
  lastInsertId?: number | undefined;
}

export interface QueryOptions extends RowModeOption {
  /** Time allowed until the first answer, ms (queueing included). Default: the client's requestTimeout. */
  timeout?: number | undefined;
  /** Aborting cancels the query (a `cancel` is sent if it is already running). */
  signal?: AbortSignal | undefined;
}

export interface StreamOptions extends QueryOptions {
  /** Rows per chunk (the server's `chunk_size`). Default: the server's query_chunk_size (1000). */
  chunkSize?: number | undefined;
  /** Chunks buffered before reading from the socket pauses (Node only). Default 4. */
  highWaterMark?: number | undefined;
}

function chunkOf<R>(payload: QueryChunkPayload, mode: RowMode): QueryChunk<R> {
  return {
    columns: payload.columns,
    rows: shapeRows(mode, payload.columns, payload.rows) as R[],
    hasMore: payload.has_more,
    ...(payload.has_more
      ? {}
      : { rowsAffected: payload.rows_affected, lastInsertId: payload.last_insert_id }),
  };
}

function abortError(signal: AbortSignal): RustyDBError {
  return new RustyDBError('QUERY_CANCELLED', 'query aborted', { cause: signal.reason });
}

/** Runs one statement and resolves with its whole result (all chunks). */
export function runQuery<R>(
  connection: Connection,
  sql: string,
  params: readonly SqlValue[] = [],
  options: QueryOptions = {},
): Promise<QueryResult<R>> {
  const { signal } = options;
  const mode = options.rowMode ?? 'object';
  if (signal?.aborted) return Promise.reject(abortError(signal));
  return new Promise<QueryResult<R>>((resolve, reject) => {
    const id = connection.nextId('q-');
    const rows: SqlValue[][] = [];
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      connection.cancel(id);
      connection.detach(id, false);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (): void => {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    };
    const route: Route = {
      onMessage(message: InboundMessage): boolean {
        if (settled) return true;
        if (message.type === 'error') {
          finish();
          reject(errorFromPayload(message.payload));
          return true;
        }
        if (message.type !== 'data') return false;
        const payload = message.payload as QueryChunkPayload;
        for (const row of payload.rows) rows.push(row);
        if (payload.has_more) return false;
        finish();
        resolve({
          columns: payload.columns,
          rows: shapeRows(mode, payload.columns, rows) as R[],
          rowsAffected: payload.rows_affected ?? rows.length,
          lastInsertId: payload.last_insert_id,
        });
        return true;
      },
      onFail(error) {
        if (settled) return;
        finish();
        reject(error);
      },
    };
    connection.request({ type: 'query', id, payload: { sql, params: [...params] } }, route, options.timeout);
  });
}

/**
 * A streamed query: `for await (const chunk of stream)`. Breaking out of the loop (or `cancel()`)
 * stops the query on the server. A lost connection ends the stream with a CONNECTION_LOST error;
 * the rows received so far are in `rowsReceived`.
 */
export class QueryStream<R = ObjectRow> implements AsyncIterableIterator<QueryChunk<R>> {
  readonly id: string;
  readonly #connection: Connection;
  readonly #channel: Channel<QueryChunk<R>>;
  readonly #highWaterMark: number;
  readonly #mode: RowMode;
  #finished = false;
  #rowsReceived = 0;
  #columns: string[] | undefined;

  constructor(
    connection: Connection,
    sql: string,
    params: readonly SqlValue[] = [],
    options: StreamOptions = {},
  ) {
    this.#connection = connection;
    this.id = connection.nextId('s-');
    this.#highWaterMark = Math.max(1, options.highWaterMark ?? 4);
    this.#mode = options.rowMode ?? 'object';
    this.#channel = new Channel<QueryChunk<R>>(
      () => this.#stop(),
      () => connection.flowChanged(),
    );
    const { signal } = options;
    if (signal?.aborted) {
      this.#finished = true;
      this.#channel.fail(abortError(signal));
      return;
    }
    signal?.addEventListener('abort', () => void this.cancel(), { once: true });
    const route: Route = {
      onMessage: (message) => this.#onMessage(message),
      onFail: (error) => {
        this.#finished = true;
        // The application closed the client: the loop finishes (the last chunk seen has hasMore true).
        if (error.code === 'CLIENT_CLOSED') {
          this.#channel.end();
          return;
        }
        this.#channel.fail(
          new RustyDBError(error.code, error.message, {
            details: { ...error.details, rows_received: this.#rowsReceived },
            closeCode: error.closeCode,
            cause: error,
          }),
        );
      },
      starving: () => !this.#pressured(),
      pressured: () => this.#pressured(),
    };
    const payload = {
      sql,
      params: [...params],
      streaming: true,
      ...(options.chunkSize !== undefined ? { chunk_size: options.chunkSize } : {}),
    };
    connection.request({ type: 'query', id: this.id, payload }, route, options.timeout);
  }

  /** Rows delivered to this stream so far (buffered ones included). */
  get rowsReceived(): number {
    return this.#rowsReceived;
  }

  /** Column names, once the first chunk has arrived. */
  get columns(): string[] | undefined {
    return this.#columns;
  }

  #pressured(): boolean {
    return this.#channel.size >= this.#highWaterMark;
  }

  #onMessage(message: InboundMessage): boolean {
    if (message.type === 'error') {
      this.#finished = true;
      const error = errorFromPayload(message.payload);
      this.#channel.fail(
        new RustyDBError(error.code, error.message, {
          details: { ...error.details, rows_received: this.#rowsReceived },
        }),
      );
      return true;
    }
    if (message.type !== 'data') return false;
    const chunk = chunkOf<R>(message.payload as QueryChunkPayload, this.#mode);
    this.#columns ??= chunk.columns;
    this.#rowsReceived += chunk.rows.length;
    if (!chunk.hasMore) this.#finished = true;
    this.#channel.push(chunk);
    if (!chunk.hasMore) this.#channel.end();
    return !chunk.hasMore;
  }

  #stop(): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#connection.cancel(this.id);
    this.#connection.detach(this.id, false);
  }

  next(): Promise<IteratorResult<QueryChunk<R>>> {
    return this.#channel.next();
  }

  return(): Promise<IteratorResult<QueryChunk<R>>> {
    return this.#channel.return();
  }

  /** Stops the query; the loop reading the stream ends. Safe to call twice. */
  async cancel(): Promise<void> {
    await this.#channel.return();
  }

  /** The rows one by one, in the stream's row mode. Leaving the loop early cancels the query. */
  async *rows(): AsyncGenerator<R, void, undefined> {
    for await (const chunk of this) yield* chunk.rows;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}
