/**
 * The user tables (schema `public`) and their columns, read from PostgreSQL's catalog: what the GraphQL
 * schema and the document store are built on.
 */
import type { TableInfo } from '../engine.ts';
import type { PgClient } from './driver.ts';

const COLUMNS_SQL = `
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '', a.attgenerated <> '' OR a.attidentity = 'a',
       coalesce(array_position(i.indkey::int2[], a.attnum), 0)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
 WHERE c.relkind IN ('r', 'p')
 ORDER BY c.relname, a.attnum`;

export async function readPgCatalog(client: PgClient): Promise<TableInfo[]> {
  const result = await client.query({ text: COLUMNS_SQL, rowMode: 'array' });
  const tables = new Map<string, TableInfo>();
  for (const row of result.rows) {
    const [table, name, type, notNull, hasDefault, generated, keyPosition] = row as [
      string,
      string,
      string,
      boolean,
      boolean,
      boolean,
      number,
    ];
    let info = tables.get(table);
    if (!info) tables.set(table, (info = { name: table, columns: [], primaryKey: [], withoutRowid: true }));
    info.columns.push({ name, declaredType: type, notNull, hasDefault, primaryKey: keyPosition, generated });
  }
  for (const info of tables.values()) {
    info.primaryKey = info.columns
      .filter((c) => c.primaryKey > 0)
      .sort((a, b) => a.primaryKey - b.primaryKey)
      .map((c) => c.name);
  }
  return [...tables.values()];
}

/** Moves whenever a table of the public schema is created, dropped or altered (its pg_class row changes). */
export async function pgSchemaVersion(client: PgClient): Promise<number> {
  const result = await client.query({
    text: `SELECT (coalesce(sum(hashtext(c.oid::text || ':' || c.xmin::text)::bigint), 0) % 9007199254740991)::float8
             FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace`,
    rowMode: 'array',
  });
  return Number(result.rows[0]?.[0] ?? 0);
}
