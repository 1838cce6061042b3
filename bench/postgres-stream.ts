/**
 * (h) Streaming a 1M-row SELECT from PostgreSQL: `ws /api/v1/stream` on a server with
 * `--engine postgres`, against the in-process limit — node-postgres with a cursor (pg-cursor) in this
 * process, reading the same rows in the same chunks, converting them with the engine's own value
 * mapping and turning them into the same JSON `data` envelopes. PostgreSQL is a throwaway server started
 * here (Debian's postgresql 15+), on loopback; the table is the SQLite benchmark's, generated in SQL.
 */
import { createRequire } from 'node:module';
import { openCursor, type PgClient } from '../packages/server/src/engine/postgres/driver.ts';
import { StreamConnection, login } from './lib/client.ts';
import { ROWS_TABLE, ROWS_TOTAL } from './lib/dataset.ts';
import { table, type BenchContext, type BenchReport } from './lib/report.ts';
import { dropDatabases, notMeasured, postgresMissing, sharedPostgres } from './lib/postgres-nodes.ts';
import { startRustyServer } from './lib/rusty-server.ts';
import { count, mb, ratio, verdict } from './lib/stats.ts';
import { CHUNK_SIZE, SQL, medianRun, overWebSocket, rate, type Run } from './stream-throughput.ts';

const TARGET_RATIO = 0.8;
const REPETITIONS = 3;
const ROLE_PASSWORD = 'bench-node-password';
/** This benchmark's database on the run's shared PostgreSQL server. */
const DATABASE = 'bench';
const TITLE = 'Streaming a 1M-row SELECT from PostgreSQL';

const require = createRequire(import.meta.url);
const pg = require('pg') as { Client: new (config: { connectionString: string }) => PgClient };

async function connect(url: string): Promise<PgClient> {
  const client = new pg.Client({ connectionString: url });
  // A connection the database drops (the throwaway server stopping) must not crash the bench.
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/** The in-process limit: pg + pg-cursor, the engine's parsers, the same envelopes. */
async function inProcessLimit(url: string, rows: number): Promise<Run> {
  const client = await connect(url);
  try {
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    await client.query('BEGIN READ ONLY');
    const { cursor, first } = openCursor(client, SQL.replace('?', '$1'), [rows], CHUNK_SIZE);
    let total = 0;
    let bytes = 0;
    let messages = 0;
    for (let read = first; ; read = cursor.read(CHUNK_SIZE)) {
      const chunk = await read;
      total += chunk.length;
      const hasMore = chunk.length === CHUNK_SIZE;
      const columns = (cursor._result?.fields ?? []).map((f) => f.name);
      const payload: Record<string, unknown> = { status: 'success', columns, rows: chunk, has_more: hasMore };
      if (!hasMore) payload.rows_affected = total;
      const text = JSON.stringify({ type: 'data', payload, timestamp: new Date().toISOString(), id: 'q' });
      bytes += text.length;
      messages++;
      if (!hasMore) break;
    }
    await cursor.close();
    await client.query('COMMIT');
    const seconds = (performance.now() - started) / 1000;
    const cpu = process.cpuUsage(cpuBefore);
    return { rows: total, seconds, cpu: (cpu.user + cpu.system) / 1e6, bytes, messages };
  } finally {
    await client.end();
  }
}

/** This benchmark's database, made once (see preparePostgresStream): the owner role's URL. */
let prepared: Promise<string> | undefined;

/**
 * Makes the database this benchmark reads, on the run's shared PostgreSQL: the 1M rows, then VACUUM
 * ANALYZE and a checkpoint, so that no autovacuum or write-out of the fresh table runs during a
 * measurement, this one's or another benchmark's. run.ts calls it during the run's set-up, while the SQLite dataset is written; the
 * benchmark waits for it (or starts it) itself. Resolves with the owner role's URL.
 */
export function preparePostgresStream(): Promise<string> {
  prepared ??= (async () => {
    const postgres = await sharedPostgres();
    const url = await postgres.createDatabase(DATABASE, ROLE_PASSWORD);
    const owner = await connect(url);
    try {
      await owner.query(
        `CREATE TABLE ${ROWS_TABLE} (id integer PRIMARY KEY, name text, value double precision)`,
      );
      await owner.query(
        `INSERT INTO ${ROWS_TABLE} SELECT x, 'name-' || x, (x::bigint * 7919 % 100000) / 100.0
           FROM generate_series(1, ${ROWS_TOTAL}) AS x`,
      );
      await owner.query(`VACUUM ANALYZE ${ROWS_TABLE}`);
    } finally {
      await owner.end();
    }
    // The table's pages written out now, not by PostgreSQL's background writer during the next benchmarks.
    const superuser = await connect(postgres.url);
    try {
      await superuser.query('CHECKPOINT');
    } finally {
      await superuser.end();
    }
    return url;
  })();
  return prepared;
}

export async function runPostgresStream(ctx: BenchContext): Promise<BenchReport> {
  const missing = postgresMissing();
  if (missing) return notMeasured('h', TITLE, missing);
  const postgres = await sharedPostgres();
  try {
    const url = new URL(await preparePostgresStream());

    const server = await startRustyServer({
      dataDir: ctx.dataDir,
      flags: ['--engine', 'postgres', '--database-url', url.toString()],
      ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
    });
    try {
      // The admin's statements run as its session role: it must be able to read the table.
      const token = await login(server.url);
      const conn = await StreamConnection.open(server.streamUrl, token);
      await inProcessLimit(url.toString(), 100_000);
      await overWebSocket(conn.ws, server.pid, 100_000);
      const baseline: Run[] = [];
      const served: Run[] = [];
      for (let i = 0; i < REPETITIONS; i++) {
        baseline.push(await inProcessLimit(url.toString(), ROWS_TOTAL));
        served.push(await overWebSocket(conn.ws, server.pid, ROWS_TOTAL));
        ctx.log(
          `  (h) rep ${i + 1}: in-process pg+cursor ${count(rate(baseline[i]!))} rows/s, ` +
            `ws ${count(rate(served[i]!))} rows/s`,
        );
      }
      await conn.close();
      const base = medianRun(baseline);
      const ws = medianRun(served);
      const r = rate(ws) / rate(base);
      const markdown = [
        `\`${SQL.replace('?', String(ROWS_TOTAL))}\` on PostgreSQL (throwaway local server), chunk size ` +
          `${CHUNK_SIZE}; median of ${served.length} alternating repetitions after a 100k-row warm-up. The ` +
          `table was loaded and vacuumed (VACUUM ANALYZE) during the run's set-up, so no autovacuum of it ` +
          `runs during the repetitions.`,
        '',
        table(
          ['', 'rows/s', 'wall time', 'messages', 'bytes'],
          [
            [
              'in-process limit (pg + pg-cursor, the engine value mapping, JSON.stringify of the envelope)',
              count(rate(base)),
              `${base.seconds.toFixed(2)} s`,
              count(base.messages),
              mb(base.bytes),
            ],
            [
              '`ws /api/v1/stream`, `--engine postgres`',
              count(rate(ws)),
              `${ws.seconds.toFixed(2)} s`,
              count(ws.messages),
              mb(ws.bytes),
            ],
          ],
        ),
        '',
        `**Ratio ws / in-process: ${ratio(r)}** (target ≥ ${TARGET_RATIO}: ${verdict(r >= TARGET_RATIO)}).`,
      ].join('\n');
      return {
        key: 'h',
        title: TITLE,
        markdown,
        targets: [
          { name: `ws rows/s ≥ ${TARGET_RATIO}× pg + cursor`, measured: ratio(r), met: r >= TARGET_RATIO },
        ],
      };
    } finally {
      await server.stop();
    }
  } finally {
    await dropDatabases(ctx, postgres, [DATABASE]);
  }
}
