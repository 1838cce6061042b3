/**
 * The `$group` stage: a grouping CTE (the key as JSON text, one column per aggregate) followed by a
 * CTE that assembles each group's output document. Aggregates are computed on SQL values and written
 * back as exact JSON in the second step (see renderNumber).
 *
 * Group keys (`_id`): null or another constant, a `'$field'` path, or an object of those (nested
 * up to 4 levels). As in MongoDB, a missing field groups as null, and inside an object key a missing
 * field is left out. Paths are read directly (no collection of values across arrays).
 *
 * Accumulators: `$sum` of a field or of a number constant (`{$sum: 1}` counts), `$avg`, `$min`,
 * `$max` of a field, and `$count: {}`. Like MongoDB, `$sum` and `$avg` ignore non-numbers (`$sum` of
 * nothing is 0, `$avg` of nothing is null), and `$min`/`$max` ignore null and missing values and
 * compare across types in MongoDB's type order (objects and arrays by their JSON text). A `$sum`
 * of integers that overflows 64 bits fails (SQLite's SUM raises "integer overflow").
 */
import { describeValue, documentError } from './document-errors.ts';
import { isFieldName, jsonPathLiteral, nameLiteral, parseFieldPath } from './field-path.ts';
import { NUMBER_TYPES, renderNumber } from './json-sql.ts';
import { assertJsonValue, isPlainObject } from './json-values.ts';
import { bind, bindNumber, join, raw, sql, type SqlFragment } from './sql-fragment.ts';

/** Nesting of objects in a group key; each level is a subquery, and SQLite's parser stack is small. */
export const MAX_KEY_DEPTH = 4;

interface Accumulator {
  /** Aggregate expressions, each becoming a column of the grouping CTE. */
  columns: SqlFragment[];
  /** The output value as JSON text, given the names of those columns. */
  output: (columns: SqlFragment[]) => SqlFragment;
}

/** A `'$a.b'` reference: the JSON path literal. */
function fieldReference(expression: string, where: string): SqlFragment {
  if (expression.startsWith('$$'))
    throw documentError(`${where}: variables such as ${expression} are not supported`);
  return jsonPathLiteral(parseFieldPath(expression.slice(1), where, { allowIndexes: false }));
}

/**
 * A group key as JSON text. `missing: 'null'` gives 'null' for a missing field (the top level of
 * `_id`); `missing: 'absent'` gives SQL NULL, which an enclosing object leaves out.
 */
function keyExpression(
  expression: unknown,
  where: string,
  missing: 'null' | 'absent',
  depth = 0,
): SqlFragment {
  if (typeof expression === 'string' && expression.startsWith('$')) {
    const path = fieldReference(expression, where);
    return missing === 'null' ? sql`IFNULL(doc -> ${path}, 'null')` : sql`doc -> ${path}`;
  }
  if (Array.isArray(expression)) throw documentError(`${where}: array expressions are not supported`);
  if (isPlainObject(expression)) {
    if (depth >= MAX_KEY_DEPTH)
      throw documentError(`${where}: objects nested deeper than ${MAX_KEY_DEPTH} levels`);
    const rows = Object.entries(expression).map(([key, value]) => {
      if (key.startsWith('$')) throw documentError(`${where}: unsupported expression operator '${key}'`);
      if (!isFieldName(key)) throw documentError(`${where}: invalid field name '${key}'`);
      return sql`SELECT ${nameLiteral(key)} AS k, ${keyExpression(value, `${where}.${key}`, 'absent', depth + 1)} AS v`;
    });
    if (rows.length === 0) return raw(`'{}'`);
    return sql`(SELECT json_group_object(k, json(v)) FROM (${join(rows, ' UNION ALL ')}) WHERE v IS NOT NULL)`;
  }
  assertJsonValue(expression, where);
  return bind(JSON.stringify(expression));
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

function accumulator(spec: unknown, where: string): Accumulator {
  const entries = isPlainObject(spec) ? Object.entries(spec) : [];
  if (entries.length !== 1) {
    throw documentError(
      `${where} must be one accumulator such as {"$sum": "$price"}, got ${describeValue(spec)}`,
    );
  }
  const [operator, argument] = entries[0]!;
  const at = `${where}.${operator}`;
  const isPath = typeof argument === 'string' && argument.startsWith('$');
  const path = isPath ? fieldReference(argument, at) : undefined;
  const numeric = path && typed(path, NUMBER_TYPES, sql`json_extract(doc, ${path})`);
  switch (operator) {
    case '$sum':
      if (numeric)
        return { columns: [sql`SUM(${numeric})`], output: ([c]) => renderNumber(sql`IFNULL(${c!}, 0)`) };
      if (typeof argument === 'number' && Number.isFinite(argument)) {
        return { columns: [sql`COUNT(*) * ${bindNumber(argument)}`], output: ([c]) => renderNumber(c!) };
      }
      throw documentError(`${at} needs a "$field" reference or a number`);
    case '$avg':
      if (numeric) return { columns: [sql`AVG(${numeric})`], output: ([c]) => renderNumber(c!) };
      throw documentError(`${at} needs a "$field" reference`);
    case '$min':
    case '$max':
      if (path) return extreme(path, operator === '$min' ? 'MIN' : 'MAX');
      throw documentError(`${at} needs a "$field" reference`);
    case '$count':
      if (!isPlainObject(argument) || Object.keys(argument).length > 0) throw documentError(`${at} takes {}`);
      return { columns: [raw('COUNT(*)')], output: ([c]) => sql`CAST(${c!} AS TEXT)` };
    default:
      throw documentError(
        `${where}: unsupported accumulator '${operator}' (supported: $sum, $avg, $min, $max, $count)`,
      );
  }
}

export interface GroupNames {
  /** The CTE the stage reads, with columns (doc, ord). */
  input: SqlFragment;
  /** The grouping CTE to define. */
  groups: SqlFragment;
  /** The output CTE to define, with columns (doc, ord). */
  output: SqlFragment;
}

/** The two CTE definitions of a `$group` stage. */
export function groupStage(spec: unknown, names: GroupNames, where: string): SqlFragment[] {
  if (!isPlainObject(spec)) throw documentError(`${where} must be an object`);
  if (!Object.hasOwn(spec, '_id')) throw documentError(`${where} needs an _id (use null for a single group)`);
  const key = keyExpression(spec._id, `${where}._id`, 'null');
  const columns: SqlFragment[] = [];
  const fields: SqlFragment[] = [sql`'_id', json(k)`];
  for (const [name, value] of Object.entries(spec)) {
    if (name === '_id') continue;
    if (!isFieldName(name)) {
      throw documentError(`${where}: output field '${name}' must be a name of letters, digits and _`);
    }
    const acc = accumulator(value, `${where}.${name}`);
    const first = columns.length;
    columns.push(...acc.columns);
    const names = acc.columns.map((_, i) => raw(`a${first + i}`));
    fields.push(sql`${nameLiteral(name)}, json(${acc.output(names)})`);
  }
  const aggregates = columns.map((column, i) => sql`, ${column} AS ${raw(`a${i}`)}`);
  return [
    sql`${names.groups} AS (SELECT ${key} AS k${join(aggregates, '')} FROM ${names.input} GROUP BY 1)`,
    // Materialized so later stages read each assembled document instead of re-assembling it.
    sql`${names.output}(doc, ord) AS MATERIALIZED (SELECT json_object(${join(fields, ', ')}), NULL FROM ${names.groups})`,
  ];
}
