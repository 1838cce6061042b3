/** Builds the JSON text of server → client messages. */
import type { ErrorCode, ServerMessageType } from '@rustydb/protocol';
import type { RustyError } from '../errors/rusty-error.ts';
import type { JsonRows } from '../engine/engine.ts';

/** The last timestamp made, and the millisecond it is for: busy servers send many per millisecond. */
let stampedAt = -1;
let stamp = '';

/**
 * Where on performance.now()'s scale the millisecond of `stamp` begins and ends, when the two clocks
 * agreed as it was made (performance.timeOrigin + performance.now() is the wall clock's time, to a few
 * µs, until the wall clock is set): while a reading falls between them, the stamp is still now.
 */
let stampFrom = 0;
let stampUntil = 0;
/**
 * The end of the millisecond (0.05 ms) where the stamp is read again all the same: the two clocks
 * differ by a few µs (as Node read them at start), which must not make a stamp outlive its millisecond.
 */
const STAMP_MARGIN = 0.05;
/** performance.timeOrigin, read once (it is fixed for the process). */
const TIME_ORIGIN = performance.timeOrigin;

/** The text of the last second written by isoTimestamp, up to its milliseconds ("…T18:40:12."). */
let secondText = '';
let secondAt = Number.NaN;

/**
 * `new Date(ms).toISOString()`, from the text of its second when the second is the last one written:
 * a busy server stamps every millisecond, and a Date and its formatting cost more than the text's end.
 */
export function isoTimestamp(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== secondAt) {
    const text = new Date(ms).toISOString();
    // Only the common form (a four-digit year, 24 characters) is cut; others are written whole each time.
    const common = text.length === 24;
    secondAt = common ? second : Number.NaN;
    secondText = common ? text.slice(0, 20) : '';
    return text;
  }
  const milli = ms - second * 1000;
  return `${secondText}${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
}

/** Now, as the ISO-8601 text every envelope carries. */
export function timestampNow(): string {
  const now = Date.now();
  if (now !== stampedAt) {
    stampedAt = now;
    stamp = isoTimestamp(now);
    // The millisecond timestampAt knew is over.
    stampFrom = stampUntil = 0;
  }
  return stamp;
}

/**
 * `timestampNow()` for the moment `monotonic` (a performance.now() reading just made, such as the end of
 * a keyed query's run): the wall clock is read about once per millisecond, not for every answer (a clock
 * read cost a keyed query ~0.8% of its CPU on this virtual machine). Should the wall clock be set while
 * the process runs, a stamp may lag by less than the millisecond it is written in.
 */
export function timestampAt(monotonic: number): string {
  if (monotonic >= stampFrom && monotonic < stampUntil) return stamp;
  const now = timestampNow();
  const since = TIME_ORIGIN + monotonic - stampedAt;
  if (since >= 0 && since < 1 - STAMP_MARGIN) {
    stampFrom = monotonic - since;
    stampUntil = stampFrom + 1 - STAMP_MARGIN;
  } else {
    // The clocks disagree (the wall clock was set, or the reading was made in the millisecond before).
    stampFrom = stampUntil = 0;
  }
  return now;
}

export function envelope(type: ServerMessageType | 'auth_expiring', payload: unknown, id?: string): string {
  return JSON.stringify(
    id === undefined
      ? { type, payload, timestamp: timestampNow() }
      : { type, payload, timestamp: timestampNow(), id },
  );
}

/** Texts up to this long are checked and quoted here (jsonString); longer ones go to JSON.stringify. */
const SHORT_STRING = 256;
/** Results of up to this many rows are written here (rowsJson); larger ones go to JSON.stringify. */
const FEW_ROWS = 16;

/**
 * The JSON text of `text`, as JSON.stringify writes it: quoted here when nothing in it needs escaping
 * (no control character, quote, backslash or surrogate), which is cheaper for a short text than a call
 * into JSON.stringify; in every other case written by JSON.stringify itself.
 */
function jsonString(text: string): string {
  if (text.length > SHORT_STRING) return JSON.stringify(text);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x22 || code === 0x5c || (code >= 0xd800 && code <= 0xdfff)) {
      return JSON.stringify(text);
    }
  }
  return `"${text}"`;
}

/**
 * The JSON text of an array of texts (a result's columns), as JSON.stringify writes it; undefined when
 * it holds anything else.
 */
function textsJson(texts: readonly unknown[]): string | undefined {
  let json = '[';
  for (let i = 0; i < texts.length; i++) {
    const text = texts[i];
    if (typeof text !== 'string') return undefined;
    json += i === 0 ? jsonString(text) : `,${jsonString(text)}`;
  }
  return `${json}]`;
}

/**
 * The JSON text of a few rows of texts, finite numbers and nulls, as JSON.stringify writes it (a finite
 * number's JSON is its String()); undefined for more rows or any other value, which JSON.stringify then
 * writes. A keyed answer (one short row) is made here without calls into JSON.stringify.
 */
function rowsJson(rows: readonly unknown[]): string | undefined {
  if (rows.length > FEW_ROWS) return undefined;
  let json = '[';
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r];
    if (!Array.isArray(row)) return undefined;
    json += r === 0 ? '[' : ',[';
    for (let c = 0; c < row.length; c++) {
      const value: unknown = row[c];
      let part: string;
      if (typeof value === 'string') part = jsonString(value);
      else if (typeof value === 'number' && Number.isFinite(value)) part = String(value);
      else if (value === null) part = 'null';
      else return undefined;
      json += c === 0 ? part : `,${part}`;
    }
    json += ']';
  }
  return `${json}]`;
}

/** JSON.stringify of a count or id: a finite number's JSON is its String(). */
function numberJson(value: number): string {
  return Number.isFinite(value) ? String(value) : JSON.stringify(value);
}

/**
 * The `data` message of a query result: the same text `envelope('data', payload, id)` makes of its
 * payload (`status`, `columns`, `rows`, `has_more`, then the totals on the last message), written
 * directly: it is the answer to every query, and most are one short row. The rows come as values or
 * as their JSON text already made (on a read worker): the text is the same either way.
 */
export function dataEnvelope(
  id: string | undefined,
  columns: readonly string[],
  rows: readonly unknown[] | JsonRows,
  hasMore: boolean,
  rowsAffected: number | undefined,
  lastInsertId: number | undefined,
  /** When the result was made (performance.now()), if just now: the timestamp is then timestampAt's. */
  madeAt?: number,
): string {
  const serialized = 'text' in rows ? rows : undefined;
  let totals = '';
  if (!hasMore) {
    const count = serialized ? serialized.count : (rows as readonly unknown[]).length;
    totals = `,"rows_affected":${numberJson(rowsAffected ?? count)}`;
    if (lastInsertId !== undefined) totals += `,"last_insert_id":${numberJson(lastInsertId)}`;
  }
  const rowsText = serialized
    ? serialized.text
    : (rowsJson(rows as readonly unknown[]) ?? JSON.stringify(rows));
  return (
    `{"type":"data","payload":{"status":"success","columns":${textsJson(columns) ?? JSON.stringify(columns)},` +
    `"rows":${rowsText},"has_more":${hasMore}${totals}},` +
    `"timestamp":"${madeAt === undefined ? timestampNow() : timestampAt(madeAt)}"` +
    `${id === undefined ? '' : `,"id":${jsonString(id)}`}}`
  );
}

/** Who an `auth_success` names: a principal. */
export interface AuthSuccessSubject {
  readonly user: string;
  readonly roles: readonly string[];
  readonly expiresAt?: number | undefined;
}

/**
 * The `auth_success` text up to its timestamp, by principal: the Authenticator gives every connection
 * of one token the same frozen principal, so a thousand connects with one token build it once instead
 * of a date, two JSON texts and the concatenations each. Only frozen principals (with frozen roles)
 * are kept: what the text says of them cannot change.
 */
const authSuccessHeads = new WeakMap<AuthSuccessSubject, { limitsJson: string; head: string }>();

/**
 * The `auth_success` message: the text `envelope('auth_success', payload, id)` makes, written directly
 * around the server's limits, which are the same for every connection and serialized once by the caller
 * (`limitsJson`). Every connect sends one.
 */
export function authSuccessEnvelope(
  principal: AuthSuccessSubject,
  expiresAt: number,
  limitsJson: string,
  id: string | undefined,
): string {
  let kept = authSuccessHeads.get(principal);
  if (kept === undefined || kept.limitsJson !== limitsJson || principal.expiresAt !== expiresAt) {
    kept = {
      limitsJson,
      head:
        `{"type":"auth_success","payload":{"status":"success","user":${JSON.stringify(principal.user)},` +
        `"roles":${JSON.stringify(principal.roles)},"expires_at":"${new Date(expiresAt).toISOString()}",` +
        `"limits":${limitsJson}},"timestamp":"`,
    };
    if (principal.expiresAt === expiresAt && Object.isFrozen(principal) && Object.isFrozen(principal.roles)) {
      authSuccessHeads.set(principal, kept);
    }
  }
  return `${kept.head}${timestampNow()}"${id === undefined ? '' : `,"id":${JSON.stringify(id)}`}}`;
}

export function errorPayload(code: ErrorCode, message: string, details?: Record<string, unknown>) {
  return details ? { status: 'error', message, code, details } : { status: 'error', message, code };
}

export function errorEnvelope(err: RustyError, id?: string, type: 'error' | 'auth_error' = 'error'): string {
  return envelope(type, errorPayload(err.code, err.message, err.details), id);
}

/** A payload that may go to many connections, serialized once: its envelope's text up to the timestamp. */
interface SharedHead {
  type: string;
  text: string;
  /** The head's bytes with the timestamp of `stampedAt` and the id's key: what every message begins with. */
  bytes: Buffer | undefined;
  stampedAt: string;
}

/** The shared heads, by payload: made once, however many subscribers a change goes to. */
const sharedHeads = new WeakMap<object, SharedHead>();

function sharedHead(type: string, payload: object): SharedHead {
  let shared = sharedHeads.get(payload);
  if (shared?.type !== type) {
    shared = {
      type,
      text: `{"type":${JSON.stringify(type)},"payload":${JSON.stringify(payload)},"timestamp":"`,
      bytes: undefined,
      stampedAt: '',
    };
    sharedHeads.set(payload, shared);
  }
  return shared;
}

/**
 * `envelope` for a payload object that may go to many connections (one change fanned out to every
 * subscriber): the type and payload are serialized once, and only the timestamp and id per message.
 */
export function sharedPayloadEnvelope(type: string, payload: object, id: string): string {
  return `${sharedHead(type, payload).text}${timestampNow()}","id":${JSON.stringify(id)}}`;
}

/**
 * The same message as `sharedPayloadEnvelope`, for a transport that frames it itself, as two parts: the
 * UTF-8 bytes of everything up to the id's value (made once per payload and millisecond, shared by every
 * connection it goes to), then `idTail(id)`.
 */
export function sharedPayloadHead(type: string, payload: object): Buffer {
  const shared = sharedHead(type, payload);
  const now = timestampNow();
  if (shared.stampedAt !== now || !shared.bytes) {
    shared.bytes = Buffer.from(`${shared.text}${now}","id":`);
    shared.stampedAt = now;
  }
  return shared.bytes;
}

/** What follows `sharedPayloadHead`: the id's value and the closing brace. */
export function idTail(id: string): string {
  return `${JSON.stringify(id)}}`;
}
