/**
 * The document SQL of the PostgreSQL engine: documents are `jsonb`, read with jsonb's operators. A
 * candidate's value is a jsonb value (SQL NULL when the field is missing) and its type a
 * `jsonb_typeof` name ('null', 'boolean', 'number', 'string', 'array', 'object').
 *
 * Values are compared as jsonb, so numbers compare as numbers whatever their spelling; strings are
 * ordered byte-wise (COLLATE "C"), as SQLite orders them, not by the database's locale.
 *
 * Indexes. Every collection has a GIN index (`jsonb_path_ops`) on `doc`, and `createIndex` adds a
 * btree index on the field's value (`doc -> 'f'`, or `doc #> '{a,b}'` for a nested path). The exact
 * MongoDB test (array elements, arrays of sub-documents along the path) cannot use them, so each
 * equality or numeric range is preceded by a condition it implies that they can serve (`indexHint`):
 *
 * - equality with a scalar on any path: `doc @@ '$."a"."b"[*] == <value>'`, a jsonpath in lax mode,
 *   which looks into arrays along the path and at its end as MongoDB does (GIN);
 * - equality or a numeric range on a top-level field: a range of `doc -> 'f'` for the value itself, OR
 *   the range of non-empty arrays (the value may be an element), both btree ranges over jsonb's order
 *   (null < strings < numbers < booleans < arrays < objects).
 *
 * Differences from SQLite, inherent to jsonb: key order inside documents is not kept (jsonb orders
 * keys), so sub-documents compare equal whatever their key order, and objects and arrays sort in
 * jsonb's order rather than by their JSON text.
 */
import { RustyError } from '../errors/rusty-error.ts';
import { documentError } from './document-errors.ts';
import type {
  Assignment,
  Candidate,
  CandidateTest,
  DocumentDialect,
  IndexableCondition,
  UpdatePlan,
} from './document-dialect.ts';
import { isIndexSegment } from './field-path.ts';
import type { ProjectionTree } from './projection-compiler.ts';
import { postgresAccumulator, postgresGroupKey, postgresObject } from './postgres-group.ts';
import { at, jsonb, objectOfPresent, pathArray, SEGMENT } from './postgres-json.ts';
import { escapeLike } from './regex-pattern.ts';
import { allOf, anyOf, bind, join, raw, sql, type AliasSource, type SqlFragment } from './sql-fragment.ts';

/** The helper functions database-setup.ts creates for documents. */
const SET_FUNCTION = 'rustydb_api.document_set';
const FAIL_FUNCTION = 'rustydb_api.document_failure';
/** Marks the messages of statements stopped by `failWith`. */
const FAILURE_PREFIX = 'rustydb: ';

/** A top-level field's value, in the form `createIndex` indexes. */
function topLevel(name: string): SqlFragment {
  if (!SEGMENT.test(name)) throw documentError(`invalid field name '${name}'`);
  return raw(`(doc -> '${name}')`);
}

function failWith(message: string): SqlFragment {
  return sql`${raw(FAIL_FUNCTION)}(${bind(message)})`;
}

/**
 * True when `atEnd` holds for some node the path leads to: in the middle of the path an array of
 * sub-documents is looked into element by element (unless the next segment is an index), anything
 * else is carried on from as it is (a missing node too: `{'a.b': null}` matches a missing `a`). One
 * set-returning function per level in a single FROM clause, so the SQL grows linearly with the path.
 */
function anyNode(
  segments: readonly string[],
  atEnd: (node: SqlFragment) => SqlFragment,
  aliases: AliasSource,
): SqlFragment {
  const sources: SqlFragment[] = [];
  const conditions: SqlFragment[] = [];
  let base = raw('doc');
  let from = 0;
  for (let i = 0; i < segments.length - 1; i++) {
    if (isIndexSegment(segments[i + 1]!)) continue;
    const target = at(base, segments.slice(from, i + 1));
    const node = aliases.next('n');
    sources.push(
      sql`jsonb_array_elements(CASE WHEN jsonb_typeof(${target}) = 'array' THEN ${target} ELSE jsonb_build_array(${target}) END) AS ${node}(v)`,
    );
    conditions.push(
      sql`(jsonb_typeof(${target}) IS DISTINCT FROM 'array' OR jsonb_typeof(${node}.v) = 'object')`,
    );
    base = sql`${node}.v`;
    from = i + 1;
  }
  const test = atEnd(at(base, segments.slice(from)));
  if (sources.length === 0) return test;
  return sql`EXISTS (SELECT 1 FROM ${join(sources, ', ')} WHERE ${allOf([...conditions, test])})`;
}

function anyValue(segments: readonly string[], test: CandidateTest, aliases: AliasSource): SqlFragment {
  return anyNode(
    segments,
    (value) => {
      const element = aliases.next('e');
      const itself = test({ value, type: sql`jsonb_typeof(${value})`, mayBeMissing: true });
      const inArray = test({
        value: sql`${element}.v`,
        type: sql`jsonb_typeof(${element}.v)`,
        mayBeMissing: false,
      });
      return sql`(${itself} OR (jsonb_typeof(${value}) = 'array' AND EXISTS (SELECT 1 FROM jsonb_array_elements(${value}) AS ${element}(v) WHERE ${inArray})))`;
    },
    aliases,
  );
}

function typeTest(c: Candidate, type: string): SqlFragment {
  return sql`${c.type} = ${raw(`'${type}'`)}`;
}

function stringOf(c: Candidate): SqlFragment {
  return sql`(${c.value} #>> '{}') COLLATE "C"`;
}

/** A jsonpath (lax) that is true when some value along the path equals the scalar. */
function equalityPath(segments: readonly string[], value: string | number | boolean): string {
  const steps = segments.map((s) => (isIndexSegment(s) ? `[${Number(s)}]` : `."${s}"`)).join('');
  return `$${steps}[*] == ${JSON.stringify(value)}`;
}

/** The btree ranges of `doc -> f` that hold the field's value when it is `value`, or any non-empty array. */
function fieldRange(field: SqlFragment, condition: IndexableCondition): SqlFragment {
  const arrays = sql`(${field} > 'true'::jsonb AND ${field} < '{}'::jsonb)`;
  if (condition.kind === 'equals') return anyOf([sql`${field} = ${jsonb(condition.value)}`, arrays]);
  const { operator, value } = condition;
  // Numbers sort below booleans: `< false` bounds a range of numbers from above.
  const numbers =
    operator === '>' || operator === '>='
      ? sql`(${field} ${raw(operator)} ${jsonb(value)} AND ${field} < 'false'::jsonb)`
      : sql`${field} ${raw(operator)} ${jsonb(value)}`;
  return anyOf([numbers, arrays]);
}

function assignedValue(assignment: Assignment): SqlFragment {
  const value = at(raw('doc'), assignment.path);
  const where = assignment.path.join('.');
  if (assignment.kind === 'set') return jsonb(assignment.value);
  if (assignment.kind === 'inc') {
    const by = assignment.by;
    // Integers add exactly (as SQLite's 64-bit integers do); anything else as doubles, as MongoDB.
    // (`{0,1}`, not `?`: the SQL text holds no `?` but its placeholders.)
    const sum = Number.isSafeInteger(by)
      ? sql`CASE WHEN (${value} #>> '{}') ~ '^-{0,1}[0-9]+$' THEN to_jsonb(CAST(${value} #>> '{}' AS numeric) + CAST(${bind(by)} AS numeric)) ELSE to_jsonb(CAST(${value} #>> '{}' AS float8) + CAST(${bind(by)} AS float8)) END`
      : sql`to_jsonb(CAST(${value} #>> '{}' AS float8) + CAST(${bind(by)} AS float8))`;
    return sql`CASE WHEN ${value} IS NULL THEN ${jsonb(by)} WHEN jsonb_typeof(${value}) = 'number' THEN ${sum} ELSE ${failWith(`$inc needs a number at '${where}'`)} END`;
  }
  const array = sql`CASE WHEN ${value} IS NULL THEN '[]'::jsonb WHEN jsonb_typeof(${value}) = 'array' THEN ${value} ELSE ${failWith(`$push needs an array at '${where}'`)} END`;
  return sql`(${array} || ${jsonb(assignment.values)})`;
}

/** The update fails, as MongoDB's does, where a path runs through a scalar or past an array's end. */
function parentGuards(path: readonly string[]): SqlFragment[] {
  const text = path.join('.');
  const guards: SqlFragment[] = [];
  for (let k = 1; k < path.length; k++) {
    const parent = at(raw('doc'), path.slice(0, k));
    const parentText = path.slice(0, k).join('.');
    const next = path[k]!;
    if (isIndexSegment(next)) {
      guards.push(
        sql`WHEN jsonb_typeof(${parent}) IS DISTINCT FROM 'array' THEN ${failWith(`cannot update '${text}': '${parentText}' is not an array`)}`,
        sql`WHEN jsonb_array_length(${parent}) < CAST(${bind(Number(next))} AS int) THEN ${failWith(`cannot update '${text}': index ${next} is past the end of '${parentText}'`)}`,
      );
    } else {
      guards.push(
        sql`WHEN jsonb_typeof(${parent}) <> 'object' THEN ${failWith(`cannot update '${text}': '${parentText}' is not an object`)}`,
      );
    }
  }
  return guards;
}

function keyList(keys: readonly string[]): SqlFragment {
  for (const key of keys) if (!SEGMENT.test(key)) throw documentError(`invalid field name '${key}'`);
  return raw(keys.map((key) => `'${key}'`).join(', '));
}

/**
 * The object `value` with the tree's fields kept (include) or removed (exclude). A member with
 * sub-paths is projected when it is a sub-document, and so is each sub-document of an array
 * (inclusion drops the other elements and members, exclusion keeps them), as SQLite's projection does.
 */
function projectObject(
  value: SqlFragment,
  tree: ProjectionTree,
  mode: 'include' | 'exclude',
  aliases: AliasSource,
): SqlFragment {
  // A `$project` of computed fields and `_id: 0`: nothing of the document itself is kept.
  if (mode === 'include' && tree.size === 0) return raw(`'{}'::jsonb`);
  const member = aliases.next('p');
  const leaves = [...tree].filter(([, sub]) => sub === true).map(([key]) => key);
  const nested = [...tree].filter((entry): entry is [string, ProjectionTree] => entry[1] !== true);
  const keep =
    mode === 'exclude'
      ? leaves.length === 0
        ? raw('TRUE')
        : sql`${member}.key NOT IN (${keyList(leaves)})`
      : anyOf([
          ...(leaves.length > 0 ? [sql`${member}.key IN (${keyList(leaves)})`] : []),
          ...(nested.length > 0
            ? [
                sql`(${member}.key IN (${keyList(nested.map(([key]) => key))}) AND jsonb_typeof(${member}.value) IN ('object', 'array'))`,
              ]
            : []),
        ]);
  const itself = sql`${member}.value`;
  const memberValue =
    nested.length === 0
      ? itself
      : sql`CASE ${member}.key ${join(
          nested.map(
            ([key, sub]) => sql`WHEN ${keyList([key])} THEN ${projectNested(itself, sub, mode, aliases)}`,
          ),
          ' ',
        )} ELSE ${itself} END`;
  return sql`(SELECT COALESCE(jsonb_object_agg(${member}.key, ${memberValue}), '{}'::jsonb) FROM jsonb_each(${value}) AS ${member} WHERE ${keep})`;
}

function projectNested(
  value: SqlFragment,
  tree: ProjectionTree,
  mode: 'include' | 'exclude',
  aliases: AliasSource,
): SqlFragment {
  const element = aliases.next('a');
  const item = sql`${element}.v`;
  const object = projectObject(item, tree, mode, aliases);
  const elements =
    mode === 'include'
      ? sql`(SELECT COALESCE(jsonb_agg(${object} ORDER BY ${element}.i), '[]'::jsonb) FROM jsonb_array_elements(${value}) WITH ORDINALITY AS ${element}(v, i) WHERE jsonb_typeof(${item}) = 'object')`
      : sql`(SELECT COALESCE(jsonb_agg(CASE WHEN jsonb_typeof(${item}) = 'object' THEN ${object} ELSE ${item} END ORDER BY ${element}.i), '[]'::jsonb) FROM jsonb_array_elements(${value}) WITH ORDINALITY AS ${element}(v, i))`;
  return sql`CASE jsonb_typeof(${value}) WHEN 'object' THEN ${projectObject(value, tree, mode, aliases)} WHEN 'array' THEN ${elements} ELSE ${value} END`;
}

export const postgresDialect: DocumentDialect = {
  name: 'postgres',
  TRUE: raw('TRUE'),
  FALSE: raw('FALSE'),
  not: (part) => sql`(${part}) IS NOT TRUE`,

  anyValue,
  present: (segments, aliases) => anyNode(segments, (node) => sql`${node} IS NOT NULL`, aliases),
  isNull: (c) => (c.mayBeMissing ? sql`COALESCE(${c.type}, 'null') = 'null'` : typeTest(c, 'null')),
  equals: (c, value) => sql`${c.value} = ${jsonb(value)}`,
  compare(c, operator, operand) {
    if (typeof operand === 'string') {
      return sql`(${typeTest(c, 'string')} AND ${stringOf(c)} ${raw(operator)} CAST(${bind(operand)} AS text))`;
    }
    const type = typeof operand === 'number' ? 'number' : 'boolean';
    return sql`(${typeTest(c, type)} AND ${c.value} ${raw(operator)} ${jsonb(operand)})`;
  },
  oneOf: (c, values) => sql`${c.value} IN (${join(values.map(jsonb), ', ')})`,
  matches(c, pattern) {
    const { literal, anchoredStart, anchoredEnd, caseInsensitive } = pattern;
    const head = anchoredStart ? '' : '%';
    const body = escapeLike(literal);
    const patterns = anchoredEnd ? [`${head}${body}`, `${head}${body}\n`] : [`${head}${body}%`];
    const like = raw(caseInsensitive ? 'ILIKE' : 'LIKE');
    const tests = patterns.map((p) => sql`${stringOf(c)} ${like} CAST(${bind(p)} AS text) ESCAPE '\\'`);
    return sql`(${typeTest(c, 'string')} AND ${anyOf(tests)})`;
  },
  idColumn: (operator, value) =>
    operator === '='
      ? sql`(_id = CAST(${bind(value)} AS text) AND jsonb_typeof(doc -> '_id') = 'string')`
      : sql`(_id COLLATE "C" ${raw(operator)} CAST(${bind(value)} AS text) AND jsonb_typeof(doc -> '_id') = 'string')`,
  idColumnIn: (values) =>
    sql`(_id IN (${join(
      values.map((v) => sql`CAST(${bind(v)} AS text)`),
      ', ',
    )}) AND jsonb_typeof(doc -> '_id') = 'string')`,
  indexHint(segments, condition) {
    const hints: SqlFragment[] = [];
    if (condition.kind === 'equals') {
      hints.push(sql`doc @@ CAST(${bind(equalityPath(segments, condition.value))} AS jsonpath)`);
    }
    if (segments.length === 1) hints.push(fieldRange(topLevel(segments[0]!), condition));
    return hints.length === 0 ? undefined : allOf(hints);
  },

  project(plan, aliases) {
    const kept = projectObject(raw('doc'), plan.tree, plan.mode, aliases);
    if (plan.computed.length === 0) return kept;
    // Computed fields (`name: '$path'`) are left out where their path is missing.
    const computed = plan.computed.map(([name, source]) => [name, at(raw('doc'), source)] as const);
    return sql`(${kept} || ${objectOfPresent(computed)})`;
  },

  groupKey: postgresGroupKey,
  accumulator: postgresAccumulator,
  object: postgresObject,

  sortKeys(segments) {
    const value = at(raw('doc'), segments);
    return [
      sql`CASE COALESCE(jsonb_typeof(${value}), 'null') WHEN 'null' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3 WHEN 'object' THEN 4 WHEN 'array' THEN 5 ELSE 6 END`,
      sql`CASE WHEN jsonb_typeof(${value}) = 'string' THEN (${value} #>> '{}') COLLATE "C" END`,
      sql`CASE WHEN jsonb_typeof(${value}) <> 'null' THEN ${value} END`,
    ];
  },
  idOrder: raw('_id COLLATE "C"'),
  limitClause(limit, skip) {
    const parts: SqlFragment[] = [];
    if (limit !== undefined && limit > 0) parts.push(sql` LIMIT CAST(${bind(limit)} AS bigint)`);
    if (skip !== undefined && skip > 0) parts.push(sql` OFFSET CAST(${bind(skip)} AS bigint)`);
    return join(parts, '');
  },

  documentValue: (text) => sql`CAST(${text} AS jsonb)`,
  updated(plan: UpdatePlan) {
    let document = raw('doc');
    for (const path of plan.removals) document = sql`(${document} #- ${pathArray(path)})`;
    for (const path of plan.nulled)
      document = sql`jsonb_set(${document}, ${pathArray(path)}, 'null'::jsonb, false)`;
    for (const assignment of plan.assignments) {
      document = sql`${raw(SET_FUNCTION)}(${document}, ${pathArray(assignment.path)}, ${assignedValue(assignment)})`;
    }
    const guards = plan.assignments.flatMap(({ path }) => parentGuards(path));
    return guards.length === 0 ? document : sql`CASE ${join(guards, ' ')} ELSE ${document} END`;
  },
  replaced(text, id) {
    const replaced = sql`jsonb_set(CAST(${bind(text)} AS jsonb), '{_id}'::text[], doc -> '_id')`;
    if (id === undefined) return replaced;
    const sameId = sql`doc -> '_id' IS NOT DISTINCT FROM CAST(${bind(id)} AS jsonb)`;
    return sql`CASE WHEN ${sameId} THEN ${replaced} ELSE ${failWith('the replacement document cannot change _id')} END`;
  },
  failureMessage(error) {
    const message = (error as { message?: unknown } | null)?.message;
    if (typeof message !== 'string' || !message.startsWith(FAILURE_PREFIX)) return undefined;
    return message.slice(FAILURE_PREFIX.length);
  },
  isDuplicateKey: (error) =>
    error instanceof RustyError
      ? error.details?.sqlstate === '23505'
      : (error as { code?: unknown }).code === '23505',

  createCollection: (table) => [
    `CREATE TABLE ${table.sql} (_id text PRIMARY KEY, doc jsonb NOT NULL, _op text)`,
    `CREATE INDEX ON ${table.sql} USING gin (doc jsonb_path_ops)`,
  ],
  createIndex(table, indexName, segments) {
    const value = segments.length === 1 ? topLevel(segments[0]!) : at(raw('doc'), segments);
    return `CREATE INDEX IF NOT EXISTS "${indexName}" ON ${table.sql} (${value.sql})`;
  },
  columnsSql: `SELECT a.attname AS name FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
      JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE s.nspname = 'public' AND c.relname = ? AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
  tablesSql: `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace
      WHERE s.nspname = 'public' AND c.relkind = 'r' ORDER BY c.relname`,
  // The GIN index every collection has is not one a client made: only createIndex's are listed.
  indexesSql: `SELECT indexname AS name FROM pg_indexes WHERE schemaname = 'public' AND tablename = ?
      AND starts_with(indexname, tablename || '__') ORDER BY indexname COLLATE "C"`,
};
