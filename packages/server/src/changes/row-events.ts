/** Renders change-log records as the row events of `/api/v1/stream` table subscriptions. */
import type { RowChangePayload, RowFilter } from '@rustydb/protocol';
import { classify, compileRowFilter, type Row } from './row-filter.ts';
import type { Rendered, Renderer } from './table-subscription.ts';
import type { ChangeRecord } from '../engine/engine.ts';
import { DerivedSlot } from '../core/derived-slot.ts';

type RowEvent = NonNullable<ReturnType<typeof classify>>;

/**
 * What a record renders to, by event: every subscriber that sees a change the same way gets the same
 * (read-only) object, built once and serialized once however many subscribers there are. Nearly every
 * record is seen one way only (an update by everyone whose filter it stays in): that one is kept
 * alone, a Map only holds the others (enter, leave) when some subscriber sees them.
 */
const built = new DerivedSlot<ChangeRecord, Rendered>('row event');
const builtOtherwise = new DerivedSlot<ChangeRecord, Map<RowEvent, Rendered>>('other row events');

/** The last commit time turned into text: the records of one transaction share it. */
let lastTs = NaN;
let lastTimestamp = '';

function timestampOf(ts: number): string {
  if (ts !== lastTs) {
    lastTimestamp = new Date(ts).toISOString();
    lastTs = ts;
  }
  return lastTimestamp;
}

/**
 * The last record rendered and what it rendered to: a change fanned out to thousands of subscribers
 * is rendered for each of them in a row, and this answers all but the first without a lookup.
 */
let lastRecord: ChangeRecord | undefined;
let lastRendered: Rendered | undefined;

function rowEvent(record: ChangeRecord, event: RowEvent): Rendered {
  if (record === lastRecord && (lastRendered!.messages[0]!.payload as RowChangePayload).op === event) {
    return lastRendered!;
  }
  const rendered = builtRowEvent(record, event);
  lastRecord = record;
  lastRendered = rendered;
  return rendered;
}

function builtRowEvent(record: ChangeRecord, event: RowEvent): Rendered {
  const first = built.get(record);
  if (first && (first.messages[0]!.payload as RowChangePayload).op === event) return first;
  let others = first ? builtOtherwise.get(record) : undefined;
  const known = others?.get(event);
  if (known) return known;
  const payload: RowChangePayload = {
    sequence: record.seq,
    table: record.table,
    op: event,
    key: record.key,
    row: event === 'delete' ? null : record.new,
    old_row: record.old,
    timestamp: timestampOf(record.ts),
  };
  const rendered: Rendered = { messages: [{ type: 'change', payload }] };
  if (!first) built.set(record, rendered);
  else {
    if (!others) builtOtherwise.set(record, (others = new Map()));
    others.set(event, rendered);
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
