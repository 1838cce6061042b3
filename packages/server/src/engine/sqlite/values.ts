/** Conversions between JSON-safe wire values and what the SQLite driver binds and returns. */
import type { SqlValue } from '@rustydb/protocol';
import { RustyError } from '../../errors/rusty-error.ts';

export type DriverValue = string | number | bigint | null | Buffer;

export function toDriverParams(params: readonly SqlValue[] | undefined): DriverValue[] {
  if (!params || params.length === 0) return [];
  // A function of the module's, not an arrow made at every call: every keyed query converts its
  // parameters here.
  return params.map(toDriverValue);
}

function toDriverValue(value: SqlValue): DriverValue {
  if (typeof value === 'boolean') return 1n * BigInt(value);
  // The driver binds every JS number as REAL; whole numbers must arrive as INTEGER.
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (value !== null && typeof value === 'object') return Buffer.from(value.$base64, 'base64');
  // The driver cuts text at a NUL character: refuse it rather than store a shorter string.
  if (typeof value === 'string' && value.includes('\0')) {
    throw new RustyError(
      'QUERY_ERROR',
      'text parameters cannot contain NUL characters; send bytes as {"$base64": …}',
    );
  }
  return value;
}

/** Rewrites, in place, the values JSON cannot carry: blobs become `{ $base64 }`, big integers numbers. */
export function toWireRow(row: unknown[]): SqlValue[] {
  for (let i = 0; i < row.length; i++) {
    const value = row[i];
    if (value !== null && typeof value === 'object') {
      row[i] = { $base64: Buffer.from(value as Uint8Array).toString('base64') };
    } else if (typeof value === 'bigint') {
      row[i] = Number(value);
    }
  }
  return row as SqlValue[];
}
