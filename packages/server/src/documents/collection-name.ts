/**
 * Collection names. A collection is an ordinary table (`_id TEXT PRIMARY KEY, doc TEXT NOT NULL`)
 * named after it, so the name becomes an identifier in SQL text and is checked strictly first.
 */
import { documentError } from './document-errors.ts';
import { raw, type SqlFragment } from './sql-fragment.ts';

const COLLECTION_NAME = /^[A-Za-z][A-Za-z0-9_]{0,62}$/;

export function isValidCollectionName(name: unknown): name is string {
  if (typeof name !== 'string' || !COLLECTION_NAME.test(name)) return false;
  // SQLite reserves sqlite_* in any letter case; the server's own tables start with _rustydb (which
  // the leading-letter rule already excludes, but the intent is worth stating).
  const lower = name.toLowerCase();
  return !lower.startsWith('sqlite_') && !lower.startsWith('_rustydb');
}

/** Whether a table with these columns (in order) is a collection's. */
export function hasCollectionColumns(columns: readonly string[]): boolean {
  return columns.join(',') === '_id,doc,_op';
}

/** The collection's table as a quoted SQL identifier; throws for an invalid name. */
export function collectionTable(name: unknown): SqlFragment {
  if (!isValidCollectionName(name)) {
    throw documentError(
      `invalid collection name ${JSON.stringify(name)}: use 1-63 letters, digits and _, starting with a letter, not sqlite_`,
    );
  }
  return raw(`"${name}"`);
}
