/**
 * Update documents compiled to one SQL expression that computes the new document from the `doc`
 * column, for `UPDATE … SET doc = <expression>` (or a SELECT that previews it). Parameters are bound.
 *
 * Operators: `$set`, `$unset`, `$inc` (a missing field is set to the increment), `$push` (a value, or
 * `{$each: [...]}`; a missing field becomes an array). A document without operators is a replacement:
 * it replaces the whole document, keeping `_id`.
 *
 * Refused with INVALID_MESSAGE when compiling: other operators and `$push` modifiers, updates of
 * `_id`, two updates of the same path or of a path and its parent (MongoDB's "conflict"), operators
 * mixed with fields, an empty update, non-JSON values.
 *
 * Refused while running, because only the data can tell (the statement fails with a message that
 * `failureMessage` from json-sql.ts recovers): `$inc` on a non-number, `$push` on a non-array, a
 * path through a scalar (`a.b` when `a` is 5), an array index past the end of an array (MongoDB would
 * pad with nulls), and a replacement whose `_id` differs from the document's.
 */
import { describeValue, documentError } from './document-errors.ts';
import { isIndexSegment, jsonPathLiteral, parseFieldPath } from './field-path.ts';
import { failWith, NUMBER_TYPES, renderNumber } from './json-sql.ts';
import { assertJsonValue, isPlainObject, type JsonValue } from './json-values.ts';
import {
  bind,
  bindNumber,
  join,
  raw,
  sql,
  toCompiled,
  type CompiledSql,
  type SqlFragment,
} from './sql-fragment.ts';

export { describeUpdate, type UpdateDescription } from './update-description.ts';

const OPERATORS = new Set(['$set', '$unset', '$inc', '$push']);

interface Assignment {
  path: string[];
  /** A JSON value (JSON-typed text) for json_set. */
  value: SqlFragment;
}

/** The new document as an SQL expression over `doc`. */
export function compileUpdate(update: unknown): CompiledSql {
  return toCompiled(updateSql(update));
}

export function updateSql(update: unknown): SqlFragment {
  if (!isPlainObject(update)) throw documentError(`update must be an object, got ${describeValue(update)}`);
  const keys = Object.keys(update);
  if (keys.length === 0) throw documentError('update document is empty');
  const operators = keys.filter((key) => key.startsWith('$'));
  if (operators.length === 0) return replacementSql(update);
  if (operators.length < keys.length) {
    throw documentError('update: cannot mix update operators and fields (use $set for fields)');
  }
  return operatorsSql(update);
}

/** A replacement document as an SQL expression over `doc`: `_id` is kept, everything else replaced. */
export function compileReplacement(replacement: unknown): CompiledSql {
  return toCompiled(replacementSql(replacement));
}

function replacementSql(replacement: unknown): SqlFragment {
  if (!isPlainObject(replacement)) {
    throw documentError(`replacement must be an object, got ${describeValue(replacement)}`);
  }
  for (const key of Object.keys(replacement)) {
    if (key.startsWith('$') || key.includes('.')) {
      throw documentError(`replacement: field name '${key}' cannot start with $ or contain a dot`);
    }
  }
  assertJsonValue(replacement, 'replacement');
  const { _id: id, ...fields } = replacement;
  // The null placeholder puts _id first; json_set then fills in the stored one.
  const text = JSON.stringify({ _id: null, ...fields });
  const replaced = sql`json_set(json(${bind(text)}), '$._id', doc -> '$._id')`;
  if (!Object.hasOwn(replacement, '_id')) return replaced;
  const sameId = sql`doc -> '$._id' IS json(${bind(JSON.stringify(id))})`;
  return sql`CASE WHEN ${sameId} THEN ${replaced} ELSE ${failWith('the replacement document cannot change _id')} END`;
}

function isPrefix(shorter: readonly string[], longer: readonly string[]): boolean {
  return shorter.length <= longer.length && shorter.every((segment, i) => segment === longer[i]);
}

function operatorsSql(update: Record<string, unknown>): SqlFragment {
  const sets: Assignment[] = [];
  const removals: string[][] = [];
  const nulled: string[][] = [];
  const claimed: string[][] = [];
  for (const [operator, fields] of Object.entries(update)) {
    if (!OPERATORS.has(operator)) {
      throw documentError(
        `update: unsupported operator '${operator}' (supported: ${[...OPERATORS].join(', ')})`,
      );
    }
    if (!isPlainObject(fields)) throw documentError(`update: ${operator} needs an object of fields`);
    for (const [pathText, operand] of Object.entries(fields)) {
      const where = `update: ${operator} '${pathText}'`;
      const path = parseFieldPath(pathText, `update: ${operator}`);
      if (path[0] === '_id') throw documentError(`${where}: _id cannot be updated`);
      const conflict = claimed.find((other) => isPrefix(other, path) || isPrefix(path, other));
      if (conflict) throw documentError(`${where}: conflicts with another update of '${conflict.join('.')}'`);
      claimed.push(path);
      if (operator === '$set') {
        assertJsonValue(operand, where);
        sets.push({ path, value: sql`json(${bind(JSON.stringify(operand))})` });
      } else if (operator === '$unset') {
        // MongoDB leaves array positions in place: unsetting an element sets it to null.
        (isIndexSegment(path.at(-1)!) ? nulled : removals).push(path);
      } else if (operator === '$inc') {
        sets.push({ path, value: incremented(path, operand, where) });
      } else {
        sets.push({ path, value: pushed(path, operand, where) });
      }
    }
  }
  let document = raw('doc');
  if (removals.length > 0)
    document = sql`json_remove(${document}, ${join(removals.map(jsonPathLiteral), ', ')})`;
  if (nulled.length > 0) {
    const pairs = nulled.map((path) => sql`${jsonPathLiteral(path)}, NULL`);
    document = sql`json_replace(${document}, ${join(pairs, ', ')})`;
  }
  if (sets.length > 0) {
    const pairs = sets.map(({ path, value }) => sql`${jsonPathLiteral(path)}, ${value}`);
    document = sql`json_set(${document}, ${join(pairs, ', ')})`;
  }
  const guards = sets.flatMap(({ path }) => parentGuards(path));
  return guards.length === 0 ? document : sql`CASE ${join(guards, ' ')} ELSE ${document} END`;
}

/**
 * json_set silently does nothing when a path runs through a scalar or past the end of an array; the
 * update fails instead, as MongoDB's does. Each guard is a `WHEN … THEN <failure>` branch.
 */
function parentGuards(path: readonly string[]): SqlFragment[] {
  const text = path.join('.');
  const guards: SqlFragment[] = [];
  for (let k = 1; k < path.length; k++) {
    const parent = jsonPathLiteral(path.slice(0, k));
    const parentText = path.slice(0, k).join('.');
    const next = path[k]!;
    if (isIndexSegment(next)) {
      guards.push(
        sql`WHEN json_type(doc, ${parent}) IS NOT 'array' THEN ${failWith(`cannot update '${text}': '${parentText}' is not an array`)}`,
        sql`WHEN json_array_length(doc, ${parent}) < ${bindNumber(Number(next))} THEN ${failWith(`cannot update '${text}': index ${next} is past the end of '${parentText}'`)}`,
      );
    } else {
      guards.push(
        sql`WHEN json_type(doc, ${parent}) NOT IN ('object') THEN ${failWith(`cannot update '${text}': '${parentText}' is not an object`)}`,
      );
    }
  }
  return guards;
}

function incremented(path: string[], operand: unknown, where: string): SqlFragment {
  if (typeof operand !== 'number' || !Number.isFinite(operand)) {
    throw documentError(`${where}: $inc needs a number, got ${describeValue(operand)}`);
  }
  const at = jsonPathLiteral(path);
  const sum = sql`CASE WHEN json_type(doc, ${at}) IS NULL THEN ${bindNumber(operand)} WHEN json_type(doc, ${at}) IN ${NUMBER_TYPES} THEN json_extract(doc, ${at}) + ${bindNumber(operand)} ELSE ${failWith(`$inc needs a number at '${path.join('.')}'`)} END`;
  return sql`json((SELECT ${renderNumber(raw('n'))} FROM (SELECT ${sum} AS n)))`;
}

function pushedValues(operand: unknown, where: string): JsonValue[] {
  if (isPlainObject(operand) && Object.keys(operand).some((key) => key.startsWith('$'))) {
    for (const key of Object.keys(operand)) {
      if (key !== '$each') throw documentError(`${where}: unsupported $push modifier '${key}' (only $each)`);
    }
    if (!Array.isArray(operand.$each)) throw documentError(`${where}: $each needs an array`);
    assertJsonValue(operand.$each, `${where}.$each`);
    return operand.$each;
  }
  assertJsonValue(operand, where);
  return [operand];
}

function pushed(path: string[], operand: unknown, where: string): SqlFragment {
  const values = pushedValues(operand, where);
  const at = jsonPathLiteral(path);
  const array = sql`CASE WHEN json_type(doc, ${at}) IS NULL THEN json_array() WHEN json_type(doc, ${at}) = 'array' THEN doc -> ${at} ELSE ${failWith(`$push needs an array at '${path.join('.')}'`)} END`;
  if (values.length === 0) return sql`json(${array})`;
  const appended = values.map((value) => sql`'$[#]', json(${bind(JSON.stringify(value))})`);
  return sql`json(json_insert(${array}, ${join(appended, ', ')}))`;
}
