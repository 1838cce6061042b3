/**
 * `$group` keys and accumulators in PostgreSQL's SQL (see group-compiler.ts for their rules), on jsonb
 * values, giving the results SQLite gives:
 *
 * - a number is an integer when it has no fractional digits and fits 64 bits (SQLite's json_type
 *   'integer'), else a double. A `$sum` of integers is summed exactly (numeric) and must fit a bigint,
 *   as SQLite's SUM must fit its 64-bit integer; once a double is among the values, the sum is of
 *   doubles with SQLite's compensated algorithm (`rustydb_api.document_fsum`, database-setup.ts), so
 *   it rounds as SQLite's does where PostgreSQL's own SUM(float8) would not (ten 0.1s make 1, not
 *   0.9999999999999999); integers among them are added as doubles (SQLite adds those before the first
 *   double exactly: the results differ only for integers beyond 2^53). `$avg` divides that sum by the
 *   count, as a double;
 * - a double is written with the shortest digits that read back as the same double (float8's output
 *   with extra_float_digits = 1, which the engine sets in every transaction), an infinite result as null;
 * - `$min`/`$max` return the stored value itself; strings compare byte-wise (COLLATE "C"), objects
 *   and arrays in jsonb's order.
 */
import type { Accumulator, AccumulatorSpec, GroupKey } from './document-dialect.ts';
import { nameLiteral } from './field-path.ts';
import { at, jsonb, objectOfPresent } from './postgres-json.ts';
import { bind, join, raw, sql, type SqlFragment } from './sql-fragment.ts';

/** The compensated sum of doubles that database-setup.ts creates. */
export const FSUM_AGGREGATE = 'rustydb_api.document_fsum';

/** Arguments of one jsonb_build_object call: PostgreSQL passes at most 100 to a function. */
const PAIRS_PER_CALL = 50;

const LARGEST_DOUBLE = '1.7976931348623157e308';

/** `missing: 'absent'` keeps SQL NULL for a missing path, which an enclosing object leaves out. */
function keyExpression(key: GroupKey, missing: 'null' | 'absent'): SqlFragment {
  if (key.kind === 'path') {
    const value = at(raw('doc'), key.segments);
    return missing === 'null' ? sql`COALESCE(${value}, 'null'::jsonb)` : value;
  }
  if (key.kind === 'constant') return jsonb(key.value);
  return objectOfPresent(key.fields.map(([name, value]) => [name, keyExpression(value, 'absent')] as const));
}

export function postgresGroupKey(key: GroupKey): SqlFragment {
  return keyExpression(key, 'null');
}

/** A double as jsonb; null for infinities (as SQLite's renderNumber and JSON.stringify write them). */
function renderDouble(value: SqlFragment): SqlFragment {
  return sql`COALESCE(CASE WHEN ${value} IN ('Infinity'::float8, '-Infinity'::float8, 'NaN'::float8) THEN NULL ELSE to_jsonb(${value}) END, 'null'::jsonb)`;
}

function ofType(value: SqlFragment, type: string, then: SqlFragment): SqlFragment {
  return sql`CASE WHEN jsonb_typeof(${value}) = ${raw(`'${type}'`)} THEN ${then} END`;
}

/**
 * The columns `$sum` and `$avg` share: the exact sum of the integers, whether any double is among the
 * numbers, the compensated sum of all of them as doubles, and their count.
 */
function numberColumns(value: SqlFragment): SqlFragment[] {
  const number = sql`CAST(${value} AS numeric)`;
  // TRUE for a double, FALSE for an integer, NULL for anything but a number.
  const isDouble = ofType(
    value,
    'number',
    sql`(scale(${number}) > 0 OR ${number} NOT BETWEEN -9223372036854775808 AND 9223372036854775807)`,
  );
  return [
    sql`SUM(CASE WHEN NOT ${isDouble} THEN ${number} END)`,
    sql`bool_or(${isDouble})`,
    sql`${raw(FSUM_AGGREGATE)}(${ofType(value, 'number', sql`CAST(${value} AS float8)`)})`,
    sql`COUNT(${isDouble})`,
  ];
}

/** $min/$max: one extreme per type, then the first present in MongoDB's type order. */
function extreme(value: SqlFragment, fn: 'MIN' | 'MAX'): Accumulator {
  const f = raw(fn);
  const element = (type: string) => sql`(${f}(${ofType(value, type, sql`ARRAY[${value}]`)}))[1]`;
  const columns = [
    sql`${f}(${ofType(value, 'number', sql`CAST(${value} AS numeric)`)})`,
    sql`${f}(${ofType(value, 'string', sql`(${value} #>> '{}') COLLATE "C"`)})`,
    element('object'),
    element('array'),
    sql`${raw(fn === 'MIN' ? 'bool_and' : 'bool_or')}(${ofType(value, 'boolean', sql`CAST(${value} AS boolean)`)})`,
  ];
  return {
    columns,
    output: ([n, s, o, a, b]) => {
      const [number, string, boolean] = [n!, s!, b!].map((c) => sql`to_jsonb(${c})`);
      const order = fn === 'MIN' ? [number, string, o!, a!, boolean] : [boolean, a!, o!, string, number];
      return sql`COALESCE(${join(order as SqlFragment[], ', ')}, 'null'::jsonb)`;
    },
  };
}

export function postgresAccumulator(spec: AccumulatorSpec): Accumulator {
  if (spec.operator === '$count')
    return { columns: [raw('COUNT(*)')], output: ([c]) => sql`to_jsonb(${c!})` };
  if ('times' in spec) {
    if (Number.isSafeInteger(spec.times)) {
      // bigint arithmetic fails on overflow, as SQLite's 64-bit integers do.
      return {
        columns: [sql`COUNT(*) * CAST(${bind(spec.times)} AS bigint)`],
        output: ([c]) => sql`to_jsonb(${c!})`,
      };
    }
    return {
      columns: [raw('COUNT(*)'), sql`CAST(${bind(spec.times)} AS float8)`],
      // float8 arithmetic fails on overflow where SQLite's gives infinity (written as null).
      output: ([count, times]) =>
        sql`CASE WHEN abs(${times!}) > ${raw(LARGEST_DOUBLE)} / ${count!} THEN 'null'::jsonb ELSE ${renderDouble(sql`(${count!} * ${times!})`)} END`,
    };
  }
  const value = at(raw('doc'), spec.path);
  switch (spec.operator) {
    case '$sum':
      return {
        columns: numberColumns(value),
        output: ([integers, anyDouble, doubles]) =>
          sql`CASE WHEN ${anyDouble!} THEN ${renderDouble(doubles!)} ELSE to_jsonb(CAST(COALESCE(${integers!}, 0) AS bigint)) END`,
      };
    case '$avg':
      return {
        columns: numberColumns(value),
        output: ([integers, anyDouble, doubles, count]) =>
          sql`CASE WHEN ${count!} = 0 THEN 'null'::jsonb WHEN ${anyDouble!} THEN ${renderDouble(sql`(${doubles!} / ${count!})`)} ELSE ${renderDouble(sql`(CAST(${integers!} AS float8) / ${count!})`)} END`,
      };
    case '$min':
      return extreme(value, 'MIN');
    case '$max':
      return extreme(value, 'MAX');
  }
}

/** jsonb_build_object calls of at most 50 pairs each, concatenated. */
export function postgresObject(fields: readonly (readonly [string, SqlFragment])[]): SqlFragment {
  const calls: SqlFragment[] = [];
  for (let i = 0; i < fields.length; i += PAIRS_PER_CALL) {
    const pairs = fields
      .slice(i, i + PAIRS_PER_CALL)
      .map(([name, value]) => sql`${nameLiteral(name)}, ${value}`);
    calls.push(sql`jsonb_build_object(${join(pairs, ', ')})`);
  }
  return calls.length === 0 ? raw(`'{}'::jsonb`) : join(calls, ' || ');
}
