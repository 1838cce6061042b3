/**
 * MongoDB query filters compiled to a WHERE expression over the `doc` column, in the engine's dialect
 * (see document-dialect.ts). Values are always bound as `?` parameters; field paths are validated
 * before they become path literals.
 *
 * Supported: implicit equality `{a: 1}`, `$eq $ne $gt $gte $lt $lte $in $nin $exists $not $regex`
 * (with `$options: 'i'`) on fields, and `$and $or $nor` at any level. Semantics follow MongoDB:
 *
 * - array fields match on the array itself or on any element; arrays of sub-documents are looked
 *   into along a dotted path (see field-values.ts);
 * - comparisons only match values of the operand's type (numbers with numbers, strings with strings,
 *   booleans with booleans), never across types;
 * - `{a: null}` matches null and missing; `$ne`, `$nin` and `$not` match documents where the field is
 *   missing; sub-documents and arrays compare by their exact JSON text (so key order matters, as in
 *   MongoDB);
 * - `$regex` accepts literal patterns only (see regex-pattern.ts).
 *
 * Refused with INVALID_MESSAGE: every other operator (`$where`, `$expr`, `$elemMatch`, `$size`, …),
 * range operators on objects or arrays, malformed paths, and logical operators nested deeper than 10
 * levels (see MAX_FILTER_DEPTH).
 */
import { describeValue, documentError } from './document-errors.ts';
import type {
  CandidateTest,
  DocumentDialect,
  IndexableCondition,
  RangeOperator,
} from './document-dialect.ts';
import { parseFieldPath } from './field-path.ts';
import { assertJsonValue, isOperatorObject, isPlainObject, type JsonValue } from './json-values.ts';
import { parseLiteralPattern } from './regex-pattern.ts';
import { sqliteDialect } from './sqlite-dialect.ts';
import { AliasSource, allOf, anyOf, toCompiled, type CompiledSql, type SqlFragment } from './sql-fragment.ts';

export interface FilterOptions {
  /**
   * The collection table's `_id` column is in scope, so `_id` conditions on strings can use the
   * primary key. False where rows are derived (after an aggregation stage).
   */
  idColumn?: boolean;
  /** The engine's SQL (SQLite's when not given). */
  dialect?: DocumentDialect;
}

export interface FilterContext {
  aliases: AliasSource;
  idColumn: boolean;
  dialect: DocumentDialect;
}

interface Scope extends FilterContext {
  depth: number;
}

/**
 * How deeply `$and`, `$or`, `$nor` and `$not` may nest. SQLite's parser has a fixed stack (100
 * entries in the libsql build) that each level of nesting uses up; 10 levels leave a margin for the
 * most expensive leaves inside an aggregation stage. MongoDB filters rarely nest beyond three.
 */
export const MAX_FILTER_DEPTH = 10;

/** Compiles a filter to `{ sql, params }`; an empty filter is the dialect's TRUE. */
export function compileFilter(filter: unknown, options: FilterOptions = {}): CompiledSql {
  return toCompiled(
    filterSql(filter, {
      aliases: new AliasSource(),
      idColumn: options.idColumn ?? true,
      dialect: options.dialect ?? sqliteDialect,
    }),
  );
}

/** The filter as a fragment, for statements that embed it (aliases are shared with the statement). */
export function filterSql(filter: unknown, context: FilterContext): SqlFragment {
  return documentFilter(filter, { ...context, depth: 0 }, 'filter');
}

function deeper(scope: Scope, where: string): Scope {
  if (scope.depth >= MAX_FILTER_DEPTH) {
    throw documentError(`${where}: filter nested deeper than ${MAX_FILTER_DEPTH} levels`);
  }
  return { ...scope, depth: scope.depth + 1 };
}

function documentFilter(filter: unknown, scope: Scope, where: string): SqlFragment {
  if (!isPlainObject(filter)) throw documentError(`${where} must be an object, got ${describeValue(filter)}`);
  return all(
    scope,
    Object.entries(filter).map(([key, value]) =>
      key.startsWith('$') ? logical(key, value, scope, where) : fieldFilter(key, value, scope),
    ),
  );
}

function logical(operator: string, operand: unknown, scope: Scope, where: string): SqlFragment {
  if (operator !== '$and' && operator !== '$or' && operator !== '$nor') {
    const hint = operator === '$not' ? ' ($not applies to a field: {field: {$not: {...}}})' : '';
    throw documentError(`${where}: unsupported top-level operator '${operator}'${hint}`);
  }
  if (!Array.isArray(operand) || operand.length === 0) {
    throw documentError(`${where}: ${operator} needs a non-empty array of filters`);
  }
  const inner = deeper(scope, `${where}.${operator}`);
  const parts = operand.map((item, i) => documentFilter(item, inner, `${where}.${operator}[${i}]`));
  if (operator === '$and') return all(scope, parts);
  return operator === '$or' ? any(scope, parts) : scope.dialect.not(any(scope, parts));
}

function fieldFilter(pathText: string, condition: unknown, scope: Scope): SqlFragment {
  const where = `filter on '${pathText}'`;
  const path = parseFieldPath(pathText, 'filter');
  if (isOperatorObject(condition, where)) return operators(path, condition, scope, where);
  assertJsonValue(condition, where);
  return equals(path, condition, scope);
}

const RANGE_OPERATORS: Record<string, RangeOperator> = { $gt: '>', $gte: '>=', $lt: '<', $lte: '<=' };

function all(scope: Scope, parts: readonly SqlFragment[]): SqlFragment {
  return parts.length === 0 ? scope.dialect.TRUE : allOf(parts);
}

function any(scope: Scope, parts: readonly SqlFragment[]): SqlFragment {
  return parts.length === 0 ? scope.dialect.FALSE : anyOf(parts);
}

function operators(
  path: readonly string[],
  condition: Record<string, unknown>,
  scope: Scope,
  where: string,
): SqlFragment {
  const parts: SqlFragment[] = [];
  for (const [operator, operand] of Object.entries(condition)) {
    const at = `${where}: ${operator}`;
    switch (operator) {
      case '$eq':
        assertJsonValue(operand, at);
        parts.push(equals(path, operand, scope));
        break;
      case '$ne':
        assertJsonValue(operand, at);
        parts.push(scope.dialect.not(equals(path, operand, scope)));
        break;
      case '$gt':
      case '$gte':
      case '$lt':
      case '$lte':
        parts.push(range(path, operator, operand, scope, at));
        break;
      case '$in':
        parts.push(inList(path, listOperand(operand, at), scope));
        break;
      case '$nin':
        parts.push(scope.dialect.not(inList(path, listOperand(operand, at), scope)));
        break;
      case '$exists':
        parts.push(exists(path, operand, scope, at));
        break;
      case '$not':
        if (!isOperatorObject(operand, at)) {
          throw documentError(`${at} needs an object of operators, such as {$not: {$gt: 5}}`);
        }
        parts.push(scope.dialect.not(operators(path, operand, deeper(scope, at), where)));
        break;
      case '$regex': {
        const pattern = parseLiteralPattern(operand, condition.$options, where);
        parts.push(scope.dialect.anyValue(path, (c) => scope.dialect.matches(c, pattern), scope.aliases));
        break;
      }
      case '$options':
        if (!('$regex' in condition)) throw documentError(`${at} is only valid with $regex`);
        break;
      default:
        throw documentError(`${where}: unsupported operator '${operator}'`);
    }
  }
  return all(scope, parts);
}

function isIdPath(path: readonly string[], scope: Scope): boolean {
  return scope.idColumn && path.length === 1 && path[0] === '_id';
}

function equalsTest(value: JsonValue, scope: Scope): CandidateTest {
  const { dialect } = scope;
  return value === null ? (c) => dialect.isNull(c) : (c) => dialect.equals(c, value);
}

/** The exact test, preceded by what an index on the path can serve when the dialect has one. */
function withHint(
  path: readonly string[],
  condition: IndexableCondition,
  exact: SqlFragment,
  scope: Scope,
): SqlFragment {
  const hint = scope.dialect.indexHint(path, condition);
  return hint === undefined ? exact : allOf([hint, exact]);
}

function equals(path: readonly string[], value: JsonValue, scope: Scope): SqlFragment {
  // `_id` through the primary key, for string ids.
  if (typeof value === 'string' && isIdPath(path, scope)) return scope.dialect.idColumn('=', value);
  const exact = scope.dialect.anyValue(path, equalsTest(value, scope), scope.aliases);
  if (value === null || typeof value === 'object') return exact;
  return withHint(path, { kind: 'equals', value }, exact, scope);
}

function range(
  path: readonly string[],
  operator: string,
  operand: unknown,
  scope: Scope,
  at: string,
): SqlFragment {
  const op = RANGE_OPERATORS[operator]!;
  // As in MongoDB, $gte/$lte null are equality with null, and nothing is greater or less than null.
  if (operand === null) {
    return operator === '$gte' || operator === '$lte' ? equals(path, null, scope) : scope.dialect.FALSE;
  }
  if (typeof operand === 'number') assertJsonValue(operand, at);
  else if (typeof operand === 'string') {
    if (isIdPath(path, scope)) return scope.dialect.idColumn(op, operand);
  } else if (typeof operand !== 'boolean') {
    throw documentError(`${at} needs a number, string, boolean or null, got ${describeValue(operand)}`);
  }
  const exact = scope.dialect.anyValue(path, (c) => scope.dialect.compare(c, op, operand), scope.aliases);
  if (typeof operand !== 'number') return exact;
  return withHint(path, { kind: 'range', operator: op, value: operand }, exact, scope);
}

function listOperand(operand: unknown, at: string): JsonValue[] {
  if (!Array.isArray(operand)) throw documentError(`${at} needs an array`);
  operand.forEach((item, i) => {
    if (isOperatorObject(item, `${at}[${i}]`))
      throw documentError(`${at}[${i}]: operators are not allowed here`);
    assertJsonValue(item, `${at}[${i}]`);
  });
  return operand as JsonValue[];
}

function inList(path: readonly string[], values: readonly JsonValue[], scope: Scope): SqlFragment {
  const { dialect } = scope;
  if (values.length === 0) return dialect.FALSE;
  const strings = values.filter((v): v is string => typeof v === 'string');
  if (strings.length === values.length && isIdPath(path, scope)) return dialect.idColumnIn(strings);
  const numbers = values.filter((v): v is number => typeof v === 'number');
  const booleans = [...new Set(values.filter((v): v is boolean => typeof v === 'boolean'))];
  const others = values.filter((v) => v === null || typeof v === 'object');
  const tests: CandidateTest[] = [];
  if (strings.length > 0) tests.push((c) => dialect.oneOf(c, strings));
  if (numbers.length > 0) tests.push((c) => dialect.oneOf(c, numbers));
  tests.push(...[...booleans, ...others].map((value) => equalsTest(value, scope)));
  return dialect.anyValue(
    path,
    (c) =>
      any(
        scope,
        tests.map((test) => test(c)),
      ),
    scope.aliases,
  );
}

function exists(path: readonly string[], operand: unknown, scope: Scope, at: string): SqlFragment {
  if (typeof operand !== 'boolean' && typeof operand !== 'number') {
    throw documentError(`${at} needs true or false`);
  }
  const present = scope.dialect.present(path, scope.aliases);
  return operand === true || (typeof operand === 'number' && operand !== 0)
    ? present
    : scope.dialect.not(present);
}
