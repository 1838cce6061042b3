/**
 * Compiles the statements that follow DDL in a transactional batch, which cannot be compiled where the
 * batch runs: the tables they name are created by that batch, and an EXPLAIN on the batch's own
 * connection is never reset by libsql, which then blocks the batch's COMMIT (and any DROP after it).
 *
 * The replica is an empty in-memory database holding a copy of the schema (tables, views, indexes,
 * triggers, virtual tables), to which the batch's DDL is applied in order. A statement compiles there
 * to the program it compiles to in the database, but for the data: which tables, virtual tables and
 * functions it reaches is read from that program like any other (access-analyzer.ts). Without it, such
 * statements were held only to privileges on every table, which let through what no table privilege
 * covers: virtual tables, the connection's state, the catalogue read through a view.
 */
import type { StatementAccess } from '../engine.ts';
import type { GuardedStatement } from '../statement-guard.ts';
import { AccessAnalyzer } from './access-analyzer.ts';
import { openSync, type SyncDatabase } from './driver.ts';

/** The schema as it was at one version. */
export interface SchemaCopy {
  /** `PRAGMA schema_version` read before the schema: a change in between makes it older, never newer. */
  version: number;
  /** The CREATE statements, in the order they were made. */
  statements: string[];
}

/** SQLite's own objects (created with the tables that need them) and objects without SQL (autoindexes). */
const SCHEMA_SQL =
  "SELECT sql FROM sqlite_schema WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid";

/** Reads the schema on `source` (a connection that is not inside a transaction of its own). */
export function copySchema(source: SyncDatabase): SchemaCopy {
  const version = Number(source.prepare('PRAGMA schema_version').raw().get([])?.[0] ?? 0);
  const statements = source
    .prepare(SCHEMA_SQL)
    .raw()
    .all([])
    .map((row) => String(row[0]));
  return { version, statements };
}

export class SchemaReplica {
  readonly #copy: SchemaCopy;
  /** The batch's DDL applied so far, in order. */
  readonly #applied: string[] = [];
  #db: SyncDatabase | undefined;
  #analyzer: AccessAnalyzer | undefined;
  /**
   * An EXPLAIN ran since the replica was built. libsql never resets it, and SQLite then refuses to drop
   * a table or an index on that connection ("database table is locked"): a DROP or an ALTER after one
   * starts from a fresh replica. (CREATE is not affected, which keeps a long migration from rebuilding
   * the replica for every statement.)
   */
  #explained = false;

  constructor(copy: SchemaCopy) {
    this.#copy = copy;
  }

  get version(): number {
    return this.#copy.version;
  }

  /**
   * Applies one of the batch's DDL statements. A statement that fails here is one that fails in the
   * batch too (the batch then stops at it), so its failure is left for the batch to report.
   */
  apply(ddl: GuardedStatement): void {
    if (this.#explained && ddl.verb !== 'CREATE') this.#discard();
    this.#applied.push(ddl.text);
    if (!this.#db) return;
    try {
      this.#db.exec(ddl.text);
    } catch {
      // See above.
    }
  }

  /** The access of `guarded` compiled against the schema the batch will have made by then. */
  analyze(guarded: GuardedStatement): StatementAccess {
    const analyzer = this.#open();
    this.#explained = true;
    return analyzer.analyze(guarded);
  }

  close(): void {
    this.#discard();
  }

  #open(): AccessAnalyzer {
    if (this.#analyzer) return this.#analyzer;
    const db = openSync(':memory:');
    // Foreign-key checks read the tables referred to: they must be in the program as they are in the
    // database's.
    db.exec('PRAGMA foreign_keys = ON');
    loadInOrder(db, this.#copy.statements);
    for (const ddl of this.#applied) {
      try {
        db.exec(ddl);
      } catch {
        // Left for the batch to report (see apply).
      }
    }
    this.#db = db;
    this.#analyzer = new AccessAnalyzer(db, db);
    return this.#analyzer;
  }

  #discard(): void {
    this.#db?.close();
    this.#db = undefined;
    this.#analyzer = undefined;
    this.#explained = false;
  }
}

/**
 * Creates every object, in as many passes as their dependencies need (a view made before a table it
 * reads was re-created). What never succeeds — a virtual table's own shadow tables, which creating the
 * virtual table made already — is left out; a statement that needs a missing object fails to compile,
 * and the caller then refuses it.
 */
function loadInOrder(db: SyncDatabase, statements: readonly string[]): void {
  let pending = [...statements];
  for (;;) {
    const failed = pending.filter((sql) => {
      try {
        db.exec(sql);
        return false;
      } catch {
        return true;
      }
    });
    if (failed.length === 0 || failed.length === pending.length) return;
    pending = failed;
  }
}
