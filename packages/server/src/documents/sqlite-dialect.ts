/**
 * The document SQL of the SQLite engine: documents are JSON text in a TEXT column, read with SQLite's
 * JSON1 functions. A candidate's value is an SQL value (text for strings, a number, 1/0 for booleans,
 * JSON text for objects and arrays) and its type a `json_type` name ('null', 'true', 'false',
 * 'integer', 'real', 'text', 'array', 'object'). An index is an expression index on
 * `json_extract(doc, path)`, the very expression the filters test.
 */
import type { Assignment, Candidate, DocumentDialect, UpdatePlan } from './document-dialect.ts';
import { anyNode, anyValue } from './field-values.ts';
import { isIndexSegment, jsonPath, jsonPathLiteral } from './field-path.ts';
import { failureMessage, failWith, NUMBER_TYPES, renderNumber, typeRank } from './json-sql.ts';
import { literalPatternSql } from './regex-pattern.ts';
import { projectionSql } from './projection-compiler.ts';
import { sqliteAccumulator, sqliteGroupKey, sqliteObject } from './sqlite-group.ts';
import { bind, bindNumber, join, raw, sql, type SqlFragment } from './sql-fragment.ts';

function typeName(value: string | number | boolean | object): SqlFragment {
  if (typeof value === 'string') return raw("'text'");
  if (typeof value === 'boolean') return raw(value ? "'true'" : "'false'");
  return raw(Array.isArray(value) ? "'array'" : "'object'");
}

/** A scalar's test: numbers match integers and reals alike. */
function ofType(c: Candidate, value: string | number | boolean): SqlFragment {
  if (typeof value === 'number') return sql`${c.type} IN ${NUMBER_TYPES}`;
  if (typeof value === 'boolean') return sql`${c.type} IN ('true', 'false')`;
  return sql`${c.type} IS 'text'`;
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

/** The JSON value an assignment stores, computed from the document as it was. */
function assignedValue(assignment: Assignment): SqlFragment {
  const at = jsonPathLiteral(assignment.path);
  const where = assignment.path.join('.');
  if (assignment.kind === 'set') return sql`json(${bind(JSON.stringify(assignment.value))})`;
  if (assignment.kind === 'inc') {
    const by = bindNumber(assignment.by);
    const sum = sql`CASE WHEN json_type(doc, ${at}) IS NULL THEN ${by} WHEN json_type(doc, ${at}) IN ${NUMBER_TYPES} THEN json_extract(doc, ${at}) + ${by} ELSE ${failWith(`$inc needs a number at '${where}'`)} END`;
    return sql`json((SELECT ${renderNumber(raw('n'))} FROM (SELECT ${sum} AS n)))`;
  }
  const array = sql`CASE WHEN json_type(doc, ${at}) IS NULL THEN json_array() WHEN json_type(doc, ${at}) = 'array' THEN doc -> ${at} ELSE ${failWith(`$push needs an array at '${where}'`)} END`;
  if (assignment.values.length === 0) return sql`json(${array})`;
  const appended = assignment.values.map((value) => sql`'$[#]', json(${bind(JSON.stringify(value))})`);
  return sql`json(json_insert(${array}, ${join(appended, ', ')}))`;
}

export const sqliteDialect: DocumentDialect = {
  name: 'sqlite',
  TRUE: raw('1'),
  FALSE: raw('0'),
  // The `IS NOT 1` form costs SQLite's parser almost no stack, which deeply nested filters need.
  not: (part) => sql`(${part}) IS NOT 1`,

  anyValue,
  present: (segments, aliases) =>
    anyNode(segments, (node) => sql`json_type(doc, ${node}) IS NOT NULL`, aliases),
  isNull: (c) => (c.mayBeMissing ? sql`IFNULL(${c.type}, 'null') = 'null'` : sql`${c.type} IS 'null'`),
  equals(c, value) {
    if (typeof value === 'boolean') return sql`${c.type} IS ${typeName(value)}`;
    if (typeof value === 'number') return sql`(${ofType(c, value)} AND ${c.value} = ${bind(value)})`;
    if (typeof value === 'string') return sql`(${ofType(c, value)} AND ${c.value} = ${bind(value)})`;
    return sql`(${c.type} IS ${typeName(value)} AND ${c.value} = json(${bind(JSON.stringify(value))}))`;
  },
  compare(c, operator, operand) {
    const value = typeof operand === 'boolean' ? bind(operand ? 1 : 0) : bind(operand);
    return sql`(${ofType(c, operand)} AND ${c.value} ${raw(operator)} ${value})`;
  },
  oneOf: (c, values) => sql`(${ofType(c, values[0]!)} AND ${c.value} IN (${join(values.map(bind), ', ')}))`,
  matches: (c, pattern) => sql`(${c.type} IS 'text' AND ${literalPatternSql(c.value, pattern)})`,
  idColumn: (operator, value) =>
    sql`(_id ${raw(operator)} ${bind(value)} AND json_type(doc, '$._id') = 'text')`,
  idColumnIn: (values) =>
    sql`(_id IN (${join(values.map(bind), ', ')}) AND json_type(doc, '$._id') = 'text')`,
  indexHint: () => undefined,

  project: projectionSql,

  groupKey: sqliteGroupKey,
  accumulator: sqliteAccumulator,
  object: sqliteObject,

  sortKeys(segments) {
    const path = jsonPathLiteral(segments);
    return [typeRank(sql`json_type(doc, ${path})`), sql`json_extract(doc, ${path})`];
  },
  idOrder: raw('_id'),
  limitClause(limit, skip) {
    const hasLimit = limit !== undefined && limit > 0;
    const hasSkip = skip !== undefined && skip > 0;
    if (!hasLimit && !hasSkip) return raw('');
    // LIMIT -1 is SQLite's "no limit", needed to write an OFFSET alone.
    const limitSql = hasLimit ? bindNumber(limit) : raw('-1');
    return hasSkip ? sql` LIMIT ${limitSql} OFFSET ${bindNumber(skip)}` : sql` LIMIT ${limitSql}`;
  },

  documentValue: (text) => sql`json(${text})`,
  updated(plan: UpdatePlan) {
    let document = raw('doc');
    if (plan.removals.length > 0) {
      document = sql`json_remove(${document}, ${join(plan.removals.map(jsonPathLiteral), ', ')})`;
    }
    if (plan.nulled.length > 0) {
      const pairs = plan.nulled.map((path) => sql`${jsonPathLiteral(path)}, NULL`);
      document = sql`json_replace(${document}, ${join(pairs, ', ')})`;
    }
    if (plan.assignments.length > 0) {
      const pairs = plan.assignments.map((a) => sql`${jsonPathLiteral(a.path)}, ${assignedValue(a)}`);
      document = sql`json_set(${document}, ${join(pairs, ', ')})`;
    }
    const guards = plan.assignments.flatMap(({ path }) => parentGuards(path));
    return guards.length === 0 ? document : sql`CASE ${join(guards, ' ')} ELSE ${document} END`;
  },
  replaced(text, id) {
    // The null placeholder puts _id first; json_set then fills in the stored one.
    const replaced = sql`json_set(json(${bind(text)}), '$._id', doc -> '$._id')`;
    if (id === undefined) return replaced;
    const sameId = sql`doc -> '$._id' IS json(${bind(id)})`;
    return sql`CASE WHEN ${sameId} THEN ${replaced} ELSE ${failWith('the replacement document cannot change _id')} END`;
  },
  failureMessage,
  isDuplicateKey: (error) =>
    /UNIQUE constraint failed/.test(String((error as { message?: unknown }).message)),

  createCollection: (table) => [
    `CREATE TABLE ${table.sql} (_id TEXT PRIMARY KEY, doc TEXT NOT NULL CHECK (json_valid(doc)), _op TEXT)`,
  ],
  createIndex: (table, indexName, segments) =>
    `CREATE INDEX IF NOT EXISTS "${indexName}" ON ${table.sql} (json_extract(doc, '${jsonPath(segments)}'))`,
  columnsSql: 'SELECT name FROM pragma_table_info(?) ORDER BY cid',
  tablesSql: `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
         AND name NOT LIKE '\\_rustydb\\_%' ESCAPE '\\' ORDER BY name`,
  indexesSql:
    "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL ORDER BY name",
};
