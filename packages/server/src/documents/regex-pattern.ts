/**
 * `$regex` without a regular expression engine. SQLite has no REGEXP function unless one is
 * registered, and the libsql driver cannot register functions, so only patterns that mean "equals",
 * "starts with", "ends with" or "contains" a literal text are accepted, and they are compiled to GLOB
 * (case-sensitive) or LIKE (with the `i` option). Everything else is refused with an error rather
 * than approximated:
 *
 * - accepted: an optional leading `^`, an optional trailing `$`, and between them literal characters
 *   or escapes of punctuation (`\.`, `\*`, `\\`, …) and `\n`, `\t`, `\r`;
 * - refused: any other metacharacter (`. * + ? | ( ) [ ] { }`), class escapes (`\d`, `\w`, `\b`, …),
 *   options other than `i`, and `i` with non-ASCII letters (LIKE folds the case of ASCII letters only;
 *   it also relies on PRAGMA case_sensitive_like being off, SQLite's default), and NUL characters.
 *
 * As in PCRE, a trailing `$` also matches before a final newline.
 */
import { documentError } from './document-errors.ts';
import { bind, sql, type SqlFragment } from './sql-fragment.ts';

export interface LiteralPattern {
  literal: string;
  anchoredStart: boolean;
  anchoredEnd: boolean;
  caseInsensitive: boolean;
}

const METACHARACTERS = new Set([...'^$.|?*+()[]{}']);
const CONTROL_ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r' };

function isAsciiPunctuation(ch: string): boolean {
  return /^[!-/:-@[-`{-~]$/.test(ch);
}

function parseOptions(options: unknown, where: string): boolean {
  if (options === undefined) return false;
  if (typeof options !== 'string' || !/^i?$/.test(options)) {
    throw documentError(`${where}: unsupported $options ${JSON.stringify(options)} (only "i" is supported)`);
  }
  return options === 'i';
}

export function parseLiteralPattern(pattern: unknown, options: unknown, where: string): LiteralPattern {
  if (typeof pattern !== 'string') throw documentError(`${where}: $regex needs a string pattern`);
  const caseInsensitive = parseOptions(options, where);
  const refuse = (why: string) =>
    documentError(
      `${where}: $regex /${pattern}/ is not supported (${why}); only literal text with optional ^ and $ anchors can be matched`,
    );
  let literal = '';
  let anchoredStart = false;
  let anchoredEnd = false;
  let i = 0;
  if (pattern.startsWith('^')) {
    anchoredStart = true;
    i = 1;
  }
  while (i < pattern.length) {
    const ch = pattern[i]!;
    if (ch === '\\') {
      const next = pattern[i + 1];
      if (next === undefined) throw refuse('trailing backslash');
      if (isAsciiPunctuation(next)) literal += next;
      else if (CONTROL_ESCAPES[next] !== undefined) literal += CONTROL_ESCAPES[next];
      else throw refuse(`escape \\${next}`);
      i += 2;
      continue;
    }
    if (ch === '$' && i === pattern.length - 1) {
      anchoredEnd = true;
      i += 1;
      continue;
    }
    if (METACHARACTERS.has(ch)) throw refuse(`'${ch}' at position ${i}`);
    literal += ch;
    i += 1;
  }
  // GLOB and LIKE read their pattern as a C string: a NUL would cut it short and match too much.
  if (literal.includes('\0')) throw refuse('NUL character');
  if (caseInsensitive && [...literal].some((c) => c > '\x7f' && c.toLowerCase() !== c.toUpperCase())) {
    throw refuse('the i option covers ASCII letters only');
  }
  return { literal, anchoredStart, anchoredEnd, caseInsensitive };
}

/** GLOB has no escape character; a one-character class matches a metacharacter literally. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[]/g, (ch) => `[${ch}]`);
}

/** `text` as a LIKE pattern matching it literally, with `\\` as the escape character. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (ch) => `\\${ch}`);
}

/** A test that `text` (an SQL text value) matches the pattern; patterns are bound, never inlined. */
export function literalPatternSql(text: SqlFragment, pattern: LiteralPattern): SqlFragment {
  const { literal, anchoredStart, anchoredEnd, caseInsensitive } = pattern;
  const any = caseInsensitive ? '%' : '*';
  const body = caseInsensitive ? escapeLike(literal) : escapeGlob(literal);
  const head = anchoredStart ? '' : any;
  const patterns = anchoredEnd ? [`${head}${body}`, `${head}${body}\n`] : [`${head}${body}${any}`];
  const tests = patterns.map((p) =>
    caseInsensitive ? sql`${text} LIKE ${bind(p)} ESCAPE '\\'` : sql`${text} GLOB ${bind(p)}`,
  );
  return tests.length === 1 ? tests[0]! : sql`(${tests[0]!} OR ${tests[1]!})`;
}
