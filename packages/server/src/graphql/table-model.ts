/**
 * The catalog as the GraphQL layer sees it: each table and column with its SQL name (the only thing
 * SQL text is built from) beside its GraphQL name, its kind, and the key that orders rows for cursor
 * pagination and picks "one" row for the *One mutations.
 */
import type { ColumnInfo, TableInfo } from '../engine/engine.ts';
import { columnName, graphQLName, quoteIdent, uniqueName } from './names.ts';
import { columnKind, type ColumnKind } from './type-mapping.ts';

export interface ColumnModel {
  sql: string;
  /** Quoted SQL identifier. */
  ident: string;
  gql: string;
  kind: ColumnKind;
  /** Part of INSERT/UPDATE inputs (generated columns are not). */
  writable: boolean;
  /** Must be given on insert: NOT NULL without a default, and not an INTEGER PRIMARY KEY (rowid alias). */
  requiredOnInsert: boolean;
  info: ColumnInfo;
}

export interface TableModel {
  sql: string;
  ident: string;
  /** The base of every GraphQL name generated for this table. */
  gql: string;
  columns: ColumnModel[];
  byGql: Map<string, ColumnModel>;
  /**
   * SQL expressions that identify a row, never NULL together: the rowid (or its INTEGER PRIMARY KEY
   * alias) of a rowid table, else the primary key of a WITHOUT ROWID table. Empty when neither can be
   * named (a rowid table whose columns shadow every rowid alias and that has no primary key).
   */
  key: string[];
  info: TableInfo;
}

/** Type and field names every schema uses; table names must keep clear of them. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'Query',
  'Mutation',
  'Subscription',
  'String',
  'Int',
  'Float',
  'Boolean',
  'ID',
  'BigInt',
  'Base64',
  'JSON',
  'BigIntComparison',
  'FloatComparison',
  'StringComparison',
  'BooleanComparison',
  'Base64Comparison',
  'JSONComparison',
  'OrderDirection',
  'PageInfo',
  'TableName',
  'TableChange',
  'ChangeType',
  'LiveQueryResult',
  'DocumentChange',
  'FullDocumentMode',
  'MetricUpdate',
  'SystemMetrics',
  'MetricValue',
  'MetricType',
  'SqlResult',
  'executeSql',
  'tableChanges',
  'rowInserted',
  'rowUpdated',
  'rowDeleted',
  'liveQuery',
  'documentChanges',
  'metricUpdated',
  'systemMetrics',
  // Enum values may not be these.
  'true',
  'false',
  'null',
]);

/** Suffixes of the names generated per table (type and field names share one namespace here). */
export const TABLE_NAME_SUFFIXES = [
  '',
  'Where',
  'OrderBy',
  'Insert',
  'Set',
  'Column',
  'Connection',
  'Edge',
  'MutationResult',
  'LiveResult',
  'InsertOne',
  'InsertMany',
  'UpdateOne',
  'UpdateMany',
  'DeleteOne',
  'DeleteMany',
  'Upsert',
  'Live',
] as const;

const ROWID_ALIASES = ['rowid', '_rowid_', 'oid'];

function keyOf(info: TableInfo): string[] {
  if (info.withoutRowid) return info.primaryKey.map(quoteIdent);
  const integerKey =
    info.primaryKey.length === 1
      ? info.columns.find((c) => c.name === info.primaryKey[0] && c.declaredType.toUpperCase() === 'INTEGER')
      : undefined;
  if (integerKey) return [quoteIdent(integerKey.name)];
  const names = new Set(info.columns.map((c) => c.name.toLowerCase()));
  const alias = ROWID_ALIASES.find((a) => !names.has(a));
  if (alias) return [alias];
  return info.primaryKey.map(quoteIdent);
}

/** Models for every table, with GraphQL names unique across the schema. */
export function tableModels(catalog: readonly TableInfo[]): TableModel[] {
  const taken = new Set(RESERVED_NAMES);
  const models: TableModel[] = [];
  for (const info of catalog) {
    const wanted = graphQLName(info.name);
    let base = wanted;
    for (let n = 2; TABLE_NAME_SUFFIXES.some((suffix) => taken.has(base + suffix)); n++)
      base = `${wanted}_${n}`;
    for (const suffix of TABLE_NAME_SUFFIXES) taken.add(base + suffix);

    const columnNames = new Set<string>();
    const columns = info.columns.map((c): ColumnModel => {
      const kind = columnKind(c.declaredType);
      const rowidAlias =
        info.primaryKey.length === 1 && c.primaryKey === 1 && c.declaredType.toUpperCase() === 'INTEGER';
      return {
        sql: c.name,
        ident: quoteIdent(c.name),
        gql: uniqueName(columnName(c.name), columnNames),
        kind,
        writable: !c.generated,
        requiredOnInsert: !c.generated && c.notNull && !c.hasDefault && !rowidAlias,
        info: c,
      };
    });
    models.push({
      sql: info.name,
      ident: quoteIdent(info.name),
      gql: base,
      columns,
      byGql: new Map(columns.map((c) => [c.gql, c])),
      key: keyOf(info),
      info,
    });
  }
  return models;
}
