/**
 * `batch`: several statements in one message, answered once. Without a transaction each statement
 * stands alone and the result lists successes and failures; with `transaction: true` it is all or
 * nothing, and a failure rejects the promise (`details.index` names the statement).
 */
import type { BatchPayload, SqlValue } from '@rustydb/protocol';
import type { Connection, Route } from './connection.ts';
import { RustyDBError, errorFromPayload } from './errors.ts';
import type { QueryOptions, QueryResult } from './query.ts';
import { shapeRows, type ObjectRow } from './rows.ts';

export type BatchStatement = string | { sql: string; params?: readonly SqlValue[] | undefined };

export interface BatchOptions extends QueryOptions {
  /** All statements in one transaction: all or nothing. Default false. */
  transaction?: boolean | undefined;
}

/** One statement's outcome. `R`: the row type (objects by default; arrays with `rowMode: 'array'`). */
export type BatchItemResult<R = ObjectRow> =
  ({ ok: true } & QueryResult<R>) | { ok: false; error: RustyDBError };

export function runBatch<R>(
  connection: Connection,
  statements: readonly BatchStatement[],
  options: BatchOptions = {},
): Promise<BatchItemResult<R>[]> {
  const mode = options.rowMode ?? 'object';
  const queries = statements.map((s) =>
    typeof s === 'string' ? { sql: s, params: [] } : { sql: s.sql, params: [...(s.params ?? [])] },
  );
  const { signal } = options;
  if (signal?.aborted) {
    return Promise.reject(new RustyDBError('QUERY_CANCELLED', 'batch aborted', { cause: signal.reason }));
  }
  return new Promise<BatchItemResult<R>[]>((resolve, reject) => {
    const id = connection.nextId('b-');
    let settled = false;
    const onAbort = (): void => {
      if (settled) return;
      settled = true;
      connection.cancel(id);
      connection.detach(id, false);
      reject(new RustyDBError('QUERY_CANCELLED', 'batch aborted', { cause: signal!.reason }));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const route: Route = {
      onMessage(message) {
        if (message.type === 'error') {
          if (settle()) reject(errorFromPayload(message.payload));
          return true;
        }
        if (message.type !== 'data') return false;
        const { results } = message.payload as BatchPayload;
        if (settle()) {
          resolve(
            results.map((r) =>
              r.status === 'success'
                ? {
                    ok: true,
                    columns: r.columns,
                    rows: shapeRows(mode, r.columns, r.rows) as R[],
                    rowsAffected: r.rows_affected,
                    lastInsertId: r.last_insert_id,
                  }
                : { ok: false, error: new RustyDBError(r.code, r.message) },
            ),
          );
        }
        return true;
      },
      onFail(error) {
        if (settle()) reject(error);
      },
    };
    connection.request(
      { type: 'batch', id, payload: { queries, ...(options.transaction ? { transaction: true } : {}) } },
      route,
      options.timeout,
    );
  });
}
