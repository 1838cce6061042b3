/**
 * RustyDB nodes on a throwaway PostgreSQL, for the benchmarks of the PostgreSQL engine: the server is
 * scripts/postgres-for-tests.mjs's (loopback only, stopped by the caller), each database is owned by a login
 * role with exactly what a deployment gives RustyDB, and each node is the compiled server as a child
 * process (bench/lib/rusty-server.ts) with a data directory of its own (its audit log).
 */
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import {
  findPostgresBin,
  postgresBinProblem,
  startTestPostgres,
  type TestPostgres,
} from '../../scripts/postgres-for-tests.mjs';
import type { BenchContext, BenchReport } from './report.ts';
import { startRustyServer, type RustyServerProcess } from './rusty-server.ts';

/** Why the PostgreSQL benchmarks cannot run here, or undefined when they can. */
export function postgresMissing(): string | undefined {
  return postgresBinProblem(findPostgresBin());
}

/** The report of a PostgreSQL benchmark on a machine without PostgreSQL: says so, measures nothing. */
export function notMeasured(key: string, title: string, why: string): BenchReport {
  return {
    key,
    title,
    markdown: `Not measured: ${why} (install postgresql 15+ or set RUSTYDB_PG_BIN).`,
    targets: [],
  };
}

export type { TestPostgres };

/** The `pg` client (the server's dependency; it ships no types of its own), as far as used here. */
interface SuperuserClient {
  connect(): Promise<void>;
  query(sql: string, params?: unknown[]): Promise<unknown>;
  end(): Promise<void>;
}
const pg = createRequire(import.meta.url)('pg') as {
  Client: new (config: { connectionString: string }) => SuperuserClient;
};

/**
 * The throwaway PostgreSQL server a run's PostgreSQL benchmarks share: started once, at the first request
 * (run.ts asks early, while the dataset is made, so that no benchmark's time includes initdb), stopped by
 * stopSharedPostgres at the end of the run. Each benchmark makes databases of its own on it and drops
 * them when done (dropDatabases), so the next one finds the server as new.
 */
let shared: Promise<TestPostgres> | undefined;

export function sharedPostgres(): Promise<TestPostgres> {
  shared ??= startTestPostgres();
  return shared;
}

export async function stopSharedPostgres(): Promise<void> {
  const starting = shared;
  shared = undefined;
  if (!starting) return;
  try {
    (await starting).stop();
  } catch {
    // It never started: nothing to stop.
  }
}

/**
 * Drops databases a benchmark made, with the replication slots its nodes left in them (a slot keeps its
 * WAL until dropped), and checkpoints, so that nothing of one benchmark works on while the next
 * measures. Call it once the benchmark's nodes have stopped.
 */
export async function dropDatabases(
  ctx: BenchContext,
  postgres: TestPostgres,
  names: readonly string[],
): Promise<void> {
  const superuser = new pg.Client({ connectionString: postgres.url });
  try {
    await superuser.connect();
    for (const name of names) {
      await superuser.query(
        'SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1',
        [name],
      );
      await superuser.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    }
    // What the benchmark left in shared buffers is written now, not by a checkpoint during the next one.
    await superuser.query('CHECKPOINT');
  } catch (err) {
    // Called on the way out, perhaps after a failure: what went wrong first is what the bench reports.
    ctx.log(`  could not drop database(s) ${names.join(', ')}: ${(err as Error).message}`);
  } finally {
    await superuser.end().catch(() => undefined);
  }
}

/**
 * Starts `count` nodes on a new database `name` of `postgres`: the first alone (it sets the database up),
 * then the others at once. Stop them with stopNodes; the bench's children registry stops them on any
 * failure.
 */
export async function startNodes(
  ctx: BenchContext,
  postgres: TestPostgres,
  name: string,
  count: number,
  flags: readonly string[] = [],
): Promise<RustyServerProcess[]> {
  const databaseUrl = await postgres.createDatabase(name, `${name}-bench-password`);
  const start = (i: number): Promise<RustyServerProcess> => {
    const dataDir = join(ctx.dataDir, `${name}-node-${i}`);
    mkdirSync(dataDir, { mode: 0o700 });
    return startRustyServer({
      dataDir,
      flags: ['--engine', 'postgres', '--database-url', databaseUrl, ...flags],
      ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
    });
  };
  const first = await start(1);
  const others = await Promise.allSettled(Array.from({ length: count - 1 }, (_, i) => start(i + 2)));
  const failed = others.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (failed) throw failed.reason;
  return [first, ...others.map((o) => (o as PromiseFulfilledResult<RustyServerProcess>).value)];
}

export async function stopNodes(nodes: readonly RustyServerProcess[]): Promise<void> {
  await Promise.all(nodes.map((node) => node.stop()));
}

/** Which node (1-based) says it reads the capture slot, from the nodes' logs; undefined if none does. */
export function captureReader(nodes: readonly RustyServerProcess[]): number | undefined {
  const index = nodes.findIndex((node) => {
    const output = node.child.output;
    return (
      output.lastIndexOf('this node reads the replication slot') >
      output.lastIndexOf('this node no longer reads')
    );
  });
  return index === -1 ? undefined : index + 1;
}
