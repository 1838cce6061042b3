/**
 * The packages as people install them. Every workspace package is packed with `npm pack`, and the
 * tarballs are installed into a new project outside the repository (third-party dependencies come from
 * the registry; ours only from the tarballs, all in one `npm install`). Then, from that project:
 *   - the installed server runs (`rustydb serve`, compiled JavaScript: no TypeScript in the install),
 *     and a Node ESM script with @rustydb/client logs in, queries and receives a change;
 *   - `rustydb gen types` writes the types of the user's tables, which the application uses;
 *   - an application and a React component type-check under TypeScript's stock strict `NodeNext`
 *     configuration plus exactOptionalPropertyTypes and noPropertyAccessFromIndexSignature, with
 *     skipLibCheck off, with no @types/ws and no @types/node installed: zero errors;
 *   - a browser entry with that component, bundled with esbuild, runs in chromium and shows a live table;
 *   - `npm install -g` of the server without the client gives a working `rustydb` that says where the
 *     shell comes from.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import {
  ADMIN_PASSWORD,
  eventually,
  login,
  runProcess,
  startServeProcess,
  userEnv,
  type ServeProcess,
} from './helpers.ts';
import { WebServer } from './browser/web-server.ts';
import { launchChromium, type Chromium } from './browser/chromium.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const TSC = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const INSTALL_TIMEOUT_MS = 300_000;

/** The version of a package the workspace has installed (so the project gets the same, from the cache). */
function workspaceVersion(name: string): string {
  const require = createRequire(join(REPO_ROOT, 'package.json'));
  return (JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as { version: string })
    .version;
}

async function succeed(command: string, args: string[], cwd: string, env = userEnv()): Promise<string> {
  const result = await runProcess(command, args, { cwd, env, timeoutMs: INSTALL_TIMEOUT_MS });
  assert.equal(result.code, 0, `${command} ${args.join(' ')}\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** `rustydb serve` from an installation, on a free port; resolves once it is listening. */
function serve(bin: string, dataDir: string, cwd: string): Promise<ServeProcess> {
  return startServeProcess(
    process.execPath,
    [bin, 'serve', '--port', '0', '--data-dir', dataDir, '--admin-password', ADMIN_PASSWORD],
    { cwd, env: userEnv() },
  );
}

async function token(url: string): Promise<string> {
  const res = await login(url, 'admin', ADMIN_PASSWORD);
  assert.equal(res.status, 200);
  return (res.body as { data: { token: string } }).data.token;
}

async function sqlOver(url: string, bearer: string, sql: string, params: unknown[] = []): Promise<void> {
  const res = await fetch(`${url}/api/v1/query`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ sql, params }),
  });
  assert.equal(res.status, 200, await res.text());
}

const NODE_SCRIPT = `import { connect } from '@rustydb/client';

const db = await connect({ url: process.env.RUSTYDB_URL, username: 'admin', password: process.env.RUSTYDB_PASSWORD });
await db.query('CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
const subscription = db.subscribe('notes');
await subscription.ready();
await db.query('INSERT INTO notes (body) VALUES (?)', ['from node']);
for await (const event of subscription) {
  if (event.type !== 'change') continue;
  console.log('change: ' + event.op + ' ' + JSON.stringify(event.row));
  break;
}
const { rows } = await db.query('SELECT count(*) AS n FROM notes');
console.log('query: ' + JSON.stringify(rows));
await db.close();
`;

/** A stock `tsc --init` (TypeScript 5.9) configuration, stricter still, checking our declarations too. */
const STRICT_TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    target: 'esnext',
    types: [],
    noUncheckedIndexedAccess: true,
    exactOptionalPropertyTypes: true,
    noPropertyAccessFromIndexSignature: true,
    strict: true,
    jsx: 'react-jsx',
    verbatimModuleSyntax: true,
    isolatedModules: true,
    noUncheckedSideEffectImports: true,
    moduleDetection: 'force',
    skipLibCheck: false,
    noEmit: true,
  },
  files: ['src/app.ts', 'src/component.tsx'],
};

const APP_TS = `// What an application writes against the published SDK.
import {
  RustyDBError,
  connect,
  isRustyDBError,
  type ClientOptions,
  type QueryResult,
  type SqlValue,
  type TableEvent,
} from '@rustydb/client';
import { ERROR_CODES, type ErrorCode } from '@rustydb/protocol';
import type { Notes } from './db-types.js';

interface Item {
  id: number;
  name: string;
}

interface Note {
  _id: string;
  title: string;
}

export async function run(url: string, token: string | undefined): Promise<string[]> {
  const options: ClientOptions = token === undefined ? { url } : { url, token };
  const db = await connect(options);
  const lines: string[] = [];
  try {
    const params: SqlValue[] = [1, 'a', null, true];
    const result: QueryResult = await db.query('SELECT ? AS n, ? AS s, ? AS z, ? AS b', params);
    const first = result.rows[0];
    if (first !== undefined) lines.push(result.columns.join(',') + ': ' + JSON.stringify(first));
    for await (const chunk of db.stream('SELECT 1', [], { chunkSize: 100 })) lines.push(String(chunk.rows.length));
    await db.batch([{ sql: 'SELECT 1' }, { sql: 'SELECT ?', params: [2] }], { transaction: true });
    for await (const event of db.subscribe('items', { snapshot: true })) {
      const seen: TableEvent = event;
      lines.push(seen.type);
      break;
    }
    for await (const event of db.watch('notes')) {
      lines.push(event.operationType);
      break;
    }
    // Typed rows, documents and errors.
    const typed = await db.query<Item>('SELECT id, name FROM items');
    const names: string[] = typed.rows.map((row) => row.name);
    const tuples = await db.query<[number, string]>('SELECT id, name FROM items', [], { rowMode: 'array' });
    const ids: number[] = tuples.rows.map(([id]) => id);
    lines.push(names.join(','), ids.join(','));
    const notes = await db.query<Notes>('SELECT id, body FROM notes');
    const bodies: string[] = notes.rows.map((note) => note.body);
    lines.push(bodies.join(','));
    const items = db.subscribe<Item>('items');
    items.on('change', (event) => {
      const name: string | undefined = event.row?.name;
      lines.push(name ?? '');
    });
    await items.unsubscribe();
    for await (const event of db.watch<Note>('notes')) {
      if (event.operationType !== 'reset') lines.push(event.fullDocument?.title ?? '');
      break;
    }
  } catch (err) {
    if (isRustyDBError(err, 'TABLE_NOT_FOUND')) {
      const table: string | undefined = err.details?.table;
      lines.push(table ?? '');
    }
    if (isRustyDBError(err)) lines.push(err.code, String(err.retryable));
    if (err instanceof RustyDBError) lines.push(err.message);
    const code: ErrorCode = 'QUERY_ERROR';
    lines.push(String(ERROR_CODES[code].retryable));
  } finally {
    await db.close();
  }
  return lines;
}
`;

const COMPONENT_TSX = `// A React component on the published SDK's React bindings: a live table.
import type { ReactNode } from 'react';
import { RustyDBProvider, useConnectionState, useLiveQuery, useSubscription, useWatch } from '@rustydb/client/react';

interface Item {
  id: number;
  name: string;
}

function Items(): ReactNode {
  const state = useConnectionState();
  const items = useSubscription<Item>('items');
  const count = useLiveQuery<{ n: number }>('SELECT count(*) AS n FROM items');
  const notes = useWatch<{ _id: string; title: string }>('notes', { title: { $ne: '' } }, { enabled: false });
  const total: number | undefined = count.rows[0]?.n;
  const titles: string[] = notes.documents.map((note) => note.title);
  const names: string[] = items.rows.map((row) => row.name);
  void total;
  void titles;
  void names;
  return (
    <section>
      <p id="state">{state}</p>
      <ul id="items">
        {items.rows.map((row, i) => (
          <li key={i}>{JSON.stringify(row)}</li>
        ))}
      </ul>
    </section>
  );
}

export function App(props: { url: string; token: string }): ReactNode {
  return (
    <RustyDBProvider options={{ url: props.url, token: props.token }}>
      <Items />
    </RustyDBProvider>
  );
}
`;

const BROWSER_ENTRY = `import { createElement } from 'react';
import { createRoot } from 'react-dom/client';
import { App } from './component.tsx';

const token = new URLSearchParams(location.search).get('token') ?? '';
createRoot(document.getElementById('root')).render(createElement(App, { url: location.origin, token }));
`;

describe('the packed packages, installed in a new project', { concurrency: false }, () => {
  let work: string;
  let tarballs: string[];
  let project: string;
  let server: ServeProcess | undefined;

  before(
    async () => {
      work = mkdtempSync(join(tmpdir(), 'rustydb-packages-'));
      const packed = join(work, 'tarballs');
      mkdirSync(packed);
      // Each package's prepack makes a clean build first, so nothing stale is shipped.
      await succeed(NPM, ['pack', '--workspaces', '--pack-destination', packed], REPO_ROOT);
      tarballs = readdirSync(packed).map((file) => join(packed, file));
      assert.deepEqual(tarballs.map((file) => /rustydb-(\w+)-[\d.]+\.tgz$/.exec(file)?.[1]).sort(), [
        'client',
        'console',
        'protocol',
        'server',
      ]);

      project = join(work, 'app');
      mkdirSync(join(project, 'src'), { recursive: true });
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'rustydb-user-app', version: '1.0.0', private: true, type: 'module' }),
      );
      await succeed(
        NPM,
        [
          'install',
          '--no-audit',
          '--no-fund',
          ...tarballs,
          `react@${workspaceVersion('react')}`,
          `react-dom@${workspaceVersion('react-dom')}`,
          `@types/react@${workspaceVersion('@types/react')}`,
        ],
        project,
      );
      server = await serve(
        join(project, 'node_modules/@rustydb/server/bin/rustydb.js'),
        join(work, 'data'),
        project,
      );
    },
    // Packing builds every package from clean, and the install fetches the third-party dependencies.
    { timeout: 2 * INSTALL_TIMEOUT_MS },
  );

  after(async () => {
    await server?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('the installed server runs without TypeScript: none is installed, and it answers', async () => {
    for (const absent of ['tsx', 'typescript', '@types/ws', '@types/node']) {
      assert.ok(!existsSync(join(project, 'node_modules', absent)), `${absent} was installed`);
    }
    const readiness = await fetch(`${server!.url}/api/v1/health/readiness`);
    assert.equal(readiness.status, 200);
  });

  test('a Node ESM script with @rustydb/client logs in, receives a change and queries', async () => {
    writeFileSync(join(project, 'script.mjs'), NODE_SCRIPT);
    const out = await succeed(
      process.execPath,
      ['script.mjs'],
      project,
      userEnv({ RUSTYDB_URL: server!.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD }),
    );
    assert.match(out, /^change: insert \{"id":1,"body":"from node"\}$/m);
    assert.match(out, /^query: \[\{"n":1\}\]$/m);
  });

  test("the project's rustydb runs the client's commands and the server's", async () => {
    const bin = join(project, 'node_modules/.bin/rustydb');
    const env = userEnv({ RUSTYDB_URL: server!.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD });
    const out = await succeed(bin, ['query', 'SELECT body FROM notes', '--format', 'csv'], project, env);
    assert.equal(out, 'body\r\nfrom node\r\n');
    const users = await succeed(bin, ['user', 'list'], project, env);
    assert.match(users, /admin/);
    // The types of the user's tables, with one command (the app below imports them).
    await succeed(bin, ['gen', 'types', '--out', 'src/db-types.ts'], project, env);
    assert.match(
      readFileSync(join(project, 'src/db-types.ts'), 'utf8'),
      /export interface Notes \{\n {2}id: number;\n {2}body: string;\n\}/,
    );
  });

  test(
    'an app and a React component type-check under strict NodeNext (and Bundler) with zero errors',
    {
      timeout: INSTALL_TIMEOUT_MS + 60_000,
    },
    async () => {
      writeFileSync(join(project, 'tsconfig.json'), JSON.stringify(STRICT_TSCONFIG, null, 2));
      writeFileSync(join(project, 'src/app.ts'), APP_TS);
      writeFileSync(join(project, 'src/component.tsx'), COMPONENT_TSX);
      // As a Node application (NodeNext), and as a bundled one (Preserve + Bundler, as Vite projects are).
      const configurations = [[], ['--module', 'preserve', '--moduleResolution', 'bundler']];
      const results = await Promise.all(
        configurations.map((flags) =>
          runProcess(process.execPath, [TSC, '-p', 'tsconfig.json', ...flags], {
            cwd: project,
            env: userEnv(),
            // It checks every declaration file it loads (zod's are large): minutes on a busy machine.
            timeoutMs: INSTALL_TIMEOUT_MS,
          }),
        ),
      );
      results.forEach((result, i) => {
        assert.equal(`${result.stdout}${result.stderr}`, '', `tsc ${configurations[i]!.join(' ')}`);
        assert.equal(result.code, 0);
      });
    },
  );

  test(
    'a browser entry bundled with esbuild runs in chromium: a live table, no ws',
    { timeout: 120_000 },
    async () => {
      const page = join(work, 'page');
      mkdirSync(page);
      writeFileSync(join(project, 'src/component.tsx'), COMPONENT_TSX);
      writeFileSync(join(project, 'src/entry.js'), BROWSER_ENTRY);
      const result = await build({
        absWorkingDir: project,
        entryPoints: [join(project, 'src/entry.js')],
        outfile: join(page, 'app.js'),
        bundle: true,
        format: 'esm',
        platform: 'browser',
        jsx: 'automatic',
        define: { 'process.env.NODE_ENV': '"production"' },
        metafile: true,
        logLevel: 'warning',
      });
      const inputs = Object.keys(result.metafile.inputs);
      assert.ok(!inputs.some((path) => path.includes('node_modules/ws/')), 'ws is in the browser bundle');
      assert.ok(
        inputs.some((path) => path.startsWith('node_modules/@rustydb/client/dist/browser/')),
        `the client's browser build is not in the bundle:\n${inputs.join('\n')}`,
      );
      writeFileSync(
        join(page, 'index.html'),
        '<!doctype html><meta charset="utf-8"><title>app</title><div id="root"></div><script type="module" src="/page/app.js"></script>',
      );

      const bearer = await token(server!.url);
      await sqlOver(server!.url, bearer, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
      await sqlOver(server!.url, bearer, "INSERT INTO items (name) VALUES ('pen'), ('book')");
      const web = await WebServer.start({ '/page/': page }, Number(new URL(server!.url).port));
      let browser: Chromium | undefined;
      try {
        browser = await launchChromium();
        const tab = await browser.context.newPage();
        const errors: string[] = [];
        tab.on('pageerror', (err) => errors.push(err.message));
        await tab.goto(`${web.url}/page/index.html?token=${encodeURIComponent(bearer)}`);
        const listed = (): Promise<string> =>
          tab.$$eval('#items li', (items) => items.map((li) => li.textContent).join('|'));
        await eventually(async () => (await listed()).includes('book'), 'the snapshot in the page', 30_000);
        await sqlOver(server!.url, bearer, "INSERT INTO items (name) VALUES ('cup')");
        await eventually(async () => (await listed()).includes('cup'), 'the change in the page', 30_000);
        assert.match(
          await listed(),
          /^\{"id":1,"name":"pen"\}\|\{"id":2,"name":"book"\}\|\{"id":3,"name":"cup"\}$/,
        );
        assert.equal(await tab.textContent('#state'), 'open');
        assert.deepEqual(errors, []);
      } finally {
        await browser?.close();
        await web.close();
      }
    },
  );

  test(
    'npm install -g of the server without the client: rustydb serves, and says where the shell is',
    {
      timeout: 300_000,
    },
    async () => {
      const prefix = join(work, 'global');
      const ours = (name: string): string => tarballs.find((file) => file.includes(`rustydb-${name}-`))!;
      // The server's own workspace dependencies come from their tarballs too (they are not on the registry).
      await succeed(
        NPM,
        [
          'install',
          '-g',
          '--prefix',
          prefix,
          '--no-audit',
          '--no-fund',
          ours('protocol'),
          ours('console'),
          ours('server'),
        ],
        work,
      );
      const modules = join(prefix, 'lib/node_modules');
      assert.ok(!existsSync(join(modules, '@rustydb/client')), 'the client was installed with the server');
      assert.ok(!existsSync(join(modules, '@rustydb/server/node_modules/@rustydb/client')));
      const rustydb = join(prefix, 'bin/rustydb');
      const help = await succeed(rustydb, ['help'], work);
      assert.match(help, /server commands/);
      assert.match(
        help,
        /\(shell, query, watch, gen\) come with @rustydb\/client, which is not installed here/,
      );
      const shell = await runProcess(rustydb, ['shell'], { cwd: work, env: userEnv() });
      assert.equal(shell.code, 2);
      assert.match(shell.stderr, /unknown command 'shell'[^]*npm install @rustydb\/client/);

      const global = await serve(rustydb, join(work, 'global-data'), work);
      try {
        const readiness = await fetch(`${global.url}/api/v1/health/readiness`);
        assert.equal(readiness.status, 200);
      } finally {
        await global.stop();
      }
    },
  );
});
