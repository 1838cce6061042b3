/**
 * SQL names become GraphQL names. GraphQL allows `[_A-Za-z][_0-9A-Za-z]*` and reserves a leading `__`;
 * SQL allows almost anything in a quoted identifier. The mapping (also in docs/graphql.md):
 *
 * - every character outside `[_0-9A-Za-z]` becomes `_`;
 * - a name starting with a digit gets a leading `_`; one starting with `__` gets a leading `x`;
 * - the column names `and`, `or` and `not` (the `where` combinators) and `true`, `false` and `null`
 *   (not allowed as enum values) get a trailing `_`;
 * - when two names of the same scope map to the same GraphQL name, the later one (in SQL name order)
 *   gets `_2`, `_3`, … appended.
 *
 * SQL text is only ever built from the SQL names kept beside these, never from a GraphQL name.
 */

export function graphQLName(sql: string): string {
  let name = sql.replace(/[^_0-9A-Za-z]/g, '_');
  if (name === '') name = '_';
  if (/^[0-9]/.test(name)) name = `_${name}`;
  if (name.startsWith('__')) name = `x${name}`;
  return name;
}

const WHERE_WORDS = new Set(['and', 'or', 'not', 'true', 'false', 'null']);

export function columnName(sql: string): string {
  const name = graphQLName(sql);
  return WHERE_WORDS.has(name) ? `${name}_` : name;
}

/** Gives each name a GraphQL name unique within `taken` (which it extends). */
export function uniqueName(base: string, taken: Set<string>): string {
  let name = base;
  for (let n = 2; taken.has(name); n++) name = `${base}_${n}`;
  taken.add(name);
  return name;
}

/** SQL identifiers are always quoted, whatever they hold. */
export function quoteIdent(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
