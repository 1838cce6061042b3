/**
 * Projections (`{name: 1, 'address.city': 1}`, `{secret: 0}`) as an SQL expression that rebuilds the
 * document from the `doc` column. Fields are copied as their JSON text (`doc -> path`), so values come
 * out exactly as stored (SQLite would otherwise rewrite 0.30000000000000004 as 0.3 and true as 1).
 *
 * - inclusion keeps `_id` and the listed fields, in the document's own order; a nested path keeps the
 *   sub-document's listed fields, and applies to each sub-document of an array (other elements are
 *   dropped), as in MongoDB; a field that is missing stays missing;
 * - exclusion removes the listed fields (inside arrays of sub-documents too);
 * - `_id: 0` removes `_id` in either mode; inclusion and exclusion cannot otherwise be mixed;
 * - in `$project` (option `computed`), `name: '$path'` adds a top-level field with the value found at
 *   `path` (read directly: it does not collect values across an array as MongoDB does), omitted when
 *   the path is missing.
 *
 * Refused: array indexes in paths, overlapping paths (`a` with `a.b`), paths deeper than three
 * segments (see MAX_PROJECTION_DEPTH), any other value or expression.
 */
import { describeValue, documentError } from './document-errors.ts';
import { jsonPathLiteral, nameLiteral, parseFieldPath } from './field-path.ts';
import { isPlainObject } from './json-values.ts';
import { anyOf, join, raw, sql, type AliasSource, type SqlFragment } from './sql-fragment.ts';

/** Projected paths as a tree of segments: `true` ends a path. */
export type ProjectionTree = Map<string, true | ProjectionTree>;
type Tree = ProjectionTree;

/**
 * Projected paths are at most this deep (`a.b.c`). Each level rebuilds a sub-document with nested
 * subqueries, and SQLite's parser stack (100 entries in the libsql build) holds about three levels
 * in every context a projection is used in.
 */
export const MAX_PROJECTION_DEPTH = 3;

export interface ProjectionPlan {
  mode: 'include' | 'exclude';
  /** Included (or excluded) paths, `_id` already added or removed. */
  tree: Tree;
  /** `$project` fields computed from another path: [output name, source path segments]. */
  computed: [string, string[]][];
}

export interface ProjectionOptions {
  /** Allow `name: '$path'` values (aggregation `$project`). */
  computed: boolean;
  /** Names the caller in error messages (`projection`, `$project`). */
  where: string;
}

function flag(value: unknown): boolean | undefined {
  if (value === 1 || value === true) return true;
  if (value === 0 || value === false) return false;
  return undefined;
}

function addPath(tree: Tree, segments: readonly string[], where: string, pathText: string): void {
  let node = tree;
  segments.forEach((segment, i) => {
    const existing = node.get(segment);
    const last = i === segments.length - 1;
    if (existing === true || (last && existing !== undefined)) {
      throw documentError(`${where}: path collision at '${pathText}'`);
    }
    if (last) {
      node.set(segment, true);
      return;
    }
    const child: Tree = existing ?? new Map();
    node.set(segment, child);
    node = child;
  });
}

/** Checks a projection; null means "the whole document" (an empty projection, where allowed). */
export function parseProjection(spec: unknown, options: ProjectionOptions): ProjectionPlan | null {
  const { where } = options;
  if (!isPlainObject(spec)) throw documentError(`${where} must be an object such as {"name": 1}`);
  const entries = Object.entries(spec);
  if (entries.length === 0) {
    if (options.computed) throw documentError(`${where} needs at least one field`);
    return null;
  }
  let mode: 'include' | 'exclude' | undefined;
  let includeId = true;
  const tree: Tree = new Map();
  const computed: [string, string[]][] = [];
  for (const [pathText, value] of entries) {
    const keep = flag(value);
    if (pathText === '_id' && keep !== undefined) {
      includeId = keep;
      continue;
    }
    if (options.computed && typeof value === 'string' && value.startsWith('$')) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(pathText)) {
        throw documentError(`${where}: computed field '${pathText}' must be a top-level name`);
      }
      computed.push([
        pathText,
        parseFieldPath(value.slice(1), `${where}.${pathText}`, { allowIndexes: false }),
      ]);
      if (pathText === '_id') includeId = false;
      continue;
    }
    if (keep === undefined) {
      const allowed = options.computed ? '0, 1 or a "$field" reference' : '0 or 1';
      throw documentError(
        `${where}: value for '${pathText}' must be ${allowed}, got ${describeValue(value)}`,
      );
    }
    const fieldMode = keep ? 'include' : 'exclude';
    if (mode !== undefined && mode !== fieldMode) {
      throw documentError(`${where}: cannot mix inclusion and exclusion (at '${pathText}')`);
    }
    mode = fieldMode;
    const segments = parseFieldPath(pathText, where, { allowIndexes: false });
    if (segments.length > MAX_PROJECTION_DEPTH) {
      throw documentError(`${where}: path '${pathText}' is deeper than ${MAX_PROJECTION_DEPTH} levels`);
    }
    addPath(tree, segments, where, pathText);
  }
  if (computed.length > 0) {
    if (mode === 'exclude')
      throw documentError(`${where}: computed fields cannot be combined with exclusion`);
    mode = 'include';
    for (const [name] of computed) {
      if (tree.has(name)) throw documentError(`${where}: path collision at '${name}'`);
    }
  }
  mode ??= includeId ? 'include' : 'exclude';
  if (mode === 'include' && includeId && !tree.has('_id')) {
    // _id comes first in the output when it comes first in the document, as it always does.
    tree.set('_id', true);
  }
  if (mode === 'exclude' && !includeId) tree.set('_id', true);
  return { mode, tree, computed };
}

/** The projected document as JSON text, evaluated against the `doc` column in scope. */
export function projectionSql(plan: ProjectionPlan, aliases: AliasSource): SqlFragment {
  if (plan.computed.length === 0) return objectSql(null, plan.tree, plan.mode, aliases);
  const member = aliases.next('p');
  const computedRow = ([name, source]: [string, string[]]) => {
    const path = jsonPathLiteral(source);
    return sql`SELECT ${nameLiteral(name)} AS k, doc -> ${path} AS v WHERE json_type(doc, ${path}) IS NOT NULL`;
  };
  const rows = [
    // A computed _id still comes first, as MongoDB writes it.
    ...plan.computed.filter(([name]) => name === '_id').map(computedRow),
    sql`SELECT ${member}.key AS k, ${memberValue(member, plan.tree, plan.mode, aliases)} AS v FROM json_each(doc) AS ${member} WHERE ${memberFilter(member, plan.tree, plan.mode)}`,
    ...plan.computed.filter(([name]) => name !== '_id').map(computedRow),
  ];
  return sql`(SELECT json_group_object(k, json(v)) FROM (${join(rows, ' UNION ALL ')}))`;
}

function names(keys: readonly string[]): SqlFragment {
  return join(keys.map(nameLiteral), ', ');
}

function memberFilter(member: SqlFragment, tree: Tree, mode: 'include' | 'exclude'): SqlFragment {
  const leaves = [...tree].filter(([, sub]) => sub === true).map(([key]) => key);
  if (mode === 'exclude')
    return leaves.length === 0 ? raw('1') : sql`${member}.key NOT IN (${names(leaves)})`;
  const nested = [...tree].filter(([, sub]) => sub !== true).map(([key]) => key);
  return anyOf([
    ...(leaves.length > 0 ? [sql`${member}.key IN (${names(leaves)})`] : []),
    // A nested inclusion keeps only sub-documents (and arrays of them); a scalar there is dropped.
    ...(nested.length > 0
      ? [sql`(${member}.key IN (${names(nested)}) AND ${member}.type IN ('object', 'array'))`]
      : []),
  ]);
}

/** JSON text of one member of the object being projected. */
function memberValue(
  member: SqlFragment,
  tree: Tree,
  mode: 'include' | 'exclude',
  aliases: AliasSource,
): SqlFragment {
  const itself = sql`doc -> ${member}.fullkey`;
  const nested = [...tree].filter((entry): entry is [string, Tree] => entry[1] !== true);
  if (nested.length === 0) return itself;
  const branches = nested.map(
    ([key, sub]) =>
      sql`WHEN ${nameLiteral(key)} THEN ${nestedValue(sql`${member}.fullkey`, sub, mode, aliases)}`,
  );
  return sql`CASE ${member}.key ${join(branches, ' ')} ELSE ${itself} END`;
}

/** The object at `path` (the whole document when null) with the tree's fields kept or removed. */
function objectSql(
  path: SqlFragment | null,
  tree: Tree,
  mode: 'include' | 'exclude',
  aliases: AliasSource,
): SqlFragment {
  const member = aliases.next('p');
  const source = path === null ? sql`json_each(doc)` : sql`json_each(doc, ${path})`;
  const value = memberValue(member, tree, mode, aliases);
  // No json() around the value: it is the direct result of a JSON function (`->`, json_extract),
  // which keeps its JSON subtype through CASE. Saving the call saves parser stack (see nestedValue).
  const only =
    mode === 'exclude' && path !== null ? sql` HAVING json_type(doc, ${path}) = 'object'` : raw('');
  return sql`(SELECT json_group_object(${member}.key, ${value}) FROM ${source} AS ${member} WHERE ${memberFilter(member, tree, mode)}${only})`;
}

/**
 * A member with sub-paths: a sub-document is projected, and so is each sub-document of an array
 * (inclusion drops other elements, exclusion keeps them); anything else is kept (exclusion only:
 * inclusion filtered it out). Both shapes go through one list of element paths, so the sub-tree's
 * SQL is written once, keeping the statement linear in the projection's size.
 */
function nestedValue(
  path: SqlFragment,
  tree: Tree,
  mode: 'include' | 'exclude',
  aliases: AliasSource,
): SqlFragment {
  const element = aliases.next('a');
  const item = aliases.next('q');
  const itemPath = sql`${item}.value`;
  const onlyObjects = mode === 'include' ? sql` WHERE ${element}.type = 'object'` : raw('');
  const elements = sql`(SELECT json_group_array(${element}.fullkey) FROM json_each(doc, ${path}) AS ${element}${onlyObjects})`;
  const paths = sql`CASE WHEN json_type(doc, ${path}) = 'array' THEN ${elements} ELSE json_array(${path}) END`;
  const object = objectSql(itemPath, tree, mode, aliases);
  // Exclusion keeps what is not a sub-document: objectSql is NULL for it (see its HAVING).
  const projected = mode === 'include' ? object : sql`COALESCE(${object}, doc -> ${itemPath})`;
  // Projected as a list either way; a sub-document is then read back from position 0.
  const list = sql`(SELECT json_group_array(json(${projected})) FROM json_each(${paths}) AS ${item})`;
  return sql`json_extract(${list}, CASE WHEN json_type(doc, ${path}) = 'array' THEN '$' ELSE '$[0]' END)`;
}
