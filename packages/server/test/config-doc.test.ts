/**
 * docs/configuration.md lists every configuration field in one table; CONFIG_FIELDS in config.ts is
 * what the server reads. This test keeps the two in step, both ways: a field added to CONFIG_FIELDS
 * must be documented, and a documented field must exist. For each row it also checks the columns
 * that follow from the code: type, default (where the field has one), environment variable and flag.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CONFIG_FIELDS, envName, flagName, type ConfigField } from '../src/config/config.ts';

const DOC_PATH = fileURLToPath(new URL('../../../docs/configuration.md', import.meta.url));

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
    found.push({ header, rows });
    i = j - 1;
  }
  return found;
}

/** The text inside the backticks of a cell such as "`port`". */
function codeSpan(cell: string | undefined, where: string): string {
  const match = /^`([^`]+)`$/.exec(cell ?? '');
  assert.ok(match, `${where}: expected a single code span, got ${JSON.stringify(cell)}`);
  return match[1]!;
}

const TYPE_NAMES = { string: 'string', int: 'integer', number: 'number', bool: 'boolean' } as const;
const COLUMNS = ['Field', 'Type', 'Default', 'Environment variable', 'Flag', 'Meaning'];

const doc = readFileSync(DOC_PATH, 'utf8');
const fieldTables = tables(doc).filter((t) => t.header[0] === 'Field');

test('docs/configuration.md has exactly one field table, with the expected columns', () => {
  assert.equal(fieldTables.length, 1, 'expected one table whose header starts with "| Field |"');
  assert.deepEqual(fieldTables[0]!.header, COLUMNS);
});

test('the field table of docs/configuration.md lists exactly CONFIG_FIELDS', () => {
  const table = fieldTables[0]!;
  const documented = table.rows.map((row, i) => codeSpan(row[0], `field table row ${i + 1}`));
  const seen = new Set<string>();
  for (const field of documented) {
    assert.ok(!seen.has(field), `field ${field} is listed twice in docs/configuration.md`);
    seen.add(field);
  }
  const inCode = Object.keys(CONFIG_FIELDS);
  assert.deepEqual(
    inCode.filter((field) => !seen.has(field)),
    [],
    'fields of CONFIG_FIELDS missing from docs/configuration.md',
  );
  assert.deepEqual(
    documented.filter((field) => !inCode.includes(field)),
    [],
    'fields in docs/configuration.md that CONFIG_FIELDS does not define',
  );
});

test('each documented field agrees with CONFIG_FIELDS on type, default, variable and flag', () => {
  const table = fieldTables[0]!;
  for (const row of table.rows) {
    const name = codeSpan(row[0], 'field table');
    if (!Object.hasOwn(CONFIG_FIELDS, name)) continue; // reported by the previous test
    const field = name as ConfigField;
    const spec = CONFIG_FIELDS[field];
    const [, type, defaultCell, env, flag, meaning] = row;
    assert.equal(type, TYPE_NAMES[spec.kind], `Type of ${field}`);
    if (spec.default !== undefined) {
      assert.equal(defaultCell, `\`${String(spec.default)}\``, `Default of ${field}`);
    } else {
      assert.ok(
        (defaultCell ?? '').length > 0,
        `Default of ${field} is empty (write "none" or what applies)`,
      );
    }
    assert.equal(env, `\`${envName(field)}\``, `Environment variable of ${field}`);
    assert.equal(flag, `\`${flagName(field)}\``, `Flag of ${field}`);
    assert.ok((meaning ?? '').length > 0, `Meaning of ${field} is empty`);
  }
});
