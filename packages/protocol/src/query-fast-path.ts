/**
 * The `query` message, checked by hand: the one message a busy client sends thousands of times a
 * second, where the general schema walk (zod) costs more than the keyed lookup it asks for. It accepts
 * exactly what `queryMessageSchema` accepts and returns the same value; anything it is not sure of
 * (an unknown shape, a value out of range) it leaves to the schema, which also words the error.
 */
import type { QueryMessage, SqlValue } from './messages.ts';

const MAX_ID_LENGTH = 128;
const MAX_PARAMS = 32766;
const MAX_CHUNK_SIZE = 100_000;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A statement parameter: a JSON scalar, or `{ "$base64": "…" }` and nothing else. */
function isSqlValue(value: unknown): value is SqlValue {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value);
    case 'object': {
      if (value === null) return true;
      if (Array.isArray(value)) return false;
      let keys = 0;
      for (const key in value) {
        if (key !== '$base64' || !Object.hasOwn(value, key)) return false;
        keys++;
      }
      return keys === 1 && typeof (value as { $base64: unknown }).$base64 === 'string';
    }
    default:
      return false;
  }
}

/**
 * The checked `query` message, or undefined when `raw` must go through the schema (it is not a query,
 * or it is not valid, or it has something this check does not judge).
 */
export function fastQueryMessage(raw: Record<string, unknown>): QueryMessage | undefined {
  const { id, timestamp, payload } = raw;
  if (id !== undefined && (typeof id !== 'string' || id.length < 1 || id.length > MAX_ID_LENGTH)) {
    return undefined;
  }
  if (timestamp !== undefined && typeof timestamp !== 'string') return undefined;
  if (!isPlainObject(payload)) return undefined;
  const { sql, params, streaming, chunk_size } = payload;
  if (typeof sql !== 'string' || sql.length < 1) return undefined;
  if (params !== undefined) {
    if (!Array.isArray(params) || params.length > MAX_PARAMS) return undefined;
    for (let i = 0; i < params.length; i++) if (!isSqlValue(params[i])) return undefined;
  }
  if (streaming !== undefined && typeof streaming !== 'boolean') return undefined;
  if (
    chunk_size !== undefined &&
    (typeof chunk_size !== 'number' ||
      !Number.isSafeInteger(chunk_size) ||
      chunk_size < 1 ||
      chunk_size > MAX_CHUNK_SIZE)
  ) {
    return undefined;
  }
  // The schema's output: only the known fields, unknown ones dropped. The commonest message (an id and
  // parameters, nothing else) is made of two literals, not of objects grown a field at a time.
  if (
    streaming === undefined &&
    chunk_size === undefined &&
    params !== undefined &&
    timestamp === undefined
  ) {
    const payload = { sql, params: params as SqlValue[] };
    return id !== undefined ? { type: 'query', payload, id } : { type: 'query', payload };
  }
  const checked: QueryMessage['payload'] = { sql };
  if (params !== undefined) checked.params = params as SqlValue[];
  if (streaming !== undefined) checked.streaming = streaming;
  if (chunk_size !== undefined) checked.chunk_size = chunk_size;
  const message: QueryMessage = { type: 'query', payload: checked };
  if (id !== undefined) message.id = id;
  if (timestamp !== undefined) message.timestamp = timestamp;
  return message;
}
