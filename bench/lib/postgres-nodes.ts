/**
 * RustyDB nodes on a throwaway PostgreSQL, for the benchmarks of the PostgreSQL engine: the server is
 * scripts/postgres-for-tests.mjs's (loopback only, stopped by the caller), each database is owned by a login
 * role with exactly what a deployment gives RustyDB, and each node is the compiled server as a child
 * process (bench/lib/rusty-server.ts) with a data directory of its own (its audit log).
 */
import { mkdirSync } from 'node:fs';
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

export { startTestPostgres, type TestPostgres };

/**
 * Starts `count` nodes on a new database `name` of `postgres`, one after another (the first sets the
 * database up). Stop them with stopNodes; the bench's children registry stops them on any failure.
 */
export async function startNodes(
  ctx: BenchContext,
  postgres: TestPostgres,
  name: string,
  count: number,
  flags: readonly string[] = [],
): Promise<RustyServerProcess[]> {
  const databaseUrl = await postgres.createDatabase(name, `${name}-bench-password`);
  const nodes: RustyServerProcess[] = [];
  for (let i = 1; i <= count; i++) {
    const dataDir = join(ctx.dataDir, `${name}-node-${i}`);
    mkdirSync(dataDir, { mode: 0o700 });
    nodes.push(
      await startRustyServer({
        dataDir,
        flags: ['--engine', 'postgres', '--database-url', databaseUrl, ...flags],
        ...(ctx.cpuProfileDir ? { cpuProfileDir: ctx.cpuProfileDir } : {}),
      }),
    );
  }
  return nodes;
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
