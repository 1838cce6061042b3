/**
 * How PostgreSQL runs the server's queries of its own tables: each query of the server run once under
 * EXPLAIN ANALYZE, described by its scans and the rows they read, for tests that check the plans
 * PostgreSQL makes before autovacuum has ever analyzed a table (without statistics an open-ended
 * condition is given a selectivity of 1/3, and a scan of the whole table can look cheaper than the index).
 */
import assert from 'node:assert/strict';

/** The part of a `pg` client these helpers use (rows as arrays). */
export type PgRows = {
  query(config: { text: string; values: unknown[]; rowMode?: 'array' }): Promise<{ rows: unknown[][] }>;
};

/** One query as EXPLAIN ANALYZE ran it. */
export type QueryPlan = {
  query: string;
  /** Its scans, one a line: `Seq Scan on changes`, `Bitmap Index Scan using changes_xid`… */
  scans: string;
  /** The rows of the table in question its scans read, kept or filtered out. */
  rowsRead: number;
  /** The rows it answered. */
  rowsReturned: number;
};

type PlanNode = Record<string, unknown> & { Plans?: PlanNode[] };

function describePlan(query: string, root: PlanNode, table: string): QueryPlan {
  const scans: string[] = [];
  let rowsRead = 0;
  const visit = (node: PlanNode): void => {
    const type = String(node['Node Type']);
    if (type.endsWith('Scan')) {
      const relation = node['Relation Name'] ? ` on ${String(node['Relation Name'])}` : '';
      const index = node['Index Name'] ? ` using ${String(node['Index Name'])}` : '';
      scans.push(`${type}${relation}${index}`);
      // Counts per loop; a bitmap heap scan counts what its index scan found.
      if (node['Relation Name'] === table) {
        const perLoop = ['Actual Rows', 'Rows Removed by Filter', 'Rows Removed by Index Recheck'];
        const sum = perLoop.reduce((total, key) => total + Number(node[key] ?? 0), 0);
        rowsRead += sum * Number(node['Actual Loops'] ?? 1);
      }
    }
    for (const child of node.Plans ?? []) visit(child);
  };
  visit(root);
  return { query, scans: scans.join('\n'), rowsRead, rowsReturned: Number(root['Actual Rows'] ?? 0) };
}

/**
 * Runs `text` under EXPLAIN ANALYZE in a transaction it rolls back (so that a DELETE deletes only when
 * the caller runs the statement itself) and describes its plan, counting the rows read of `table`
 * (a table of schema rustydb, named without it).
 */
export async function explainAnalyze(
  client: PgRows,
  text: string,
  values: unknown[],
  table: string,
): Promise<QueryPlan> {
  await client.query({ text: 'BEGIN', values: [] });
  try {
    const explained = await client.query({
      text: `EXPLAIN (ANALYZE, FORMAT JSON) ${text}`,
      values,
      rowMode: 'array',
    });
    const output = explained.rows[0]![0];
    const [{ Plan: root }] = (typeof output === 'string' ? JSON.parse(output) : output) as [
      { Plan: PlanNode },
    ];
    return describePlan(text, root, table);
  } finally {
    await client.query({ text: 'ROLLBACK', values: [] });
  }
}

/** Checks that rustydb.`table` was never analyzed: the plans that matter are those made without statistics. */
export async function assertNeverAnalyzed(client: PgRows, table: string): Promise<void> {
  const [stats] = (
    await client.query({
      text: 'SELECT last_analyze, last_autoanalyze FROM pg_stat_all_tables WHERE relid = $1::regclass',
      values: [`rustydb.${table}`],
      rowMode: 'array',
    })
  ).rows;
  assert.deepEqual(stats, [null, null], `rustydb.${table} has not been analyzed yet`);
}

/** A query that reads at most `most` rows of `table` by index, not the whole table. */
export function assertReadsByIndex(plan: QueryPlan, table: string, most: number): void {
  const about = `${plan.query}\n${plan.scans}`;
  assert.match(plan.scans, /Index (Only )?Scan/, about);
  assert.doesNotMatch(plan.scans, new RegExp(`Seq Scan on ${table}\\b`), about);
  assert.ok(plan.rowsRead <= most, `${plan.rowsRead} rows of ${table} read by ${about}`);
}
