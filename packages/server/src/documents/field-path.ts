/**
 * Field paths (`address.city`, `items.0.sku`) and the JSON paths SQLite understands (`$.address.city`,
 * `$.items[0].sku`). Every path is checked against a strict grammar before it becomes SQL text, which
 * is why the compilers may write JSON paths as literals (the form expression indexes can match)
 * instead of binding them.
 */
import { documentError } from './document-errors.ts';
import { raw, type SqlFragment } from './sql-fragment.ts';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INDEX = /^\d+$/;
/** Deep enough for any sensible document; each level of array traversal nests a subquery. */
export const MAX_PATH_SEGMENTS = 32;
/** Index segments beyond this are refused (SQLite paths take 32-bit-ish indexes anyway). */
const MAX_INDEX = 1_000_000_000;

export function isIndexSegment(segment: string): boolean {
  return INDEX.test(segment);
}

export function isFieldName(name: string): boolean {
  return NAME.test(name);
}

/**
 * Splits and checks a dotted path. Segments are names (`[A-Za-z_][A-Za-z0-9_]*`) or array indexes
 * (digits); the first segment must be a name. `allowIndexes: false` is for contexts, such as
 * projections, where MongoDB does not treat digits as indexes.
 */
export function parseFieldPath(
  path: string,
  where: string,
  options: { allowIndexes?: boolean } = {},
): string[] {
  const allowIndexes = options.allowIndexes ?? true;
  const segments = path.split('.');
  const bad = (why: string) => documentError(`${where}: invalid field path '${path}' (${why})`);
  if (segments.length > MAX_PATH_SEGMENTS) throw bad(`more than ${MAX_PATH_SEGMENTS} segments`);
  segments.forEach((segment, i) => {
    if (NAME.test(segment)) return;
    if (INDEX.test(segment)) {
      if (i === 0) throw bad('it must start with a field name');
      if (!allowIndexes) throw bad('array indexes are not supported here');
      if (Number(segment) > MAX_INDEX) throw bad('array index too large');
      return;
    }
    throw bad(
      segment === ''
        ? 'empty segment'
        : `segment '${segment}' must be a name of letters, digits and _ or an array index`,
    );
  });
  return segments;
}

/** The JSON path suffix of one checked segment: `.name` or `[3]`. */
export function segmentSuffix(segment: string): string {
  return INDEX.test(segment) ? `[${Number(segment)}]` : `.${segment}`;
}

export function jsonPath(segments: readonly string[]): string {
  return `$${segments.map(segmentSuffix).join('')}`;
}

const JSON_PATH = /^\$(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*$/;

/** A checked JSON path as an SQL string literal. */
export function jsonPathLiteral(segments: readonly string[]): SqlFragment {
  const path = jsonPath(segments);
  // The segments were validated already; this is the last line of defence before SQL text.
  if (!JSON_PATH.test(path)) throw documentError(`invalid field path '${segments.join('.')}'`);
  return raw(`'${path}'`);
}

const PATH_SUFFIX = /^(?:\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*$/;

/** The JSON path suffix of checked segments (`.b[0]`) as an SQL string literal, for `base || suffix`. */
export function jsonPathSuffixLiteral(segments: readonly string[]): SqlFragment {
  const suffix = segments.map(segmentSuffix).join('');
  if (!PATH_SUFFIX.test(suffix)) throw documentError(`invalid field path '${segments.join('.')}'`);
  return raw(`'${suffix}'`);
}

/** A checked field name as an SQL string literal (an object key, as json_each reports it). */
export function nameLiteral(name: string): SqlFragment {
  if (!NAME.test(name)) throw documentError(`invalid field name '${name}'`);
  return raw(`'${name}'`);
}
