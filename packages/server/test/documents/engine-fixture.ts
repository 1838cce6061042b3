/**
 * Collections in the document store's layout on either engine, for the compiler suites that run on
 * both: SQLite in memory (through libsql, as the server uses), or a fresh PostgreSQL database on the
 * tests' server with `jsonb` documents and the GIN index every collection gets. Every compiled
 * statement is checked by actually running it.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { DocumentDialect } from '../../src/documents/document-dialect.ts';
import { postgresDialect } from '../../src/documents/postgres-dialect.ts';
import { documentFunctionsSql } from '../../src/engine/postgres/database-setup.ts';
import { sqliteDialect } from '../../src/documents/sqlite-dialect.ts';
import type { SqlParam } from '../../src/documents/sql-fragment.ts';
import { asSuperuser, postgresUrl, type EngineName } from '../helpers/engines.ts';
import { openDatabase, rows, type Doc } from './sqlite-fixture.ts';

export interface DocumentDb {
  readonly dialect: DocumentDialect;
  /** Runs a query with `?` placeholders and returns its rows as arrays of values. */
  rows(sql: string, params: readonly SqlParam[]): Promise<unknown[][]>;
  /** Puts the collections back as they were seeded. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

interface PgClient {
  connect(): Promise<void>;
  query(config: {
    text: string;
    values?: readonly unknown[];
    rowMode?: 'array';
  }): Promise<{ rows: unknown[][] }>;
  end(): Promise<void>;
}

const pg = createRequire(import.meta.url)('pg') as {
  Client: new (config: { connectionString: string }) => PgClient;
};

/** `?` placeholders as PostgreSQL's `$n` (the compilers bind every value, so no `?` is in a literal). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

async function openPostgres(collections: Record<string, readonly Doc[]>): Promise<DocumentDb> {
  const name = `docs_${randomBytes(6).toString('hex')}`;
  await asSuperuser([`CREATE DATABASE ${name}`]);
  const url = new URL(await postgresUrl());
  url.pathname = `/${name}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  // The helper functions compiled updates call, as the server's database set-up makes them.
  await client.query({ text: `CREATE SCHEMA rustydb_api; ${documentFunctionsSql('PUBLIC')}` });
  for (const table of Object.keys(collections)) {
    for (const statement of postgresDialect.createCollection({ sql: `"${table}"`, params: [] })) {
      await client.query({ text: statement });
    }
  }
  const seed = async () => {
    for (const [table, docs] of Object.entries(collections)) {
      await client.query({ text: `TRUNCATE "${table}"` });
      for (const doc of docs) {
        await client.query({
          text: `INSERT INTO "${table}" (_id, doc) VALUES ($1, $2::jsonb)`,
          values: [String(doc._id), JSON.stringify(doc)],
        });
      }
    }
  };
  await seed();
  return {
    dialect: postgresDialect,
    async rows(sql, params) {
      return (await client.query({ text: numbered(sql), values: params, rowMode: 'array' })).rows;
    },
    reset: seed,
    async close() {
      await client.end();
      await asSuperuser([`DROP DATABASE IF EXISTS ${name}`]);
    },
  };
}

/** A fresh database on `engine` with one collection per entry, seeded with the given documents. */
export async function openDocumentDb(
  engine: EngineName,
  collections: Record<string, readonly Doc[]>,
): Promise<DocumentDb> {
  if (engine === 'postgres') return openPostgres(collections);
  let db = openDatabase(collections);
  return {
    dialect: sqliteDialect,
    rows: async (sql, params) => rows(db, sql, params),
    async reset() {
      db.close();
      db = openDatabase(collections);
    },
    close: async () => db.close(),
  };
}

/** The first column of each row as a document (SQLite hands back JSON text, PostgreSQL parsed jsonb). */
export async function documentsOf(
  db: DocumentDb,
  compiled: { sql: string; params: SqlParam[] },
): Promise<unknown[]> {
  const found = await db.rows(compiled.sql, compiled.params);
  return found.map((row) => (typeof row[0] === 'string' ? (JSON.parse(row[0]) as unknown) : row[0]));
}
