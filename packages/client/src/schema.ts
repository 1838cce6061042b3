/**
 * What the caller may read, as the server describes it (`GET /api/v1/schema`): tables with their
 * columns, and document collections. `rustydb gen types` writes TypeScript types from it.
 */

export interface SchemaColumn {
  name: string;
  /** The type as declared (SQLite: as written in CREATE TABLE, '' when untyped; PostgreSQL: its own). */
  type: string;
  notNull: boolean;
  /** 1-based position in the primary key; 0 when not part of it. */
  primaryKey: number;
  hasDefault: boolean;
  /** A generated column: readable, never written. */
  generated: boolean;
}

export interface SchemaTable {
  name: string;
  columns: SchemaColumn[];
  /** The primary key's columns, in key order. */
  primaryKey: string[];
  /** Rows have no rowid (SQLite's WITHOUT ROWID; every PostgreSQL table). */
  withoutRowid: boolean;
}

export interface DatabaseSchema {
  /** `sqlite` or `postgres`: how to read the declared types. */
  engine: string;
  tables: SchemaTable[];
  collections: { name: string }[];
}

/** The schema endpoint's answer, as it travels. */
export interface SchemaPayload {
  engine: string;
  tables: {
    name: string;
    primary_key: string[];
    without_rowid: boolean;
    columns: {
      name: string;
      type: string;
      not_null: boolean;
      primary_key: number;
      has_default: boolean;
      generated: boolean;
    }[];
  }[];
  collections: { name: string }[];
}

export const SCHEMA_PATH = '/api/v1/schema';

export function schemaFromPayload(payload: SchemaPayload): DatabaseSchema {
  return {
    engine: payload.engine,
    tables: payload.tables.map((table) => ({
      name: table.name,
      primaryKey: table.primary_key,
      withoutRowid: table.without_rowid,
      columns: table.columns.map((column) => ({
        name: column.name,
        type: column.type,
        notNull: column.not_null,
        primaryKey: column.primary_key,
        hasDefault: column.has_default,
        generated: column.generated,
      })),
    })),
    collections: payload.collections.map((c) => ({ name: c.name })),
  };
}
