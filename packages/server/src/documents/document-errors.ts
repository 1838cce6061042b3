/**
 * Errors for malformed filters, updates, projections and pipelines. They are the client's mistake, so
 * they carry INVALID_MESSAGE and a message that names the offending operator, stage or path.
 */
import { RustyError } from '../errors/rusty-error.ts';

export function documentError(message: string): RustyError {
  return new RustyError('INVALID_MESSAGE', message);
}

/** A short rendering of a client value for an error message (never the whole of a large value). */
export function describeValue(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}
