/**
 * The `$group` stage: checked here once, with MongoDB's rules, then written in the engine's dialect
 * (sqlite-group.ts, postgres-group.ts) as a grouping CTE (the key, one column per aggregate) followed
 * by a CTE that assembles each group's output document.
 *
 * Group keys (`_id`): null or another constant, a `'$field'` path, or an object of those (nested
 * up to 4 levels). As in MongoDB, a missing field groups as null, and inside an object key a missing
 * field is left out. Paths are read directly (no collection of values across arrays).
 *
 * Accumulators: `$sum` of a field or of a number constant (`{$sum: 1}` counts), `$avg`, `$min`,
 * `$max` of a field, and `$count: {}`. Like MongoDB, `$sum` and `$avg` ignore non-numbers (`$sum` of
 * nothing is 0, `$avg` of nothing is null), and `$min`/`$max` ignore null and missing values and
 * compare across types in MongoDB's type order. Numbers follow SQLite's arithmetic on both engines: a
 * `$sum` of integers is an exact integer and fails when it overflows 64 bits; once a double is among
 * them, the sum is a double, compensated (Kahan-Babuska-Neumaier) so that ten 0.1s make 1; `$avg`
 * is that sum divided by the count, as a double.
 */
import type { AccumulatorSpec, DocumentDialect, GroupKey } from './document-dialect.ts';
import { describeValue, documentError } from './document-errors.ts';
import { isFieldName, parseFieldPath } from './field-path.ts';
import { assertJsonValue, isPlainObject } from './json-values.ts';
import { join, raw, sql, type SqlFragment } from './sql-fragment.ts';

/** Nesting of objects in a group key; each level is a subquery, and SQLite's parser stack is small. */
export const MAX_KEY_DEPTH = 4;

/**
 * Output fields of one `$group` besides `_id`. The output document is built by one call (SQLite's
 * json_object takes at most 127 arguments, two per field; PostgreSQL's functions at most 100, so
 * its dialect builds larger documents in pieces).
 */
export const MAX_GROUP_FIELDS = 50;

/** A `'$a.b'` reference: the path's segments. */
function fieldReference(expression: string, where: string): string[] {
  if (expression.startsWith('$$'))
    throw documentError(`${where}: variables such as ${expression} are not supported`);
  return parseFieldPath(expression.slice(1), where, { allowIndexes: false });
}

function parseKey(expression: unknown, where: string, depth = 0): GroupKey {
  if (typeof expression === 'string' && expression.startsWith('$')) {
    return { kind: 'path', segments: fieldReference(expression, where) };
  }
  if (Array.isArray(expression)) throw documentError(`${where}: array expressions are not supported`);
  if (isPlainObject(expression)) {
    if (depth >= MAX_KEY_DEPTH)
      throw documentError(`${where}: objects nested deeper than ${MAX_KEY_DEPTH} levels`);
    const fields = Object.entries(expression).map(([key, value]): [string, GroupKey] => {
      if (key.startsWith('$')) throw documentError(`${where}: unsupported expression operator '${key}'`);
      if (!isFieldName(key)) throw documentError(`${where}: invalid field name '${key}'`);
      return [key, parseKey(value, `${where}.${key}`, depth + 1)];
    });
    return { kind: 'object', fields };
  }
  assertJsonValue(expression, where);
  return { kind: 'constant', value: expression };
}

function parseAccumulator(spec: unknown, where: string): AccumulatorSpec {
  const entries = isPlainObject(spec) ? Object.entries(spec) : [];
  if (entries.length !== 1) {
    throw documentError(
      `${where} must be one accumulator such as {"$sum": "$price"}, got ${describeValue(spec)}`,
    );
  }
  const [operator, argument] = entries[0]!;
  const at = `${where}.${operator}`;
  const path =
    typeof argument === 'string' && argument.startsWith('$') ? fieldReference(argument, at) : undefined;
  switch (operator) {
    case '$sum':
      if (path) return { operator, path };
      if (typeof argument === 'number' && Number.isFinite(argument)) return { operator, times: argument };
      throw documentError(`${at} needs a "$field" reference or a number`);
    case '$avg':
    case '$min':
    case '$max':
      if (path) return { operator, path };
      throw documentError(`${at} needs a "$field" reference`);
    case '$count':
      if (!isPlainObject(argument) || Object.keys(argument).length > 0) throw documentError(`${at} takes {}`);
      return { operator };
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
export function groupStage(
  spec: unknown,
  names: GroupNames,
  where: string,
  dialect: DocumentDialect,
): SqlFragment[] {
  if (!isPlainObject(spec)) throw documentError(`${where} must be an object`);
  if (!Object.hasOwn(spec, '_id')) throw documentError(`${where} needs an _id (use null for a single group)`);
  const key = dialect.groupKey(parseKey(spec._id, `${where}._id`));
  const outputs = Object.entries(spec).filter(([name]) => name !== '_id');
  if (outputs.length > MAX_GROUP_FIELDS) {
    throw documentError(`${where}: more than ${MAX_GROUP_FIELDS} output fields besides _id`);
  }
  const columns: SqlFragment[] = [];
  const fields: [string, SqlFragment][] = [['_id', raw('k')]];
  for (const [name, value] of outputs) {
    if (!isFieldName(name)) {
      throw documentError(`${where}: output field '${name}' must be a name of letters, digits and _`);
    }
    const acc = dialect.accumulator(parseAccumulator(value, `${where}.${name}`));
    const first = columns.length;
    columns.push(...acc.columns);
    fields.push([name, acc.output(acc.columns.map((_, i) => raw(`a${first + i}`)))]);
  }
  const aggregates = columns.map((column, i) => sql`, ${column} AS ${raw(`a${i}`)}`);
  return [
    sql`${names.groups} AS (SELECT ${key} AS k${join(aggregates, '')} FROM ${names.input} GROUP BY 1)`,
    // Materialized so later stages read each assembled document instead of re-assembling it.
    sql`${names.output}(doc, ord) AS MATERIALIZED (SELECT ${dialect.object(fields)}, CAST(NULL AS INTEGER) FROM ${names.groups})`,
  ];
}
