/**
 * SQLite's catalog as a user may see it. The whole catalog — the schema table and what the schema
 * PRAGMAs report for every table, view and index — is read once per schema version on the server's own
 * connection, then cut down to what one user may see:
 *
 * - a table: when the user holds a privilege on it (internal tables never);
 * - a view: when the user may read it (the privileges on every table it reads);
 * - an index: with its table; a trigger: with its table, to a user holding every table privilege on it
 *   (what creating one takes), since its body may name other tables.
 */
import type { InternalStore } from '../engine.ts';
import { INTERNAL_PREFIX } from '../statement-guard.ts';

/** A row of one catalog source, by column name. */
export type CatalogRow = Record<string, unknown>;

/** The schema PRAGMAs whose table-valued functions describe one table or index (their `arg`). */
export const DESCRIBING_PRAGMAS = [
  'table_info',
  'table_xinfo',
  'index_list',
  'index_info',
  'index_xinfo',
  'foreign_key_list',
] as const;
export type DescribingPragma = (typeof DESCRIBING_PRAGMAS)[number];

/** The columns each source has, in SQLite's order (hidden columns left out). */
export const SOURCE_COLUMNS = {
  schema: ['type', 'name', 'tbl_name', 'rootpage', 'sql'],
  table_list: ['schema', 'name', 'type', 'ncol', 'wr', 'strict'],
  table_info: ['cid', 'name', 'type', 'notnull', 'dflt_value', 'pk'],
  table_xinfo: ['cid', 'name', 'type', 'notnull', 'dflt_value', 'pk', 'hidden'],
  index_list: ['seq', 'name', 'unique', 'origin', 'partial'],
  index_info: ['seqno', 'cid', 'name'],
  index_xinfo: ['seqno', 'cid', 'name', 'desc', 'coll', 'key'],
  foreign_key_list: ['id', 'seq', 'table', 'from', 'to', 'on_update', 'on_delete', 'match'],
} as const satisfies Record<string, readonly string[]>;
export type CatalogSource = keyof typeof SOURCE_COLUMNS;

/**
 * Rows of every source. The describing PRAGMAs' rows carry `arg`: the table or index they describe,
 * lower-cased (SQLite compares names without regard to ASCII case).
 */
export type Catalog = Record<CatalogSource, CatalogRow[]>;

/** What decides visibility; answered from the user's privileges. */
export interface Visibility {
  /** The user holds `privilege` (or any table privilege, when omitted) on `table`. */
  holds(table: string, privilege?: 'SELECT' | 'INSERT' | 'UPDATE' | 'DELETE'): boolean;
  /** The views (lower-cased names) the user may read. */
  readableViews: ReadonlySet<string>;
}

const DESCRIBED_BY_TABLE: readonly DescribingPragma[] = [
  'table_info',
  'table_xinfo',
  'index_list',
  'foreign_key_list',
];

/** One PRAGMA's rows for every object of the given schema types, each with the object it describes. */
function describeEach(
  store: InternalStore,
  pragma: DescribingPragma,
  types: readonly string[],
): Promise<CatalogRow[]> {
  const columns = SOURCE_COLUMNS[pragma].map((c) => `p."${c}"`).join(', ');
  const kinds = types.map((t) => `'${t}'`).join(', ');
  return store.all(
    `SELECT lower(s.name) AS arg, ${columns} FROM sqlite_schema AS s, pragma_${pragma}(s.name) AS p
      WHERE s.type IN (${kinds})`,
  );
}

/** The whole catalog of the main database, as SQLite reports it. */
export async function readWholeCatalog(store: InternalStore): Promise<Catalog> {
  const schema = await store.all(
    'SELECT type, name, tbl_name, rootpage, sql FROM sqlite_schema ORDER BY rowid',
  );
  const catalog: Catalog = {
    schema,
    table_list: await store.all(
      "SELECT schema, name, type, ncol, wr, strict FROM pragma_table_list WHERE schema = 'main'",
    ),
    table_info: [],
    table_xinfo: [],
    index_list: [],
    index_info: [],
    index_xinfo: [],
    foreign_key_list: [],
  };
  for (const pragma of DESCRIBED_BY_TABLE) {
    catalog[pragma] = await describeEach(store, pragma, ['table', 'view']);
  }
  catalog.index_info = await describeEach(store, 'index_info', ['index']);
  catalog.index_xinfo = await describeEach(store, 'index_xinfo', ['index']);
  return catalog;
}

/** The part of `catalog` a user may see. */
export function visiblePart(catalog: Catalog, visibility: Visibility): Catalog {
  const types = new Map(catalog.schema.map((r) => [String(r.name).toLowerCase(), String(r.type)]));
  const seen = new Map<string, boolean>();
  const sees = (name: string): boolean => {
    const key = name.toLowerCase();
    let answer = seen.get(key);
    if (answer === undefined) {
      if (key.startsWith(INTERNAL_PREFIX)) answer = false;
      else if (types.get(key) === 'view') answer = visibility.readableViews.has(key);
      else answer = visibility.holds(name);
      seen.set(key, answer);
    }
    return answer;
  };
  const seesTrigger = (table: string): boolean =>
    sees(table) &&
    (['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const).every((p) => visibility.holds(table, p));
  const indexTables = new Map(
    catalog.schema
      .filter((r) => r.type === 'index')
      .map((r) => [String(r.name).toLowerCase(), String(r.tbl_name)]),
  );
  const seesIndex = (index: string): boolean => {
    const table = indexTables.get(index);
    return table !== undefined && sees(table);
  };
  return {
    schema: catalog.schema.filter((r) =>
      r.type === 'trigger' ? seesTrigger(String(r.tbl_name)) : sees(String(r.tbl_name)),
    ),
    table_list: catalog.table_list.filter((r) => sees(String(r.name))),
    table_info: catalog.table_info.filter((r) => sees(String(r.arg))),
    table_xinfo: catalog.table_xinfo.filter((r) => sees(String(r.arg))),
    index_list: catalog.index_list.filter((r) => sees(String(r.arg))),
    foreign_key_list: catalog.foreign_key_list.filter((r) => sees(String(r.arg))),
    index_info: catalog.index_info.filter((r) => seesIndex(String(r.arg))),
    index_xinfo: catalog.index_xinfo.filter((r) => seesIndex(String(r.arg))),
  };
}
