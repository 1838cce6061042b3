/**
 * Serves a user's reads of SQLite's catalog from the part of it the user may see: each place a
 * statement names the schema table (`sqlite_schema`, `sqlite_master`, in any quoting, qualified with
 * `main.` or not), a schema PRAGMA function (`pragma_table_info(…)` and its kin, `pragma_table_list`), or
 * is itself a schema PRAGMA (`PRAGMA table_info(t)`), is replaced by a subquery over that part, held in
 * the statement as a JSON literal (`json_each`).
 *
 * This rewrite is a convenience, not the gate. Whether the statement that finally runs still reads the
 * catalog is decided from its compiled program (see access-analyzer.ts); a spelling this rewrite does
 * not know, a view over the catalog, a PRAGMA function given a column instead of a value: all are
 * refused to users without ADMIN rather than served whole.
 */
import { lexStatements, type SqlToken } from '../sql-lexer.ts';
import {
  DESCRIBING_PRAGMAS,
  SOURCE_COLUMNS,
  type Catalog,
  type CatalogSource,
  type DescribingPragma,
} from './visible-catalog.ts';

const SCHEMA_TABLES = new Set(['sqlite_schema', 'sqlite_master']);
/** Words after a table reference that are not an alias. */
const NOT_AN_ALIAS = new Set([
  'WHERE',
  'JOIN',
  'LEFT',
  'RIGHT',
  'FULL',
  'INNER',
  'OUTER',
  'CROSS',
  'NATURAL',
  'ON',
  'USING',
  'GROUP',
  'ORDER',
  'LIMIT',
  'UNION',
  'EXCEPT',
  'INTERSECT',
  'WINDOW',
  'HAVING',
  'RETURNING',
  'INDEXED',
  'NOT',
  'SET',
  'VALUES',
  'DEFAULT',
  'SELECT',
  'FROM',
  'AND',
  'OR',
  'WHEN',
  'THEN',
  'ELSE',
  'END',
  'IN',
  'IS',
  'LIKE',
  'GLOB',
  'BETWEEN',
]);

/** Whether a statement may read the catalog by name at all: the cheap test before lexing. */
export function mayNameCatalog(sql: string): boolean {
  return /sqlite_(schema|master)|pragma/i.test(sql);
}

function quoteString(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

export function quoteIdentifier(text: string): string {
  return `"${text.replaceAll('"', '""')}"`;
}

/**
 * A subquery yielding `rows` with the columns of `source`, and with `withArg` also the object each row
 * describes (as `arg`, the name of SQLite's own hidden column), for a join on it.
 */
function rowsSubquery(
  source: CatalogSource,
  rows: readonly Record<string, unknown>[],
  where = '',
  withArg = false,
): string {
  const columns = SOURCE_COLUMNS[source];
  const json = JSON.stringify(
    rows.map((row) => ({ ...Object.fromEntries(columns.map((c) => [c, row[c]])), arg: row.arg })),
  );
  const selected = withArg ? [...columns, 'arg'] : columns;
  const select = selected.map((c) => `value ->> ${quoteString(c)} AS ${quoteIdentifier(c)}`).join(', ');
  return `(SELECT ${select} FROM json_each(${quoteString(json)})${where})`;
}

const isName = (t: SqlToken | undefined): t is SqlToken => t?.kind === 'word' || t?.kind === 'quoted';
const nameOf = (t: SqlToken): string => t.text.toLowerCase();

/** Whether the tokens from `i` on begin with an alias (`AS x`, or a bare name that is no keyword). */
function aliasFollows(tokens: readonly SqlToken[], i: number): boolean {
  const next = tokens[i];
  if (next === undefined) return false;
  if (next.kind === 'word' && next.text === 'AS') return true;
  if (next.kind === 'quoted') return true;
  return next.kind === 'word' && !NOT_AN_ALIAS.has(next.text);
}

/** The index of the `)` closing the `(` at `open`, or -1. */
function closingParen(tokens: readonly SqlToken[], open: number): number {
  let depth = 0;
  for (let i = open; i < tokens.length; i++) {
    if (tokens[i]!.text === '(') depth++;
    else if (tokens[i]!.text === ')' && --depth === 0) return i;
  }
  return -1;
}

/** The arguments between `open` and `close`, as source text, split at top-level commas. */
function argumentTexts(sql: string, tokens: readonly SqlToken[], open: number, close: number): string[] {
  const args: string[] = [];
  let depth = 0;
  let start = tokens[open]!.end;
  for (let i = open + 1; i < close; i++) {
    const t = tokens[i]!;
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    else if (t.text === ',' && depth === 0) {
      args.push(sql.slice(start, t.start));
      start = t.end;
    }
  }
  args.push(sql.slice(start, tokens[close]!.start));
  return args.filter((a, i) => !(i === 0 && args.length === 1 && a.trim() === ''));
}

/** Words that may appear in an argument made of values only (`'a' || 'b'`, `CAST(? AS TEXT)`, `NULL`). */
const VALUE_WORDS = new Set(['NULL', 'AND', 'OR', 'NOT', 'IS', 'CAST', 'AS', 'TEXT', 'COLLATE', 'NOCASE']);

/**
 * Whether the arguments between `open` and `close` may name a column or read a table (`m.name`,
 * `(SELECT …)`): a name that is not a function being called nor one of VALUE_WORDS. The subquery this
 * rewrite puts in the function's place cannot see the statement's other tables; such a call is served as
 * a join when it has the usual form (see joinedCall), and is otherwise left as it is, so that the
 * statement is refused for reading the catalog itself rather than failing with a "no such column" that
 * says nothing of why.
 */
function argumentsNameColumns(tokens: readonly SqlToken[], open: number, close: number): boolean {
  for (let i = open + 1; i < close; i++) {
    const t = tokens[i]!;
    if (t.kind === 'quoted') return true;
    if (t.kind === 'word' && tokens[i + 1]?.text !== '(' && !VALUE_WORDS.has(t.text)) return true;
  }
  return false;
}

/**
 * `… JOIN pragma_table_info(m.name) [AS] c` or `…, pragma_table_info(m.name) c` not followed by ON or
 * USING — how tools list every column of every table: the call at `name` (its `(` at `open`, `)` at
 * `close`), whose one argument is a column, can be served as the visible rows joined ON their `arg`.
 * Returns the alias (undefined: none, one is added) and the index of the token the ON clause goes after;
 * undefined for any other form.
 */
function joinedCall(
  tokens: readonly SqlToken[],
  name: number,
  open: number,
  close: number,
): { alias: SqlToken | undefined; last: number } | undefined {
  const argument = tokens.slice(open + 1, close);
  const isColumn =
    (argument.length === 1 && isName(argument[0])) ||
    (argument.length === 3 && isName(argument[0]) && argument[1]!.text === '.' && isName(argument[2]));
  if (!isColumn) return undefined;
  const qualified = tokens[name - 1]?.text === '.';
  const before = tokens[qualified ? name - 3 : name - 1];
  if (before?.text !== 'JOIN' && before?.text !== ',') return undefined;
  let alias: SqlToken | undefined;
  let last = close;
  if (tokens[close + 1]?.text === 'AS' && isName(tokens[close + 2])) {
    alias = tokens[close + 2];
    last = close + 2;
  } else if (aliasFollows(tokens, close + 1)) {
    alias = tokens[close + 1];
    last = close + 1;
  }
  const next = tokens[last + 1]?.text;
  if (next === 'ON' || next === 'USING') return undefined;
  return { alias, last };
}

/** pragma_table_list's rows, each with the name it answers to as `arg`, like the describing PRAGMAs'. */
function tableListRows(catalog: Catalog): Record<string, unknown>[] {
  return catalog.table_list.map((r) => ({ ...r, arg: String(r.name).toLowerCase() }));
}

/** `PRAGMA [main.]name(arg)`: the whole statement as a SELECT over the visible rows, or undefined. */
function pragmaStatement(tokens: readonly SqlToken[], catalog: Catalog): string | undefined {
  if (tokens[0]?.kind !== 'word' || tokens[0].text !== 'PRAGMA') return undefined;
  let i = 1;
  let schema = 'main';
  if (isName(tokens[i]) && tokens[i + 1]?.text === '.') {
    schema = nameOf(tokens[i]!);
    i += 2;
  }
  const name = tokens[i];
  if (!isName(name)) return undefined;
  const pragma = nameOf(name) as DescribingPragma;
  if (!(DESCRIBING_PRAGMAS as readonly string[]).includes(pragma)) return undefined;
  const arg = tokens[i + 1]?.text === '(' ? tokens[i + 2] : undefined;
  if (!arg || tokens[i + 3]?.text !== ')' || tokens.length !== i + 4) return undefined;
  const target = arg.text.toLowerCase();
  const rows = schema === 'main' ? catalog[pragma].filter((r) => r.arg === target) : [];
  return `SELECT * FROM ${rowsSubquery(pragma, rows)}`;
}

/**
 * `sql` with every catalog read it names served from `catalog` (the part one user may see).
 * Unchanged when it names none.
 */
export function rewriteCatalogReads(sql: string, catalog: Catalog): string {
  const statements = lexStatements(sql);
  // Several statements are refused later anyway; nothing to serve.
  if (statements.length !== 1) return sql;
  const tokens = statements[0]!.tokens;
  const whole = pragmaStatement(tokens, catalog);
  if (whole !== undefined) return whole;

  const edits: { start: number; end: number; text: string }[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    if (!isName(token)) continue;
    const name = nameOf(token);
    const isSchemaTable = SCHEMA_TABLES.has(name);
    const pragma = name.startsWith('pragma_') ? name.slice('pragma_'.length) : undefined;
    const isDescribing = pragma !== undefined && (DESCRIBING_PRAGMAS as readonly string[]).includes(pragma);
    if (!isSchemaTable && !isDescribing && pragma !== 'table_list') continue;
    // `x.name` is a column of x, not a table; `main.x` is x (another schema's catalog is not served).
    if (tokens[i + 1]?.text === '.') continue;
    // `WITH sqlite_master AS (…)`, `WITH pragma_table_info(x) AS (…)`: a common table expression that
    // takes the name for this statement; what it stands for is whatever it selects.
    const afterName = tokens[i + 1]?.text === '(' ? closingParen(tokens, i + 1) + 1 : i + 1;
    if (tokens[afterName]?.text === 'AS' && tokens[afterName + 1]?.text === '(') continue;
    let start = token.start;
    if (tokens[i - 1]?.text === '.') {
      const qualifier = tokens[i - 2];
      if (!isName(qualifier) || nameOf(qualifier) !== 'main') continue;
      start = qualifier.start;
    }
    let end = token.end;
    let after = i + 1;
    let replacement: string;
    if (isSchemaTable) {
      replacement = rowsSubquery('schema', catalog.schema);
    } else if (tokens[i + 1]?.text === '(') {
      const close = closingParen(tokens, i + 1);
      if (close === -1) continue;
      const source = pragma as DescribingPragma | 'table_list';
      if (argumentsNameColumns(tokens, i + 1, close)) {
        const joined = joinedCall(tokens, i, i + 1, close);
        if (joined === undefined) continue;
        const rows = source === 'table_list' ? tableListRows(catalog) : catalog[source];
        const alias = joined.alias?.text ?? token.text;
        const argument = sql.slice(tokens[i + 2]!.start, tokens[close - 1]!.end);
        edits.push({
          start,
          end: tokens[close]!.end,
          text: `${rowsSubquery(source, rows, '', true)}${joined.alias ? '' : ` AS ${quoteIdentifier(alias)}`}`,
        });
        const on = tokens[joined.last]!.end;
        edits.push({ start: on, end: on, text: ` ON ${quoteIdentifier(alias)}.arg = lower(${argument})` });
        i = joined.last;
        continue;
      }
      const args = argumentTexts(sql, tokens, i + 1, close);
      end = tokens[close]!.end;
      after = close + 1;
      const onMain = args[1] === undefined ? '' : ` AND lower(coalesce((${args[1]}), 'main')) = 'main'`;
      if (source === 'table_list') {
        if (args.length > 2) continue;
        const rows = tableListRows(catalog);
        const where = args[0] === undefined ? '' : ` WHERE value ->> 'arg' = lower((${args[0]}))${onMain}`;
        replacement = rowsSubquery('table_list', rows, where);
      } else {
        if (args.length < 1 || args.length > 2) continue;
        replacement = rowsSubquery(
          source,
          catalog[source],
          ` WHERE value ->> 'arg' = lower((${args[0]}))${onMain}`,
        );
      }
    } else if (pragma === 'table_list') {
      replacement = rowsSubquery('table_list', catalog.table_list);
    } else {
      // A describing PRAGMA without arguments (filtered through its hidden `arg` column): not served.
      continue;
    }
    const alias = aliasFollows(tokens, after) ? '' : ` AS ${quoteIdentifier(token.text)}`;
    edits.push({ start, end, text: `${replacement}${alias}` });
  }
  if (edits.length === 0) return sql;
  let out = '';
  let at = 0;
  for (const edit of edits) {
    out += sql.slice(at, edit.start) + edit.text;
    at = edit.end;
  }
  return out + sql.slice(at);
}
