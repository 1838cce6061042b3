/**
 * The examples in examples/, each run against a live server: the Node script (tsx), the Python client
 * (the `websockets` package), and the plain-JavaScript browser page in chromium, loading the client's
 * dist build through examples/browser/serve.mjs. Each must log in, query, stream, subscribe and
 * resume without missing a change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { ADMIN_PASSWORD, runProcess, startTestServer, type TestServer } from './helpers.ts';
import { launchChromium, type Chromium } from './browser/chromium.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The lines every example prints, whatever its language. */
const EXPECTED = [
  /^login: connected as admin/m,
  /^query: answer=42 greeting=hello$/m,
  /^stream: 10000 rows in \d+ chunks$/m,
  /^subscribe: #\d+ insert \{"id": ?\d+, ?"body": ?"first"\}$/m,
  /^resume: after #\d+ got \["second", ?"third"\], in order, nothing missed$/m,
];

/** A python3 that has the websockets package: the one on PATH, or Debian's. */
function pythonWithWebsockets(): string {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(candidate, ['-c', 'import websockets'], { stdio: 'ignore' });
    if (probe.status === 0) return candidate;
  }
  throw new Error('no python3 with the websockets package: apt-get install python3-websockets');
}

function assertTranscript(output: string): void {
  for (const line of EXPECTED) assert.match(output, line);
}

describe('examples against a live server', () => {
  let ts: TestServer;
  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
  });
  after(async () => {
    await ts?.close();
  });

  test('examples/node-client.ts', { timeout: 90_000 }, async () => {
    const result = await runProcess(
      process.execPath,
      ['--conditions=rustydb-source', '--import', 'tsx', 'examples/node-client.ts'],
      {
        cwd: REPO_ROOT,
        env: {
          ...process.env,
          RUSTYDB_URL: ts.server.url,
          RUSTYDB_USER: 'admin',
          RUSTYDB_PASSWORD: ADMIN_PASSWORD,
        },
      },
    );
    assert.equal(result.code, 0, result.stderr);
    assertTranscript(result.stdout);
  });

  test('examples/python/client.py', { timeout: 90_000 }, async () => {
    const result = await runProcess(
      pythonWithWebsockets(),
      ['examples/python/client.py', ts.server.url, 'admin', ADMIN_PASSWORD],
      { cwd: REPO_ROOT },
    );
    assert.equal(result.code, 0, `${result.stdout}\n${result.stderr}`);
    assertTranscript(result.stdout);
  });

  describe('examples/browser (plain JavaScript, the client dist build)', () => {
    let browser: Chromium;
    let context: BrowserContext;
    let web: { url: string; close(): Promise<void> };
    before(async () => {
      const { buildClient } = (await import(
        pathToFileURL(`${REPO_ROOT}packages/client/scripts/build.mjs`).href
      )) as { buildClient(options?: { outdir?: string }): Promise<unknown> };
      await buildClient();
      const { serve } = (await import(pathToFileURL(`${REPO_ROOT}examples/browser/serve.mjs`).href)) as {
        serve(options: { port: number; target: string }): Promise<{ url: string; close(): Promise<void> }>;
      };
      web = await serve({ port: 0, target: ts.server.url });
      browser = await launchChromium();
      context = browser.context;
    });
    after(async () => {
      await browser?.close();
      await web?.close();
    });

    test('index.html runs the whole demo', { timeout: 90_000 }, async () => {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (err) => errors.push(err.message));
      try {
        await page.goto(
          `${web.url}/examples/browser/index.html?user=admin&password=${encodeURIComponent(ADMIN_PASSWORD)}`,
        );
        await page.waitForFunction(
          () => {
            const log =
              (
                globalThis as unknown as {
                  document: { getElementById(id: string): { textContent: string } | null };
                }
              ).document.getElementById('log')?.textContent ?? '';
            return log.includes('done') || log.includes('error:');
          },
          undefined,
          { timeout: 60_000 },
        );
        const log = (await page.textContent('#log')) ?? '';
        assert.doesNotMatch(log, /error:/);
        assertTranscript(log);
        assert.equal(await page.textContent('#state'), 'closed');
        assert.deepEqual(errors, []);
      } finally {
        await page.close();
      }
    });
  });
});
