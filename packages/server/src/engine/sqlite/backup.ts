/**
 * Backups of the SQLite engine's database, and bringing one back.
 *
 * A backup is one SQLite file holding everything: the user's tables, the server's own (users, roles,
 * secrets' hashes) and the change log. The engine writes it with `VACUUM INTO`, which reads one
 * snapshot like any reader: writers go on meanwhile, and the copy holds exactly the transactions that
 * had committed when it began.
 *
 * Restoring puts such a file in place of the database while no server runs on it. Clients may hold
 * change-log positions from the server as it was before the restore, positions the restored history
 * does not have (or, worse, will reach again with other changes). So the restore moves the log's
 * floor past every position the old database ever handed out: a subscription resumed from any older
 * position is answered `reset` (live.md), never a silent gap, and new changes are numbered after it.
 */
import { copyFileSync, existsSync, renameSync, rmSync } from 'node:fs';
import { CHANGES_TABLE, META_TABLE } from './change-capture.ts';
import { CHANGE_HEAD_SQL, FLOOR_KEY } from './change-log.ts';
import { openSync, type SyncDatabase } from './driver.ts';

/**
 * How far the sequence jumps when the database being replaced is gone, so its head is unknown: beyond
 * any position a server could have handed out since the backup (a million changes a second for more
 * than ten days).
 */
export const UNKNOWN_HEAD_GAP = 2 ** 40;

/** The change-log position a database (a live one or a backup) has reached. */
export function changeHead(db: SyncDatabase): number {
  return Number(db.prepare(`SELECT ${CHANGE_HEAD_SQL}`).raw().get([])?.[0] ?? 0);
}

/** The highest sequence the log ever gave out, deleted entries included (AUTOINCREMENT's memory). */
function sequenceHighWater(db: SyncDatabase): number {
  const row = db.prepare('SELECT seq FROM sqlite_sequence WHERE name = ?').raw().get([CHANGES_TABLE]);
  return Math.max(changeHead(db), Number(row?.[0] ?? 0));
}

/** Opens a file as a RustyDB database and checks it is one, whole; throws saying what is wrong. */
function openChecked(file: string, what: string): SyncDatabase {
  const db = openSync(file, { timeout: 0 });
  try {
    const check = db.prepare('PRAGMA quick_check').raw().get([]);
    if (check?.[0] !== 'ok') throw new Error(`${what} is damaged: ${String(check?.[0])}`);
    const tables = db
      .prepare("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name IN (?, ?)")
      .raw()
      .get([CHANGES_TABLE, META_TABLE]);
    if (Number(tables?.[0]) !== 2) throw new Error(`${what} is not a RustyDB database`);
    return db;
  } catch (err) {
    db.close();
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string' && /^SQLITE_(NOTADB|CORRUPT)/.test(code)) {
      throw new Error(`${what} is not a RustyDB database (${code})`);
    }
    throw err;
  }
}

/**
 * Locks the current database against every other process for the length of the restore, and reads how
 * far its change log went. Fails when a server has it open: a running server would go on with the
 * database it has open while the file changed under it.
 */
function lockCurrent(file: string): { db: SyncDatabase; head: number } {
  const db = openSync(file, { timeout: 0 });
  try {
    // In exclusive locking mode SQLite takes the database file's lock for itself rather than sharing
    // the WAL index; any other connection (a running server's) makes that fail at once.
    db.exec('PRAGMA locking_mode = EXCLUSIVE');
    db.exec('BEGIN EXCLUSIVE');
    const head = sequenceHighWater(db);
    db.exec('COMMIT');
    return { db, head };
  } catch (err) {
    db.close();
    if (/^SQLITE_(BUSY|LOCKED)/.test(String((err as { code?: unknown }).code))) {
      throw new Error(`${file} is in use (is a server running on it?): stop the server, then restore`);
    }
    throw err;
  }
}

export interface RestoreResult {
  /** The position of the newest change the backup holds. */
  backupSequence: number;
  /** Where the restored database's change log continues from: every older position gets `reset`. */
  sequence: number;
  /** Where the replaced database was moved, if there was one. */
  previous?: string;
}

/**
 * Puts the backup `from` in place of the database `file` (no server may run on it). The replaced
 * database is kept beside it as `<file>.before-restore-<time>`.
 */
export function restoreBackup(from: string, file: string): RestoreResult {
  const backup = openChecked(from, from);
  let backupSequence: number;
  try {
    backupSequence = changeHead(backup);
  } finally {
    backup.close();
  }
  const current = existsSync(file) ? lockCurrent(file) : undefined;
  const staged = `${file}.restoring`;
  try {
    const oldHead = current?.head ?? backupSequence + UNKNOWN_HEAD_GAP;
    const sequence = Math.max(oldHead, backupSequence) + 1;
    rmSync(staged, { force: true });
    copyFileSync(from, staged);
    const db = openSync(staged, { timeout: 0 });
    try {
      db.exec('BEGIN IMMEDIATE');
      // The history the backup holds is all below the new floor: no subscription can be served from
      // it any more, so it goes.
      db.prepare(`DELETE FROM ${CHANGES_TABLE}`).run([]);
      db.prepare(
        `INSERT INTO ${META_TABLE} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
      ).run([FLOOR_KEY, String(sequence)]);
      // New changes are numbered after the floor (AUTOINCREMENT continues from sqlite_sequence).
      db.prepare('DELETE FROM sqlite_sequence WHERE name = ?').run([CHANGES_TABLE]);
      db.prepare('INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)').run([CHANGES_TABLE, sequence]);
      db.exec('COMMIT');
      // The server runs the database in WAL mode; a copy made by VACUUM INTO is not.
      db.exec('PRAGMA journal_mode = WAL');
    } finally {
      db.close();
    }
    let previous: string | undefined;
    if (current) {
      // Everything the replaced database committed goes into its file, which is kept; then its
      // connection closes before the files move, so that closing touches none of the new ones.
      current.db.exec('PRAGMA wal_checkpoint(TRUNCATE)');
      current.db.close();
      previous = `${file}.before-restore-${new Date().toISOString().replaceAll(':', '-')}`;
      renameSync(file, previous);
    }
    // A WAL or index left by the replaced database must not be applied to the restored one.
    rmSync(`${file}-wal`, { force: true });
    rmSync(`${file}-shm`, { force: true });
    renameSync(staged, file);
    return { backupSequence, sequence, ...(previous ? { previous } : {}) };
  } finally {
    current?.db.close();
    rmSync(staged, { force: true });
  }
}
