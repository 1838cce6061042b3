/**
 * The data every benchmark reads, created once per run through the server itself (so the file is
 * exactly what the server would make) in a throw-away data directory.
 */
import { join } from 'node:path';
import { StreamConnection, login } from './client.ts';
import { startRustyServer } from './rusty-server.ts';

/**
 * (id INTEGER, name TEXT, value REAL), 1M rows: streamed whole in (a), five times over in (d).
 * Every row written through the server also lands in its change log, whose default size limit
 * (changelog_max_entries) is 1M: a bigger table would leave the server pruning the log during the
 * measurements; this size leaves it at the limit, where a server that has been running a while is.
 */
export const ROWS_TABLE = 'bench_rows';
export const ROWS_TOTAL = 1_000_000;
/** Small key/value table for the round-trip benchmark. */
export const KV_TABLE = 'kv';
export const KV_ROWS = 10_000;

/** The database file the server keeps in its data directory (the engine's default name). */
export function databasePath(dataDir: string): string {
  return join(dataDir, 'rustydb.sqlite');
}

/** Rows per INSERT statement: each one stays far inside the statement timeout. */
const INSERT_BATCH = 250_000;
/**
 * Inserting runs through the server's write path (change capture included), which on a busy 2-core
 * machine has taken ~30 s for 5M rows; the default 30 s statement timeout is lifted for set-up only.
 */
const SETUP_STATEMENT_TIMEOUT_S = 600;

export async function createDataset(dataDir: string, log: (line: string) => void): Promise<void> {
  const server = await startRustyServer({
    dataDir,
    flags: ['--statement-timeout', String(SETUP_STATEMENT_TIMEOUT_S)],
  });
  try {
    const connection = await StreamConnection.open(server.streamUrl, await login(server.url));
    const started = performance.now();
    await connection.query(`CREATE TABLE ${ROWS_TABLE} (id INTEGER PRIMARY KEY, name TEXT, value REAL)`);
    // Generated inside SQLite: one statement, no client round trips. Values have fractional parts so
    // that JSON number formatting is exercised, names vary in length like real text.
    for (let first = 1; first <= ROWS_TOTAL; first += INSERT_BATCH) {
      const last = Math.min(ROWS_TOTAL, first + INSERT_BATCH - 1);
      await connection.query(
        `INSERT INTO ${ROWS_TABLE} (id, name, value)
         WITH RECURSIVE seq(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
         SELECT x, 'name-' || x, (x * 7919 % 100000) / 100.0 FROM seq`,
        [first, last],
        SETUP_STATEMENT_TIMEOUT_S * 1000,
      );
    }
    await createKvTable(connection);
    log(
      `dataset: ${ROWS_TOTAL.toLocaleString('en-US')} rows in ${ROWS_TABLE}, ${KV_ROWS} in ${KV_TABLE} ` +
        `(${((performance.now() - started) / 1000).toFixed(1)} s)`,
    );
    await connection.close();
  } finally {
    await server.stop();
  }
}

/** Makes (b)'s key-value table on a server: KV_ROWS rows, generated inside SQLite in one statement. */
export async function createKvTable(connection: StreamConnection): Promise<void> {
  await connection.query(`CREATE TABLE ${KV_TABLE} (k INTEGER PRIMARY KEY, v TEXT)`);
  await connection.query(
    `INSERT INTO ${KV_TABLE} (k, v)
     WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?)
     SELECT x, 'value-' || x FROM seq`,
    [KV_ROWS],
  );
}
