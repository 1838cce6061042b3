/** Renders change-log records as the row events of `/api/v1/stream` table subscriptions. */
import type { RowChangePayload, RowFilter } from '@rustydb/protocol';
import { classify } from './row-filter.ts';
import type { Renderer } from './table-subscription.ts';

export function rowEventRenderer(
  filter: RowFilter | undefined,
  events: ReadonlySet<'insert' | 'update' | 'delete'> | undefined,
): Renderer {
  return (record) => {
    const timestamp = new Date(record.ts).toISOString();
    if (record.op === 'ddl') {
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
    const event = classify(filter, record.op, record.old, record.new);
    if (!event) return undefined;
    const base = event === 'enter' || event === 'leave' ? 'update' : event;
    if (events && !events.has(base)) return undefined;
    const payload: RowChangePayload = {
      sequence: record.seq,
      table: record.table,
      op: event,
      key: record.key,
      row: event === 'delete' ? null : record.new,
      old_row: record.old,
      timestamp,
    };
    return { messages: [{ type: 'change', payload }] };
  };
}
