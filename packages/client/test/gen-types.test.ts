/**
 * `rustydb gen types` as a real process against a real server: the file it writes names every table
 * and collection the user may read (and nothing else), types each column as the server sends its
 * values, and compiles under TypeScript's strictest settings: a program using the types right compiles,
 * one using them wrong does not.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ADMIN_PASSWORD, fixture, freePort, startTestServer, type TestServer } from './helpers.ts';
import { REPO_ROOT, cleanEnv } from '../../server/test/helpers/cli.ts';
import { createRole, createUser } from '../../server/test/security/helpers.ts';

const CLI = fileURLToPath(new URL('../bin/rustydb.js', import.meta.url));

function run(
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env, stdio: 'pipe' });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('error', reject);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** TypeScript's diagnostics for `files` (name → text) under a strict configuration, as text. */
function typeErrors(files: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-types-'));
  try {
    const paths = Object.entries(files).map(([name, text]) => {
      const path = join(dir, name);
      writeFileSync(path, text);
      return path;
    });
    const program = ts.createProgram(paths, {
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      noPropertyAccessFromIndexSignature: true,
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      allowImportingTsExtensions: true,
      noEmit: true,
      types: [],
    });
    return ts.getPreEmitDiagnostics(program).map((d) => {
      const where =
        d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : undefined;
      const name = d.file ? d.file.fileName.slice(dir.length + 1) : '';
      return `${name}:${where ? where.line + 1 : '?'}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('rustydb gen types', () => {
  let server: TestServer;
  let work: string;

  before(async () => {
    server = await startTestServer({ enable_rate_limiting: false });
    work = mkdtempSync(join(tmpdir(), 'rustydb-gen-'));
    await fixture(
      server,
      `CREATE TABLE order_items (
         id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, qty INT NOT NULL DEFAULT 1,
         photo BLOB, extra, shipped BOOLEAN, "first-name" VARCHAR(20))`,
    );
    await fixture(server, 'CREATE TABLE secret (code TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID');
    const created = await server.http('/api/v1/documents/collections', { body: { name: 'notes' } });
    assert.equal(created.status, 201);
    await createRole(server, 'items_only', [{ privilege: 'SELECT', table: 'order_items' }]);
    await createUser(server, 'clerk', ['items_only'], 'clerk-password-1');
  });
  after(async () => {
    await server?.close();
    rmSync(work, { recursive: true, force: true });
  });

  test('writes every table and collection the admin may read, typed as the server sends them', async () => {
    const out = join(work, 'db-types.ts');
    const result = await run(['gen', 'types', '--out', out, '--url', server.server.url], {
      ...cleanEnv(),
      RUSTYDB_PASSWORD: ADMIN_PASSWORD,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, /wrote .*db-types\.ts/);
    const types = readFileSync(out, 'utf8');
    assert.match(
      types,
      /export interface OrderItems \{\n {2}id: number;\n {2}name: string;\n {2}price: number \| null;\n {2}qty: number;\n {2}photo: SqlBlob \| null;\n {2}extra: SqlValue;\n {2}shipped: number \| string \| null;\n {2}"first-name": string \| null;\n\}/,
    );
    assert.match(types, /export interface Secret \{\n {2}code: string;\n {2}v: string;\n\}/);
    assert.match(
      types,
      /export interface NotesDocument \{\n {2}_id: string;\n {2}\[field: string\]: unknown;\n\}/,
    );
    assert.match(types, /export interface Tables \{\n {2}order_items: OrderItems;\n {2}secret: Secret;\n\}/);
    assert.match(types, /export interface Collections \{\n {2}notes: NotesDocument;\n\}/);

    const right = `import type { Collections, OrderItems, Tables } from './db-types.ts';
const item: OrderItems = { id: 1, name: 'pen', price: null, qty: 2, photo: { $base64: '' }, extra: 'x', shipped: 1, 'first-name': null };
const byName: Tables['order_items'] = item;
const note: Collections['notes'] = { _id: 'a', title: 'anything' };
const title: unknown = note['title'];
export const used = [byName, title];
`;
    const wrong = `import type { OrderItems, Tables } from './db-types.ts';
export const a: OrderItems = { id: 1, name: null, price: 1, qty: 1, photo: null, extra: null, shipped: null, 'first-name': null };
export const b: Tables['secret'] = { code: 'x' };
export const c: OrderItems['price'] = 'cheap';
`;
    assert.deepEqual(typeErrors({ 'db-types.ts': types, 'right.ts': right }), []);
    const errors = typeErrors({ 'db-types.ts': types, 'wrong.ts': wrong });
    assert.deepEqual(
      errors.map((e) => e.split(':')[1]),
      ['2', '3', '4'],
      errors.join('\n'),
    );
  });

  test("a user's file names only what the user may read; stdout without --out", async () => {
    const result = await run(['gen', 'types', '--url', server.server.url, '--user', 'clerk'], {
      ...cleanEnv(),
      RUSTYDB_PASSWORD: 'clerk-password-1',
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /export interface OrderItems/);
    assert.doesNotMatch(result.stdout, /interface Secret|interface NotesDocument|secret:|notes:/);
    assert.deepEqual(typeErrors({ 'types.ts': result.stdout }), []);
  });

  test('a wrong password or a server that is not there fail with a message and exit code 1', async () => {
    const refused = await run(['gen', 'types', '--url', server.server.url], {
      ...cleanEnv(),
      RUSTYDB_PASSWORD: 'wrong',
    });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /AUTH_FAILED/);
    const away = await run(['gen', 'types', '--url', `http://127.0.0.1:${await freePort()}`], {
      ...cleanEnv(),
      RUSTYDB_PASSWORD: ADMIN_PASSWORD,
    });
    assert.equal(away.code, 1);
    assert.match(away.stderr, /cannot connect to http:\/\/127\.0\.0\.1:\d+/);
    const usage = await run(['gen', 'tables'], cleanEnv());
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /usage: rustydb gen types/);
  });
});
