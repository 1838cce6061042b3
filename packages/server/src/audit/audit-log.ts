/**
 * The security audit log: one JSON object per line in `<data_dir>/audit.log`, appended in the order
 * events happen and never rewritten. Events name who did what from where; they never carry passwords,
 * tokens or SQL text (statements can hold secrets of their own), and the writer drops any field whose
 * name says it would.
 */
import { createReadStream, createWriteStream, existsSync, statSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../core/logger.ts';

export const AUDIT_FILE = 'audit.log';

/** Every event the server records. The part before the dot is the event's family (`login`, `user`, …). */
export const AUDIT_EVENTS = [
  'login.success',
  'login.failure',
  'login.throttled',
  'auth.failure',
  'auth.refresh',
  'auth.logout',
  'auth.password_change',
  'permission.denied',
  'user.create',
  'user.update',
  'user.delete',
  'role.create',
  'role.delete',
  'grant.add',
  'grant.revoke',
  'session.kill',
  'backup.create',
  'connection.limit',
  'origin.denied',
  'rate_limit.close',
  'server.start',
] as const;

export type AuditEventName = (typeof AUDIT_EVENTS)[number];

export interface AuditEvent {
  event: AuditEventName;
  /** The user the event is about, or who acted (for a login: the username tried). */
  user?: string;
  /** For administrative actions: the administrator who acted. */
  actor?: string;
  /** The client's address. */
  ip?: string;
  /** Where it happened: an HTTP route or a WebSocket endpoint, never with its query string. */
  endpoint?: string;
  /** A WebSocket session id. */
  session?: string;
  /** Anything else worth keeping (the privilege and table refused, the role granted, …). */
  details?: Record<string, unknown>;
}

export interface AuditRecord extends AuditEvent {
  time: string;
}

/** Field names that are never written, however an event was built. */
const FORBIDDEN_FIELDS = /pass(word)?|token|secret|authorization|credential|^sql$|hash/i;

function scrub(value: unknown, depth = 0): unknown {
  if (depth > 4) return '[nested]';
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => scrub(v, depth + 1));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      if (!FORBIDDEN_FIELDS.test(key)) out[key] = scrub(v, depth + 1);
    }
    return out;
  }
  if (typeof value === 'string' && value.length > 500) return `${value.slice(0, 500)}…`;
  return value;
}

/** How much of the end of the file a read looks through, at most. */
const MAX_SCAN_BYTES = 64 * 1024 * 1024;
const READ_CHUNK = 256 * 1024;

export interface AuditQuery {
  limit: number;
  /** Event names or families (`login` matches `login.success` and `login.failure`). */
  events?: readonly string[];
  user?: string;
}

export class AuditLog {
  readonly path: string;
  readonly #logger: Logger;
  #stream: WriteStream | undefined;
  /** Resolves once everything written so far has reached the file. */
  #flushed: Promise<void> = Promise.resolve();
  #closed = false;

  /** With `enabled` false, events are dropped (and reads find only what an earlier run wrote). */
  constructor(dataDir: string, logger: Logger, enabled = true) {
    this.path = join(dataDir, AUDIT_FILE);
    this.#logger = logger;
    if (enabled) {
      this.#stream = createWriteStream(this.path, { flags: 'a', mode: 0o600 });
      this.#stream.on('error', (err) => {
        this.#logger.error('audit log write failed', { error: err.message, path: this.path });
      });
    }
  }

  get enabled(): boolean {
    return this.#stream !== undefined && !this.#closed;
  }

  record(event: AuditEvent): void {
    const stream = this.#stream;
    if (!stream || this.#closed) return;
    const record = scrub({ time: new Date().toISOString(), ...event }) as AuditRecord;
    const line = JSON.stringify(record) + '\n';
    this.#flushed = new Promise((resolve) => stream.write(line, () => resolve()));
  }

  /** The newest matching records, newest last. */
  async read(query: AuditQuery): Promise<AuditRecord[]> {
    await this.#flushed;
    if (!existsSync(this.path)) return [];
    const wanted = (record: AuditRecord): boolean => {
      if (query.user !== undefined && record.user !== query.user && record.actor !== query.user) return false;
      if (!query.events || query.events.length === 0) return true;
      return query.events.some((e) => record.event === e || record.event.startsWith(`${e}.`));
    };
    const size = statSync(this.path).size;
    if (size <= READ_CHUNK) return this.#readSmall(wanted, query.limit);
    return this.#readBackwards(size, wanted, query.limit);
  }

  async #readSmall(wanted: (r: AuditRecord) => boolean, limit: number): Promise<AuditRecord[]> {
    let text = '';
    for await (const chunk of createReadStream(this.path, { encoding: 'utf8' })) text += chunk;
    const found: AuditRecord[] = [];
    for (const line of text.split('\n')) {
      const record = parseLine(line);
      if (record && wanted(record)) found.push(record);
    }
    return found.slice(-limit);
  }

  /** Reads the file from its end in chunks until `limit` matches are found or the scan budget is spent. */
  async #readBackwards(
    size: number,
    wanted: (r: AuditRecord) => boolean,
    limit: number,
  ): Promise<AuditRecord[]> {
    const handle = await open(this.path, 'r');
    try {
      const found: AuditRecord[] = [];
      let position = size;
      let carry = Buffer.alloc(0);
      while (position > 0 && found.length < limit && size - position < MAX_SCAN_BYTES) {
        const length = Math.min(READ_CHUNK, position);
        position -= length;
        const buffer = Buffer.alloc(length);
        await handle.read(buffer, 0, length, position);
        const data = Buffer.concat([buffer, carry]);
        // The bytes before the first newline may be the end of a line that starts in the previous chunk.
        const firstNewline = position > 0 ? data.indexOf(10) : -1;
        carry =
          firstNewline === -1 ? (position > 0 ? data : Buffer.alloc(0)) : data.subarray(0, firstNewline);
        const complete =
          firstNewline === -1
            ? position > 0
              ? ''
              : data.toString('utf8')
            : data.subarray(firstNewline + 1).toString('utf8');
        const lines = complete.split('\n');
        for (let i = lines.length - 1; i >= 0 && found.length < limit; i--) {
          const record = parseLine(lines[i]!);
          if (record && wanted(record)) found.push(record);
        }
      }
      return found.reverse();
    } finally {
      await handle.close();
    }
  }

  /** Waits for pending writes and closes the file. Safe to call twice. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const stream = this.#stream;
    if (!stream) return;
    await this.#flushed;
    await new Promise<void>((resolve) => stream.end(() => resolve()));
  }
}

function parseLine(line: string): AuditRecord | undefined {
  if (line.trim() === '') return undefined;
  try {
    const value = JSON.parse(line) as AuditRecord;
    return typeof value === 'object' && value !== null && typeof value.event === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
