/** Builds the JSON text of server → client messages. */
import type { ErrorCode, ServerMessageType } from '@rustydb/protocol';
import type { RustyError } from '../errors/rusty-error.ts';

export function envelope(type: ServerMessageType | 'auth_expiring', payload: unknown, id?: string): string {
  return JSON.stringify(
    id === undefined
      ? { type, payload, timestamp: new Date().toISOString() }
      : { type, payload, timestamp: new Date().toISOString(), id },
  );
}

export function errorPayload(code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return details ? { status: 'error', message, code, details } : { status: 'error', message, code };
}

export function errorEnvelope(err: RustyError, id?: string, type: 'error' | 'auth_error' = 'error'): string {
  return envelope(type, errorPayload(err.code, err.message, err.details), id);
}

/** The JSON of payloads sent to many subscribers, serialized once. */
const payloadJson = new WeakMap<object, string>();

/**
 * `envelope` for a payload object that may go to many connections (one change fanned out to every
 * subscriber): the payload is serialized once and only the envelope around it per message.
 */
export function sharedPayloadEnvelope(type: string, payload: object, id: string): string {
  let json = payloadJson.get(payload);
  if (json === undefined) {
    json = JSON.stringify(payload);
    payloadJson.set(payload, json);
  }
  return envelopeAround(type, json, id);
}

/**
 * `envelope` for a payload already serialized: the same text JSON.stringify would make of the whole
 * message, with the payload's JSON put in as it is.
 */
export function envelopeAround(type: string, payloadJson: string, id?: string): string {
  const head = `{"type":${JSON.stringify(type)},"payload":${payloadJson},"timestamp":"${new Date().toISOString()}"`;
  return id === undefined ? `${head}}` : `${head},"id":${JSON.stringify(id)}}`;
}
