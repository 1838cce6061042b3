/**
 * `$group` keys and accumulators in SQLite's SQL (see group-compiler.ts for their rules). Values are
 * JSON text; aggregates are computed on SQL values (SQLite's SUM and AVG are the integer-exact,
 * compensated sums group-compiler.ts describes) and written back as exact JSON (see renderNumber).
 * `$min`/`$max` compare objects and arrays by their JSON text.
 */
import type { Accumulator, AccumulatorSpec, GroupKey } from './document-dialect.ts';
import { jsonPathLiteral, nameLiteral } from './field-path.ts';
import { NUMBER_TYPES, renderNumber } from './json-sql.ts';
import { bind, bindNumber, join, raw, sql, type SqlFragment } from './sql-fragment.ts';

/**
 * A group key as JSON text. `missing: 'null'` gives 'null' for a missing field (the top level of
 * `_id`); `missing: 'absent'` gives SQL NULL, which an enclosing object leaves out.
 */
function keyExpression(key: GroupKey, missing: 'null' | 'absent'): SqlFragment {
  if (key.kind === 'path') {
    const path = jsonPathLiteral(key.segments);
    return missing === 'null' ? sql`IFNULL(doc -> ${path}, 'null')` : sql`doc -> ${path}`;
  }
  if (key.kind === 'constant') return bind(JSON.stringify(key.value));
  const rows = key.fields.map(
    ([name, value]) => sql`SELECT ${nameLiteral(name)} AS k, ${keyExpression(value, 'absent')} AS v`,
  );
  if (rows.length === 0) return raw(`'{}'`);
  return sql`(SELECT json_group_object(k, json(v)) FROM (${join(rows, ' UNION ALL ')}) WHERE v IS NOT NULL)`;
}

export function sqliteGroupKey(key: GroupKey): SqlFragment {
  return keyExpression(key, 'null');
}

function typed(path: SqlFragment, types: SqlFragment, value: SqlFragment): SqlFragment {
  return sql`CASE WHEN json_type(doc, ${path}) IN ${types} THEN ${value} END`;
}

/** $min/$max: one extreme per type, then the first present in MongoDB's type order. */
function extreme(path: SqlFragment, fn: 'MIN' | 'MAX'): Accumulator {
  const f = raw(fn);
  const columns = [
    sql`${f}(${typed(path, NUMBER_TYPES, sql`json_extract(doc, ${path})`)})`,
    sql`${f}(${typed(path, raw(`('text')`), sql`json_extract(doc, ${path})`)})`,
    sql`${f}(${typed(path, raw(`('object')`), sql`doc -> ${path}`)})`,
    sql`${f}(${typed(path, raw(`('array')`), sql`doc -> ${path}`)})`,
    sql`${f}(${typed(path, raw(`('true', 'false')`), sql`json_extract(doc, ${path})`)})`,
  ];
  return {
    columns,
    output: ([n, s, o, a, b]) => {
      const number = sql`CASE WHEN ${n!} IS NOT NULL THEN ${renderNumber(n!)} END`;
      const string = sql`CASE WHEN ${s!} IS NOT NULL THEN json_quote(${s!}) END`;
      const boolean = sql`CASE ${b!} WHEN 1 THEN 'true' WHEN 0 THEN 'false' END`;
      const order = fn === 'MIN' ? [number, string, o!, a!, boolean] : [boolean, a!, o!, string, number];
      return sql`COALESCE(${join(order, ', ')}, 'null')`;
    },
  };
}

export function sqliteAccumulator(spec: AccumulatorSpec): Accumulator {
  if (spec.operator === '$count') {
    return { columns: [raw('COUNT(*)')], output: ([c]) => sql`CAST(${c!} AS TEXT)` };
  }
  if ('times' in spec) {
    return { columns: [sql`COUNT(*) * ${bindNumber(spec.times)}`], output: ([c]) => renderNumber(c!) };
  }
  const path = jsonPathLiteral(spec.path);
  const numeric = typed(path, NUMBER_TYPES, sql`json_extract(doc, ${path})`);
  switch (spec.operator) {
    case '$sum':
      // SUM is NULL for no numbers (the sum is 0) and for an overflow past the largest double
      // (SQLite's NaN, written as null like the infinity it stands for).
      return {
        columns: [sql`SUM(${numeric})`, sql`COUNT(${numeric})`],
        output: ([sum, count]) => sql`CASE WHEN ${count!} = 0 THEN '0' ELSE ${renderNumber(sum!)} END`,
      };
    case '$avg':
      return { columns: [sql`AVG(${numeric})`], output: ([c]) => renderNumber(c!) };
    case '$min':
      return extreme(path, 'MIN');
    case '$max':
      return extreme(path, 'MAX');
  }
}

export function sqliteObject(fields: readonly (readonly [string, SqlFragment])[]): SqlFragment {
  const pairs = fields.map(([name, value]) => sql`${nameLiteral(name)}, json(${value})`);
  return sql`json_object(${join(pairs, ', ')})`;
}
