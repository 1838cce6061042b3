/**
 * What both engines' change logs work out the same way from the positions they read (head, floor, the
 * newest record older than a time): where a time-based resume starts, how far one round of pruning
 * goes, and a stored record as a ChangeRecord. The engines differ only in how they read and write.
 */
import type { ChangeRecord } from './engine.ts';

/** Records deleted by one round of pruning at most; the pruner calls again until nothing is left. */
export const PRUNE_BATCH = 5000;

/**
 * The position to resume from for "changes since a time" when no record kept is older than it: if
 * anything was pruned, changes from that time may be gone, so a position before the floor, which the
 * caller answers with a reset; else the very start.
 */
export function positionBeforeKept(floor: number): number {
  return floor > 0 ? floor - 1 : 0;
}

/**
 * The sequence one round of pruning deletes through: past `maxEntries` below the head or older than the
 * retention (`olderSeq`: the newest record older than it, 0 when none), at most PRUNE_BATCH past the
 * floor; undefined when nothing is to go.
 */
export function pruneThrough(
  positions: { head: number; floor: number; olderSeq: number },
  maxEntries: number,
): number | undefined {
  const { head, floor, olderSeq } = positions;
  const through = Math.min(Math.max(head - maxEntries, olderSeq), floor + PRUNE_BATCH);
  return through > floor ? through : undefined;
}

/**
 * A stored record (seq, tbl, op, pk, old_row, new_row, ts, as both engines' tables name them) as the
 * change feed takes it; `parse` reads a JSON column as the engine wrote it.
 */
export function recordOfRow(
  [seq, table, op, pk, oldRow, newRow, ts]: unknown[],
  parse: (text: unknown) => Record<string, unknown> | null,
): ChangeRecord {
  return {
    seq: Number(seq),
    table: String(table),
    op: op as ChangeRecord['op'],
    key: parse(pk),
    old: parse(oldRow),
    new: parse(newRow),
    ts: Number(ts),
  };
}
