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
