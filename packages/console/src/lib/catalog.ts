/**
 * The schema as the signed-in user can see it: tables and views, their columns, keys, indexes and
 * foreign keys. Shared by the SQL editor's completion and the table browser; refreshed after statements
 * that change it.
 *
 * The tables and columns come from the server's schema endpoint (`client.schema()`), which lists what
 * the user may read on either engine. On SQLite the views, column defaults, indexes and foreign keys are
 * added from the schema PRAGMA functions, each given a table or index name as a literal: that is the
 * form the server answers from the part of the catalog the user may see. (Joining `sqlite_schema` to
 * `pragma_table_info(m.name)` passes a column instead, which only ADMIN may do.)
 */
import type { DatabaseSchema, RustyDBClient, SqlValue } from '@rustydb/client';

export interface ColumnInfo {
  name: string;
  type: string;
  notNull: boolean;
  /** The default's SQL text where the engine reports it; null when there is none or it is not known. */
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

const text = (value: SqlValue | undefined): string =>
  value === null || value === undefined ? '' : String(value);

function quoteString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

/** Names per statement when asking a PRAGMA function about many objects, to bound a statement's size. */
const NAMES_PER_STATEMENT = 100;

/**
 * `SELECT <position>, <columns> FROM pragma_<name>('<object>') UNION ALL …` for every object, run in
 * statements of at most NAMES_PER_STATEMENT objects; each row starts with its object's position in
 * `objects`.
 */
async function describeEach(
  client: RustyDBClient,
  pragma: string,
  columns: string,
  objects: readonly string[],
): Promise<SqlValue[][]> {
  const rows: SqlValue[][] = [];
  for (let from = 0; from < objects.length; from += NAMES_PER_STATEMENT) {
    const sql = objects
      .slice(from, from + NAMES_PER_STATEMENT)
      .map((name, i) => `SELECT ${from + i} AS k, ${columns} FROM pragma_${pragma}(${quoteString(name)})`)
      .join(' UNION ALL ');
    rows.push(...(await client.query(sql, [], { rowMode: 'array' })).rows);
  }
  return rows;
}

function fromSchema(schema: DatabaseSchema): TableInfo[] {
  return schema.tables.map((table) => ({
    name: table.name,
    kind: 'table',
    columns: table.columns.map((c) => ({
      name: c.name,
      type: c.type,
      notNull: c.notNull,
      defaultValue: null,
      pk: c.primaryKey,
    })),
    indexes: [],
    foreignKeys: [],
    primaryKey: table.primaryKey,
  }));
}

/** SQLite only: the readable views with their columns, and every object's defaults, indexes and foreign keys. */
async function addSqliteDetails(client: RustyDBClient, tables: TableInfo[]): Promise<void> {
  const views = await client.query("SELECT name FROM sqlite_schema WHERE type = 'view' ORDER BY name", [], {
    rowMode: 'array',
  });
  for (const [name] of views.rows) {
    tables.push({
      name: text(name),
      kind: 'view',
      columns: [],
      indexes: [],
      foreignKeys: [],
      primaryKey: [],
    });
  }
  const names = tables.map((t) => t.name);
  const [columns, indexes, foreignKeys] = await Promise.all([
    describeEach(client, 'table_info', 'name, type, "notnull", dflt_value', names),
    describeEach(client, 'index_list', 'name, "unique", origin', names),
    describeEach(client, 'foreign_key_list', '"from", "table", "to"', names),
  ]);
  for (const [k, name, type, notNull, dflt] of columns) {
    const table = tables[Number(k)]!;
    const defaultValue = dflt === null || dflt === undefined ? null : String(dflt);
    const known = table.columns.find((c) => c.name === text(name));
    if (known) known.defaultValue = defaultValue;
    else if (table.kind === 'view') {
      table.columns.push({
        name: text(name),
        type: text(type),
        notNull: Number(notNull) === 1,
        defaultValue,
        pk: 0,
      });
    }
  }
  for (const [k, name, unique, origin] of indexes) {
    tables[Number(k)]!.indexes.push({
      name: text(name),
      unique: Number(unique) === 1,
      origin: text(origin),
      columns: [],
    });
  }
  const allIndexes = tables.flatMap((t) => t.indexes);
  const indexNames = allIndexes.map((i) => i.name);
  for (const [k, column] of await describeEach(client, 'index_info', 'name', indexNames)) {
    allIndexes[Number(k)]!.columns.push(text(column));
  }
  for (const [k, from, target, to] of foreignKeys) {
    tables[Number(k)]!.foreignKeys.push({
      from: text(from),
      table: text(target),
      to: to === null ? null : text(to),
    });
  }
}

export async function loadCatalog(client: RustyDBClient): Promise<TableInfo[]> {
  const schema = await client.schema();
  const tables = fromSchema(schema);
  if (schema.engine === 'sqlite') await addSqliteDetails(client, tables);
  return tables.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One catalog per client, loaded once and refreshed on demand; pages subscribe to it. */
export class Catalog {
  readonly #client: RustyDBClient;
  #tables: TableInfo[] | undefined;
  #error: unknown;
  #loading: Promise<void> | undefined;
  /** A reload asked for while a load was under way: it starts when that one ends. */
  #reloading: Promise<void> | undefined;
  #version = 0;
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

  /** A load or reload is under way. */
  get loading(): boolean {
    return this.#loading !== undefined || this.#reloading !== undefined;
  }

  /** Counts the loads that ended: a reader can tell whether it missed one. */
  get version(): number {
    return this.#version;
  }

  table(name: string): TableInfo | undefined {
    return this.#tables?.find((t) => t.name === name);
  }

  subscribe(listener: () => void): () => void {
    this.#listeners.add(listener);
    if (!this.#tables && !this.loading) void this.refresh();
    return () => this.#listeners.delete(listener);
  }

  /**
   * Loads the catalog as it is now. A load already under way may have read it before what the caller
   * wants to see (a table just created): then one more load follows it, shared by every caller until
   * it starts.
   */
  refresh(): Promise<void> {
    if (this.#loading) {
      this.#reloading ??= this.#loading.then(() => {
        this.#reloading = undefined;
        return this.refresh();
      });
      return this.#reloading;
    }
    this.#loading = loadCatalog(this.#client)
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
        this.#version++;
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
