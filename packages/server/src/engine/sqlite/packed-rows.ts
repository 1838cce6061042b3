/**
 * The main thread's side of a read worker's packed chunk (read-worker.js, packRows): the rows come back
 * as the values the worker's own serializing would have stringified, and JSON.stringify of them is the
 * very text it would have made, byte for byte (the same numbers, bit for bit; the same strings, code
 * unit for code unit; BLOBs as the same `{"$base64": …}`).
 */

/** Kinds of value, as read-worker.js writes them. */
const PACKED_NULL = 0;
const PACKED_NUMBER = 1;
const PACKED_TEXT = 2;
const PACKED_BLOB = 3;

/** A chunk's rows as a read worker packs them: see read-worker.js, packRows. */
export interface PackedRows {
  kinds: Uint8Array;
  numbers: Float64Array;
  text: string;
}

/** The JSON text of the array of `count` rows of `width` values each that `packed` holds. */
export function packedRowsJson(packed: PackedRows, count: number, width: number): string {
  const { kinds, numbers, text } = packed;
  const rows: unknown[][] = [];
  let k = 0;
  let at = 0;
  for (let r = 0; r < count; r++) {
    // Built by push, so V8 keeps it a packed array: JSON.stringify walks those on its fast path.
    const row: unknown[] = [];
    for (let i = 0; i < width; i++, k++) {
      switch (kinds[k]) {
        case PACKED_NUMBER:
          row.push(numbers[k]);
          break;
        case PACKED_TEXT:
          row.push(text.slice(at, (at += numbers[k]!)));
          break;
        case PACKED_BLOB:
          row.push({ $base64: text.slice(at, (at += numbers[k]!)) });
          break;
        case PACKED_NULL:
          row.push(null);
          break;
        default:
          throw new Error(`unknown packed value kind ${kinds[k]}`);
      }
    }
    rows.push(row);
  }
  return JSON.stringify(rows);
}
