/**
 * Renders change-log records of a document collection as MongoDB change events: `_id` (the resume
 * token), `operationType`, `documentKey`, `fullDocument`, `updateDescription`, `ns`, `clusterTime`,
 * `wallTime`; a dropped collection yields `drop` then `invalidate`, which ends the stream. A `$match`
 * pipeline filters the events before they are sent.
 */
import { describeUpdate } from '../documents/update-description.ts';
import type { JsonObject } from '../documents/json-values.ts';
import type { ChangeRecord } from '../engine/engine.ts';
import { RustyError } from '../errors/rusty-error.ts';
import { compileEventFilter, type EventPredicate } from './event-matcher.ts';
import type { Renderer } from './table-subscription.ts';

export const DATABASE_NAME = 'rustydb';

export type FullDocumentMode = 'default' | 'updateLookup' | 'whenAvailable' | 'required';

/** The resume token of a record: opaque to clients, the sequence to us. */
export function resumeToken(seq: number): { _data: string } {
  return { _data: seq.toString(16).padStart(16, '0') };
}

export function sequenceOfToken(token: unknown): number {
  const data = (token as { _data?: unknown } | null)?._data;
  if (typeof data !== 'string' || !/^[0-9a-f]{1,16}$/.test(data)) {
    throw new RustyError(
      'INVALID_MESSAGE',
      'invalid resume token: expected {"_data": "<hex>"} from an event _id',
    );
  }
  return parseInt(data, 16);
}

/** `$match` stages, and-ed together; any other stage is refused. */
export function compilePipeline(pipeline: unknown): EventPredicate | undefined {
  if (pipeline === undefined) return undefined;
  if (!Array.isArray(pipeline))
    throw new RustyError('INVALID_MESSAGE', 'pipeline must be an array of stages');
  const predicates = pipeline.map((stage: unknown) => {
    const keys = stage !== null && typeof stage === 'object' ? Object.keys(stage) : [];
    if (keys.length !== 1 || keys[0] !== '$match') {
      throw new RustyError('INVALID_MESSAGE', 'change stream pipelines support $match stages only');
    }
    return compileEventFilter((stage as { $match: unknown }).$match);
  });
  return (event) => predicates.every((p) => p(event));
}

/** The row's document: JSON text on SQLite, already parsed from jsonb on PostgreSQL. */
function documentOf(row: Record<string, unknown> | null): JsonObject | undefined {
  const doc = row?.doc;
  if (typeof doc === 'string') return JSON.parse(doc) as JsonObject;
  return doc !== null && typeof doc === 'object' ? (doc as JsonObject) : undefined;
}

export function changeStreamRenderer(
  collection: string,
  fullDocument: FullDocumentMode,
  match: EventPredicate | undefined,
): Renderer {
  const ns = { db: DATABASE_NAME, coll: collection };
  const base = (record: ChangeRecord): Record<string, unknown> => ({
    _id: resumeToken(record.seq),
    clusterTime: record.ts,
    wallTime: new Date(record.ts).toISOString(),
    ns,
  });
  const keep = (event: Record<string, unknown>): boolean => !match || match(event);
  return (record) => {
    if (record.op === 'ddl') {
      const action = (record.new as { action?: string } | null)?.action;
      if (action !== 'drop') return undefined;
      const drop = { ...base(record), operationType: 'drop' };
      const invalidate = {
        _id: resumeToken(record.seq),
        operationType: 'invalidate',
        clusterTime: record.ts,
      };
      return {
        messages: [
          ...(keep(drop) ? [{ type: 'change' as const, payload: drop }] : []),
          { type: 'change' as const, payload: invalidate },
        ],
        end: 'table_dropped',
      };
    }
    const documentKey = { _id: (record.key as { _id?: unknown } | null)?._id };
    let event: Record<string, unknown>;
    if (record.op === 'insert') {
      event = { ...base(record), operationType: 'insert', documentKey, fullDocument: documentOf(record.new) };
    } else if (record.op === 'delete') {
      event = { ...base(record), operationType: 'delete', documentKey };
    } else {
      const before = documentOf(record.old) ?? {};
      const after = documentOf(record.new) ?? {};
      const replaced = record.new?._op === 'replace';
      event = replaced
        ? { ...base(record), operationType: 'replace', documentKey, fullDocument: after }
        : {
            ...base(record),
            operationType: 'update',
            documentKey,
            updateDescription: describeUpdate(before, after),
            ...(fullDocument !== 'default' ? { fullDocument: after } : {}),
          };
    }
    return keep(event) ? { messages: [{ type: 'change', payload: event }] } : undefined;
  };
}
