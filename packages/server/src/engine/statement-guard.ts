/**
 * Lexical checks applied to every statement that arrives through the API, before the engine sees it.
 * They keep out what no client may reach on any engine: the server's internal tables, other database
 * files, the filesystem, extension loading, connection-state changes. The checks are conservative
 * (a string literal naming an internal table is refused too); engine-side authorization is the
 * second, independent gate.
 */
import { RustyError } from '../errors/rusty-error.ts';
import { lexStatements, type LexedStatement, type SqlToken } from './sql-lexer.ts';

/** Every internal table starts with this; user SQL may never mention it. */
export const INTERNAL_PREFIX = '_rustydb_';

export type StatementKind = 'read' | 'write' | 'ddl';

export interface GuardedStatement {
  text: string;
  kind: StatementKind;
  /** First keyword, upper-cased (SELECT, INSERT, CREATE, …). */
  verb: string;
  /**
   * The table privileges the statement's own data change needs: INSERT for an insert, plus UPDATE
   * for an upsert, plus DELETE for OR REPLACE; empty for reads and DDL.
   */
  writeVerbs: ReadonlySet<'INSERT' | 'UPDATE' | 'DELETE'>;
  /** The statement returns the rows it changes (RETURNING). */
  returning: boolean;
  /** For DDL: the kind of object (TABLE, INDEX, VIEW, TRIGGER, VIRTUAL). */
  objectType?: string;
  /**
   * For `ALTER TABLE t …`: `t`, lower-cased, without its schema; null when the name could not be read
   * (the caller must then refuse).
   */
  target?: string | null;
  /** How many read-only table-valued functions (json_each, json_tree, pragma_…) the text calls. */
  tableFunctions: number;
  /** Positional parameters the statement takes (`?` in order, or the highest `?NNN`). */
  parameterCount: number;
}

/**
 * Counts positional parameters. Named ones (`:name`, `@name`, `$name`) are refused: parameters bind by
 * position, and a name would silently take whichever value sits at its index.
 */
function countParameters(tokens: readonly SqlToken[]): number {
  let plain = 0;
  let highest = 0;
  for (const token of tokens) {
    if (token.kind !== 'param') continue;
    if (token.text === '?') plain++;
    else if (/^\?\d+$/.test(token.text)) highest = Math.max(highest, Number(token.text.slice(1)));
    else
      throw new RustyError(
        'QUERY_ERROR',
        `named parameter ${token.text} is not supported; use ? and a params array`,
      );
  }
  return Math.max(plain, highest);
}

/** Throws unless `given` values fit the statement's parameters exactly. */
export function checkParameterCount(guarded: GuardedStatement, given: number): void {
  if (given !== guarded.parameterCount) {
    throw new RustyError(
      'QUERY_ERROR',
      `the statement takes ${guarded.parameterCount} parameter${guarded.parameterCount === 1 ? '' : 's'}, ${given} given`,
    );
  }
}

/** Built-in table-valued functions that expose no table data and need no privilege. */
function isSafeTableFunction(tokens: readonly SqlToken[], i: number): boolean {
  const word = tokens[i]!;
  return (
    word.kind === 'word' &&
    (word.text === 'JSON_EACH' || word.text === 'JSON_TREE' || word.text.startsWith('PRAGMA_')) &&
    tokens[i + 1]?.text === '('
  );
}

/** Reads the data-changing verbs at nesting depth 0, skipping a leading WITH clause's subqueries. */
function writeShape(tokens: readonly SqlToken[]): Pick<GuardedStatement, 'writeVerbs' | 'returning'> {
  const verbs = new Set<'INSERT' | 'UPDATE' | 'DELETE'>();
  let returning = false;
  let depth = 0;
  let main: string | undefined;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t.text === '(') depth++;
    else if (t.text === ')') depth--;
    if (depth !== 0 || t.kind !== 'word') continue;
    if (
      !main &&
      (t.text === 'INSERT' || t.text === 'REPLACE' || t.text === 'UPDATE' || t.text === 'DELETE')
    ) {
      main = t.text;
      if (t.text === 'REPLACE') verbs.add('INSERT').add('DELETE');
      else verbs.add(t.text);
      // INSERT OR REPLACE / UPDATE OR REPLACE delete the rows they displace.
      if (tokens[i + 1]?.text === 'OR' && tokens[i + 2]?.text === 'REPLACE') verbs.add('DELETE');
    } else if (main === 'INSERT' && t.text === 'DO' && tokens[i + 1]?.text === 'UPDATE') verbs.add('UPDATE');
    else if (t.text === 'RETURNING') returning = true;
  }
  return { writeVerbs: verbs, returning };
}

const READ_ONLY_PRAGMAS = new Set([
  'TABLE_INFO',
  'TABLE_XINFO',
  'INDEX_LIST',
  'INDEX_INFO',
  'INDEX_XINFO',
  'FOREIGN_KEY_LIST',
]);
const TRANSACTION_VERBS = new Set(['BEGIN', 'COMMIT', 'END', 'ROLLBACK', 'SAVEPOINT', 'RELEASE']);
const FORBIDDEN_VERBS: Record<string, string> = {
  ATTACH: 'ATTACH is not allowed',
  DETACH: 'DETACH is not allowed',
  VACUUM: 'VACUUM is not allowed through the API',
};
const FORBIDDEN_WORDS: Record<string, string> = {
  LOAD_EXTENSION: 'loading extensions is not allowed',
  READFILE: 'filesystem access is not allowed',
  WRITEFILE: 'filesystem access is not allowed',
  FTS3_TOKENIZER: 'fts3_tokenizer is not allowed',
  // Raw database pages: reading them would bypass every table privilege, writing them corrupts the file.
  SQLITE_DBPAGE: 'raw page access is not allowed',
  FSDIR: 'filesystem access is not allowed',
  // Runs SQL given as a string (ATTACH included) outside the compiled program the privileges are
  // decided from, and its hash of the result is an oracle for any table.
  SHA3_QUERY: 'sha3_query is not allowed',
  // The SQL text of statements prepared by other sessions.
  SQLITE_STMT: 'sqlite_stmt is not allowed',
  // Encryption configuration of the connection.
  SQLITE3MC_CONFIG: 'cipher configuration is not allowed',
  SQLITE3MC_CONFIG_TABLE: 'cipher configuration is not allowed',
  SQLITE3MC_CODEC_DATA: 'cipher configuration is not allowed',
  SQLITE_CRYPT: 'cipher configuration is not allowed',
};
const DDL_VERBS = new Set(['CREATE', 'DROP', 'ALTER']);
const WRITE_VERBS = new Set(['INSERT', 'UPDATE', 'DELETE', 'REPLACE', 'REINDEX', 'ANALYZE']);

/** The (possibly schema-qualified) name at `i`, lower-cased and without the schema; null if none. */
function nameAt(tokens: readonly SqlToken[], i: number): string | null {
  const isName = (t: SqlToken | undefined): t is SqlToken => t?.kind === 'word' || t?.kind === 'quoted';
  const first = tokens[i];
  if (!isName(first)) return null;
  if (tokens[i + 1]?.text !== '.') return first.text.toLowerCase();
  const second = tokens[i + 2];
  return isName(second) ? second.text.toLowerCase() : null;
}

/**
 * The existing table a DDL statement renames (or renames the columns of), which does not show up in
 * the compiled program as an access to that table.
 */
function ddlTarget(
  tokens: readonly SqlToken[],
  verb: string,
  objectType: string | undefined,
): string | null | undefined {
  if (verb === 'ALTER' && objectType === 'TABLE') return nameAt(tokens, 2);
  return undefined;
}

function denied(message: string): RustyError {
  return new RustyError('PERMISSION_DENIED', message);
}

function checkOne(statement: LexedStatement): GuardedStatement {
  const { tokens } = statement;
  const tableFunctions = tokens.filter((_, i) => isSafeTableFunction(tokens, i)).length;
  const parameterCount = countParameters(tokens);
  for (const token of tokens) {
    if (token.text.toLowerCase().includes(INTERNAL_PREFIX)) {
      throw denied('internal tables are not accessible');
    }
    // A quoted identifier names the same function or table as the bare word ("readfile", [readfile]).
    const word = token.kind === 'word' ? token.text : token.kind === 'quoted' ? token.text.toUpperCase() : '';
    if (word && Object.hasOwn(FORBIDDEN_WORDS, word)) throw denied(FORBIDDEN_WORDS[word]!);
  }
  const verb = tokens[0]?.kind === 'word' ? tokens[0].text : '';
  if (FORBIDDEN_VERBS[verb]) throw denied(FORBIDDEN_VERBS[verb]!);
  if (TRANSACTION_VERBS.has(verb)) {
    throw new RustyError(
      'QUERY_ERROR',
      'transaction control statements are not accepted; send a batch with "transaction": true',
    );
  }
  if (verb === 'PRAGMA') {
    const name = tokens.find((t, i) => i > 0 && (t.kind === 'word' || t.kind === 'quoted'));
    const assigns = tokens.some((t) => t.text === '=');
    if (!name || assigns || !READ_ONLY_PRAGMAS.has(name.text.toUpperCase())) {
      throw denied('only read-only schema PRAGMAs (table_info, index_list, …) are allowed');
    }
    return {
      text: statement.text,
      kind: 'read',
      verb,
      writeVerbs: new Set(),
      returning: false,
      tableFunctions,
      parameterCount,
    };
  }
  if (DDL_VERBS.has(verb)) {
    // Temporary objects would live on a connection other sessions share.
    if (tokens[1]?.text === 'TEMP' || tokens[1]?.text === 'TEMPORARY') {
      throw denied('temporary tables, views and triggers are not allowed');
    }
    // …nor by naming the temp schema (`CREATE TABLE temp.t`, `CREATE TRIGGER "temp".tr … ON main.t`):
    // a temp trigger on a pooled connection would fire for other sessions' writes.
    const temp = tokens.findIndex(
      (t, i) =>
        (t.kind === 'word' || t.kind === 'quoted') &&
        /^temp(orary)?$/i.test(t.text) &&
        tokens[i + 1]?.text === '.',
    );
    if (temp !== -1) throw denied('temporary tables, views and triggers are not allowed');
    const objectType = tokens.find((t, i) => i > 0 && t.kind === 'word' && t.text !== 'UNIQUE')?.text;
    const target = ddlTarget(tokens, verb, objectType);
    return {
      text: statement.text,
      kind: 'ddl',
      verb,
      writeVerbs: new Set(),
      returning: false,
      objectType,
      tableFunctions,
      parameterCount,
      ...(target !== undefined ? { target } : {}),
    };
  }
  const shape = writeShape(tokens);
  const kind = shape.writeVerbs.size > 0 || WRITE_VERBS.has(verb) ? 'write' : 'read';
  return { text: statement.text, kind, verb, ...shape, tableFunctions, parameterCount };
}

/** Checks one API statement; more than one statement in the text is refused. */
export function guardStatement(sql: string): GuardedStatement {
  const statements = lexStatements(sql);
  if (statements.length === 0) throw new RustyError('QUERY_ERROR', 'empty statement');
  if (statements.length > 1) {
    throw new RustyError('QUERY_ERROR', 'one statement per query; send several as a batch');
  }
  return checkOne(statements[0]!);
}
