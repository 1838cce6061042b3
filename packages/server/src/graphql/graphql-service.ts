/**
 * The GraphQL layer's state: the catalog the schema is generated from, kept current, and one schema per
 * distinct view (what a caller may read and write). The catalog is read again after every DDL record
 * the change feed delivers, and checked against SQLite's schema counter before each operation, so a
 * table created a moment ago is already there. Rebuilding makes new schemas for new operations only:
 * running subscriptions keep the schema they started with and go on undisturbed, unless their own table
 * is dropped (they then get a SCHEMA event and end).
 */
import {
  NoSchemaIntrospectionCustomRule,
  specifiedRules,
  type GraphQLSchema,
  type ValidationRule,
} from 'graphql';
import type { ChangeFeed } from '../changes/change-feed.ts';
import type { Principal } from '../auth/authenticator.ts';
import type { AccessNeed } from '../engine/engine.ts';
import { describeError } from '../core/logger.ts';
import type { GraphQLContext, GraphQLDeps } from './context.ts';
import { DocumentCache } from './document-cache.ts';
import { operationLimitsRule } from './limits.ts';
import { buildSchema, type TableAccess } from './schema-builder.ts';
import { tableModels, type TableModel } from './table-model.ts';

/** Distinct views whose schemas are kept (least recently used ones are dropped beyond this). */
const SCHEMA_CACHE = 64;

export class GraphQLService {
  readonly #deps: GraphQLDeps;
  #models: TableModel[] = [];
  #catalogKey = '';
  #schemaVersion = -1;
  /** Bumped whenever the catalog changes; part of every view key. */
  #generation = 0;
  #refreshing: Promise<void> | undefined;
  #stale = true;
  readonly #schemas = new Map<string, GraphQLSchema>();
  readonly #stopListening: () => void;
  readonly #rules: ValidationRule[];
  /** Documents parsed once per query text and validated once per schema, for every endpoint. */
  readonly documents: DocumentCache;

  constructor(deps: GraphQLDeps, feed: ChangeFeed) {
    this.#deps = deps;
    // A hint only: every operation checks the schema counter first (#current), so the feed need not
    // read the log for this listener's sake.
    this.#stopListening = feed.listen(
      (records) => {
        if (records.some((r) => r.op === 'ddl')) {
          this.#stale = true;
          void this.#refresh();
        }
      },
      { needsRecords: () => false },
    );
    const { config } = deps;
    this.#rules = [
      operationLimitsRule({
        maxDepth: config.graphql_max_depth,
        maxComplexity: config.graphql_max_complexity,
      }),
      ...(config.graphql_introspection ? [] : [NoSchemaIntrospectionCustomRule]),
    ];
    this.documents = new DocumentCache([...specifiedRules, ...this.#rules]);
  }

  /** Validation rules added to GraphQL's own: depth and complexity limits, introspection off if configured. */
  get validationRules(): readonly ValidationRule[] {
    return this.#rules;
  }

  /** The tables as the schema currently sees them. */
  get tables(): readonly TableModel[] {
    return this.#models;
  }

  async start(): Promise<void> {
    await this.#refresh();
  }

  close(): void {
    this.#stopListening();
    this.#schemas.clear();
  }

  /** The schema of what `principal` may see, built from the current catalog. */
  async schemaFor(principal: Principal): Promise<GraphQLSchema> {
    await this.#current();
    const caller = await this.#deps.access.callerFor(principal);
    // One question to the engine for every table and privilege: what the caller holds, as enforced.
    const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;
    const needs = this.#models.flatMap((table) =>
      privileges.map((privilege): AccessNeed => ({ privilege, table: table.sql })),
    );
    const held = await this.#deps.engine.holds(caller, needs);
    const view = this.#models.flatMap((table, t): TableAccess[] => {
      const may = (privilege: (typeof privileges)[number]): boolean =>
        held[t * privileges.length + privileges.indexOf(privilege)] === true;
      if (!may('SELECT')) return [];
      return [{ table, insert: may('INSERT'), update: may('UPDATE'), delete: may('DELETE') }];
    });
    const key = `${this.#generation}:${view.map((v) => `${v.table.sql}\u0000${+v.insert}${+v.update}${+v.delete}`).join('\u0001')}`;
    let schema = this.#schemas.get(key);
    if (schema) {
      this.#schemas.delete(key);
    } else {
      schema = buildSchema(view, this.#deps);
      if (this.#schemas.size >= SCHEMA_CACHE) this.#schemas.delete(this.#schemas.keys().next().value!);
    }
    this.#schemas.set(key, schema);
    return schema;
  }

  /** A resolver context for one operation. */
  async contextFor(
    principal: Principal,
    connection: {
      sessionId: string;
      operationId: string;
      bufferedAmount?: () => number;
      signal?: AbortSignal;
      sendNext?: (payload: Buffer) => void;
    },
  ): Promise<GraphQLContext> {
    return {
      principal,
      caller: await this.#deps.access.callerFor(principal),
      sessionId: connection.sessionId,
      operationId: connection.operationId,
      bufferedAmount: connection.bufferedAmount ?? (() => 0),
      ...(connection.signal ? { signal: connection.signal } : {}),
      ...(connection.sendNext ? { sendNext: connection.sendNext } : {}),
    };
  }

  /** Makes sure the catalog is current: after a DDL record, or when SQLite's schema counter moved. */
  async #current(): Promise<void> {
    if (!this.#stale) {
      try {
        if ((await this.#deps.engine.schemaVersion()) !== this.#schemaVersion) this.#stale = true;
      } catch (err) {
        this.#deps.logger.warn('reading the schema version failed', describeError(err));
      }
    }
    if (this.#stale) await this.#refresh();
  }

  #refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        while (this.#stale) {
          this.#stale = false;
          const version = await this.#deps.engine.schemaVersion();
          const catalog = await this.#deps.engine.readCatalog();
          this.#schemaVersion = version;
          const key = JSON.stringify(catalog);
          if (key !== this.#catalogKey) {
            this.#catalogKey = key;
            this.#models = tableModels(catalog);
            this.#generation++;
            this.#schemas.clear();
          }
        }
      } catch (err) {
        this.#stale = true;
        this.#deps.logger.error('reading the catalog for GraphQL failed', describeError(err));
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }
}
