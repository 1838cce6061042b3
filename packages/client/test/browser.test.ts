/**
 * The SDK and the React bindings in a real browser: Debian's chromium driven by playwright-core.
 * The page is bundled with esbuild (platform browser: the native WebSocket, no `ws`), served with the
 * API behind one origin. The React app's live table must survive a server restart without missing
 * or repeating a change.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import type * as SDK from '@rustydb/client';
import { ADMIN_PASSWORD, RestartableServer, eventually, fixture } from './helpers.ts';
import { WebServer } from './browser/web-server.ts';
import { bundlePage, type PageBundle } from './browser/page-bundle.ts';
import { launchChromium, type Chromium } from './browser/chromium.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

type Row = { id: number; name: string };

async function renderedRows(page: Page): Promise<Row[]> {
  const rows = await page.$$eval('#items tr', (trs) =>
    trs.map((tr) => {
      const cells = (
        tr as unknown as { querySelectorAll(s: string): { textContent: string | null }[] }
      ).querySelectorAll('td');
      return { id: Number(cells[0]?.textContent), name: String(cells[1]?.textContent) };
    }),
  );
  return rows.sort((a, b) => a.id - b.id);
}

describe('in chromium', () => {
  let server: RestartableServer;
  let web: WebServer;
  let browser: Chromium;
  let context: BrowserContext;
  let bundle: PageBundle | undefined;
  let bundleInputs: string[] = [];

  before(async () => {
    bundle = await bundlePage(join(here, 'browser/app.ts'));
    bundleInputs = bundle.inputs;
    server = await RestartableServer.start({ enable_rate_limiting: false });
    await fixture(server, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    await fixture(server, "INSERT INTO items (name) VALUES ('pen'), ('book'), ('cup')");
    web = await WebServer.start({ '/page/': bundle.dir }, server.port);
    browser = await launchChromium();
    context = browser.context;
  });

  after(async () => {
    await browser?.close();
    await web?.close();
    await server?.close();
    bundle?.remove();
  });

  test('the browser bundle uses the native WebSocket: no ws, no zod', () => {
    assert.ok(bundleInputs.some((p) => p.includes('transport/browser-websocket.ts')));
    assert.ok(!bundleInputs.some((p) => p.includes('node_modules/ws/')), 'ws was bundled');
    assert.ok(!bundleInputs.some((p) => p.includes('transport/node-websocket.ts')));
    assert.ok(!bundleInputs.some((p) => p.includes('node_modules/zod/')), 'zod was bundled');
  });

  test(
    'the SDK in the page: login, query, stream with cancel on break, typed errors, batch',
    { timeout: 60_000 },
    async () => {
      const page = await context.newPage();
      try {
        await page.goto(`${web.url}/page/index.html?mode=sdk`);
        const outcome = await page.evaluate(async (password) => {
          const { RustyDBClient, RustyDBError } = (globalThis as unknown as { RustyDB: typeof SDK }).RustyDB;
          const client = new RustyDBClient({ username: 'admin', password });
          const messages: { type: string; id?: string; code?: string }[] = [];
          client.on('message', (m) =>
            messages.push({ type: m.type, id: m.id, code: (m.payload as { code?: string }).code }),
          );
          const session = await client.ready();
          const answer = await client.query('SELECT 6 * 7 AS x, ? AS s', ['browser']);
          const stream = client.stream(
            'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c',
            [],
            { chunkSize: 50 },
          );
          let chunks = 0;
          for await (const chunk of stream) {
            if (chunk.rows.length > 0 && ++chunks === 2) break;
          }
          const deadline = Date.now() + 10_000;
          while (
            !messages.some((m) => m.id === stream.id && m.code === 'QUERY_CANCELLED') &&
            Date.now() < deadline
          ) {
            await new Promise((r) => setTimeout(r, 20));
          }
          let error: { isRustyDBError: boolean; code: string; retryable: boolean } | undefined;
          try {
            await client.query('SELECT * FROM nowhere');
          } catch (err) {
            const e = err as InstanceType<typeof RustyDBError>;
            error = { isRustyDBError: err instanceof RustyDBError, code: e.code, retryable: e.retryable };
          }
          const batch = await client.batch(['SELECT count(*) FROM items', 'SELECT 1']);
          await client.close();
          return {
            user: session.user,
            answer: answer.rows,
            cancelled: messages.some((m) => m.id === stream.id && m.code === 'QUERY_CANCELLED'),
            error,
            batch: batch.map((r) => r.ok),
            state: client.state,
            transport: typeof (globalThis as { WebSocket?: unknown }).WebSocket,
          };
        }, ADMIN_PASSWORD);
        assert.deepEqual(outcome, {
          user: 'admin',
          answer: [{ x: 42, s: 'browser' }],
          cancelled: true,
          error: { isRustyDBError: true, code: 'TABLE_NOT_FOUND', retryable: false },
          batch: [true, true],
          state: 'closed',
          transport: 'function',
        });
      } finally {
        await page.close();
      }
    },
  );

  test(
    "the browser's online event and a page becoming visible again end the wait: the client reconnects at once",
    { timeout: 60_000 },
    async () => {
      const page = await context.newPage();
      try {
        await page.goto(`${web.url}/page/index.html?mode=sdk`);
        await page.evaluate(async (password) => {
          const { RustyDBClient } = (globalThis as unknown as { RustyDB: typeof SDK }).RustyDB;
          // A retry wait far longer than the test: only a wake event can bring the client back in time.
          const client = new RustyDBClient({
            username: 'admin',
            password,
            reconnectDelay: 120_000,
            maxReconnectDelay: 120_000,
            reconnectJitter: 0,
          });
          (globalThis as unknown as { client: SDK.RustyDBClient }).client = client;
          await client.ready();
        }, ADMIN_PASSWORD);
        const state = (): Promise<string> =>
          page.evaluate(() => (globalThis as unknown as { client: SDK.RustyDBClient }).client.state);

        const loseServer = async (): Promise<void> => {
          web.refuse = true;
          await server.restart();
          await eventually(async () => (await state()) === 'reconnecting', 'the page to notice the restart');
          web.refuse = false;
          // Well past the server's return, the client is still waiting out its retry delay.
          await new Promise((resolve) => setTimeout(resolve, 1000));
          assert.equal(await state(), 'reconnecting');
        };

        await loseServer();
        await context.setOffline(true);
        await context.setOffline(false);
        await eventually(async () => (await state()) === 'open', 'open after the online event', 5000);

        await loseServer();
        await page.evaluate(() => {
          const doc = (globalThis as unknown as { document: { dispatchEvent(e: unknown): boolean } })
            .document;
          doc.dispatchEvent(new Event('visibilitychange'));
        });
        await eventually(async () => (await state()) === 'open', 'open after visibilitychange', 5000);
        await page.evaluate(() => (globalThis as unknown as { client: SDK.RustyDBClient }).client.close());
      } finally {
        await page.close();
      }
    },
  );

  test(
    'React: a live table from useSubscription survives a server restart without missing or repeating a change',
    { timeout: 90_000 },
    async () => {
      const page = await context.newPage();
      const pageErrors: string[] = [];
      page.on('pageerror', (err) => pageErrors.push(err.message));
      try {
        await page.goto(
          `${web.url}/page/index.html?user=admin&password=${encodeURIComponent(ADMIN_PASSWORD)}`,
        );
        await page.waitForSelector('#items[data-status="active"]', { timeout: 20_000 });
        await page.waitForFunction(
          () =>
            (
              globalThis as unknown as {
                document: { querySelector(s: string): { textContent: string } | null };
              }
            ).document.querySelector('#count')?.textContent === '3',
        );
        assert.deepEqual(await renderedRows(page), [
          { id: 1, name: 'pen' },
          { id: 2, name: 'book' },
          { id: 3, name: 'cup' },
        ]);
        assert.equal(await page.textContent('#state'), 'open');

        const expectRows = async (what: string): Promise<void> => {
          const stored = (await fixture(server, 'SELECT id, name FROM items ORDER BY id')).rows.map(
            ([id, name]) => ({ id: id as number, name: name as string }),
          );
          await eventually(
            async () => JSON.stringify(await renderedRows(page)) === JSON.stringify(stored),
            `${what}: the page to show ${JSON.stringify(stored)}`,
            20_000,
          ).catch(async (err: Error) => {
            throw new Error(`${err.message}; it shows ${JSON.stringify(await renderedRows(page))}`);
          });
        };

        await fixture(server, "INSERT INTO items (name) VALUES ('lamp'), ('desk')");
        await fixture(server, "UPDATE items SET name = 'pencil' WHERE id = 1");
        await fixture(server, 'DELETE FROM items WHERE id = 2');
        await expectRows('before the restart');

        // The server restarts; while the page cannot reach it, rows are added, changed and removed.
        web.refuse = true;
        await server.restart();
        await fixture(server, "INSERT INTO items (name) VALUES ('chair'), ('rug')");
        await fixture(server, "UPDATE items SET name = 'mug' WHERE id = 3");
        await fixture(server, 'DELETE FROM items WHERE id = 4');
        await eventually(
          async () => (await page.textContent('#state')) === 'reconnecting',
          'the page to notice the restart',
        );
        web.refuse = false;
        await page.waitForFunction(
          () =>
            (
              globalThis as unknown as {
                document: { querySelector(s: string): { textContent: string } | null };
              }
            ).document.querySelector('#state')?.textContent === 'open',
          undefined,
          { timeout: 20_000 },
        );
        await expectRows('after the restart');
        await fixture(server, "INSERT INTO items (name) VALUES ('after')");
        await expectRows('after a further change');

        // A plain subscription beside the hook saw every change of the table exactly once: the only
        // writes were to this table, so its sequences are consecutive.
        const sequences = await page.evaluate(
          () => (globalThis as unknown as { sequences: number[] }).sequences,
        );
        assert.equal(sequences.length, 9, JSON.stringify(sequences));
        for (let i = 1; i < sequences.length; i++)
          assert.equal(sequences[i], sequences[i - 1]! + 1, JSON.stringify(sequences));

        const states = await page.evaluate(() => (globalThis as unknown as { states: string[] }).states);
        assert.ok(states.includes('reconnecting'), states.join());
        assert.equal(states.at(-1), 'open');
        // useQuery still works on the new connection.
        await page.click('#refetch');
        await page.waitForFunction(
          () =>
            (
              globalThis as unknown as {
                document: { querySelector(s: string): { textContent: string } | null };
              }
            ).document.querySelector('#count')?.textContent === '6',
          undefined,
          { timeout: 10_000 },
        );
        assert.deepEqual(pageErrors, []);
      } finally {
        await page.close();
      }
    },
  );
});
