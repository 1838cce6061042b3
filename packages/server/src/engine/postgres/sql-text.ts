/**
 * PostgreSQL's SQL text, read as PostgreSQL reads it: string constants ('…', E'…' with backslash
 * escapes, $tag$…$tag$ bodies), quoted identifiers, nested block comments and line comments. Enough to
 * find the statement's verb, the `?` placeholders the protocol uses (rewritten to PostgreSQL's `$n`),
 * and statement boundaries. It decides nothing about privileges: PostgreSQL does.
 */
import { RustyError } from '../../errors/rusty-error.ts';

export type StatementKind = 'read' | 'write' | 'ddl';

export interface PgStatement {
  /** The text PostgreSQL runs: `?` placeholders rewritten to `$1…$n`. */
  text: string;
  /** First keyword, upper-cased (SELECT, INSERT, CREATE, …). */
  verb: string;
  /**
   * `read` runs in a READ ONLY transaction (PostgreSQL refuses any write it attempts, also inside a
   * function); `write` changes rows; everything else is `ddl` and may change the schema.
   */
  kind: StatementKind;
  /** Parameters the statement takes: the number of `?`, or the highest `$n`. */
  parameterCount: number;
  /** A data-changing statement with no RETURNING anywhere in it: it answers with no rows. */
  rowless: boolean;
}

interface Word {
  text: string;
  depth: number;
}

const READ_VERBS = new Set(['SELECT', 'VALUES', 'TABLE', 'SHOW', 'EXPLAIN', 'WITH']);
const WRITE_VERBS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE', 'TRUNCATE']);
const TRANSACTION_VERBS = new Set([
  'BEGIN',
  'START',
  'COMMIT',
  'END',
  'ROLLBACK',
  'ABORT',
  'SAVEPOINT',
  'RELEASE',
  'PREPARE',
]);

function isIdentStart(c: string): boolean {
  return /[A-Za-z_\u0080-\uffff]/.test(c);
}

function isIdentChar(c: string): boolean {
  return /[A-Za-z0-9_$\u0080-\uffff]/.test(c);
}

/** The end (exclusive) of a quoted run starting at `start` (the opening quote), doubling as escape. */
function skipQuoted(sql: string, start: number, quote: string, backslashes: boolean): number {
  let i = start + 1;
  while (i < sql.length) {
    const c = sql[i]!;
    if (backslashes && c === '\\') {
      i += 2;
      continue;
    }
    if (c === quote) {
      if (sql[i + 1] === quote) {
        i += 2;
        continue;
      }
      return i + 1;
    }
    i++;
  }
  throw new RustyError(
    'QUERY_ERROR',
    `unterminated ${quote === "'" ? 'string constant' : 'quoted identifier'}`,
  );
}

/** A dollar-quote opening tag at `i` (`$$` or `$tag$`), or undefined. */
function dollarTag(sql: string, i: number): string | undefined {
  const match = /^\$([A-Za-z_\u0080-\uffff][A-Za-z0-9_\u0080-\uffff]*)?\$/.exec(sql.slice(i, i + 256));
  return match?.[0];
}

/**
 * Reads `sql` once: rewrites `?` to `$n`, collects the words outside constants and comments with their
 * parenthesis depth, and refuses a text holding more than one statement.
 */
function scan(sql: string): { text: string; words: Word[]; count: number } {
  const questionMarks: number[] = [];
  let highestDollar = 0;
  let depth = 0;
  let ended = false;
  const words: Word[] = [];
  let i = 0;
  const n = sql.length;
  while (i < n) {
    const c = sql[i]!;
    const next = sql[i + 1];
    if (ended && !/\s/.test(c) && !(c === '-' && next === '-') && !(c === '/' && next === '*') && c !== ';') {
      throw new RustyError('QUERY_ERROR', 'one statement per query; send several as a batch');
    }
    if (c === '-' && next === '-') {
      const nl = sql.indexOf('\n', i);
      i = nl === -1 ? n : nl + 1;
    } else if (c === '/' && next === '*') {
      // Block comments nest in PostgreSQL.
      let level = 1;
      i += 2;
      while (i < n && level > 0) {
        if (sql[i] === '/' && sql[i + 1] === '*') {
          level++;
          i += 2;
        } else if (sql[i] === '*' && sql[i + 1] === '/') {
          level--;
          i += 2;
        } else i++;
      }
      if (level > 0) throw new RustyError('QUERY_ERROR', 'unterminated /* comment');
    } else if (c === "'") {
      // E'…' takes backslash escapes; so does '…' when standard_conforming_strings is off, which the
      // engine never allows (it sets it on for every transaction).
      const escaped = i > 0 && /[eE]/.test(sql[i - 1]!) && !isIdentChar(sql[i - 2] ?? ' ');
      i = skipQuoted(sql, i, "'", escaped);
    } else if (c === '"') {
      i = skipQuoted(sql, i, '"', false);
    } else if (c === '$') {
      const tag = dollarTag(sql, i);
      if (tag !== undefined) {
        const close = sql.indexOf(tag, i + tag.length);
        if (close === -1) throw new RustyError('QUERY_ERROR', `unterminated dollar-quoted string ${tag}`);
        i = close + tag.length;
      } else if (/[0-9]/.test(next ?? '')) {
        let j = i + 1;
        while (j < n && /[0-9]/.test(sql[j]!)) j++;
        highestDollar = Math.max(highestDollar, Number(sql.slice(i + 1, j)));
        i = j;
      } else i++;
    } else if (c === '?') {
      // `?|`, `?&`, `?-`, `?#` are operators; a lone `?` is a placeholder unless the statement uses `$n`.
      if (next === '|' || next === '&' || next === '-' || next === '#') {
        i += 2;
        continue;
      }
      questionMarks.push(i);
      i++;
    } else if (c === ';') {
      ended = true;
      i++;
    } else if (c === '(' || c === '[') {
      depth++;
      i++;
    } else if (c === ')' || c === ']') {
      depth--;
      i++;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < n && isIdentChar(sql[j]!)) j++;
      // U&'…' and B'…'/X'…' constants: the prefix is a word, the constant follows.
      words.push({ text: sql.slice(i, j).toUpperCase(), depth });
      i = j;
    } else i++;
  }
  // A trailing semicolon is not part of the statement.
  const trimmed = (text: string): string => text.trim().replace(/;\s*$/, '');
  // With `$n` placeholders, a `?` is jsonb's key-exists operator and stays as written.
  if (highestDollar > 0 || questionMarks.length === 0) {
    return { text: trimmed(sql), words, count: highestDollar };
  }
  let out = '';
  let copied = 0;
  questionMarks.forEach((at, index) => {
    out += `${sql.slice(copied, at)}$${index + 1}`;
    copied = at + 1;
  });
  return { text: trimmed(out + sql.slice(copied)), words, count: questionMarks.length };
}

/** What the statement does, from its verb and (for WITH and EXPLAIN) the statement inside. */
function kindOf(words: readonly Word[]): StatementKind {
  const verb = words[0]?.text ?? '';
  if (WRITE_VERBS.has(verb)) return 'write';
  if (!READ_VERBS.has(verb)) return 'ddl';
  if (verb === 'EXPLAIN') {
    // EXPLAIN ANALYZE runs the statement it explains.
    const analyzes = words.some((w) => w.text === 'ANALYZE' || w.text === 'ANALYSE');
    if (!analyzes) return 'read';
    const inner = words
      .slice(1)
      .find((w) => w.depth === 0 && (READ_VERBS.has(w.text) || WRITE_VERBS.has(w.text)));
    return inner && WRITE_VERBS.has(inner.text) ? 'write' : 'read';
  }
  // A data-changing statement inside WITH (CTE bodies are parenthesised), or a row lock (FOR UPDATE),
  // which a READ ONLY transaction refuses too.
  const writes = words.some(
    (w) => w.text === 'INSERT' || w.text === 'UPDATE' || w.text === 'DELETE' || w.text === 'MERGE',
  );
  return writes ? 'write' : 'read';
}

/** Reads one API statement; a text holding several is refused. */
export function parseStatement(sql: string): PgStatement {
  const { text, words, count } = scan(sql);
  const verb = words[0]?.text ?? '';
  if (text === '' || verb === '') throw new RustyError('QUERY_ERROR', 'empty statement');
  if (TRANSACTION_VERBS.has(verb)) {
    throw new RustyError(
      'QUERY_ERROR',
      'transaction control statements are not accepted; send a batch with "transaction": true',
    );
  }
  const rowless = WRITE_VERBS.has(verb) && !words.some((w) => w.text === 'RETURNING');
  return { text, verb, kind: kindOf(words), parameterCount: count, rowless };
}

/** Throws unless `given` values fit the statement's parameters exactly. */
export function checkParameterCount(statement: PgStatement, given: number): void {
  if (given !== statement.parameterCount) {
    throw new RustyError(
      'QUERY_ERROR',
      `the statement takes ${statement.parameterCount} parameter${statement.parameterCount === 1 ? '' : 's'}, ${given} given`,
    );
  }
}
