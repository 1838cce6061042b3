/**
 * TypeScript types from a database schema (what `GET /api/v1/schema` describes): one interface per
 * table, with each column typed as the server sends its values, one per document collection, and the
 * maps `Tables` and `Collections` by name. What `rustydb gen types` writes.
 *
 * Column types follow the engine:
 *
 * - SQLite, by its affinity rules on the declared type: INT → number; CHAR, CLOB, TEXT → string;
 *   BLOB → SqlBlob; REAL, FLOA, DOUB → number; no type → SqlValue; anything else (NUMERIC affinity:
 *   DECIMAL, BOOLEAN, DATE, …) → number | string, as SQLite keeps text that is not a number as text.
 *   Booleans are stored as 0 and 1. Outside STRICT tables SQLite does not enforce these types: they say
 *   what the schema declares, not what a row is forced to hold.
 * - PostgreSQL, by type name: smallint, integer, bigint, real, double precision → number; numeric →
 *   string (its exact digits); boolean → boolean; json, jsonb → Json; bytea → SqlBlob; arrays → T[];
 *   every other type (text, dates, times, uuid, …) → string.
 *
 * A column that may be NULL is `T | null`. Integers beyond ±2^53 arrive as imprecise numbers (SQLite) or
 * strings of digits (PostgreSQL bigint).
 */
import type { DatabaseSchema, SchemaColumn, SchemaTable } from '../schema.ts';

export interface GenerateOptions {
  /** Where the schema came from, for the file's header (a URL, a user). */
  source?: string | undefined;
}

const RESERVED_TYPES = new Set(['Tables', 'Collections', 'SqlValue', 'SqlBlob', 'Json']);

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** The TypeScript of the schema's types, as one module. */
export function generateTypes(schema: DatabaseSchema, options: GenerateOptions = {}): string {
  const names = new TypeNames();
  const tables = [...schema.tables].sort((a, b) => a.name.localeCompare(b.name));
  const collections = [...schema.collections].sort((a, b) => a.name.localeCompare(b.name));
  const tableTypes = tables.map((table) => ({ table, type: names.take(table.name, 'Row') }));
  const collectionTypes = collections.map((c) => ({ name: c.name, type: names.take(c.name, 'Document') }));
  const columnTypes = new Map(
    tables.map((table) => [table, table.columns.map((column) => typeOf(schema.engine, table, column))]),
  );
  const used = [...columnTypes.values()].flat().join(' ');

  const out: string[] = [];
  out.push(
    '/**',
    ` * The tables and collections ${options.source ? `${options.source} may read` : 'readable'}, as TypeScript types.`,
    ' * Written by `rustydb gen types`: do not edit; run it again after the schema changes.',
    ' */',
    '',
    '/** A blob, as RustyDB sends it. */',
    'export type SqlBlob = { $base64: string };',
    '',
    '/** A value of a column without a declared type. */',
    'export type SqlValue = string | number | boolean | null | SqlBlob;',
  );
  if (/\bJson\b/.test(used)) {
    out.push(
      '',
      '/** A JSON value (json and jsonb columns). */',
      'export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };',
    );
  }
  for (const { table, type } of tableTypes) {
    const key = table.primaryKey.length > 0 ? ` Primary key: ${table.primaryKey.join(', ')}.` : '';
    out.push('', `/** Table ${quoteName(table.name)}.${key} */`, `export interface ${type} {`);
    table.columns.forEach((column, i) => {
      const note = column.generated ? ' /** generated */' : '';
      out.push(`  ${propertyName(column.name)}: ${columnTypes.get(table)![i]};${note}`);
    });
    out.push('}');
  }
  for (const { name, type } of collectionTypes) {
    out.push(
      '',
      `/** A document of collection ${quoteName(name)}: its fields are not declared. */`,
      `export interface ${type} {`,
      '  _id: string;',
      '  [field: string]: unknown;',
      '}',
    );
  }
  out.push('', "/** Every table, by name: `db.query<Tables['items']>(…)`. */", 'export interface Tables {');
  for (const { table, type } of tableTypes) out.push(`  ${propertyName(table.name)}: ${type};`);
  out.push('}');
  out.push(
    '',
    "/** Every collection, by name: `db.watch<Collections['notes']>('notes')`. */",
    'export interface Collections {',
  );
  for (const { name, type } of collectionTypes) out.push(`  ${propertyName(name)}: ${type};`);
  out.push('}', '');
  return out.join('\n');
}

/** The TypeScript type of a column's values. */
export function typeOf(engine: string, table: SchemaTable, column: SchemaColumn): string {
  const base = engine === 'postgres' ? postgresType(column.type) : sqliteType(column.type);
  return mayBeNull(engine, table, column) && base !== 'SqlValue' ? `${base} | null` : base;
}

function sqliteType(declared: string): string {
  const type = declared.toUpperCase();
  if (type === '') return 'SqlValue';
  if (type.includes('INT')) return 'number';
  if (/CHAR|CLOB|TEXT/.test(type)) return 'string';
  if (type.includes('BLOB')) return 'SqlBlob';
  if (/REAL|FLOA|DOUB/.test(type)) return 'number';
  return 'number | string';
}

function postgresType(declared: string): string {
  const type = declared.toLowerCase().trim();
  if (type.endsWith('[]')) {
    const element = postgresType(type.slice(0, -2));
    return element.includes(' ') ? `(${element})[]` : `${element}[]`;
  }
  if (/^(smallint|integer|bigint|real|double precision|smallserial|serial|bigserial)$/.test(type))
    return 'number';
  if (type === 'boolean') return 'boolean';
  if (type === 'json' || type === 'jsonb') return 'Json';
  if (type === 'bytea') return 'SqlBlob';
  return 'string';
}

function mayBeNull(engine: string, table: SchemaTable, column: SchemaColumn): boolean {
  if (column.notNull) return false;
  if (engine === 'postgres' || column.primaryKey === 0) return true;
  // SQLite: an INTEGER PRIMARY KEY is the rowid, never NULL; WITHOUT ROWID tables refuse NULL keys.
  const rowidAlias =
    !table.withoutRowid && table.primaryKey.length === 1 && column.type.toUpperCase() === 'INTEGER';
  return !(rowidAlias || table.withoutRowid);
}

function propertyName(name: string): string {
  return IDENTIFIER.test(name) ? name : JSON.stringify(name);
}

function quoteName(name: string): string {
  return `\`${name.replaceAll('*/', '*\\/')}\``;
}

/** Type names from table names: PascalCase, unique, never one of the file's own names. */
class TypeNames {
  readonly #taken = new Set(RESERVED_TYPES);

  take(name: string, suffix: string): string {
    const words = name.split(/[^A-Za-z0-9]+/).filter(Boolean);
    let base = words.map((w) => w[0]!.toUpperCase() + w.slice(1)).join('') || suffix;
    if (/^[0-9]/.test(base)) base = `_${base}`;
    if (suffix === 'Document') base += suffix;
    let candidate = this.#taken.has(base) ? `${base}${suffix === 'Document' ? '' : suffix}` : base;
    for (let n = 2; this.#taken.has(candidate); n++) candidate = `${base}${n}`;
    this.#taken.add(candidate);
    return candidate;
  }
}
