/**
 * Where in the change log a privilege was given (a grant, a role given to a user), as the role and user
 * stores record it: the store's `changeHead` in the write, then settled where the engine numbers its log
 * only after commit (PostgreSQL; see InternalStore.settlePending).
 */
import { PENDING_POSITION, type InternalStore } from '../engine/engine.ts';

/** A table of positions: the column that holds them and the columns that name its rows. */
export interface PositionedTable {
  table: string;
  column: string;
  keys: readonly string[];
}

/**
 * Settles the positions a write just recorded. When that fails (the change capture is not running),
 * the write stands and its rows stay pending: their first reader settles them (see readSettled), and
 * until then no reader takes a pending position for an earlier one.
 */
export async function settleAfterWrite(store: InternalStore, positioned: PositionedTable): Promise<void> {
  try {
    await store.settlePending?.(positioned.table, positioned.column, positioned.keys);
  } catch {
    // Left pending, as said above.
  }
}

/** Rows `read` returns, read again after settling them if any still held a pending position. */
export async function readSettled<T extends Record<string, unknown>>(
  store: InternalStore,
  positioned: PositionedTable,
  read: () => Promise<T[]>,
): Promise<T[]> {
  const rows = await read();
  if (!store.settlePending || !rows.some((row) => Number(row[positioned.column]) === PENDING_POSITION)) {
    return rows;
  }
  await store.settlePending(positioned.table, positioned.column, positioned.keys);
  return read();
}
