/**
 * Reads the messages of PostgreSQL's built-in logical decoding plugin, `pgoutput` (protocol version 1,
 * text values): transaction boundaries, relation descriptions and row changes, and logical messages.
 * Only what change capture needs is kept; values stay in PostgreSQL's text form here and are read by
 * type later (see values.ts).
 */

/** Microseconds between the Unix epoch and PostgreSQL's (2000-01-01). */
const PG_EPOCH_MS = 946_684_800_000;

export interface RelationColumn {
  name: string;
  typeOid: number;
}

export type TupleValue = string | null | { unchanged: true };

export type PgoutputMessage =
  | { tag: 'begin'; finalLsn: bigint; commitTimeMs: number; xid: number }
  | { tag: 'commit'; commitLsn: bigint; endLsn: bigint; commitTimeMs: number }
  | { tag: 'relation'; relationOid: number; schema: string; name: string; columns: RelationColumn[] }
  | { tag: 'insert'; relationOid: number; newTuple: TupleValue[] }
  | { tag: 'update'; relationOid: number; oldTuple: TupleValue[] | null; newTuple: TupleValue[] }
  | { tag: 'delete'; relationOid: number; oldTuple: TupleValue[] }
  | { tag: 'truncate'; relationOids: number[] }
  | { tag: 'message'; transactional: boolean; lsn: bigint; prefix: string }
  | { tag: 'other' };

class Reader {
  readonly #buf: Buffer;
  #at = 0;

  constructor(buf: Buffer) {
    this.#buf = buf;
  }

  u8(): number {
    return this.#buf.readUInt8(this.#at++);
  }

  i16(): number {
    const v = this.#buf.readInt16BE(this.#at);
    this.#at += 2;
    return v;
  }

  i32(): number {
    const v = this.#buf.readInt32BE(this.#at);
    this.#at += 4;
    return v;
  }

  u32(): number {
    const v = this.#buf.readUInt32BE(this.#at);
    this.#at += 4;
    return v;
  }

  u64(): bigint {
    const v = this.#buf.readBigUInt64BE(this.#at);
    this.#at += 8;
    return v;
  }

  timeMs(): number {
    return Number(this.#buf.readBigInt64BE((this.#at += 8) - 8) / 1000n) + PG_EPOCH_MS;
  }

  cstring(): string {
    const end = this.#buf.indexOf(0, this.#at);
    const text = this.#buf.toString('utf8', this.#at, end);
    this.#at = end + 1;
    return text;
  }

  bytes(length: number): Buffer {
    const out = this.#buf.subarray(this.#at, this.#at + length);
    this.#at += length;
    return out;
  }

  tuple(): TupleValue[] {
    const count = this.i16();
    const values: TupleValue[] = [];
    for (let i = 0; i < count; i++) {
      const kind = String.fromCharCode(this.u8());
      if (kind === 'n') values.push(null);
      else if (kind === 'u') values.push({ unchanged: true });
      else values.push(this.bytes(this.i32()).toString('utf8'));
    }
    return values;
  }
}

export function parsePgoutput(buf: Buffer): PgoutputMessage {
  const r = new Reader(buf);
  const tag = String.fromCharCode(r.u8());
  switch (tag) {
    case 'B':
      return { tag: 'begin', finalLsn: r.u64(), commitTimeMs: r.timeMs(), xid: r.u32() };
    case 'C': {
      r.u8(); // flags, unused
      return { tag: 'commit', commitLsn: r.u64(), endLsn: r.u64(), commitTimeMs: r.timeMs() };
    }
    case 'R': {
      const relationOid = r.u32();
      const schema = r.cstring();
      const name = r.cstring();
      r.u8(); // replica identity setting
      const count = r.i16();
      const columns: RelationColumn[] = [];
      for (let i = 0; i < count; i++) {
        r.u8(); // flags
        const columnName = r.cstring();
        const typeOid = r.u32();
        r.i32(); // type modifier
        columns.push({ name: columnName, typeOid });
      }
      return { tag: 'relation', relationOid, schema, name, columns };
    }
    case 'I': {
      const relationOid = r.u32();
      r.u8(); // 'N'
      return { tag: 'insert', relationOid, newTuple: r.tuple() };
    }
    case 'U': {
      const relationOid = r.u32();
      let kind = String.fromCharCode(r.u8());
      let oldTuple: TupleValue[] | null = null;
      if (kind === 'K' || kind === 'O') {
        oldTuple = r.tuple();
        kind = String.fromCharCode(r.u8());
      }
      return { tag: 'update', relationOid, oldTuple, newTuple: r.tuple() };
    }
    case 'D': {
      const relationOid = r.u32();
      r.u8(); // 'K' or 'O'
      return { tag: 'delete', relationOid, oldTuple: r.tuple() };
    }
    case 'T': {
      const count = r.i32();
      r.u8(); // options
      const relationOids: number[] = [];
      for (let i = 0; i < count; i++) relationOids.push(r.u32());
      return { tag: 'truncate', relationOids };
    }
    case 'M': {
      const transactional = (r.u8() & 1) === 1;
      const lsn = r.u64();
      return { tag: 'message', transactional, lsn, prefix: r.cstring() };
    }
    default:
      // Origin and type messages: nothing capture needs.
      return { tag: 'other' };
  }
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffff_ffffn).toString(16).toUpperCase()}`;
}

export function parseLsn(text: string): bigint {
  const [high, low] = text.split('/');
  return (BigInt(`0x${high}`) << 32n) | BigInt(`0x${low}`);
}
