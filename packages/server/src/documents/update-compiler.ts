/**
 * Update documents compiled to one SQL expression (in the engine's dialect, see document-dialect.ts) that computes the new document from the `doc`
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
import type { Assignment, DocumentDialect } from './document-dialect.ts';
import { isIndexSegment, parseFieldPath } from './field-path.ts';
import { assertJsonValue, isPlainObject, type JsonValue } from './json-values.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { toCompiled, type CompiledSql, type SqlFragment } from './sql-fragment.ts';

export { describeUpdate, type UpdateDescription } from './update-description.ts';

const OPERATORS = new Set(['$set', '$unset', '$inc', '$push']);

/** The new document as an SQL expression over `doc`. */
export function compileUpdate(update: unknown, dialect: DocumentDialect = sqliteDialect): CompiledSql {
  return toCompiled(updateSql(update, dialect));
}

export function updateSql(update: unknown, dialect: DocumentDialect = sqliteDialect): SqlFragment {
  if (!isPlainObject(update)) throw documentError(`update must be an object, got ${describeValue(update)}`);
  const keys = Object.keys(update);
  if (keys.length === 0) throw documentError('update document is empty');
  const operators = keys.filter((key) => key.startsWith('$'));
  if (operators.length === 0) return replacementSql(update, dialect);
  if (operators.length < keys.length) {
    throw documentError('update: cannot mix update operators and fields (use $set for fields)');
  }
  return operatorsSql(update, dialect);
}

/** A replacement document as an SQL expression over `doc`: `_id` is kept, everything else replaced. */
export function compileReplacement(
  replacement: unknown,
  dialect: DocumentDialect = sqliteDialect,
): CompiledSql {
  return toCompiled(replacementSql(replacement, dialect));
}

function replacementSql(replacement: unknown, dialect: DocumentDialect): SqlFragment {
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
  const text = JSON.stringify({ _id: null, ...fields });
  return dialect.replaced(text, Object.hasOwn(replacement, '_id') ? JSON.stringify(id) : undefined);
}

function isPrefix(shorter: readonly string[], longer: readonly string[]): boolean {
  return shorter.length <= longer.length && shorter.every((segment, i) => segment === longer[i]);
}

function operatorsSql(update: Record<string, unknown>, dialect: DocumentDialect): SqlFragment {
  const assignments: Assignment[] = [];
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
        assignments.push({ path, kind: 'set', value: operand });
      } else if (operator === '$unset') {
        // MongoDB leaves array positions in place: unsetting an element sets it to null.
        (isIndexSegment(path.at(-1)!) ? nulled : removals).push(path);
      } else if (operator === '$inc') {
        if (typeof operand !== 'number' || !Number.isFinite(operand)) {
          throw documentError(`${where}: $inc needs a number, got ${describeValue(operand)}`);
        }
        assignments.push({ path, kind: 'inc', by: operand });
      } else {
        assignments.push({ path, kind: 'push', values: pushedValues(operand, where) });
      }
    }
  }
  return dialect.updated({ assignments, removals, nulled });
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
