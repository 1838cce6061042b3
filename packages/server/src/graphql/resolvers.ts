/**
 * What the generated query and mutation fields do: build the SQL (sql-builder), run it through the
 * same engine call as `/api/v1/stream` as the same caller, and shape the rows. The
 * engine refuses what the caller may not do (PERMISSION_DENIED), whatever the schema showed.
 */
import { sqlValueSchema, type SqlValue, type StatementResult } from '@rustydb/protocol';
import { RustyError } from '../errors/rusty-error.ts';
import type { GraphQLContext, GraphQLDeps } from './context.ts';
import type { TableModel } from './table-model.ts';
import {
  countStatement,
  deleteStatement,
  encodeCursor,
  insertStatements,
  pageStatement,
  selectStatement,
  updateStatement,
  upsertStatement,
  type OrderByInput,
  type Statement,
  type WhereInput,
} from './sql-builder.ts';

export type Row = Record<string, unknown>;

export async function run(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  statement: Statement,
): Promise<StatementResult> {
  return deps.engine.execute(statement, {
    caller: ctx.caller,
    timeoutMs: deps.config.statement_timeout * 1000,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
}

/** A result row as an object keyed by GraphQL field names (the statement listed the table's columns in order). */
export function rowObject(table: TableModel, row: readonly unknown[]): Row {
  const object: Row = {};
  for (let i = 0; i < table.columns.length; i++) object[table.columns[i]!.gql] = row[i];
  return object;
}

export interface ListArgs {
  where?: WhereInput | null;
  orderBy?: OrderByInput | null;
  limit?: number | null;
  offset?: number | null;
}

export async function listRows(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: ListArgs,
): Promise<Row[]> {
  const result = await run(deps, ctx, selectStatement(table, args));
  return result.rows.map((row) => rowObject(table, row));
}

export interface ConnectionArgs {
  first?: number | null;
  after?: string | null;
  where?: WhereInput | null;
  orderBy?: OrderByInput | null;
}

export async function connection(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: ConnectionArgs,
) {
  const { statement, terms, first } = pageStatement(table, args);
  const result = await run(deps, ctx, statement);
  const width = table.columns.length;
  const page = result.rows.slice(0, first);
  const edges = page.map((row) => ({
    cursor: encodeCursor(terms, row.slice(width) as SqlValue[]),
    node: rowObject(table, row),
  }));
  return {
    edges,
    nodes: edges.map((e) => e.node),
    pageInfo: {
      hasNextPage: result.rows.length > first,
      hasPreviousPage: args.after !== undefined && args.after !== null,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges[edges.length - 1]?.cursor ?? null,
    },
    // Counted only when asked for (GraphQL calls a function-valued field).
    totalCount: async () => {
      const counted = await run(deps, ctx, countStatement(table, args.where));
      return Number(counted.rows[0]?.[0] ?? 0);
    },
  };
}

export interface MutationResult {
  affectedRows: number;
  returning: Row[];
}

export async function insertRows(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  objects: readonly unknown[],
): Promise<MutationResult> {
  if (objects.length === 0) return { affectedRows: 0, returning: [] };
  const statements = insertStatements(table, objects);
  if (statements.length === 1) {
    const result = await run(deps, ctx, statements[0]!);
    return { affectedRows: result.rows.length, returning: result.rows.map((r) => rowObject(table, r)) };
  }
  // Several shapes of object: one transaction, all or nothing.
  const results = await deps.engine.batch(statements, {
    caller: ctx.caller,
    timeoutMs: deps.config.statement_timeout * 1000,
    transaction: true,
    ...(ctx.signal ? { signal: ctx.signal } : {}),
  });
  const returning: Row[] = [];
  for (const result of results) {
    if (result.status !== 'success') throw new RustyError(result.code, result.message);
    for (const row of result.rows) returning.push(rowObject(table, row));
  }
  return { affectedRows: returning.length, returning };
}

export async function insertOne(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  object: unknown,
): Promise<Row | null> {
  return (await insertRows(deps, ctx, table, [object])).returning[0] ?? null;
}

export async function updateRows(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: { where?: WhereInput | null; set: unknown },
  one: boolean,
): Promise<MutationResult> {
  const result = await run(deps, ctx, updateStatement(table, args.where, args.set, one));
  return { affectedRows: result.rows.length, returning: result.rows.map((r) => rowObject(table, r)) };
}

export async function deleteRows(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: { where?: WhereInput | null },
  one: boolean,
): Promise<MutationResult> {
  const result = await run(deps, ctx, deleteStatement(table, args.where, one));
  return { affectedRows: result.rows.length, returning: result.rows.map((r) => rowObject(table, r)) };
}

export async function upsertRow(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  table: TableModel,
  args: { object: unknown; onConflict?: string[] | null; update?: string[] | null },
): Promise<Row | null> {
  const result = await run(deps, ctx, upsertStatement(table, args.object, args.onConflict, args.update));
  const row = result.rows[0];
  return row ? rowObject(table, row) : null;
}

function sqlParams(params: readonly unknown[] | null | undefined): SqlValue[] {
  return (params ?? []).map((value, i) => {
    const parsed = sqlValueSchema.safeParse(value);
    if (!parsed.success) {
      throw new RustyError(
        'INVALID_MESSAGE',
        `params[${i}]: expected a string, number, boolean, null or {"$base64": "…"}`,
      );
    }
    return parsed.data;
  });
}

/**
 * `executeSql`: one statement, exactly as `POST /api/v1/query` runs it. On Query only read statements
 * are accepted (a GET request must not change anything); Mutation takes any.
 */
export async function executeSql(
  deps: GraphQLDeps,
  ctx: GraphQLContext,
  args: { sql: string; params?: unknown[] | null },
  readOnly: boolean,
) {
  if (readOnly && (await deps.engine.describe(args.sql, ctx.caller)).kind !== 'read') {
    throw new RustyError(
      'INVALID_MESSAGE',
      'Query.executeSql runs read statements only; use Mutation.executeSql to change data',
    );
  }
  const result = await run(deps, ctx, { sql: args.sql, params: sqlParams(args.params) });
  return {
    columns: result.columns,
    rows: result.rows,
    rowsAffected: result.rows_affected,
    lastInsertId: result.last_insert_id ?? null,
  };
}
