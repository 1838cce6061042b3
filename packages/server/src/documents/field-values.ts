/**
 * How a filter reaches the values behind a field path on SQLite (see sqlite-dialect.ts), with MongoDB's array semantics:
 *
 * - at the end of the path, a condition holds when it holds for the value itself or, when the value
 *   is an array, for any of its elements (`{tags: 'x'}` matches `tags: ['x', 'y']`);
 * - in the middle of the path, an array of sub-documents is looked into element by element
 *   (`{'items.sku': 'A1'}` matches `items: [{sku: 'A1'}, …]`), unless the next segment is an index
 *   (`items.0.sku` addresses the first element only).
 *
 * Conditions are built over JSON paths evaluated against the `doc` column in scope. Where the path
 * may cross an array, the candidate nodes are enumerated with json_each in a correlated subquery, so
 * the SQL grows linearly with the path's length, not with the number of ways to read it, and its
 * nesting depth does not grow at all.
 */
import { isIndexSegment, jsonPathLiteral, jsonPathSuffixLiteral } from './field-path.ts';
import { join, sql, type AliasSource, type SqlFragment } from './sql-fragment.ts';
import type { CandidateTest } from './document-dialect.ts';

/** A JSON path: a literal, or a path column produced by a json_each subquery plus a literal suffix. */
function pathExpression(base: SqlFragment | null, segments: readonly string[]): SqlFragment {
  if (base === null) return jsonPathLiteral(segments);
  return segments.length === 0 ? base : sql`${base} || ${jsonPathSuffixLiteral(segments)}`;
}

/**
 * True when `atEnd` holds for some node the path leads to (looking into arrays of sub-documents on the
 * way). `atEnd` receives an SQL expression for the node's JSON path. Used as is by `$exists`.
 */
export function anyNode(
  segments: readonly string[],
  atEnd: (path: SqlFragment) => SqlFragment,
  aliases: AliasSource,
): SqlFragment {
  const sources: SqlFragment[] = [];
  let base: SqlFragment | null = null;
  let from = 0;
  for (let i = 0; i < segments.length - 1; i++) {
    if (isIndexSegment(segments[i + 1]!)) continue;
    // The node reached so far may be an array of sub-documents (carry on from each of them) or
    // anything else (carry on from the node itself, even if missing: `{'a.b': null}` matches a
    // missing `a`). The nodes' paths are listed as a JSON array and walked with json_each, one
    // table per level in a single FROM clause: nesting a subquery per level instead would exhaust
    // SQLite's parser stack after about ten levels.
    const target = pathExpression(base, segments.slice(from, i + 1));
    const nodes = aliases.next('n');
    const element = aliases.next('e');
    const elements = sql`(SELECT json_group_array(${element}.fullkey) FROM json_each(doc, ${target}) AS ${element} WHERE ${element}.type = 'object')`;
    sources.push(
      sql`json_each(CASE WHEN json_type(doc, ${target}) = 'array' THEN ${elements} ELSE json_array(${target}) END) AS ${nodes}`,
    );
    base = sql`${nodes}.value`;
    from = i + 1;
  }
  const test = atEnd(pathExpression(base, segments.slice(from)));
  return sources.length === 0 ? test : sql`EXISTS (SELECT 1 FROM ${join(sources, ', ')} WHERE ${test})`;
}

/** True when `test` holds for some value the path leads to, array elements at the end included. */
export function anyValue(
  segments: readonly string[],
  test: CandidateTest,
  aliases: AliasSource,
): SqlFragment {
  return anyNode(
    segments,
    (path) => {
      const element = aliases.next('e');
      const itself = test({
        value: sql`json_extract(doc, ${path})`,
        type: sql`json_type(doc, ${path})`,
        mayBeMissing: true,
      });
      const inArray = test({ value: sql`${element}.value`, type: sql`${element}.type`, mayBeMissing: false });
      return sql`(${itself} OR (json_type(doc, ${path}) IS 'array' AND EXISTS (SELECT 1 FROM json_each(doc, ${path}) AS ${element} WHERE ${inArray})))`;
    },
    aliases,
  );
}
