/**
 * What differs between the engines' SQL for documents. The compilers (filter, find, sort, update) parse
 * and check what a client sends once, with MongoDB's rules, and ask a dialect only for the SQL of the
 * pieces the engines spell differently: reaching the values behind a field path (SQLite's JSON1 over
 * JSON text, PostgreSQL's jsonb operators), testing and comparing those values, the order of mixed
 * types, applying update operators, and the statements that create, list and index collections.
 *
 * Two dialects exist: sqlite-dialect.ts and postgres-dialect.ts; `dialectFor` picks the engine's.
 */
import type { LiteralPattern } from './regex-pattern.ts';
import type { AliasSource, SqlFragment } from './sql-fragment.ts';
import type { JsonValue } from './json-values.ts';
import type { ProjectionPlan } from './projection-compiler.ts';

/** A checked `$group` key (see group-compiler.ts). */
export type GroupKey =
  | { kind: 'path'; segments: string[] }
  | { kind: 'constant'; value: JsonValue }
  | { kind: 'object'; fields: [string, GroupKey][] };

/** A checked `$group` accumulator (see group-compiler.ts). */
export type AccumulatorSpec =
  | { operator: '$sum' | '$avg' | '$min' | '$max'; path: string[] }
  /** `{$sum: <number>}`: the number times the group's size. */
  | { operator: '$sum'; times: number }
  | { operator: '$count' };

/** An accumulator in SQL: aggregate expressions over `doc`, and the output value computed from them. */
export interface Accumulator {
  /** Aggregate expressions, each becoming a column of the grouping CTE. */
  columns: SqlFragment[];
  /** The output as a JSON value in the dialect's representation, given the names of those columns. */
  output: (columns: SqlFragment[]) => SqlFragment;
}

/** One value a filter condition is tested against: a field's value or one element of it. */
export interface Candidate {
  /** The value in the dialect's own representation (see the dialect). */
  value: SqlFragment;
  /** Its type in the dialect's own names; NULL when the field is missing. */
  type: SqlFragment;
  /** The path itself rather than an array element: its type is NULL when the field is missing. */
  mayBeMissing: boolean;
}

export type CandidateTest = (candidate: Candidate) => SqlFragment;

export type RangeOperator = '>' | '>=' | '<' | '<=';

export type Scalar = string | number | boolean;

/** A condition on one field that an index on that field's path may serve. */
export type IndexableCondition =
  { kind: 'equals'; value: Scalar } | { kind: 'range'; operator: RangeOperator; value: number };

/** One field assignment of an operator update, checked already. */
export type Assignment =
  | { path: string[]; kind: 'set'; value: JsonValue }
  | { path: string[]; kind: 'inc'; by: number }
  | { path: string[]; kind: 'push'; values: JsonValue[] };

/** An operator update, checked (no conflicts, no `_id`), for the dialect to turn into SQL. */
export interface UpdatePlan {
  assignments: Assignment[];
  /** Paths `$unset` removes. */
  removals: string[][];
  /** Array elements `$unset` sets to null (MongoDB leaves the positions in place). */
  nulled: string[][];
}

export interface DocumentDialect {
  readonly name: 'sqlite' | 'postgres';
  readonly TRUE: SqlFragment;
  readonly FALSE: SqlFragment;
  /** Negation where unknown counts as false (NOT NULL is NULL, which would drop the row instead). */
  not(part: SqlFragment): SqlFragment;

  // ---- filters ----
  /** True when `test` holds for some value the path leads to (MongoDB's array semantics). */
  anyValue(segments: readonly string[], test: CandidateTest, aliases: AliasSource): SqlFragment;
  /** True when the path leads to some value (`$exists: true`). */
  present(segments: readonly string[], aliases: AliasSource): SqlFragment;
  /** The candidate is null, or (for the field itself) missing. */
  isNull(candidate: Candidate): SqlFragment;
  /** The candidate equals a non-null JSON value (numbers compare across integer and double). */
  equals(candidate: Candidate, value: Exclude<JsonValue, null>): SqlFragment;
  /** The candidate is of the operand's type and compares with it as `operator` says. */
  compare(candidate: Candidate, operator: RangeOperator, operand: Scalar): SqlFragment;
  /** The candidate is one of the values: a non-empty list of strings only, or of numbers only. */
  oneOf(candidate: Candidate, values: readonly (string | number)[]): SqlFragment;
  /** The candidate is a string matching a literal pattern (see regex-pattern.ts). */
  matches(candidate: Candidate, pattern: LiteralPattern): SqlFragment;
  /** A condition on the `_id` column, for string `_id`s only (a numeric `_id` must not match its text). */
  idColumn(operator: '=' | RangeOperator, value: string): SqlFragment;
  idColumnIn(values: readonly string[]): SqlFragment;
  /**
   * A condition implied by `condition` on the path that an index can serve, ANDed to the exact test;
   * undefined where the dialect has none (SQLite's expression indexes match the exact test already).
   */
  indexHint(segments: readonly string[], condition: IndexableCondition): SqlFragment | undefined;

  /**
   * A projection: the document at `doc` with the plan's fields kept or removed, and the plan's
   * computed fields (`$project` only) added.
   */
  project(plan: ProjectionPlan, aliases: AliasSource): SqlFragment;

  // ---- aggregation (see aggregate-compiler.ts) ----
  /**
   * A `$group` key as a JSON value of the dialect (JSON text on SQLite, jsonb on PostgreSQL): a
   * missing path is null at the top level and left out of an object key.
   */
  groupKey(key: GroupKey): SqlFragment;
  /** An accumulator's aggregates over `doc` and its output, with MongoDB's rules (see group-compiler.ts). */
  accumulator(spec: AccumulatorSpec): Accumulator;
  /** A document of named JSON values of the dialect (group keys, accumulator outputs). */
  object(fields: readonly (readonly [string, SqlFragment])[]): SqlFragment;

  // ---- sorting and paging ----
  /** ORDER BY keys of a path, without direction: MongoDB's type order first, then the value. */
  sortKeys(segments: readonly string[]): SqlFragment[];
  /** The last ORDER BY key, which makes any sort deterministic. */
  readonly idOrder: SqlFragment;
  /** `LIMIT … OFFSET …` (either may be absent); bound values. */
  limitClause(limit: number | undefined, skip: number | undefined): SqlFragment;

  // ---- writes ----
  /** A document given as JSON text, as the `doc` column stores it. */
  documentValue(text: SqlFragment): SqlFragment;
  /** The new document after an operator update, as an expression over `doc`. */
  updated(plan: UpdatePlan): SqlFragment;
  /**
   * The new document after a replacement (JSON text with `_id: null` first), keeping the stored
   * `_id`; `id` is the replacement's own `_id` (JSON text), which must equal the stored one.
   */
  replaced(text: string, id: string | undefined): SqlFragment;
  /** The message of a failure an update raised because of the data (`$inc` on a string), else undefined. */
  failureMessage(error: unknown): string | undefined;
  /** Whether the error is a duplicate `_id` on insert. */
  isDuplicateKey(error: unknown): boolean;

  // ---- collections ----
  /** Statements that create a collection's table (run in one transaction). */
  createCollection(table: SqlFragment): string[];
  /** An index on a field path, created if missing. */
  createIndex(table: SqlFragment, indexName: string, segments: readonly string[]): string;
  /** SQL (one `?`, the table) listing a table's column names in order, as `name`. */
  readonly columnsSql: string;
  /** SQL listing the user tables, as `name`. */
  readonly tablesSql: string;
  /** SQL (one `?`, the table) listing the indexes made by createIndex, as `name`. */
  readonly indexesSql: string;
}
