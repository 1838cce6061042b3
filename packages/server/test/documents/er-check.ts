import { compileAggregate } from '../../src/documents/aggregate-compiler.ts';
import { openDocumentDb } from './engine-fixture.ts';
let filter: unknown = { 'region.city': { $not: { $nin: ['Paris', null], $regex: 's$' } } };
for (let i = 0; i < 9; i++) filter = i % 2 ? { $nor: [{ b: 1 }, filter] } : { $or: [{ c: { $ne: 1 } }, filter] };
const project = { $project: { 'region.city.x': 1, 'region.country': 1, customer: 1, total: 1, who: '$customer', 'a.b.c': 1 } };
const sort = { $sort: { 'region.country': 1, total: -1, customer: 1 } };
const docs = [{ _id: 'o1', customer: 'ann', total: 3, region: { country: 'FR', city: 'Paris' } }];
const db = await openDocumentDb('postgres', { orders: docs });
await db.rows('SET jit = off', []);
const cases: Record<string, unknown[]> = {
  match10: Array(10).fill({ $match: filter }),
  match4: Array(4).fill({ $match: filter }),
  mix99: Array.from({ length: 99 }, (_, i) => [{ $match: filter }, project, sort][i % 3]),
};
for (const [name, stages] of Object.entries(cases)) {
  const c = compileAggregate('orders', stages, db.dialect);
  const t = Date.now();
  const rows = await db.rows(`EXPLAIN (ANALYZE, SUMMARY) ${c.sql}`, c.params);
  console.log(name, Date.now() - t, 'ms', rows.filter((r) => /Planning|Execution|JIT|Timing|Functions/.test(String(r[0]))).map(String).join());
}
await db.close();
process.exit(0);
