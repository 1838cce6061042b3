/**
 * What the engine does when the disk fills up. A full disk must not take reads or deletes down with it,
 * yet in WAL mode even a DELETE appends to the WAL, and a checkpoint may need to grow the database file:
 * with not a byte left, nothing could ever commit again, not even the deletes that would make room.
 *
 * So the engine keeps a reserve: a file of `reserveBytes` in the data directory. When a write fails for
 * want of space, the storage is marked full and the reserve is given back to the filesystem; from then
 * on only writes that free space (DELETE, DROP) run, with the reserve's room to commit in, and every
 * other write is refused at once with STORAGE_FULL. The disk is checked every second; once it has room
 * for the reserve again (and a margin), the reserve is made anew and writes are accepted again.
 */
import { rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { storageFullError } from '../../errors/rusty-error.ts';
import type { GuardedStatement } from '../statement-guard.ts';

/** How often a full disk is looked at for room again. */
const RECHECK_MS = 1000;
/** Free space, beyond the reserve itself, that must be there before writes are accepted again. */
const MARGIN_BYTES = 1024 * 1024;

/** True for a failure that means the disk (or the database's size limit) is full. */
export function isStorageFull(err: unknown): boolean {
  const e = (err ?? {}) as { code?: unknown; details?: { sqlite_code?: unknown } };
  const code = typeof e.code === 'string' ? e.code : '';
  return (
    code === 'STORAGE_FULL' || code.startsWith('SQLITE_FULL') || e.details?.sqlite_code === 'SQLITE_FULL'
  );
}

/** True for a statement that frees space rather than taking it: a delete, or dropping an object. */
export function freesSpace(guarded: GuardedStatement): boolean {
  if (guarded.kind === 'ddl') return guarded.verb === 'DROP';
  if (guarded.kind !== 'write') return true;
  return [...guarded.writeVerbs].every((verb) => verb === 'DELETE') && guarded.writeVerbs.size > 0;
}

export class DiskSpace {
  readonly #dataDir: string;
  readonly #reservePath: string;
  readonly #reserveBytes: number;
  readonly #onChange: (full: boolean) => void;
  #full = false;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;

  /**
   * @param reservePath the reserve file (in the data directory)
   * @param reserveBytes its size; 0 keeps no reserve (the full state still ends when space returns)
   * @param onChange told when the storage becomes full or has room again
   */
  constructor(dataDir: string, reservePath: string, reserveBytes: number, onChange: (full: boolean) => void) {
    this.#dataDir = dataDir;
    this.#reservePath = reservePath;
    this.#reserveBytes = reserveBytes;
    this.#onChange = onChange;
    // At start, synchronously: the engine must not accept writes it could not recover from.
    try {
      if (reserveBytes > 0) this.#makeReserveNow();
    } catch {
      this.#enterFull();
    }
  }

  /** True while writes that take space are refused. */
  get full(): boolean {
    return this.#full;
  }

  /** Throws STORAGE_FULL for a statement that would take space while the storage is full. */
  check(guarded: GuardedStatement): void {
    if (this.#full && !freesSpace(guarded)) throw storageFullError();
  }

  /** A write failed with `err`: if for want of space, the storage is now full. */
  noteFailure(err: unknown): void {
    if (!this.#full && isStorageFull(err)) this.#enterFull();
  }

  #enterFull(): void {
    this.#full = true;
    // Give the reserve back, so that deletes and checkpoints have room to commit in.
    rmSync(this.#reservePath, { force: true });
    this.#timer ??= setInterval(() => void this.#recheck(), RECHECK_MS).unref();
    this.#onChange(true);
  }

  async #recheck(): Promise<void> {
    if (this.#checking) return;
    this.#checking = true;
    try {
      const stats = statfsSync(this.#dataDir);
      if (stats.bavail * stats.bsize < this.#reserveBytes + MARGIN_BYTES) return;
      if (this.#reserveBytes > 0)
        await writeFile(this.#reservePath, Buffer.alloc(this.#reserveBytes), { mode: 0o600 });
      clearInterval(this.#timer);
      this.#timer = undefined;
      this.#full = false;
      this.#onChange(false);
    } catch {
      // Still no room (the reserve could not be written whole): look again later.
      rmSync(this.#reservePath, { force: true });
    } finally {
      this.#checking = false;
    }
  }

  #makeReserveNow(): void {
    if (statSync(this.#reservePath, { throwIfNoEntry: false })?.size === this.#reserveBytes) return;
    try {
      writeFileSync(this.#reservePath, Buffer.alloc(this.#reserveBytes), { mode: 0o600 });
    } catch (err) {
      rmSync(this.#reservePath, { force: true });
      throw err;
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
