/**
 * The commonest `query` message read straight from its text, without JSON.parse: the one message a
 * busy client sends thousands of times a second, where parsing the JSON into objects (~0.9 µs for a
 * keyed query) took longer than the hand-written check after it (query-fast-path.ts). It reads only the
 * layout clients write (`JSON.stringify` of { type, id, payload: { sql, params }, timestamp }, no
 * whitespace, every part but `sql` optional) with plain strings (no escape, no control character),
 * integers of up to 15 digits, `null`, `true` and `false` as parameters. Anything else, valid or not,
 * it leaves to JSON.parse and the full check: what it accepts, they accept with the same value.
 */
import type { QueryMessage, SqlValue } from './messages.ts';

const QUERY_HEAD = '{"type":"query",';
const ID_KEY = '"id":"';
const PAYLOAD_SQL = '"payload":{"sql":"';
const PARAMS_KEY = ',"params":[';
const TIMESTAMP_KEY = ',"timestamp":"';
/** The schema's bounds (messages.ts). */
const MAX_ID_LENGTH = 128;
const MAX_PARAMS = 32766;
/** Integers of up to this many digits are below 2^53, so exact when summed digit by digit here. */
const MAX_INTEGER_DIGITS = 15;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;
const CLOSE_BRACKET = 0x5d;
const CLOSE_BRACE = 0x7d;

/**
 * Characters a statement's text may keep alive beyond its own (see statementText): a message of a keyed
 * query (~100 characters) needs no copy.
 */
const KEPT_SLACK = 256;

/**
 * The statement's text, `text` from `from` to `to`: the slice itself when the message is not much
 * longer, else a copy. V8 makes a slice of a string a view of the whole string, and the router keeps
 * statements by their text (its cache): a view would keep the message it came in alive with it, with
 * all its parameters (JSON.parse made strings of their own).
 */
function statementText(text: string, from: number, to: number): string {
  const slice = text.slice(from, to);
  if (text.length <= 2 * slice.length + KEPT_SLACK) return slice;
  // Joined to another string and cut again: the cut is from the joined string's own flat copy.
  return ` ${slice}`.slice(1);
}

/**
 * Where the JSON string whose text starts at `at` (after its opening quote) ends (its closing quote),
 * when JSON.parse would read it as its text as is (no escape; no control character, which it refuses);
 * -1 otherwise.
 */
function plainStringEnd(text: string, at: number): number {
  for (let i = at; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code === QUOTE) return i;
    if (code < 0x20 || code === BACKSLASH) return -1;
  }
  return -1;
}

/** The parameters and where they end: after the `]` of the list whose first value is at `at`. */
interface ScannedParams {
  values: SqlValue[];
  end: number;
}

/** The parameter list starting at `at` (after its `[`); undefined for anything this scan does not read. */
function scanParams(text: string, at: number): ScannedParams | undefined {
  const values: SqlValue[] = [];
  if (text.charCodeAt(at) === CLOSE_BRACKET) return { values, end: at + 1 };
  for (;;) {
    let code = text.charCodeAt(at);
    if (code === QUOTE) {
      const end = plainStringEnd(text, at + 1);
      if (end < 0) return undefined;
      values.push(text.slice(at + 1, end));
      at = end + 1;
    } else if (code === 0x6e /* n */ && text.startsWith('null', at)) {
      values.push(null);
      at += 4;
    } else if (code === 0x74 /* t */ && text.startsWith('true', at)) {
      values.push(true);
      at += 4;
    } else if (code === 0x66 /* f */ && text.startsWith('false', at)) {
      values.push(false);
      at += 5;
    } else {
      // -?(0|[1-9][0-9]*), read as JSON.parse reads it; a fraction or exponent goes to JSON.parse.
      const negative = code === MINUS;
      if (negative) code = text.charCodeAt(++at);
      if (!(code >= ZERO && code <= NINE)) return undefined;
      const start = at;
      let value = code - ZERO;
      at++;
      if (value !== 0) {
        while ((code = text.charCodeAt(at)) >= ZERO && code <= NINE) {
          value = value * 10 + (code - ZERO);
          at++;
        }
        if (at - start > MAX_INTEGER_DIGITS) return undefined;
      }
      values.push(negative ? -value : value);
    }
    const next = text.charCodeAt(at++);
    if (next === CLOSE_BRACKET) return values.length <= MAX_PARAMS ? { values, end: at } : undefined;
    if (next !== COMMA) return undefined;
  }
}

/**
 * The checked `query` message `text` is, when it has the commonest layout (see the module comment);
 * undefined when it must go through JSON.parse and the full check (not a query, not valid, or written
 * otherwise).
 */
export function scanQueryText(text: string): QueryMessage | undefined {
  if (!text.startsWith(QUERY_HEAD)) return undefined;
  let at = QUERY_HEAD.length;
  let id: string | undefined;
  if (text.startsWith(ID_KEY, at)) {
    at += ID_KEY.length;
    const end = plainStringEnd(text, at);
    if (end <= at || end - at > MAX_ID_LENGTH || text.charCodeAt(end + 1) !== COMMA) return undefined;
    id = text.slice(at, end);
    at = end + 2;
  }
  if (!text.startsWith(PAYLOAD_SQL, at)) return undefined;
  at += PAYLOAD_SQL.length;
  const sqlEnd = plainStringEnd(text, at);
  if (sqlEnd <= at) return undefined;
  const sql = statementText(text, at, sqlEnd);
  at = sqlEnd + 1;
  let params: SqlValue[] | undefined;
  if (text.startsWith(PARAMS_KEY, at)) {
    const scanned = scanParams(text, at + PARAMS_KEY.length);
    if (scanned === undefined) return undefined;
    params = scanned.values;
    at = scanned.end;
  }
  if (text.charCodeAt(at++) !== CLOSE_BRACE) return undefined;
  let timestamp: string | undefined;
  if (text.startsWith(TIMESTAMP_KEY, at)) {
    at += TIMESTAMP_KEY.length;
    const end = plainStringEnd(text, at);
    if (end < 0) return undefined;
    timestamp = text.slice(at, end);
    at = end + 1;
  }
  if (at !== text.length - 1 || text.charCodeAt(at) !== CLOSE_BRACE) return undefined;
  // The values the full check makes (query-fast-path.ts): the commonest as two literals.
  if (params !== undefined && timestamp === undefined) {
    const payload = { sql, params };
    return id !== undefined ? { type: 'query', payload, id } : { type: 'query', payload };
  }
  const payload: QueryMessage['payload'] = { sql };
  if (params !== undefined) payload.params = params;
  const message: QueryMessage = { type: 'query', payload };
  if (id !== undefined) message.id = id;
  if (timestamp !== undefined) message.timestamp = timestamp;
  return message;
}
