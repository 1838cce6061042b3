/**
 * What the console's browser tests share: the built console (built again when a source is newer than
 * the build), the real server serving it at `/`, one chromium per test file, a signed-in page per
 * test, an axe-core check of each page, screenshots into one folder (printed, and named by
 * RUSTYDB_SCREENSHOTS when set), and a record of every console error and failed request on the page.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import { launchChromium, type Chromium } from '../../client/test/browser/chromium.ts';
import { ADMIN_PASSWORD, startTestServer, type TestServer } from '../../server/test/helpers/test-server.ts';
import type { ServerConfig } from '../../server/src/config/config.ts';

export { ADMIN_PASSWORD, type TestServer };

export const consoleDir = fileURLToPath(new URL('..', import.meta.url));
const distIndex = join(consoleDir, 'dist', 'index.html');

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir)) {
    const path = join(dir, entry);
    const stat = statSync(path);
    newest = Math.max(newest, stat.isDirectory() ? newestSource(path) : stat.mtimeMs);
  }
  return newest;
}

/** Builds the console when dist/ is missing or older than a source file (as `npm install` would). */
export function ensureConsoleBuilt(): void {
  const sources = Math.max(
    newestSource(join(consoleDir, 'src')),
    statSync(join(consoleDir, 'index.html')).mtimeMs,
    statSync(join(consoleDir, 'vite.config.ts')).mtimeMs,
  );
  if (existsSync(distIndex) && statSync(distIndex).mtimeMs >= sources) return;
  execFileSync('npm', ['run', 'build'], { cwd: consoleDir, stdio: 'inherit' });
}

let screenshotDir: string | undefined;

/** The folder screenshots go to; printed once so a reader of the test output can find them. */
export function screenshotFolder(): string {
  if (!screenshotDir) {
    screenshotDir = process.env.RUSTYDB_SCREENSHOTS ?? mkdtempSync(join(tmpdir(), 'rustydb-console-shots-'));
    mkdirSync(screenshotDir, { recursive: true });
    console.log(`# console screenshots: ${screenshotDir}`);
  }
  return screenshotDir;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(screenshotFolder(), `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

const axeSource = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: unknown[] }[];
}

/**
 * Runs axe-core on the page as it is and fails on serious or critical violations. axe is added with
 * playwright's script injection, which the page's Content-Security-Policy does not apply to.
 */
export async function assertAccessible(page: Page, what: string, problems?: string[]): Promise<void> {
  const before = problems?.length ?? 0;
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    const result = await axe.run();
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.map((n) => n.target),
    }));
  });
  // axe measures text by adding a style element of its own, which the page's CSP refuses (and logs):
  // that refusal is axe's, not the console's.
  if (problems) {
    const added = problems.splice(before);
    problems.push(...added.filter((p) => !/Applying inline style violates/.test(p)));
  }
  const bad = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `${what}: accessibility violations ${JSON.stringify(bad, null, 1)}`);
}

export interface ConsoleHarness {
  ts: TestServer;
  browser: Chromium;
  context: BrowserContext;
  /** `http(s)://host:port/` */
  url: string;
  /** A fresh page that records console errors and failed requests (see `problems`). */
  newPage(): Promise<Page>;
  /** Errors seen on pages so far (console errors, page errors, CSP violations). */
  problems: string[];
  /** assertAccessible, keeping axe's own CSP refusals out of `problems`. */
  checkAccessibility(page: Page, what: string): Promise<void>;
  close(): Promise<void>;
}

export async function startConsole(
  overrides: Partial<ServerConfig> = {},
  options: { ignoreHTTPSErrors?: boolean } = {},
): Promise<ConsoleHarness> {
  ensureConsoleBuilt();
  const ts = await startTestServer({ enable_rate_limiting: false, ...overrides });
  let browser: Chromium;
  try {
    browser = await launchChromium(options.ignoreHTTPSErrors ? { ignoreHTTPSErrors: true } : {});
  } catch (err) {
    await ts.close();
    throw err;
  }
  const problems: string[] = [];
  const pages: Page[] = [];
  return {
    ts,
    browser,
    context: browser.context,
    url: `${ts.server.url}/`,
    problems,
    checkAccessibility: (page, what) => assertAccessible(page, what, problems),
    async newPage() {
      const page = await browser.context.newPage();
      pages.push(page);
      page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
      });
      page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
      return page;
    },
    async close() {
      for (const page of pages) await page.close().catch(() => {});
      await browser.close();
      await ts.close();
    },
  };
}

/** Signs in through the form and waits for the shell. */
export async function signIn(page: Page, url: string, username: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('User name').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('user').waitFor({ timeout: 15_000 });
}

/** Polls `check` until it is truthy; fails after `timeoutMs` naming `what`. */
export async function eventually(
  check: () => Promise<unknown>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Replaces the text of a CodeMirror editor (found by its accessible name) as one input. */
export async function typeInEditor(page: Page, name: RegExp, text: string): Promise<void> {
  await page.getByRole('textbox', { name }).click();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.press('Delete');
  await page.keyboard.insertText(text);
}

/** Puts a statement in the SQL editor of the page and runs it with Ctrl/Cmd-Enter. */
export async function runSql(page: Page, sql: string): Promise<void> {
  await typeInEditor(page, /SQL statement/, sql);
  await page.keyboard.press('ControlOrMeta+Enter');
}

/** Creates a user with the given roles over the admin API. */
export async function createUser(
  ts: TestServer,
  username: string,
  password: string,
  roles: string[],
): Promise<void> {
  const res = await ts.http('/api/v1/users', { body: { username, password, roles } });
  assert.equal(res.status, 201, JSON.stringify(res.body));
}

/** Runs SQL as admin over HTTP. */
export async function adminSql(ts: TestServer, sql: string, params: unknown[] = []): Promise<unknown> {
  const res = await ts.http('/api/v1/query', { body: { sql, params } });
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return (res.body as { data: unknown }).data;
}
