/**
 * MongoDB-style filters evaluated in JavaScript, for `$match` stages over change events (which are
 * built in memory, not read from a table). Same operators as the document store's queries:
 * $eq $ne $gt $gte $lt $lte $in $nin $exists $and $or $not $regex, dotted paths, and the array rule
 * that a condition on an array holds when it holds for any element.
 */
import { RustyError } from '../errors/rusty-error.ts';

export type EventPredicate = (event: Record<string, unknown>) => boolean;

const MAX_DEPTH = 32;
const MAX_PATTERN = 256;
/** A quantified group that is itself quantified, `(a+)+`: the shape that makes regexes explode. */
const NESTED_QUANTIFIER = /\([^)]*[+*{][^)]*\)\s*[+*{]/;

function invalid(message: string): RustyError {
  return new RustyError('INVALID_MESSAGE', `$match: ${message}`);
}

function valuesAt(value: unknown, path: readonly string[]): unknown[] {
  if (path.length === 0) return [value];
  if (Array.isArray(value)) {
    const index = /^\d+$/.test(path[0]!) ? Number(path[0]) : undefined;
    if (index !== undefined) return valuesAt(value[index], path.slice(1));
    return value.flatMap((item) => valuesAt(item, path));
  }
  if (value !== null && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    if (!Object.hasOwn(record, path[0]!)) return [undefined];
    return valuesAt(record[path[0]!], path.slice(1));
  }
  return [undefined];
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A value matches an operand when it equals it, or is an array with an element equal to it. */
function matchesValue(value: unknown, operand: unknown): boolean {
  if (equal(value, operand)) return true;
  return Array.isArray(value) && value.some((item) => equal(item, operand));
}

function order(a: unknown, b: unknown): number | undefined {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  return undefined;
}

function compileRegex(pattern: unknown, options: unknown): RegExp {
  if (typeof pattern !== 'string' || pattern.length > MAX_PATTERN) {
    throw invalid(`$regex needs a string of at most ${MAX_PATTERN} characters`);
  }
  if (NESTED_QUANTIFIER.test(pattern))
    throw invalid('$regex patterns with nested quantifiers are not accepted');
  const flags = typeof options === 'string' ? options : '';
  if (!/^[imsu]*$/.test(flags)) throw invalid(`unsupported $options '${flags}'`);
  try {
    return new RegExp(pattern, flags);
  } catch {
    throw invalid(`invalid $regex '${pattern}'`);
  }
}

type ValueTest = (value: unknown) => boolean;

function operatorTest(condition: Record<string, unknown>, depth: number): ValueTest {
  const tests: ValueTest[] = [];
  for (const [op, operand] of Object.entries(condition)) {
    switch (op) {
      case '$eq':
        tests.push((v) => matchesValue(v, operand));
        break;
      case '$ne':
        tests.push((v) => !matchesValue(v, operand));
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        tests.push((v) => {
          const candidates = Array.isArray(v) ? v : [v];
          return candidates.some((c) => {
            const o = order(c, operand);
            if (o === undefined) return false;
            return op === '$gt' ? o > 0 : op === '$gte' ? o >= 0 : op === '$lt' ? o < 0 : o <= 0;
          });
        });
        break;
      case '$in':
      case '$nin': {
        if (!Array.isArray(operand)) throw invalid(`${op} needs an array`);
        const inList: ValueTest = (v) => operand.some((o) => matchesValue(v, o));
        tests.push(op === '$in' ? inList : (v) => !inList(v));
        break;
      }
      case '$exists':
        tests.push((v) => (v !== undefined) === Boolean(operand));
        break;
      case '$not': {
        if (operand === null || typeof operand !== 'object') throw invalid('$not needs an operator object');
        const inner = operatorTest(operand as Record<string, unknown>, depth + 1);
        tests.push((v) => !inner(v));
        break;
      }
      case '$regex': {
        const regex = compileRegex(operand, condition.$options);
        tests.push((v) => typeof v === 'string' && regex.test(v));
        break;
      }
      case '$options':
        if (!('$regex' in condition)) throw invalid('$options needs $regex');
        break;
      default:
        throw invalid(`unsupported operator '${op}'`);
    }
  }
  return (v) => tests.every((t) => t(v));
}

function isOperatorObject(value: unknown): value is Record<string, unknown> {
  return (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    Object.keys(value).length > 0 &&
    Object.keys(value).every((k) => k.startsWith('$'))
  );
}

export function compileEventFilter(filter: unknown, depth = 0): EventPredicate {
  if (depth > MAX_DEPTH) throw invalid('filter is nested too deeply');
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter))
    throw invalid('a filter is an object');
  const tests: EventPredicate[] = [];
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and' || key === '$or') {
      if (!Array.isArray(condition) || condition.length === 0)
        throw invalid(`${key} needs a non-empty array`);
      const parts = condition.map((c) => compileEventFilter(c, depth + 1));
      tests.push(key === '$and' ? (e) => parts.every((p) => p(e)) : (e) => parts.some((p) => p(e)));
      continue;
    }
    if (key.startsWith('$')) throw invalid(`unsupported top-level operator '${key}'`);
    const path = key.split('.');
    if (path.some((segment) => segment === '')) throw invalid(`invalid field path '${key}'`);
    const test: ValueTest = isOperatorObject(condition)
      ? operatorTest(condition, depth + 1)
      : (v) => matchesValue(v, condition);
    // An operator holds for a path when it holds for any value found there (Mongo's array rule);
    // negative operators must hold for all of them.
    const negative =
      isOperatorObject(condition) &&
      Object.keys(condition).some((k) => k === '$ne' || k === '$nin' || k === '$not');
    tests.push((e) => {
      const values = valuesAt(e, path);
      return negative ? values.every(test) : values.some(test);
    });
  }
  return (e) => tests.every((t) => t(e));
}
