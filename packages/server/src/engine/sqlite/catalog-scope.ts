/**
 * Cuts SQLite's catalog to what each caller may see. A caller without ADMIN who names the catalog in a
 * statement (the schema table, a schema PRAGMA or its function) has it served from the part it may see
 * (catalog-rewrite.ts): this view of the engine rewrites such statements before the engine runs them.
 * The rule itself is enforced elsewhere: a statement whose compiled program still reads the catalog is
 * refused to a caller without ADMIN (AccessControl.check), whatever path it took.
 */
import type { AccessNeed, Caller, Engine, StatementInput } from '../engine.ts';
import { overrideEngine } from '../engine-view.ts';
import { readWholeCatalog, visiblePart, type Catalog } from './visible-catalog.ts';
import { mayNameCatalog, rewriteCatalogReads } from './catalog-rewrite.ts';

const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function holds(caller: Caller, need: AccessNeed): boolean {
  try {
    caller.authorize({ needs: [need], tables: need.table === undefined ? [] : [need.table], kind: 'read' });
    return true;
  } catch {
    return false;
  }
}

/** The whole catalog of the current schema version, read once per version. */
class CatalogCache {
  readonly #engine: Engine;
  #current: { version: number; catalog: Promise<Catalog> } | undefined;

  constructor(engine: Engine) {
    this.#engine = engine;
  }

  async get(): Promise<Catalog> {
    const version = await this.#engine.schemaVersion();
    if (this.#current?.version !== version) {
      this.#current = { version, catalog: readWholeCatalog(this.#engine.internal) };
    }
    const current = this.#current;
    try {
      return await current.catalog;
    } catch (err) {
      if (this.#current === current) this.#current = undefined;
      throw err;
    }
  }
}

/** The part of the catalog `caller` may see. */
async function visibleTo(engine: Engine, cache: CatalogCache, caller: Caller): Promise<Catalog> {
  const catalog = await cache.get();
  const readableViews = new Set<string>();
  for (const row of catalog.schema) {
    if (row.type !== 'view') continue;
    const view = String(row.name);
    try {
      caller.authorize(await engine.describe(`SELECT * FROM ${quoteIdentifier(view)}`));
      readableViews.add(view.toLowerCase());
    } catch {
      // Not readable by this caller (or no longer compiling): not shown.
    }
  }
  return visiblePart(catalog, {
    holds: (table, privilege) =>
      privilege
        ? holds(caller, { privilege, table })
        : TABLE_PRIVILEGES.some((p) => holds(caller, { privilege: p, table })),
    readableViews,
  });
}

/** The engine as callers without ADMIN see SQLite's catalog through it. */
export function catalogScopedEngine(engine: Engine): Engine {
  const cache = new CatalogCache(engine);
  /** Whether the statement names the catalog and its caller may not read it whole. */
  const needsScope = (sql: string, caller: Caller | undefined): caller is Caller =>
    caller !== undefined && mayNameCatalog(sql) && !holds(caller, { privilege: 'ADMIN' });
  const scoped = async (statement: StatementInput, caller: Caller | undefined): Promise<StatementInput> => {
    if (!needsScope(statement.sql, caller)) return statement;
    const sql = rewriteCatalogReads(statement.sql, await visibleTo(engine, cache, caller));
    return sql === statement.sql ? statement : { ...statement, sql };
  };

  const runInline = engine.runInline;
  return overrideEngine(engine, {
    async *stream(statement, options) {
      yield* engine.stream(await scoped(statement, options.caller), options);
    },
    async execute(statement, options) {
      return engine.execute(await scoped(statement, options.caller), options);
    },
    async batch(statements, options) {
      const rewritten = await Promise.all(statements.map((s) => scoped(s, options.caller)));
      return engine.batch(rewritten, options);
    },
    async snapshot(statement, options) {
      return engine.snapshot(await scoped(statement, options.caller), options);
    },
    // The catalog is read asynchronously: such statements take the asynchronous path.
    ...(typeof runInline === 'function'
      ? {
          runInline: (statement: StatementInput, caller: Caller | undefined) =>
            needsScope(statement.sql, caller) ? undefined : runInline.call(engine, statement, caller),
        }
      : {}),
  });
}
