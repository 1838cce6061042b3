/** Renders change-log records as the row events of `/api/v1/stream` table subscriptions. */
import type { RowChangePayload, RowFilter } from '@rustydb/protocol';
import { classify, compileRowFilter } from './row-filter.ts';
import type { Renderer } from './table-subscription.ts';
import type { ChangeRecord } from '../engine/engine.ts';

/**
 * Payloads already built for a record, by event: every subscriber that sees a change the same way
 * gets the same object, so it is serialized once however many subscribers there are.
 */
const built = new WeakMap<ChangeRecord, Map<string, RowChangePayload>>();

function memo(record: ChangeRecord, event: string, build: () => RowChangePayload): RowChangePayload {
  let byEvent = built.get(record);
  if (!byEvent) built.set(record, (byEvent = new Map()));
  let payload = byEvent.get(event);
  if (!payload) byEvent.set(event, (payload = build()));
  return payload;
}

export function rowEventRenderer(
  filter: RowFilter | undefined,
  events: ReadonlySet<'insert' | 'update' | 'delete'> | undefined,
): Renderer {
  const matches = compileRowFilter(filter);
  // Called for every change of the table, matching or not: nothing is built before the filter says yes.
  return (record) => {
    if (record.op === 'ddl') {
      const timestamp = new Date(record.ts).toISOString();
      const schema = record.new as { action: 'create' | 'alter' | 'drop'; sql: string | null };
      const payload: RowChangePayload = {
        sequence: record.seq,
        table: record.table,
        op: 'schema',
        key: null,
        row: null,
        old_row: null,
        timestamp,
        schema,
      };
      return {
        messages: [{ type: 'change', payload }],
        ...(schema.action === 'drop' ? { end: 'table_dropped' } : {}),
      };
    }
    const event = classify(matches, record.op, record.old, record.new);
    if (!event) return undefined;
    const timestamp = new Date(record.ts).toISOString();
    const base = event === 'enter' || event === 'leave' ? 'update' : event;
    if (events && !events.has(base)) return undefined;
    const payload = memo(record, event, () => ({
      sequence: record.seq,
      table: record.table,
      op: event,
      key: record.key,
      row: event === 'delete' ? null : record.new,
      old_row: record.old,
      timestamp,
    }));
    return { messages: [{ type: 'change', payload }] };
  };
}
