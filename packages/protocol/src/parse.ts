import type { z } from 'zod';
import { clientMessageSchema, CLIENT_MESSAGE_TYPES, type ClientMessage } from './messages.ts';
import { fastQueryMessage } from './query-fast-path.ts';
import { scanQueryText } from './query-text-scan.ts';

export type ParseResult =
  | { ok: true; message: ClientMessage }
  | { ok: false; error: string; /** The `id` of the bad message, when it had a usable one. */ id?: string };

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length > 0 ? issue.path.join('.') : 'message';
  return `${where}: ${issue.message}`;
}

/** Parses one client text frame. Never throws: malformed input becomes a descriptive error. */
export function parseClientMessage(text: string): ParseResult {
  // The commonest query, read from the text without JSON.parse; anything else is parsed and checked.
  const scanned = scanQueryText(text);
  if (scanned !== undefined) return { ok: true, message: scanned };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { ok: false, error: 'message is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, error: 'message must be a JSON object' };
  }
  const raw = value as Record<string, unknown>;
  const id = typeof raw.id === 'string' && raw.id.length > 0 && raw.id.length <= 128 ? raw.id : undefined;
  if (typeof raw.type !== 'string') {
    return { ok: false, error: "message needs a string 'type'", id };
  }
  // 'query' first: the message a busy client sends most, known without a search of the list.
  if (raw.type !== 'query' && !(CLIENT_MESSAGE_TYPES as readonly string[]).includes(raw.type)) {
    return {
      ok: false,
      error: `unknown message type '${raw.type.slice(0, 40)}'; expected one of ${CLIENT_MESSAGE_TYPES.join(', ')}`,
      id,
    };
  }
  if (raw.type === 'query') {
    const message = fastQueryMessage(raw);
    if (message) return { ok: true, message };
  }
  const parsed = clientMessageSchema.safeParse(value);
  if (!parsed.success) {
    const first = parsed.error.issues[0];
    return { ok: false, error: first ? describeIssue(first) : 'invalid message', id };
  }
  return { ok: true, message: parsed.data };
}
