/**
 * docs/client.md's five-minute guide, run as written. Its code blocks are read from the document (a
 * changed guide is what gets tested) and run in a new project outside the repository whose
 * `node_modules` is the workspace's (what `npm install @rustydb/server @rustydb/client` gives; the
 * packed-packages test installs the real tarballs):
 *   - the shell blocks: `npx rustydb serve`, then the table, the user and `gen types`;
 *   - the Node program, with `npx tsx`: it prints the rows, then every change, also across a server
 *     restart;
 *   - the web page and the React component, bundled with esbuild as a Vite project would be and run in
 *     chromium: the user signs in, the list shows the table and follows its changes;
 *   - every TypeScript block type-checks under the strict settings docs/client.md promises, as a Node
 *     program (NodeNext) and as a Vite project (Bundler), with the types `gen types` wrote.
 * The guide's server address (127.0.0.1:8080) is replaced by the test server's port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import type { Page } from 'playwright-core';
import { eventually, runProcess, startServeProcess, userEnv, type ServeProcess } from './helpers.ts';
import { WebServer } from './browser/web-server.ts';
import { launchChromium, type Chromium } from './browser/chromium.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const GUIDE_ADDRESS = 'http://127.0.0.1:8080';

interface CodeBlock {
  lang: string;
  code: string;
}

/** The fenced code blocks of docs/client.md between "## A five-minute guide" and the next "## ". */
function guideBlocks(): CodeBlock[] {
  const doc = readFileSync(join(REPO_ROOT, 'docs/client.md'), 'utf8');
  const start = doc.indexOf('\n## A five-minute guide\n');
  assert.ok(start >= 0, 'docs/client.md has a five-minute guide');
  const end = doc.indexOf('\n## ', start + 1);
  const guide = doc.slice(start, end < 0 ? undefined : end);
  return [...guide.matchAll(/^```(\w+)\n([^]*?)^```$/gm)].map((m) => ({ lang: m[1]!, code: m[2]! }));
}

/** A shell block's commands, one per line, without the comments. */
function commands(block: CodeBlock): string[] {
  return block.code
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '');
}

/** A shell command line that runs until stopped; `output()` is what it printed. */
function startProgram(line: string, cwd: string, env: NodeJS.ProcessEnv): { output(): string; stop(): void } {
  // A process group of its own: stopping it stops the shell and what it started (npx, tsx, node).
  const child = spawn('sh', ['-c', line], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  return {
    output: () => output,
    stop: () => {
      try {
        process.kill(-child.pid!, 'SIGTERM');
      } catch {
        // It ended already.
      }
    },
  };
}

describe("docs/client.md's five-minute guide, as written", { concurrency: false }, () => {
  const blocks = guideBlocks();
  let project: string;
  let server: ServeProcess | undefined;
  let serveLine: string;
  let env: NodeJS.ProcessEnv;
  let port: number;

  /** The guide's serve command on the test's port (0 for any free port at first, then the same). */
  const serve = (onPort: number): Promise<ServeProcess> =>
    startServeProcess('sh', ['-c', `${serveLine} --port ${onPort}`], { cwd: project, env });
  /** A guide file with the test server's address instead of the guide's. */
  const withAddress = (code: string): string => code.replaceAll(GUIDE_ADDRESS, `http://127.0.0.1:${port}`);
  const sh = async (line: string): Promise<string> => {
    const result = await runProcess('sh', ['-c', line], { cwd: project, env, timeoutMs: 120_000 });
    assert.equal(result.code, 0, `${line}\n${result.stdout}\n${result.stderr}`);
    return result.stdout;
  };

  before(
    async () => {
      assert.deepEqual(
        blocks.map((b) => b.lang),
        ['sh', 'sh', 'ts', 'ts', 'tsx'],
        'the guide: the server, the table, Node, a web page, React',
      );
      project = mkdtempSync(join(tmpdir(), 'rustydb-guide-'));
      mkdirSync(join(project, 'src'));
      writeFileSync(
        join(project, 'package.json'),
        JSON.stringify({ name: 'guide-app', version: '1.0.0', private: true, type: 'module' }),
      );
      // What `npm install @rustydb/server @rustydb/client` (the guide's first command) provides.
      const [install, serveCommand] = commands(blocks[0]!);
      assert.match(install!, /^npm install @rustydb\/server @rustydb\/client$/);
      symlinkSync(join(REPO_ROOT, 'node_modules'), join(project, 'node_modules'), 'dir');
      env = userEnv({ npm_config_yes: 'false', npm_config_update_notifier: 'false' });
      serveLine = serveCommand!;
      server = await serve(0);
      port = Number(new URL(server.url).port);
      // The guide's CLI finds the server at its default address; here it is told the test's port.
      env = { ...env, RUSTYDB_URL: server.url };
      // The second block, as typed in a terminal: its `export` holds for every later command there.
      const terminal = commands(blocks[1]!);
      for (const line of terminal) {
        const exported = /^export (\w+)='([^']*)'$/.exec(line);
        if (exported) env = { ...env, [exported[1]!]: exported[2]! };
      }
      await sh(terminal.join(' && '));
    },
    { timeout: 240_000 },
  );

  after(async () => {
    await server?.stop();
    if (project) rmSync(project, { recursive: true, force: true });
  });

  test('gen types wrote the table type the code blocks import', () => {
    const types = readFileSync(join(project, 'src/db-types.ts'), 'utf8');
    assert.match(types, /export interface Todos \{\s*id: number;\s*title: string;\s*done: number;\s*\}/);
  });

  test(
    'the Node program prints the rows, then each change, also after the server restarts',
    { timeout: 180_000 },
    async () => {
      const node = blocks[2]!.code;
      writeFileSync(join(project, 'src/todos.ts'), withAddress(node));
      const run = /run it with `([^`]+)`/.exec(node)?.[1];
      assert.ok(run, 'the Node block says how to run it');
      const program = startProgram(run, project, env);
      try {
        await eventually(
          () => program.output().includes("[ { id: 1, title: 'try RustyDB', done: 0 } ]"),
          'the rows the guide shows',
          60_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${program.output()}`);
        });
        await sh('npx rustydb query "UPDATE todos SET done = 1"');
        await eventually(
          () => program.output().includes("update { id: 1, title: 'try RustyDB', done: 1 }"),
          'the update printed',
          20_000,
        );

        // Ctrl-C, start it again, and change the table at once.
        await server!.stop();
        server = await serve(port);
        await sh(`npx rustydb query "INSERT INTO todos (title) VALUES ('after the restart')"`);
        await eventually(
          () => program.output().includes("insert { id: 2, title: 'after the restart', done: 0 }"),
          'the change after the restart printed',
          20_000,
        ).catch((err: Error) => {
          throw new Error(`${err.message}\n${program.output()}`);
        });
        const lines = program.output().trim().split('\n');
        assert.deepEqual(lines.slice(1), [
          "update { id: 1, title: 'try RustyDB', done: 1 }",
          "insert { id: 2, title: 'after the restart', done: 0 }",
        ]);
      } finally {
        program.stop();
      }
    },
  );

  test(
    'the code blocks type-check under the strict settings, as a Node program and as Vite projects',
    { timeout: 300_000 },
    async () => {
      writeFileSync(join(project, 'src/todos.ts'), withAddress(blocks[2]!.code));
      writeFileSync(join(project, 'src/main.ts'), withAddress(blocks[3]!.code));
      writeFileSync(join(project, 'src/App.tsx'), withAddress(blocks[4]!.code));
      const strict = {
        strict: true,
        exactOptionalPropertyTypes: true,
        noPropertyAccessFromIndexSignature: true,
        noUncheckedIndexedAccess: true,
        verbatimModuleSyntax: true,
        target: 'es2022',
        skipLibCheck: true,
        noEmit: true,
      };
      const configs = {
        'tsconfig.node.json': {
          compilerOptions: { ...strict, module: 'nodenext', types: ['node'] },
          files: ['src/todos.ts'],
        },
        // What `npm create vite@latest -- --template react-ts` (and vanilla-ts) configure.
        'tsconfig.app.json': {
          compilerOptions: {
            ...strict,
            module: 'esnext',
            moduleResolution: 'bundler',
            allowImportingTsExtensions: true,
            lib: ['es2022', 'dom', 'dom.iterable'],
            jsx: 'react-jsx',
            types: [],
          },
          files: ['src/main.ts', 'src/App.tsx'],
        },
      };
      const tsc = join(REPO_ROOT, 'node_modules/typescript/bin/tsc');
      const results = await Promise.all(
        Object.entries(configs).map(([file, config]) => {
          writeFileSync(join(project, file), JSON.stringify(config, null, 2));
          return runProcess(process.execPath, [tsc, '-p', file], { cwd: project, env, timeoutMs: 280_000 });
        }),
      );
      results.forEach((result, i) => {
        assert.equal(`${result.stdout}${result.stderr}`, '', Object.keys(configs)[i]);
        assert.equal(result.code, 0);
      });
    },
  );

  describe('in chromium', () => {
    let browser: Chromium;
    let web: WebServer;
    const page = (): string => join(project, 'page');

    before(
      async () => {
        mkdirSync(page(), { recursive: true });
        writeFileSync(join(project, 'src/main.ts'), withAddress(blocks[3]!.code));
        writeFileSync(join(project, 'src/App.tsx'), withAddress(blocks[4]!.code));
        // The React template's own src/main.tsx.
        writeFileSync(
          join(project, 'src/react-main.tsx'),
          `import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import App from './App.tsx';

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
`,
        );
        await build({
          absWorkingDir: project,
          entryPoints: { page: 'src/main.ts', react: 'src/react-main.tsx' },
          outdir: page(),
          bundle: true,
          format: 'esm',
          platform: 'browser',
          target: 'es2022',
          jsx: 'automatic',
          define: { 'process.env.NODE_ENV': '"development"' },
          logLevel: 'warning',
        });
        writeFileSync(
          join(page(), 'page.html'),
          '<!doctype html><meta charset="utf-8"><div id="app"></div><script type="module" src="/page/page.js"></script>',
        );
        writeFileSync(
          join(page(), 'react.html'),
          '<!doctype html><meta charset="utf-8"><div id="root"></div><script type="module" src="/page/react.js"></script>',
        );
        // A development server of its own origin (as Vite's), not the database's.
        web = await WebServer.start({ '/page/': page() }, port);
        browser = await launchChromium();
      },
      { timeout: 120_000 },
    );

    after(async () => {
      await browser?.close();
      await web?.close();
    });

    const listed = (tab: Page): Promise<string> =>
      tab.$$eval('li', (items) => items.map((li) => li.textContent).join('|'));

    /**
     * Opens `page` (`signIn` answers the prompts or fills the form), waits for the table, inserts `title`
     * with the CLI and waits for the list to show it (`where`: contain it, or end with it).
     */
    async function followsAChange(
      page: string,
      signIn: { beforeLoad?(tab: Page): void; afterLoad?(tab: Page): Promise<void> },
      title: string,
      where: 'includes' | 'endsWith',
    ): Promise<Page> {
      const tab = await browser.context.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (err) => errors.push(err.message));
      signIn.beforeLoad?.(tab);
      await tab.goto(`${web.url}/page/${page}`);
      await signIn.afterLoad?.(tab);
      await eventually(
        async () => (await listed(tab)).includes('try RustyDB'),
        `the table in ${page}`,
        30_000,
      );
      await sh(`npx rustydb query "INSERT INTO todos (title) VALUES ('${title}')"`);
      await eventually(async () => (await listed(tab))[where](title), `the change in ${page}`, 30_000);
      assert.deepEqual(errors, []);
      return tab;
    }

    test('the web page signs in, shows the table and follows a change', { timeout: 90_000 }, async () => {
      const answers = ['app', 'app-password-42'];
      const tab = await followsAChange(
        'page.html',
        {
          // The page asks with prompt() as it loads.
          beforeLoad: (page) => page.on('dialog', (dialog) => void dialog.accept(answers.shift() ?? '')),
        },
        'from the page test',
        'includes',
      );
      assert.deepEqual(answers, [], 'both prompts answered');
      await tab.close();
    });

    test(
      'the React component signs in, shows the table, follows a change and is current again after a server restart',
      { timeout: 120_000 },
      async (t) => {
        const tab = await followsAChange(
          'react.html',
          {
            afterLoad: async (page) => {
              await page.fill('input[name=user]', 'app');
              await page.fill('input[name=password]', 'app-password-42');
              await page.click('button');
            },
          },
          'from the React test',
          'endsWith', // ordered by id: the new row comes last
        );
        const heading = async (): Promise<string> => (await tab.textContent('p')) ?? '';
        assert.match(await heading(), /^\d+ todos$/);

        // "While the server restarts it dims, and it is current again about a second after the server
        // is back": with the client's default retry policy.
        await server!.stop();
        await eventually(async () => /^reconnecting…$/.test(await heading()), 'the page to say reconnecting');
        server = await serve(port);
        const back = performance.now();
        await eventually(
          async () => /^\d+ todos$/.test(await heading()),
          'the page to be open again',
          20_000,
        );
        t.diagnostic(`open again ${Math.round(performance.now() - back)} ms after the server was back`);
        await sh(`npx rustydb query "INSERT INTO todos (title) VALUES ('after the React restart')"`);
        await eventually(
          async () => (await listed(tab)).endsWith('after the React restart'),
          'a change after the restart in React',
          30_000,
        );
        await tab.close();
      },
    );
  });
});
