/**
 * Change capture for SQLite: every user table carries three triggers that append each insert, update
 * and delete to the change log, inside the writing transaction itself. The triggers are kept in step
 * with the schema after every DDL statement (in the DDL's own transaction), and the DDL itself is
 * recorded too, so subscribers learn that a table changed shape or went away.
 */
import { INTERNAL_PREFIX } from '../statement-guard.ts';
import type { AsyncDatabase } from './driver.ts';

export const CHANGES_TABLE = `${INTERNAL_PREFIX}changes`;
export const META_TABLE = `${INTERNAL_PREFIX}meta`;
const TRIGGER_PREFIX = `${INTERNAL_PREFIX}cdc_`;

export const CHANGE_LOG_SCHEMA = `
CREATE TABLE IF NOT EXISTS ${CHANGES_TABLE} (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tbl TEXT NOT NULL,
  op TEXT NOT NULL,
  pk TEXT,
  old_row TEXT,
  new_row TEXT,
  ts INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ${CHANGES_TABLE}_ts ON ${CHANGES_TABLE}(ts);
CREATE INDEX IF NOT EXISTS ${CHANGES_TABLE}_ddl ON ${CHANGES_TABLE}(tbl, seq) WHERE op = 'ddl';
CREATE TABLE IF NOT EXISTS ${META_TABLE} (key TEXT PRIMARY KEY, value TEXT NOT NULL);`;

/** Milliseconds since the epoch, in SQL. */
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function quoteString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

async function rows(conn: AsyncDatabase, sql: string): Promise<unknown[][]> {
  const stmt = await conn.prepare(sql);
  stmt.raw();
  const it = await stmt.iterate([]);
  const out: unknown[][] = [];
  for (let next = it.next(); !next.done; next = it.next()) out.push(next.value);
  return out;
}

/** User tables and their CREATE statements: what DDL is compared by. */
export async function userTables(conn: AsyncDatabase): Promise<Map<string, string>> {
  // pragma_table_list tells ordinary tables from virtual ones and their shadow tables (FTS5's
  // x_data, x_idx, …): those are written by SQLite itself and must never carry capture triggers.
  const found = await rows(
    conn,
    `SELECT s.name, s.sql FROM sqlite_schema AS s
       JOIN pragma_table_list AS t ON t.schema = 'main' AND t.name = s.name AND t.type = 'table'
      WHERE s.type = 'table' AND s.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        AND s.name NOT LIKE '\\_rustydb\\_%' ESCAPE '\\'`,
  );
  return new Map(found.map(([name, sql]) => [String(name), String(sql)]));
}

/**
 * Tables and views by name, with their CREATE statements: what DDL records are made from. Views carry
 * no rows of their own, but redefining one changes what every statement reading it reads, and live
 * queries re-evaluate (and re-authorize) on any schema change they learn of from the log.
 */
export async function recordedObjects(conn: AsyncDatabase): Promise<Map<string, string>> {
  const views = await rows(
    conn,
    `SELECT name, sql FROM sqlite_schema WHERE type = 'view' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
        AND name NOT LIKE '\\_rustydb\\_%' ESCAPE '\\'`,
  );
  const objects = await userTables(conn);
  for (const [name, sql] of views) objects.set(String(name), String(sql));
  return objects;
}

/** A JSON object of the given columns of `new` or `old`; blobs become `{"$hex": …}`. */
function rowJson(alias: 'new' | 'old', columns: readonly string[]): string {
  const parts = columns.map((c) => {
    const ref = `${alias}.${quoteIdent(c)}`;
    return `${quoteString(c)}, CASE WHEN typeof(${ref}) = 'blob' THEN json_object('$hex', hex(${ref})) ELSE ${ref} END`;
  });
  return `json_object(${parts.join(', ')})`;
}

async function triggersFor(conn: AsyncDatabase, table: string): Promise<Map<string, string>> {
  const info = await rows(conn, `SELECT name, pk FROM pragma_table_info(${quoteString(table)}) ORDER BY cid`);
  const columns = info.map(([name]) => String(name));
  const pkColumns = info
    .filter(([, pk]) => Number(pk) > 0)
    .sort((a, b) => Number(a[1]) - Number(b[1]))
    .map(([name]) => String(name));
  const withoutRowid = (await rows(conn, `SELECT sql FROM sqlite_schema WHERE name = ${quoteString(table)}`))
    .map(([sql]) => String(sql))
    .some((sql) => /WITHOUT\s+ROWID\s*$/i.test(sql));
  const keyOf = (alias: 'new' | 'old'): string =>
    pkColumns.length > 0
      ? rowJson(alias, pkColumns)
      : withoutRowid
        ? 'NULL'
        : `json_object('rowid', ${alias}.rowid)`;
  const t = quoteIdent(table);
  const name = (op: string): string => quoteIdent(`${TRIGGER_PREFIX}${table}_${op}`);
  const insert = (op: string, key: string, oldRow: string, newRow: string): string =>
    `INSERT INTO ${CHANGES_TABLE} (tbl, op, pk, old_row, new_row, ts) VALUES (${quoteString(table)}, '${op}', ${key}, ${oldRow}, ${newRow}, ${NOW_MS});`;
  return new Map([
    [
      `${TRIGGER_PREFIX}${table}_ins`,
      `CREATE TRIGGER ${name('ins')} AFTER INSERT ON ${t} BEGIN ${insert('insert', keyOf('new'), 'NULL', rowJson('new', columns))} END`,
    ],
    [
      `${TRIGGER_PREFIX}${table}_upd`,
      `CREATE TRIGGER ${name('upd')} AFTER UPDATE ON ${t} BEGIN ${insert('update', keyOf('new'), rowJson('old', columns), rowJson('new', columns))} END`,
    ],
    [
      `${TRIGGER_PREFIX}${table}_del`,
      `CREATE TRIGGER ${name('del')} AFTER DELETE ON ${t} BEGIN ${insert('delete', keyOf('old'), rowJson('old', columns), 'NULL')} END`,
    ],
  ]);
}

/**
 * Brings the capture triggers in line with the current tables and, given the tables and views as they
 * were before a DDL statement (`recordedObjects`), records what it did. Runs inside the caller's
 * transaction.
 */
export async function syncCapture(
  conn: AsyncDatabase,
  before: Map<string, string> | undefined,
): Promise<void> {
  const tables = await userTables(conn);
  const existing = new Map(
    (
      await rows(
        conn,
        `SELECT name, sql FROM sqlite_schema WHERE type = 'trigger' AND name LIKE '${TRIGGER_PREFIX.replaceAll('_', '\\_')}%' ESCAPE '\\'`,
      )
    ).map(([name, sql]) => [String(name), String(sql)]),
  );
  const wanted = new Map<string, string>();
  for (const table of tables.keys())
    for (const [name, sql] of await triggersFor(conn, table)) wanted.set(name, sql);
  for (const name of existing.keys()) {
    if (wanted.get(name) !== existing.get(name))
      await conn.exec(`DROP TRIGGER IF EXISTS ${quoteIdent(name)}`);
  }
  for (const [name, sql] of wanted) if (existing.get(name) !== sql) await conn.exec(sql);
  if (!before) return;
  const after = await recordedObjects(conn);
  const changed: [string, string, string | null][] = [];
  for (const [table, sql] of after) {
    if (!before.has(table)) changed.push([table, 'create', sql]);
    else if (before.get(table) !== sql) changed.push([table, 'alter', sql]);
  }
  for (const table of before.keys()) if (!after.has(table)) changed.push([table, 'drop', null]);
  for (const [table, action, sql] of changed) {
    const detail = `json_object('action', ${quoteString(action)}, 'sql', ${sql === null ? 'NULL' : quoteString(sql)})`;
    await conn.exec(
      `INSERT INTO ${CHANGES_TABLE} (tbl, op, pk, old_row, new_row, ts) VALUES (${quoteString(table)}, 'ddl', NULL, NULL, ${detail}, ${NOW_MS})`,
    );
  }
}
