/** Renders change-log records as the row events of `/api/v1/stream` table subscriptions. */
import type { RowChangePayload, RowFilter } from '@rustydb/protocol';
import { classify, compileRowFilter, type Row } from './row-filter.ts';
import type { Rendered, Renderer } from './table-subscription.ts';
import type { ChangeRecord } from '../engine/engine.ts';

type RowEvent = NonNullable<ReturnType<typeof classify>>;

/**
 * What a record renders to, by event: every subscriber that sees a change the same way gets the same
 * (read-only) object, built once and serialized once however many subscribers there are.
 */
const built = new WeakMap<ChangeRecord, Map<RowEvent, Rendered>>();

function rowEvent(record: ChangeRecord, event: RowEvent): Rendered {
  let byEvent = built.get(record);
  if (!byEvent) built.set(record, (byEvent = new Map()));
  let rendered = byEvent.get(event);
  if (!rendered) {
    const payload: RowChangePayload = {
      sequence: record.seq,
      table: record.table,
      op: event,
      key: record.key,
      row: event === 'delete' ? null : record.new,
      old_row: record.old,
      timestamp: new Date(record.ts).toISOString(),
    };
    byEvent.set(event, (rendered = { messages: [{ type: 'change', payload }] }));
  }
  return rendered;
}

/** The renderer of a subscription with no filter and every event: one for all of them. */
let unfiltered: Renderer | undefined;

export function rowEventRenderer(
  filter: RowFilter | undefined,
  events: ReadonlySet<'insert' | 'update' | 'delete'> | undefined,
): Renderer {
  if (events === undefined && (filter === undefined || Object.keys(filter).length === 0)) {
    return (unfiltered ??= renderer(compileRowFilter(undefined), undefined));
  }
  return renderer(compileRowFilter(filter), events);
}

function renderer(
  matches: (row: Row | null) => boolean,
  events: ReadonlySet<'insert' | 'update' | 'delete'> | undefined,
): Renderer {
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
    const base = event === 'enter' || event === 'leave' ? 'update' : event;
    if (events && !events.has(base)) return undefined;
    return rowEvent(record, event);
  };
}
