/**
 * Generates the GraphQL schema of one view of the database: the tables a caller may read (SELECT), and
 * for each the mutations its other privileges allow. Names follow names.ts; types follow
 * type-mapping.ts. Every resolver runs through resolvers.ts / subscriptions.ts, and throws errors with
 * the protocol's codes. docs/graphql.md describes the result field by field.
 */
import {
  GraphQLBoolean,
  GraphQLEnumType,
  GraphQLFloat,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  type GraphQLFieldConfig,
  type GraphQLFieldConfigMap,
  type GraphQLInputFieldConfigMap,
  type GraphQLInputType,
  type GraphQLOutputType,
  type GraphQLScalarType,
} from 'graphql';
import { METRIC_NAMES, type MetricName, type MetricValues } from '../metrics/sampler.ts';
import type { GraphQLContext, GraphQLDeps } from './context.ts';
import { toGraphQLError } from './errors.ts';
import * as resolve from './resolvers.ts';
import { rowObject } from './resolvers.ts';
import type { TableModel } from './table-model.ts';
import { EVENT_SHAPE } from './event-execution.ts';
import { BigIntScalar, Base64Scalar, JSONScalar, scalarFor, type ColumnKind } from './type-mapping.ts';
import {
  documentChanges,
  liveTable,
  metricsStream,
  tableChanges,
  type LiveResult,
  type TableChangeEvent,
} from './subscriptions.ts';

/** A table as one caller may use it. Only tables the caller may SELECT from are in a view. */
export interface TableAccess {
  table: TableModel;
  insert: boolean;
  update: boolean;
  delete: boolean;
}

const nonNull = <T extends GraphQLOutputType | GraphQLInputType>(type: T) => new GraphQLNonNull(type);
const listOf = <T extends GraphQLOutputType | GraphQLInputType>(type: T) => new GraphQLList(nonNull(type));

// ---- types shared by every schema ---------------------------------------------------------------

const OrderDirection = new GraphQLEnumType({
  name: 'OrderDirection',
  description: 'Ascending (NULL first) or descending (NULL last), as SQLite sorts.',
  values: { ASC: { value: 'ASC' }, DESC: { value: 'DESC' } },
});

function comparison(scalar: GraphQLScalarType, ordered: boolean, like: boolean): GraphQLInputObjectType {
  const fields: GraphQLInputFieldConfigMap = {
    eq: { type: scalar, description: 'Equal (null-safe: `eq: null` matches NULL).' },
    neq: { type: scalar, description: 'Not equal (null-safe).' },
    in: { type: new GraphQLList(nonNull(scalar)), description: 'One of the values (at most 1000).' },
    isNull: { type: GraphQLBoolean, description: 'true: IS NULL; false: IS NOT NULL.' },
  };
  if (ordered) {
    fields.lt = { type: scalar };
    fields.lte = { type: scalar };
    fields.gt = { type: scalar };
    fields.gte = { type: scalar };
  }
  if (like)
    fields.like = { type: GraphQLString, description: 'SQL LIKE pattern (% and _; ASCII case-insensitive).' };
  return new GraphQLInputObjectType({ name: `${scalar.name}Comparison`, fields });
}

const COMPARISONS: Record<ColumnKind, GraphQLInputObjectType> = {
  integer: comparison(BigIntScalar, true, false),
  real: comparison(GraphQLFloat, true, false),
  text: comparison(GraphQLString, true, true),
  boolean: comparison(GraphQLBoolean, false, false),
  blob: comparison(Base64Scalar, true, false),
  any: comparison(JSONScalar, true, true),
};

const PageInfo = new GraphQLObjectType({
  name: 'PageInfo',
  fields: {
    hasNextPage: { type: nonNull(GraphQLBoolean) },
    hasPreviousPage: {
      type: nonNull(GraphQLBoolean),
      description: 'True when the page was asked for with `after`.',
    },
    startCursor: { type: GraphQLString },
    endCursor: { type: GraphQLString, description: 'Pass as `after` for the next page.' },
  },
});

const ChangeType = new GraphQLEnumType({
  name: 'ChangeType',
  values: {
    INSERT: { description: 'A row was inserted.' },
    UPDATE: { description: 'A row matching the filter before and after was updated.' },
    DELETE: { description: 'A row was deleted.' },
    ENTER: { description: 'An update made a row start matching the filter.' },
    LEAVE: { description: 'An update made a row stop matching the filter.' },
    SCHEMA: {
      description: 'The table was altered or dropped (`schema` says which); a drop ends the subscription.',
    },
    RESET: {
      description:
        'The change log no longer reaches back to `since` (`oldestResumable` is the oldest sequence that does): read the table again and subscribe without `since`. Ends the subscription.',
    },
  },
});

const TableChange = new GraphQLObjectType({
  name: 'TableChange',
  fields: {
    table: { type: nonNull(GraphQLString), description: 'The table (its SQL name).' },
    changeType: { type: nonNull(ChangeType) },
    row: {
      type: JSONScalar,
      description: 'The row after the change, keyed by SQL column names (null for DELETE).',
    },
    oldRow: { type: JSONScalar, description: 'The row before the change (null for INSERT).' },
    key: { type: JSONScalar, description: "The row's primary key (or rowid)." },
    sequence: {
      type: nonNull(BigIntScalar),
      description: 'Change-log sequence: resume after it with `since`.',
    },
    timestamp: { type: nonNull(GraphQLString), description: 'Commit time, ISO 8601.' },
    schema: { type: JSONScalar, description: 'SCHEMA events: `{action: "alter"|"drop", sql}`.' },
    oldestResumable: {
      type: BigIntScalar,
      description: 'RESET events: the oldest sequence one can resume after.',
    },
  },
});

const LiveQueryResult = new GraphQLObjectType({
  name: 'LiveQueryResult',
  fields: {
    table: { type: nonNull(GraphQLString) },
    sequence: {
      type: nonNull(BigIntScalar),
      description: 'The result reflects every change up to this sequence.',
    },
    columns: { type: nonNull(listOf(GraphQLString)) },
    rows: {
      type: nonNull(listOf(JSONScalar)),
      description: 'The whole current result, rows keyed by SQL column names.',
    },
  },
});

const FullDocumentMode = new GraphQLEnumType({
  name: 'FullDocumentMode',
  values: {
    DEFAULT: { value: 'default' },
    UPDATE_LOOKUP: { value: 'updateLookup' },
    WHEN_AVAILABLE: { value: 'whenAvailable' },
    REQUIRED: { value: 'required' },
  },
});

const DocumentChange = new GraphQLObjectType({
  name: 'DocumentChange',
  fields: {
    collection: { type: nonNull(GraphQLString) },
    operationType: {
      type: nonNull(GraphQLString),
      description: 'insert, update, replace, delete, drop or invalidate.',
    },
    documentKey: { type: JSONScalar },
    fullDocument: { type: JSONScalar },
    updateDescription: { type: JSONScalar },
    sequence: { type: nonNull(BigIntScalar), description: 'Resume after it with `since`.' },
    resumeToken: {
      type: JSONScalar,
      description: 'The MongoDB-style resume token (`{_data}`), as on the watch endpoint.',
    },
    timestamp: { type: GraphQLString },
  },
});

const MetricUpdate = new GraphQLObjectType({
  name: 'MetricUpdate',
  fields: {
    cpu: {
      type: nonNull(GraphQLFloat),
      description: 'Process CPU, percent of one core (every thread counted).',
    },
    memory: { type: nonNull(GraphQLFloat), description: 'Resident set size, bytes.' },
    diskIO: { type: nonNull(GraphQLFloat), description: 'Bytes read and written per second (Linux).' },
    activeConnections: {
      type: nonNull(GraphQLInt),
      description: 'Open WebSocket connections, every endpoint.',
    },
    queryRate: { type: nonNull(GraphQLFloat), description: 'Statements finished per second, every surface.' },
    timestamp: { type: nonNull(GraphQLString) },
  },
});

const MetricType = new GraphQLEnumType({
  name: 'MetricType',
  values: Object.fromEntries(METRIC_NAMES.map((name) => [name.toUpperCase(), { value: name }])),
});

const MetricValue = new GraphQLObjectType({
  name: 'MetricValue',
  fields: {
    name: { type: nonNull(MetricType) },
    value: { type: nonNull(GraphQLFloat) },
    labels: {
      type: JSONScalar,
      description: 'CONNECTIONS_BY_ENDPOINT: `{endpoint}` (one value per endpoint).',
    },
  },
});

const SystemMetrics = new GraphQLObjectType({
  name: 'SystemMetrics',
  fields: {
    timestamp: { type: nonNull(GraphQLString) },
    values: { type: nonNull(listOf(MetricValue)) },
  },
});

const SqlResult = new GraphQLObjectType({
  name: 'SqlResult',
  fields: {
    columns: { type: nonNull(listOf(GraphQLString)) },
    rows: {
      type: nonNull(new GraphQLList(nonNull(new GraphQLList(JSONScalar)))),
      description: 'Rows as arrays.',
    },
    rowsAffected: { type: nonNull(GraphQLInt) },
    lastInsertId: { type: BigIntScalar },
  },
});

// ---- helpers -------------------------------------------------------------------------------------

/** Wraps a resolver so that whatever it throws leaves with a protocol error code. */
function guarded<A>(
  deps: GraphQLDeps,
  fn: (args: A, ctx: GraphQLContext) => unknown,
): (source: unknown, args: A, ctx: GraphQLContext) => Promise<unknown> {
  return async (_source, args, ctx) => {
    try {
      return await fn(args, ctx);
    } catch (err) {
      throw toGraphQLError(err, deps.logger);
    }
  };
}

function subscriptionField<A, E>(
  deps: GraphQLDeps,
  type: GraphQLOutputType,
  args: GraphQLFieldConfig<unknown, GraphQLContext>['args'],
  description: string,
  subscribe: (args: A, ctx: GraphQLContext) => Promise<AsyncIterable<E>>,
  shape: (event: E) => unknown = (event) => event,
): GraphQLFieldConfig<unknown, GraphQLContext> {
  return {
    type,
    args,
    description,
    subscribe: guarded(deps, subscribe) as GraphQLFieldConfig<unknown, GraphQLContext>['subscribe'],
    resolve: (event: unknown) => shape(event as E),
    // The resolver is the shape alone: a subscription's events may be completed without graphql-js.
    extensions: { [EVENT_SHAPE]: shape },
  };
}

function metricValues(values: MetricValues, wanted: readonly MetricName[] | null | undefined) {
  const names = wanted && wanted.length > 0 ? wanted : METRIC_NAMES;
  const out: { name: MetricName; value: number; labels: Record<string, string> | null }[] = [];
  for (const name of names) {
    const value = values[name];
    if (typeof value === 'number') out.push({ name, value, labels: null });
    else
      for (const [endpoint, n] of Object.entries(value)) out.push({ name, value: n, labels: { endpoint } });
  }
  return out;
}

// ---- per-table types -----------------------------------------------------------------------------

interface TableTypes {
  row: GraphQLObjectType;
  where: GraphQLInputObjectType;
  orderBy: GraphQLInputObjectType;
  insert: GraphQLInputObjectType;
  set: GraphQLInputObjectType;
  column: GraphQLEnumType;
  connection: GraphQLObjectType;
  mutationResult: GraphQLObjectType;
  liveResult: GraphQLObjectType;
}

function tableTypes(table: TableModel): TableTypes {
  const b = table.gql;
  const row = new GraphQLObjectType({
    name: b,
    description: `A row of table ${JSON.stringify(table.sql)}.`,
    fields: Object.fromEntries(
      table.columns.map((c) => {
        const scalar = scalarFor(c.kind);
        const notNull = c.info.notNull || table.key[0] === c.ident;
        return [
          c.gql,
          {
            type: notNull ? nonNull(scalar) : scalar,
            description: `Column ${JSON.stringify(c.sql)}${c.info.declaredType ? ` ${c.info.declaredType}` : ' (untyped)'}.`,
          },
        ];
      }),
    ),
  });
  const where: GraphQLInputObjectType = new GraphQLInputObjectType({
    name: `${b}Where`,
    description: 'Column conditions, all of which must hold; combine with and / or / not.',
    fields: () => ({
      ...Object.fromEntries(table.columns.map((c) => [c.gql, { type: COMPARISONS[c.kind] }])),
      and: { type: listOf(where) },
      or: { type: listOf(where) },
      not: { type: where },
    }),
  });
  const orderBy = new GraphQLInputObjectType({
    name: `${b}OrderBy`,
    description:
      'One column per item: `orderBy: [{a: ASC}, {b: DESC}]`. The key is appended so the order is total.',
    fields: Object.fromEntries(table.columns.map((c) => [c.gql, { type: OrderDirection }])),
  });
  const writable = table.columns.filter((c) => c.writable);
  const inputFields = (required: boolean): GraphQLInputFieldConfigMap =>
    Object.fromEntries(
      writable.map((c) => [
        c.gql,
        { type: required && c.requiredOnInsert ? nonNull(scalarFor(c.kind)) : scalarFor(c.kind) },
      ]),
    );
  const placeholder = { _: { type: GraphQLBoolean, description: 'The table has no writable column.' } };
  const insert = new GraphQLInputObjectType({
    name: `${b}Insert`,
    fields: writable.length > 0 ? inputFields(true) : placeholder,
  });
  const set = new GraphQLInputObjectType({
    name: `${b}Set`,
    fields: writable.length > 0 ? inputFields(false) : placeholder,
  });
  const column = new GraphQLEnumType({
    name: `${b}Column`,
    values: Object.fromEntries(table.columns.map((c) => [c.gql, { value: c.gql }])),
  });
  const edge = new GraphQLObjectType({
    name: `${b}Edge`,
    fields: { cursor: { type: nonNull(GraphQLString) }, node: { type: nonNull(row) } },
  });
  const connection = new GraphQLObjectType({
    name: `${b}Connection`,
    fields: {
      edges: { type: nonNull(listOf(edge)) },
      nodes: { type: nonNull(listOf(row)) },
      pageInfo: { type: nonNull(PageInfo) },
      totalCount: {
        type: nonNull(GraphQLInt),
        description: 'Rows matching `where` (counted only when asked for).',
      },
    },
  });
  const mutationResult = new GraphQLObjectType({
    name: `${b}MutationResult`,
    fields: { affectedRows: { type: nonNull(GraphQLInt) }, returning: { type: nonNull(listOf(row)) } },
  });
  const liveResult = new GraphQLObjectType({
    name: `${b}LiveResult`,
    fields: {
      sequence: {
        type: nonNull(BigIntScalar),
        description: 'The rows reflect every change up to this sequence.',
      },
      rows: { type: nonNull(listOf(row)), description: 'The whole current result, in order.' },
    },
  });
  return { row, where, orderBy, insert, set, column, connection, mutationResult, liveResult };
}

// ---- the schema ----------------------------------------------------------------------------------

export function buildSchema(view: readonly TableAccess[], deps: GraphQLDeps): GraphQLSchema {
  const query: GraphQLFieldConfigMap<unknown, GraphQLContext> = {};
  const mutation: GraphQLFieldConfigMap<unknown, GraphQLContext> = {};
  const subscription: GraphQLFieldConfigMap<unknown, GraphQLContext> = {};

  for (const access of view) {
    const { table } = access;
    const t = tableTypes(table);
    const b = table.gql;
    const listArgs = {
      where: { type: t.where },
      orderBy: { type: listOf(t.orderBy) },
      limit: { type: GraphQLInt },
      offset: { type: GraphQLInt },
    };
    query[b] = {
      type: nonNull(listOf(t.row)),
      description: `Rows of ${JSON.stringify(table.sql)}.`,
      args: listArgs,
      resolve: guarded(deps, (args: resolve.ListArgs, ctx) => resolve.listRows(deps, ctx, table, args)),
    };
    query[`${b}Connection`] = {
      type: nonNull(t.connection),
      description: `Rows of ${JSON.stringify(table.sql)}, a page at a time (cursor pagination).`,
      args: {
        first: { type: GraphQLInt, description: 'Page size (default 20, at most 10000).' },
        after: { type: GraphQLString, description: "The previous page's pageInfo.endCursor." },
        where: { type: t.where },
        orderBy: { type: listOf(t.orderBy) },
      },
      resolve: guarded(deps, (args: resolve.ConnectionArgs, ctx) =>
        resolve.connection(deps, ctx, table, args),
      ),
    };
    if (access.insert) {
      mutation[`${b}InsertOne`] = {
        type: t.row,
        args: { object: { type: nonNull(t.insert) } },
        resolve: guarded(deps, (args: { object: unknown }, ctx) =>
          resolve.insertOne(deps, ctx, table, args.object),
        ),
      };
      mutation[`${b}InsertMany`] = {
        type: nonNull(t.mutationResult),
        args: { objects: { type: nonNull(listOf(t.insert)) } },
        resolve: guarded(deps, (args: { objects: unknown[] }, ctx) =>
          resolve.insertRows(deps, ctx, table, args.objects),
        ),
      };
    }
    if (access.update) {
      const updateArgs = { where: { type: nonNull(t.where) }, set: { type: nonNull(t.set) } };
      mutation[`${b}UpdateOne`] = {
        type: t.row,
        description: 'Updates the first matching row in key order; null when none matched.',
        args: updateArgs,
        resolve: guarded(
          deps,
          async (args: { where: resolve.ListArgs['where']; set: unknown }, ctx) =>
            (await resolve.updateRows(deps, ctx, table, args, true)).returning[0] ?? null,
        ),
      };
      mutation[`${b}UpdateMany`] = {
        type: nonNull(t.mutationResult),
        args: updateArgs,
        resolve: guarded(deps, (args: { where: resolve.ListArgs['where']; set: unknown }, ctx) =>
          resolve.updateRows(deps, ctx, table, args, false),
        ),
      };
    }
    if (access.delete) {
      const deleteArgs = { where: { type: nonNull(t.where), description: '`{}` matches every row.' } };
      mutation[`${b}DeleteOne`] = {
        type: t.row,
        description: 'Deletes the first matching row in key order; returns it, or null when none matched.',
        args: deleteArgs,
        resolve: guarded(
          deps,
          async (args: { where: resolve.ListArgs['where'] }, ctx) =>
            (await resolve.deleteRows(deps, ctx, table, args, true)).returning[0] ?? null,
        ),
      };
      mutation[`${b}DeleteMany`] = {
        type: nonNull(t.mutationResult),
        args: deleteArgs,
        resolve: guarded(deps, (args: { where: resolve.ListArgs['where'] }, ctx) =>
          resolve.deleteRows(deps, ctx, table, args, false),
        ),
      };
    }
    if (access.insert && access.update) {
      mutation[`${b}Upsert`] = {
        type: t.row,
        description:
          'Inserts, or on a conflict of `onConflict` (default: the primary key) updates `update` (default: every given column outside the conflict target). Null when nothing was written.',
        args: {
          object: { type: nonNull(t.insert) },
          onConflict: { type: listOf(t.column) },
          update: { type: listOf(t.column) },
        },
        resolve: guarded(deps, (args: { object: unknown; onConflict?: string[]; update?: string[] }, ctx) =>
          resolve.upsertRow(deps, ctx, table, args),
        ),
      };
    }
    subscription[`${b}Live`] = subscriptionField(
      deps,
      nonNull(t.liveResult),
      listArgs,
      `A live query of ${JSON.stringify(table.sql)}: the whole result now, then again after every change to it.`,
      (args: resolve.ListArgs, ctx) => liveTable(deps, ctx, table, args),
      (event: LiveResult) => ({ sequence: event.sequence, rows: event.rows.map((r) => rowObject(table, r)) }),
    );
  }

  query.executeSql = {
    type: nonNull(SqlResult),
    description:
      'Runs one read statement with positional `?` params, with your privileges (as POST /api/v1/query).',
    args: { sql: { type: nonNull(GraphQLString) }, params: { type: new GraphQLList(JSONScalar) } },
    resolve: guarded(deps, (args: { sql: string; params?: unknown[] }, ctx) =>
      resolve.executeSql(deps, ctx, args, true),
    ),
  };
  mutation.executeSql = {
    type: nonNull(SqlResult),
    description: 'Runs one statement of any kind with positional `?` params, with your privileges.',
    args: { sql: { type: nonNull(GraphQLString) }, params: { type: new GraphQLList(JSONScalar) } },
    resolve: guarded(deps, (args: { sql: string; params?: unknown[] }, ctx) =>
      resolve.executeSql(deps, ctx, args, false),
    ),
  };

  if (view.length > 0) {
    const TableName = new GraphQLEnumType({
      name: 'TableName',
      description: 'The tables you may read.',
      values: Object.fromEntries(
        view.map(({ table }) => [table.gql, { value: table, description: table.sql }]),
      ),
    });
    const changeArgs = {
      table: { type: nonNull(TableName) },
      where: {
        type: JSONScalar,
        description:
          'Row filter as on /api/v1/stream: `{column: value}` or `{column: {eq|neq|lt|lte|gt|gte|in: …}}`, SQL column names, all must hold.',
      },
      since: { type: BigIntScalar, description: 'Resume: every change after this sequence, then live.' },
    };
    type ChangeArgs = { table: TableModel; where?: unknown; since?: number | string | null };
    subscription.tableChanges = subscriptionField(
      deps,
      nonNull(TableChange),
      changeArgs,
      'Every change to the table (matching `where`), in commit order, exactly once.',
      (args: ChangeArgs, ctx) => tableChanges(deps, ctx, args.table, args),
    );
    for (const [field, event] of [
      ['rowInserted', 'insert'],
      ['rowUpdated', 'update'],
      ['rowDeleted', 'delete'],
    ] as const) {
      subscription[field] = subscriptionField(
        deps,
        nonNull(TableChange),
        changeArgs,
        `tableChanges restricted to ${event}s (an update that enters or leaves the filter counts as an update).`,
        (args: ChangeArgs, ctx) => tableChanges(deps, ctx, args.table, { ...args, events: [event] }),
      );
    }
    subscription.liveQuery = subscriptionField(
      deps,
      nonNull(LiveQueryResult),
      {
        table: { type: nonNull(TableName) },
        where: {
          type: JSONScalar,
          description: "As the table's typed `where` (GraphQL column names, and/or/not).",
        },
        orderBy: { type: JSONScalar, description: 'As the typed `orderBy`: `[{"name": "ASC"}]`.' },
        limit: { type: GraphQLInt },
      },
      'A live query of any table you may read; rows as JSON objects keyed by SQL column names.',
      (args: { table: TableModel; where?: unknown; orderBy?: unknown; limit?: number }, ctx) =>
        liveTable(deps, ctx, args.table, {
          where: (args.where ?? null) as resolve.ListArgs['where'],
          orderBy: (args.orderBy ?? null) as resolve.ListArgs['orderBy'],
          limit: args.limit ?? null,
        }),
      (event: LiveResult) => ({
        table: event.table,
        sequence: event.sequence,
        columns: event.columns,
        rows: event.rows.map((row) => Object.fromEntries(event.columns.map((c, i) => [c, row[i]]))),
      }),
    );
  }
  subscription.documentChanges = subscriptionField(
    deps,
    nonNull(DocumentChange),
    {
      collection: { type: nonNull(GraphQLString) },
      since: { type: BigIntScalar, description: "Resume after this sequence (an event's `sequence`)." },
      fullDocument: { type: FullDocumentMode },
    },
    'A MongoDB-like change stream over a document collection.',
    (args: { collection: string; since?: number | string | null; fullDocument?: 'default' | null }, ctx) =>
      documentChanges(deps, ctx, args),
  );
  subscription.metricUpdated = subscriptionField(
    deps,
    nonNull(MetricUpdate),
    { intervalMs: { type: GraphQLInt, defaultValue: 1000, description: '100 to 60000.' } },
    'Server metrics every intervalMs (MONITOR privilege).',
    (args: { intervalMs: number }, ctx) =>
      metricsStream(deps, ctx, args.intervalMs, (v) => ({
        cpu: v.cpu_percent,
        memory: v.memory_rss_bytes,
        diskIO: v.disk_io_bytes_per_sec,
        activeConnections: v.connections_total,
        queryRate: v.queries_per_sec,
        timestamp: new Date().toISOString(),
      })),
  );
  subscription.systemMetrics = subscriptionField(
    deps,
    nonNull(SystemMetrics),
    {
      intervalSeconds: { type: GraphQLFloat, defaultValue: 1, description: '0.1 to 60.' },
      metricTypes: { type: listOf(MetricType), description: 'Default: every metric.' },
    },
    'Chosen server metrics every intervalSeconds (MONITOR privilege).',
    (args: { intervalSeconds: number; metricTypes?: MetricName[] | null }, ctx) =>
      metricsStream(deps, ctx, Math.round(args.intervalSeconds * 1000), (v) => ({
        timestamp: new Date().toISOString(),
        values: metricValues(v, args.metricTypes),
      })),
  );

  return new GraphQLSchema({
    query: new GraphQLObjectType({ name: 'Query', fields: query }),
    mutation: new GraphQLObjectType({ name: 'Mutation', fields: mutation }),
    subscription: new GraphQLObjectType({ name: 'Subscription', fields: subscription }),
  });
}

export type { TableChangeEvent };
