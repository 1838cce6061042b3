/**
 * What both engines do with statement results the same way: gathering a streamed result whole (with
 * its bound), naming the failing statement of a batch, and running a batch without a transaction.
 */
import type { StatementFailure, StatementResult } from '@rustydb/protocol';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import type { BatchOptions, ResultChunk, StatementInput } from './engine.ts';

/** Rows a statement may return when its result is gathered whole (execute, batch, snapshot). */
export const MAX_COLLECTED_ROWS = 100_000;

export async function collect(chunks: AsyncIterable<ResultChunk>): Promise<StatementResult> {
  let columns: string[] = [];
  const rows: StatementResult['rows'] = [];
  let rowsAffected = 0;
  let lastInsertId: number | undefined;
  for await (const chunk of chunks) {
    columns = chunk.columns;
    if (rows.length + chunk.rows.length > MAX_COLLECTED_ROWS) {
      throw new RustyError(
        'QUERY_ERROR',
        `result has more than ${MAX_COLLECTED_ROWS} rows; stream it with a query over /api/v1/stream`,
      );
    }
    for (const row of chunk.rows) rows.push(row);
    if (chunk.done) {
      rowsAffected = chunk.rowsAffected ?? rows.length;
      lastInsertId = chunk.lastInsertId;
    }
  }
  return {
    status: 'success',
    columns,
    rows,
    rows_affected: rowsAffected,
    ...(lastInsertId !== undefined ? { last_insert_id: lastInsertId } : {}),
  };
}

/**
 * Runs `work` for the statement at `index` of a batch; its error names that statement. `translate`
 * turns a driver's error into the engine's first (PostgreSQL's SQLSTATEs).
 */
export function failingAt<T>(
  index: number,
  work: () => T,
  translate: (err: unknown) => unknown = (e) => e,
): T {
  const wrap = (err: unknown): never => {
    const failure = normalizeError(translate(err));
    throw new RustyError(failure.code, `statement ${index + 1} failed: ${failure.message}`, {
      ...failure.details,
      index,
    });
  };
  try {
    const result = work();
    return result instanceof Promise ? (result.catch(wrap) as T) : result;
  } catch (err) {
    return wrap(err);
  }
}

/** A batch without a transaction: each statement on its own, failures reported in place. */
export async function runEach(
  statements: readonly StatementInput[],
  options: BatchOptions,
  execute: (statement: StatementInput) => Promise<StatementResult>,
): Promise<(StatementResult | StatementFailure)[]> {
  const results: (StatementResult | StatementFailure)[] = [];
  for (const statement of statements) {
    if (options.signal?.aborted) {
      results.push({
        status: 'error',
        code: 'QUERY_CANCELLED',
        message: 'batch cancelled before this statement',
      });
      continue;
    }
    try {
      results.push(await execute(statement));
    } catch (err) {
      const failure = normalizeError(err);
      results.push({ status: 'error', code: failure.code, message: failure.message });
    }
  }
  return results;
}
