/**
 * The schema as the signed-in user can see it: tables and views, their columns, keys, indexes and
 * foreign keys, read with SQL through the client (sqlite_schema and the table-info functions). Shared
 * by the SQL editor's completion and the table browser; refreshed after statements that change it.
 */
import type { RustyDBClient, SqlValue } from '@rustydb/client';

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
  defaultValue: string | null;
  /** Position in the primary key, 1-based; 0 when not part of it. */
  pk: number;
}

export interface IndexInfo {
  name: string;
  unique: boolean;
  /** `c` CREATE INDEX, `u` UNIQUE constraint, `pk` primary key. */
  origin: string;
  columns: string[];
}

export interface ForeignKeyInfo {
  from: string;
  table: string;
  to: string | null;
}

export interface TableInfo {
  name: string;
  kind: 'table' | 'view';
  columns: ColumnInfo[];
  indexes: IndexInfo[];
  foreignKeys: ForeignKeyInfo[];
  /** Primary-key columns in key order; empty for a rowid table without one, and for views. */
  primaryKey: string[];
}

/** The server's own tables and SQLite's are not the user's business. */
function isUserTable(name: string): boolean {
  const lower = name.toLowerCase();
  return !lower.startsWith('sqlite_') && !lower.startsWith('_rustydb');
}

const COLUMNS_SQL = `SELECT m.name, m.type, c.name, c.type, c."notnull", c.dflt_value, c.pk
FROM sqlite_schema AS m JOIN pragma_table_info(m.name) AS c
WHERE m.type IN ('table', 'view') ORDER BY m.name, c.cid`;

const INDEXES_SQL = `SELECT m.name, l.name, l."unique", l.origin, i.name
FROM sqlite_schema AS m JOIN pragma_index_list(m.name) AS l JOIN pragma_index_info(l.name) AS i
WHERE m.type = 'table' ORDER BY m.name, l.name, i.seqno`;

const FOREIGN_KEYS_SQL = `SELECT m.name, f."from", f."table", f."to"
FROM sqlite_schema AS m JOIN pragma_foreign_key_list(m.name) AS f
WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq`;

const text = (value: SqlValue | undefined): string =>
  value === null || value === undefined ? '' : String(value);

export async function loadCatalog(client: RustyDBClient): Promise<TableInfo[]> {
  const [columns, indexes, foreignKeys] = await Promise.all([
    client.query(COLUMNS_SQL, [], { rowMode: 'array' }),
    client.query(INDEXES_SQL, [], { rowMode: 'array' }),
    client.query(FOREIGN_KEYS_SQL, [], { rowMode: 'array' }),
  ]);
  const tables = new Map<string, TableInfo>();
  for (const [table, kind, name, type, notNull, dflt, pk] of columns.rows) {
    const tableName = text(table);
    if (!isUserTable(tableName)) continue;
    let info = tables.get(tableName);
    if (!info) {
      info = {
        name: tableName,
        kind: kind === 'view' ? 'view' : 'table',
        columns: [],
        indexes: [],
        foreignKeys: [],
        primaryKey: [],
      };
      tables.set(tableName, info);
    }
    info.columns.push({
      name: text(name),
      type: text(type),
      notNull: Number(notNull) === 1,
      defaultValue: dflt === null || dflt === undefined ? null : String(dflt),
      pk: Number(pk ?? 0),
    });
  }
  for (const info of tables.values()) {
    info.primaryKey = info.columns
      .filter((c) => c.pk > 0)
      .sort((a, b) => a.pk - b.pk)
      .map((c) => c.name);
  }
  for (const [table, name, unique, origin, column] of indexes.rows) {
    const info = tables.get(text(table));
    if (!info) continue;
    let index = info.indexes.find((i) => i.name === text(name));
    if (!index) {
      index = { name: text(name), unique: Number(unique) === 1, origin: text(origin), columns: [] };
      info.indexes.push(index);
    }
    index.columns.push(text(column));
  }
  for (const [table, from, target, to] of foreignKeys.rows) {
    tables.get(text(table))?.foreignKeys.push({
      from: text(from),
      table: text(target),
      to: to === null ? null : text(to),
    });
  }
  return [...tables.values()];
}

/** One catalog per client, loaded once and refreshed on demand; pages subscribe to it. */
export class Catalog {
  readonly #client: RustyDBClient;
  #tables: TableInfo[] | undefined;
  #error: unknown;
  #loading: Promise<void> | undefined;
  readonly #listeners = new Set<() => void>();

  constructor(client: RustyDBClient) {
    this.#client = client;
  }

  get tables(): TableInfo[] | undefined {
    return this.#tables;
  }

  get error(): unknown {
    return this.#error;
  }

  table(name: string): TableInfo | undefined {
    return this.#tables?.find((t) => t.name === name);
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#tables && !this.#loading) void this.refresh();
    return () => this.#listeners.delete(listener);
  }

  refresh(): Promise<void> {
    this.#loading ??= loadCatalog(this.#client)
      .then(
        (tables) => {
          this.#tables = tables;
          this.#error = undefined;
        },
        (err: unknown) => {
          this.#error = err;
        },
      )
      .finally(() => {
        this.#loading = undefined;
        for (const listener of this.#listeners) listener();
      });
    return this.#loading;
  }
}

const catalogs = new WeakMap<RustyDBClient, Catalog>();

export function catalogOf(client: RustyDBClient): Catalog {
  let catalog = catalogs.get(client);
  if (!catalog) catalogs.set(client, (catalog = new Catalog(client)));
  return catalog;
}
