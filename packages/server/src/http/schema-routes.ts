/**
 * `GET /api/v1/schema`: the tables and document collections the caller may read, with their columns,
 * from the engine's own catalog. What a client generates its types from (`rustydb gen types`). A table
 * the caller holds no SELECT on is not mentioned, not even by name.
 */
import type { FastifyInstance } from 'fastify';
import { hasCollectionColumns, isValidCollectionName } from '../documents/collection-name.ts';
import type { TableInfo } from '../engine/engine.ts';
import { bearerPrincipal, type RestDeps } from './http-helpers.ts';

/** A column as the schema endpoint describes it. */
export interface SchemaColumn {
  name: string;
  /** The declared type, as written in CREATE TABLE ('' when untyped). */
  type: string;
  not_null: boolean;
  /** 1-based position in the primary key; 0 when not part of it. */
  primary_key: number;
  has_default: boolean;
  generated: boolean;
}

export interface SchemaTable {
  name: string;
  columns: SchemaColumn[];
  primary_key: string[];
  without_rowid: boolean;
}

function describeTable(table: TableInfo): SchemaTable {
  return {
    name: table.name,
    columns: table.columns.map((column) => ({
      name: column.name,
      type: column.declaredType,
      not_null: column.notNull,
      primary_key: column.primaryKey,
      has_default: column.hasDefault,
      generated: column.generated,
    })),
    primary_key: table.primaryKey,
    without_rowid: table.withoutRowid,
  };
}

export function registerSchemaRoutes(app: FastifyInstance, deps: RestDeps): void {
  const principalOf = bearerPrincipal(deps);

  app.get('/api/v1/schema', async (request) => {
    const caller = await deps.access.callerFor(await principalOf(request));
    const catalog = await deps.engine.readCatalog();
    // One question to the engine for every table: whether the caller may read it, as enforced.
    const readable = await deps.engine.holds(
      caller,
      catalog.map((table) => ({ privilege: 'SELECT' as const, table: table.name })),
    );
    const tables: SchemaTable[] = [];
    const collections: { name: string }[] = [];
    catalog.forEach((table, i) => {
      if (readable[i] !== true) return;
      const isCollection =
        isValidCollectionName(table.name) && hasCollectionColumns(table.columns.map((c) => c.name));
      if (isCollection) collections.push({ name: table.name });
      else tables.push(describeTable(table));
    });
    // The engine says how to read the declared types (SQLite's affinities or PostgreSQL's types).
    return { success: true, data: { engine: deps.engine.name, tables, collections } };
  });
}
