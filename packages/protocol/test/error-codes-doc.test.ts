/**
 * docs/protocol.md lists every error code and every close code in two tables; codes.ts is where the
 * server and clients read them from. This test keeps the two in step, both ways: a code added to
 * codes.ts must be documented, and a documented code must exist.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CLOSE_CODES, ERROR_CODES } from '../src/codes.ts';

const DOC_PATH = fileURLToPath(new URL('../../../docs/protocol.md', import.meta.url));

/** The cells of a Markdown table row, trimmed; undefined when the line is not a table row. */
function cells(line: string): string[] | undefined {
  const trimmed = line.trim();
  if (!trimmed.startsWith('|')) return undefined;
  return trimmed
    .replace(/^\|/, '')
    .replace(/\|$/, '')
    .split('|')
    .map((cell) => cell.trim());
}

function isSeparator(row: readonly string[]): boolean {
  return row.every((cell) => /^:?-+:?$/.test(cell));
}

interface Table {
  header: string[];
  rows: string[][];
  /** 1-based line number of the header, for messages. */
  line: number;
}

/** Every Markdown table of the document, outside fenced code blocks. */
function tables(markdown: string): Table[] {
  const found: Table[] = [];
  const lines = markdown.split('\n');
  let fenced = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    if (fenced) continue;
    const header = cells(line);
    const separator = cells(lines[i + 1] ?? '');
    if (!header || !separator || !isSeparator(separator)) continue;
    const rows: string[][] = [];
    let j = i + 2;
    for (let row = cells(lines[j] ?? ''); row; row = cells(lines[++j] ?? '')) rows.push(row);
    found.push({ header, rows, line: i + 1 });
    i = j - 1;
  }
  return found;
}

/** The one table whose first two header cells are the ones given. */
function tableWithHeader(all: readonly Table[], first: string, second: string): Table {
  const matches = all.filter((t) => t.header[0] === first && t.header[1] === second);
  assert.equal(
    matches.length,
    1,
    `docs/protocol.md should have exactly one table with header "| ${first} | ${second} | …", found ${matches.length}`,
  );
  return matches[0]!;
}

/** The text inside the backticks of a cell such as "`AUTH_FAILED`". */
function codeSpan(cell: string | undefined, where: string): string {
  const match = /^`([^`]+)`$/.exec(cell ?? '');
  assert.ok(match, `${where}: expected a single code span, got ${JSON.stringify(cell)}`);
  return match[1]!;
}

function assertNoDuplicates(values: readonly string[], what: string): void {
  const seen = new Set<string>();
  for (const value of values) {
    assert.ok(!seen.has(value), `${what} ${value} is listed twice in docs/protocol.md`);
    seen.add(value);
  }
}

const doc = readFileSync(DOC_PATH, 'utf8');
const allTables = tables(doc);

test('the error-code table of docs/protocol.md lists exactly ERROR_CODES', () => {
  const table = tableWithHeader(allTables, 'Code', 'Meaning');
  const documented = table.rows.map((row, i) => codeSpan(row[0], `error table row ${i + 1}`));
  assertNoDuplicates(documented, 'error code');

  const inCode = Object.keys(ERROR_CODES);
  const undocumented = inCode.filter((code) => !documented.includes(code));
  const unknown = documented.filter((code) => !inCode.includes(code));
  assert.deepEqual(undocumented, [], 'error codes in codes.ts missing from docs/protocol.md');
  assert.deepEqual(unknown, [], 'error codes in docs/protocol.md that codes.ts does not define');

  const retryColumn = table.header.indexOf('Retry');
  for (const [i, row] of table.rows.entries()) {
    const code = documented[i] as keyof typeof ERROR_CODES;
    assert.ok((row[1] ?? '').length > 0, `error code ${code} has an empty meaning`);
    if (retryColumn !== -1) {
      const expected = ERROR_CODES[code].retryable ? 'yes' : 'no';
      assert.equal(row[retryColumn], expected, `Retry column of ${code} disagrees with codes.ts`);
    }
  }
});

test('the close-code table of docs/protocol.md lists exactly CLOSE_CODES', () => {
  const table = tableWithHeader(allTables, 'Code', 'Name');
  const documented = table.rows.map((row, i) => ({
    code: Number(codeSpan(row[0], `close table row ${i + 1}`)),
    name: codeSpan(row[1], `close table row ${i + 1}`),
  }));
  assertNoDuplicates(
    documented.map((d) => String(d.code)),
    'close code',
  );

  const inCode = Object.entries(CLOSE_CODES).map(([name, { code }]) => ({ code, name }));
  const key = (d: { code: number; name: string }): string => `${d.code} ${d.name}`;
  const documentedKeys = documented.map(key);
  const inCodeKeys = inCode.map(key);
  const undocumented = inCodeKeys.filter((k) => !documentedKeys.includes(k));
  const unknown = documentedKeys.filter((k) => !inCodeKeys.includes(k));
  assert.deepEqual(undocumented, [], 'close codes in codes.ts missing from docs/protocol.md');
  assert.deepEqual(unknown, [], 'close codes in docs/protocol.md that codes.ts does not define');

  for (const [i, row] of table.rows.entries()) {
    assert.ok((row[2] ?? '').length > 0, `close code ${documented[i]!.code} does not say when it is sent`);
  }
});
