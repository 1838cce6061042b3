/**
 * SQL built from fragments that carry their own parameters. Every compiler in this folder assembles
 * its statement with the `sql` tag, which only accepts other fragments: a client value can reach the
 * text only through `bind` (a `?` placeholder), so the placeholders and the parameter list can never
 * drift apart, and nothing a client sends is ever spliced into the SQL.
 */

/** The values the compilers bind. Booleans never appear (they are turned into JSON or 1/0 first). */
export type SqlParam = string | number | null;

export interface SqlFragment {
  readonly sql: string;
  readonly params: readonly SqlParam[];
}

/** What every compiler returns: SQL text with positional `?` placeholders and their values, in order. */
export interface CompiledSql {
  sql: string;
  params: SqlParam[];
}

export function sql(strings: TemplateStringsArray, ...parts: SqlFragment[]): SqlFragment {
  let text = strings[0] ?? '';
  const params: SqlParam[] = [];
  parts.forEach((part, i) => {
    text += part.sql + (strings[i + 1] ?? '');
    params.push(...part.params);
  });
  return { sql: text, params };
}

/** Trusted SQL text: keywords, generated aliases, or names that a validator has already checked. */
export function raw(text: string): SqlFragment {
  return { sql: text, params: [] };
}

export function bind(value: SqlParam): SqlFragment {
  return { sql: '?', params: [value] };
}

/**
 * Binds a number so that SQLite computes with it as the JSON number it is: the driver binds every
 * JavaScript number as REAL, which would turn `count + 1` into `3.0` in the stored document.
 */
export function bindNumber(value: number): SqlFragment {
  return Number.isSafeInteger(value) ? sql`CAST(${bind(value)} AS INTEGER)` : bind(value);
}

export function join(parts: readonly SqlFragment[], separator: string): SqlFragment {
  return {
    sql: parts.map((part) => part.sql).join(separator),
    params: parts.flatMap((part) => part.params),
  };
}

/** SQLite's truth values; a compiler that serves several engines takes its dialect's instead. */
export const TRUE = raw('1');
export const FALSE = raw('0');

export function allOf(parts: readonly SqlFragment[]): SqlFragment {
  if (parts.length === 0) return TRUE;
  return parts.length === 1 ? parts[0]! : sql`(${join(parts, ' AND ')})`;
}

export function anyOf(parts: readonly SqlFragment[]): SqlFragment {
  if (parts.length === 0) return FALSE;
  return parts.length === 1 ? parts[0]! : sql`(${join(parts, ' OR ')})`;
}

export function toCompiled(fragment: SqlFragment): CompiledSql {
  return { sql: fragment.sql, params: [...fragment.params] };
}

/** Unique table aliases for one statement, so nested subqueries never shadow each other's names. */
export class AliasSource {
  #next = 0;

  next(prefix: string): SqlFragment {
    this.#next += 1;
    return raw(`${prefix}${this.#next}`);
  }
}
