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
import { mayNameCatalog, quoteIdentifier, rewriteCatalogReads } from './catalog-rewrite.ts';

const TABLE_PRIVILEGES = ['SELECT', 'INSERT', 'UPDATE', 'DELETE'] as const;

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
  // Every table privilege on every table, asked of the engine at once.
  const tables = [...new Set(catalog.schema.map((row) => String(row.tbl_name)))];
  const needs: AccessNeed[] = tables.flatMap((table) =>
    TABLE_PRIVILEGES.map((privilege) => ({ privilege, table })),
  );
  const answers = await engine.holds(caller, needs);
  const held = new Set(needs.flatMap((need, i) => (answers[i] ? [`${need.privilege} ${need.table}`] : [])));
  return visiblePart(catalog, {
    holds: (table, privilege) =>
      (privilege ? [privilege] : TABLE_PRIVILEGES).some((p) => held.has(`${p} ${table}`)),
    readableViews,
  });
}

/** The engine as callers without ADMIN see SQLite's catalog through it. */
export function catalogScopedEngine(engine: Engine): Engine {
  const cache = new CatalogCache(engine);
  const scoped = async (statement: StatementInput, caller: Caller | undefined): Promise<StatementInput> => {
    if (caller === undefined || !mayNameCatalog(statement.sql)) return statement;
    const [admin] = await engine.holds(caller, [{ privilege: 'ADMIN' }]);
    if (admin) return statement;
    const sql = rewriteCatalogReads(statement.sql, await visibleTo(engine, cache, caller));
    return sql === statement.sql ? statement : { ...statement, sql };
  };

  const runInline = engine.runInline;
  return overrideEngine(engine, {
    async *stream(statement, options) {
      yield* engine.stream(await scoped(statement, options.caller), options);
    },
    execute(statement, options) {
      // Most statements name no catalog: passed on as they are, without a wait for the rewrite.
      if (options.caller === undefined || !mayNameCatalog(statement.sql))
        return engine.execute(statement, options);
      return scoped(statement, options.caller).then((rewritten) => engine.execute(rewritten, options));
    },
    async batch(statements, options) {
      const rewritten = await Promise.all(statements.map((s) => scoped(s, options.caller)));
      return engine.batch(rewritten, options);
    },
    async snapshot(statement, options) {
      return engine.snapshot(await scoped(statement, options.caller), options);
    },
    // Whether the caller may read the catalog whole, and the part it may see, are known asynchronously:
    // statements that name the catalog take the asynchronous path.
    ...(typeof runInline === 'function'
      ? {
          runInline: (statement: StatementInput, caller: Caller | undefined) =>
            caller !== undefined && mayNameCatalog(statement.sql)
              ? undefined
              : runInline.call(engine, statement, caller),
        }
      : {}),
  });
}
