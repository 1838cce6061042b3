/**
 * The user tables and their columns, read from SQLite's own catalog (`sqlite_schema`,
 * `pragma_table_xinfo`): what the GraphQL schema and the document store are built on. Internal tables
 * (`_rustydb_*`), SQLite's own and virtual tables are left out, exactly the tables change capture covers.
 */
import type { InternalStore, TableInfo } from '../engine.ts';

interface SchemaRow {
  name: string;
  sql: string;
}

interface ColumnRow {
  name: string;
  type: string | null;
  notnull: number;
  dflt_value: unknown;
  pk: number;
  hidden: number;
}

const TABLES_SQL = `SELECT name, sql FROM sqlite_schema
  WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
    AND name NOT LIKE '\\_rustydb\\_%' ESCAPE '\\' AND sql NOT LIKE 'CREATE VIRTUAL%'
  ORDER BY name`;

/** The tables as they are now. */
export async function readCatalog(store: InternalStore): Promise<TableInfo[]> {
  const tables = await store.all<SchemaRow>(TABLES_SQL);
  const catalog: TableInfo[] = [];
  for (const { name, sql } of tables) {
    const rows = await store.all<ColumnRow>(
      'SELECT name, type, "notnull", dflt_value, pk, hidden FROM pragma_table_xinfo(?) ORDER BY cid',
      [name],
    );
    const columns = rows
      // hidden 1: a virtual table's hidden column; 2 and 3: generated columns (kept, read-only).
      .filter((c) => c.hidden !== 1)
      .map((c) => ({
        name: c.name,
        declaredType: c.type ?? '',
        notNull: c.notnull === 1,
        hasDefault: c.dflt_value !== null,
        primaryKey: c.pk,
        generated: c.hidden === 2 || c.hidden === 3,
      }));
    const primaryKey = columns
      .filter((c) => c.primaryKey > 0)
      .sort((a, b) => a.primaryKey - b.primaryKey)
      .map((c) => c.name);
    catalog.push({ name, columns, primaryKey, withoutRowid: /\bWITHOUT\s+ROWID\s*$/i.test(sql) });
  }
  return catalog;
}

/** SQLite's counter of schema changes: when it moves, the catalog may have changed. */
export async function schemaVersion(store: InternalStore): Promise<number> {
  const row = await store.get<{ schema_version: number }>('PRAGMA schema_version');
  return Number(row?.schema_version ?? 0);
}
