/**
 * A PostgreSQL server of a test file's own, for tests that change a server-wide setting, and the window
 * those tests open with it: a commit is decoded from the WAL (and so reaches the change capture) a
 * moment before it is visible to new snapshots, since the committing backend leaves the proc array only
 * after its WAL flush. With `synchronous_standby_names` naming a standby that is not there, a commit with
 * `synchronous_commit = on` is flushed (and decoded) but waits for the standby before it becomes
 * visible, for as long as a test likes; RustyDB's own connections use `local` (the node database's
 * default here), so they never wait.
 */
import { createRequire } from 'node:module';
import { sleep } from './test-server.ts';
import { startTestPostgres, type TestPostgres } from '../../../../scripts/postgres-for-tests.mjs';

const require = createRequire(import.meta.url);
const pg = require('pg') as {
  Client: new (config: { connectionString: string }) => {
    connect(): Promise<void>;
    query(text: string): Promise<{ rows: Record<string, unknown>[] }>;
    end(): Promise<void>;
  };
};

/** Runs `statements` in turn on a connection of their own to `url`; the last one's result. */
export async function runStatements(
  url: string,
  statements: string[],
): Promise<{ rows: Record<string, unknown>[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    let last = { rows: [] as Record<string, unknown>[] };
    for (const statement of statements) last = await client.query(statement);
    return last;
  } finally {
    await client.end();
  }
}

export interface OwnPostgres {
  postgres: TestPostgres;
  /** The node's database, as its own login role (what the RustyDB node is given). */
  nodeUrl: string;
  /** The node's database, as the superuser. */
  superuserOfNode: string;
}

/** Starts the server, with a database `node` whose commits never wait for a standby. */
export async function startOwnPostgres(): Promise<OwnPostgres> {
  const postgres = await startTestPostgres();
  const nodeUrl = await postgres.createDatabase('node', 'node-password');
  await runStatements(postgres.url, ['ALTER DATABASE node SET synchronous_commit = local']);
  const url = new URL(postgres.url);
  url.pathname = '/node';
  return { postgres, nodeUrl, superuserOfNode: url.toString() };
}

/**
 * Runs `statement` (on a connection of its own to `writerUrl`, with `synchronous_commit = on`) so that
 * its commit is flushed but waits, not yet visible; runs `during` meanwhile, then lets the commit become
 * visible and waits for it. False when the commit did not wait (`during` was not run): the checkpointer
 * applies a reload of synchronous_standby_names a moment after pg_reload_conf(), and a commit before that
 * is visible at once (the caller tries again).
 */
export async function inCommitWindow(
  own: OwnPostgres,
  writerUrl: string,
  statement: string,
  during: () => Promise<void>,
): Promise<boolean> {
  await runStatements(own.postgres.url, [
    "ALTER SYSTEM SET synchronous_standby_names = 'rustydb_absent_standby'",
    'SELECT pg_reload_conf()',
  ]);
  const writer = new pg.Client({ connectionString: writerUrl });
  await writer.connect();
  let finished = false;
  let writing: Promise<unknown> | undefined;
  try {
    const pid = Number((await writer.query('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
    writing = writer.query(`SET synchronous_commit = on; ${statement}`).finally(() => (finished = true));
    for (;;) {
      const { rows } = await runStatements(own.postgres.url, [
        `SELECT wait_event FROM pg_stat_activity WHERE pid = ${pid}`,
      ]);
      if (rows[0]?.wait_event === 'SyncRep') break;
      if (finished) return false;
      await sleep(5);
    }
    await during();
    return true;
  } finally {
    await runStatements(own.postgres.url, [
      'ALTER SYSTEM RESET synchronous_standby_names',
      'SELECT pg_reload_conf()',
    ]);
    await writing;
    await writer.end();
  }
}
