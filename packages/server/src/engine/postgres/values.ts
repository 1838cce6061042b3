/**
 * Conversions between JSON-safe wire values and PostgreSQL's. Results arrive in PostgreSQL's text
 * format and are read by type:
 *
 * - smallint, integer, real, double precision: numbers; bigint (and oid-like 64-bit types): a number
 *   when it is a safe integer, otherwise the exact digits as a string; numeric: always the exact digits
 *   as a string (a double would round it silently);
 * - boolean: true/false; json and jsonb: the JSON value itself;
 * - timestamp with time zone: ISO 8601 in UTC (`2024-05-01T12:00:00.123456Z`); timestamp without time
 *   zone: ISO 8601 without a zone; date, time, interval and everything else: PostgreSQL's own text;
 * - bytea: `{"$base64": …}`; arrays: JSON arrays of the element values (nested for several dimensions);
 * - NULL: null.
 *
 * Parameters: numbers, strings, booleans and null bind as text PostgreSQL types by context;
 * `{"$base64": …}` binds as bytes.
 */
import type { SqlValue } from '@rustydb/protocol';
import { RustyError } from '../../errors/rusty-error.ts';

export type DriverValue = string | number | boolean | null | Buffer;

export function toDriverParams(params: readonly SqlValue[] | undefined): DriverValue[] {
  if (!params || params.length === 0) return [];
  return params.map((value) => {
    if (value !== null && typeof value === 'object') return Buffer.from(value.$base64, 'base64');
    // PostgreSQL's text cannot hold NUL: say so instead of a protocol error.
    if (typeof value === 'string' && value.includes('\0')) {
      throw new RustyError(
        'QUERY_ERROR',
        'text parameters cannot contain NUL characters; send bytes as {"$base64": …}',
      );
    }
    return value;
  });
}

type Parser = (text: string) => unknown;

/** Type OIDs of PostgreSQL's built-in types (pg_type.oid; stable across versions). */
const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  oid: 26,
  json: 114,
  float4: 700,
  float8: 701,
  numeric: 1700,
  timestamp: 1114,
  timestamptz: 1184,
  jsonb: 3802,
} as const;

/** Array type OID → element type OID, for the element types that are not read as plain text. */
const ARRAY_OF: Record<number, number> = {
  1000: OID.bool,
  1001: OID.bytea,
  1016: OID.int8,
  1005: OID.int2,
  1007: OID.int4,
  1028: OID.oid,
  199: OID.json,
  1021: OID.float4,
  1022: OID.float8,
  1231: OID.numeric,
  1115: OID.timestamp,
  1185: OID.timestamptz,
  3807: OID.jsonb,
  // Text-like arrays: elements stay text, but the array is still a JSON array.
  1009: 25,
  1015: 1043,
  1014: 1042,
  2951: 2950,
  1182: 1082,
};

function parseInteger(text: string): number | string {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : text;
}

function parseFloat(text: string): number | string {
  // NaN and infinities have no JSON number: keep PostgreSQL's spelling.
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

function parseBytea(text: string): { $base64: string } {
  // bytea_output is fixed to hex for every transaction.
  return { $base64: Buffer.from(text.slice(2), 'hex').toString('base64') };
}

/** `2024-05-01 12:00:00.5+00` (DateStyle ISO, TimeZone UTC) → `2024-05-01T12:00:00.5Z`. */
function parseTimestamptz(text: string): string {
  if (!/^\d{4,}-\d\d-\d\d \d/.test(text)) return text; // infinity, -infinity, BC dates
  return text.replace(' ', 'T').replace(/\+00(:00)?$/, 'Z');
}

function parseTimestamp(text: string): string {
  return /^\d{4,}-\d\d-\d\d \d/.test(text) ? text.replace(' ', 'T') : text;
}

const SCALAR_PARSERS: Record<number, Parser> = {
  [OID.bool]: (t) => t === 't',
  [OID.bytea]: parseBytea,
  [OID.int8]: parseInteger,
  [OID.int2]: Number,
  [OID.int4]: Number,
  [OID.oid]: Number,
  [OID.float4]: parseFloat,
  [OID.float8]: parseFloat,
  [OID.numeric]: (t) => t,
  [OID.json]: (t) => JSON.parse(t),
  [OID.jsonb]: (t) => JSON.parse(t),
  [OID.timestamp]: parseTimestamp,
  [OID.timestamptz]: parseTimestamptz,
};

/**
 * Reads PostgreSQL's array literal (`{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b","c\"d"}`), converting each
 * element with `element`. Lower bounds other than 1 (`[0:1]={…}`) are dropped: JSON arrays start at 0.
 */
export function parseArray(text: string, element: Parser): unknown[] {
  let i = text.startsWith('[') ? text.indexOf('=') + 1 : 0;
  const read = (): unknown[] => {
    const out: unknown[] = [];
    i++; // {
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      if (text[i] === '{') out.push(read());
      else if (text[i] === '"') {
        let value = '';
        i++;
        while (text[i] !== '"') {
          if (text[i] === '\\') i++;
          value += text[i];
          i++;
        }
        i++;
        out.push(element(value));
      } else {
        let end = i;
        while (text[end] !== ',' && text[end] !== '}') end++;
        const raw = text.slice(i, end);
        i = end;
        out.push(raw === 'NULL' ? null : element(raw));
      }
      if (text[i] === ',') i++;
      else {
        i++; // }
        return out;
      }
    }
  };
  return read();
}

const identity: Parser = (text) => text;

/** The parser of a result column of type `oid` (text format). */
export function parserFor(oid: number): Parser {
  const scalar = SCALAR_PARSERS[oid];
  if (scalar) return scalar;
  const element = ARRAY_OF[oid];
  if (element !== undefined) {
    const parseElement = SCALAR_PARSERS[element] ?? identity;
    return (text) => parseArray(text, parseElement);
  }
  return identity;
}

/** What node-postgres asks for each column of a result: our parsers for the text format. */
export const resultTypes = {
  getTypeParser(oid: number, format?: string): Parser {
    if (format === 'binary') return (value) => value;
    return parserFor(oid);
  },
};
