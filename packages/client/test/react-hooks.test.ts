/**
 * The React hooks in chromium against the real server (page: browser/hooks-app.ts, in StrictMode):
 * disabled hooks are idle and subscribe to nothing; useLiveQuery and useQuery({ live }) follow the
 * server's diffs; useSubscription keeps an ordered, limited view with one render per burst of changes,
 * not one per change; useWatch keeps the documents matching a filter; the live hooks come back after
 * the client is closed and opened again, and within about a second of a restarted server (the default
 * retry policy).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { ADMIN_PASSWORD, RestartableServer, eventually, fixture } from './helpers.ts';
import { WebServer } from './browser/web-server.ts';
import { bundlePage, type PageBundle } from './browser/page-bundle.ts';
import { launchChromium, type Chromium } from './browser/chromium.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

/** What the page shows in the list `#id`: its status and its items as `key:text`. */
async function shown(page: Page, id: string): Promise<{ status: string; items: string[] }> {
  return page.$eval(`#${id}`, (el) => {
    const element = el as unknown as {
      dataset: Record<string, string>;
      querySelectorAll(s: string): { dataset: Record<string, string>; textContent: string | null }[];
    };
    return {
      status: element.dataset.status ?? '',
      items: [...element.querySelectorAll('li')].map((li) => `${li.dataset.key}:${li.textContent}`),
    };
  });
}

async function text(page: Page, selector: string): Promise<string> {
  return (await page.textContent(selector)) ?? '';
}

async function renders(page: Page, name: string): Promise<number> {
  return page.evaluate(
    (n) => (globalThis as unknown as { renders: Record<string, number> }).renders[n] ?? 0,
    name,
  );
}

describe('React hooks in chromium', () => {
  let server: RestartableServer;
  let web: WebServer;
  let browser: Chromium;
  let context: BrowserContext;
  let bundle: PageBundle | undefined;

  const open = async (name: string): Promise<Page> => {
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (err) => errors.push(err.message));
    (page as unknown as { errors: string[] }).errors = errors;
    await page.goto(`${web.url}/page/index.html?case=${name}&password=${encodeURIComponent(ADMIN_PASSWORD)}`);
    return page;
  };
  const pageErrors = (page: Page): string[] => (page as unknown as { errors: string[] }).errors;

  /** The rows of `items` as the page lists them (`id:name`), in id order. */
  const storedItems = async (): Promise<string[]> =>
    (await fixture(server, 'SELECT id, name FROM items ORDER BY id')).rows.map(
      ([id, name]) => `${id}:${name}`,
    );

  before(async () => {
    bundle = await bundlePage(join(here, 'browser/hooks-app.ts'));
    server = await RestartableServer.start({ enable_rate_limiting: false });
    await fixture(server, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)');
    await fixture(server, "INSERT INTO items (name) VALUES ('pen'), ('book'), ('cup')");
    const created = await server.ts.http('/api/v1/documents/collections', { body: { name: 'notes' } });
    assert.equal(created.status, 201);
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

  test(
    'disabled hooks report idle and subscribe to nothing; enabled, they load',
    { timeout: 60_000 },
    async () => {
      const page = await open('idle');
      try {
        await eventually(async () => (await text(page, '#state')) === 'open', 'the client to connect');
        // Time enough for a subscription to have been made, were one made.
        await new Promise((resolve) => setTimeout(resolve, 500));
        for (const id of ['sub', 'live', 'query', 'watch'])
          assert.equal((await shown(page, id)).status, 'idle', id);
        const subscriptions = await server.ts.http('/api/v1/subscriptions', { method: 'GET' });
        assert.deepEqual(
          (subscriptions.body as { data: { subscriptions: unknown[] } }).data.subscriptions,
          [],
        );

        await page.click('#enable');
        await eventually(
          async () =>
            (await shown(page, 'sub')).status === 'active' &&
            (await shown(page, 'live')).status === 'active' &&
            (await shown(page, 'query')).status === 'success' &&
            (await shown(page, 'watch')).status === 'active',
          'every hook enabled',
        );
        assert.deepEqual((await shown(page, 'sub')).items, ['1:pen', '2:book', '3:cup']);
        assert.deepEqual((await shown(page, 'query')).items, ['n:3']);
        assert.deepEqual(pageErrors(page), []);
      } finally {
        await page.close();
      }
    },
  );

  test(
    'useLiveQuery and useQuery({ live: true }) follow the diffs; a plain useQuery changes on refetch',
    { timeout: 60_000 },
    async () => {
      const page = await open('live');
      try {
        await eventually(async () => (await shown(page, 'live')).status === 'active', 'the live query');
        await eventually(async () => (await text(page, '#once-count')) === '3', 'the count, once');
        await fixture(server, "INSERT INTO items (name) VALUES ('lamp')");
        await fixture(server, "UPDATE items SET name = 'pencil' WHERE name = 'pen'");
        await fixture(server, "DELETE FROM items WHERE name = 'book'");
        const expected = await storedItems();
        await eventually(
          async () => JSON.stringify((await shown(page, 'live')).items) === JSON.stringify(expected),
          `the live query to show ${expected.join(', ')}`,
        );
        await eventually(async () => (await text(page, '#live-count')) === '3', 'the live count');
        assert.equal(await text(page, '#once-count'), '3', 'a plain query does not move by itself');
        await fixture(server, "INSERT INTO items (name) VALUES ('desk')");
        await eventually(async () => (await text(page, '#live-count')) === '4', 'the live count again');
        await page.click('#refetch');
        await eventually(async () => (await text(page, '#once-count')) === '4', 'the refetched count');
        assert.deepEqual(pageErrors(page), []);
      } finally {
        await page.close();
      }
    },
  );

  test(
    'useSubscription with order and limit: the first rows in order; changes the view does not show cost no render',
    { timeout: 60_000 },
    async () => {
      const page = await open('ordered');
      try {
        const firstThree = async (): Promise<string[]> =>
          (await fixture(server, 'SELECT id, name FROM items ORDER BY name, id LIMIT 3')).rows.map(
            ([id, name]) => `${id}:${name}`,
          );
        const expectShown = async (what: string): Promise<void> => {
          const expected = await firstThree();
          await eventually(
            async () => JSON.stringify((await shown(page, 'ordered')).items) === JSON.stringify(expected),
            `${what}: ${expected.join(', ')}`,
          );
        };
        await expectShown('at first');
        await fixture(server, "INSERT INTO items (name) VALUES ('apple')");
        await expectShown('after an insert that comes first');
        await fixture(server, "UPDATE items SET name = 'zebra' WHERE name = 'apple'");
        await expectShown('after it moved last');

        // 600 changes beyond the first three, each its own commit and its own message: the hook applies
        // each in O(log n) and the view does not move, so the component has nothing to render.
        const before = await renders(page, 'ordered');
        const name = (i: number): string => `zz${String(i).padStart(3, '0')}`;
        const statements = Array.from({ length: 300 }, (_, i) => [
          { sql: 'INSERT INTO items (name) VALUES (?)', params: [name(i)] },
          { sql: "UPDATE items SET name = name || '!' WHERE name = ?", params: [name(i)] },
        ]).flat();
        for (let at = 0; at < statements.length; at += 100) {
          await server.ts.http('/api/v1/batch', { body: { queries: statements.slice(at, at + 100) } });
        }
        // The last of them, moved to the front, shows that all were applied.
        await fixture(server, "UPDATE items SET name = 'aaa' WHERE name = ?", [`${name(299)}!`]);
        await expectShown('after the burst');
        const spent = (await renders(page, 'ordered')) - before;
        console.log(`# ${spent} renders for 601 changes`);
        // One render for the last change (twice: StrictMode), none for the 600 the view did not show.
        assert.ok(spent <= 6, `${spent} renders for 601 changes`);
        assert.deepEqual(pageErrors(page), []);
      } finally {
        await page.close();
      }
    },
  );

  test('useWatch keeps the documents that match its filter', { timeout: 60_000 }, async () => {
    const docs = '/api/v1/documents/collections/notes';
    await server.ts.http(`${docs}/bulk-insert`, {
      body: {
        documents: [
          { _id: 'a', title: 'alpha', done: false },
          { _id: 'b', title: 'beta', done: true },
          { _id: 'c', title: 'gamma', done: false },
        ],
      },
    });
    const page = await open('notes');
    try {
      const expectNotes = async (expected: string[], what: string): Promise<void> => {
        await eventually(
          async () => JSON.stringify((await shown(page, 'notes')).items.sort()) === JSON.stringify(expected),
          `${what}: ${expected.join(', ')}`,
        ).catch(async (err: Error) => {
          throw new Error(`${err.message}; the page shows ${JSON.stringify(await shown(page, 'notes'))}`);
        });
      };
      await expectNotes(['a:alpha', 'c:gamma'], 'at first');
      assert.equal((await shown(page, 'notes')).status, 'active');
      await server.ts.http(`${docs}/insert`, {
        body: { document: { _id: 'd', title: 'delta', done: false } },
      });
      await server.ts.http(`${docs}/insert`, { body: { document: { _id: 'e', title: 'eps', done: true } } });
      await expectNotes(['a:alpha', 'c:gamma', 'd:delta'], 'after inserts');
      await server.ts.http(`${docs}/update`, {
        body: { filter: { _id: 'a' }, update: { $set: { done: true } } },
      });
      await server.ts.http(`${docs}/update`, {
        body: { filter: { _id: 'b' }, update: { $set: { done: false } } },
      });
      await server.ts.http(`${docs}/update`, {
        body: { filter: { _id: 'c' }, update: { $set: { title: 'g2' } } },
      });
      await expectNotes(['b:beta', 'c:g2', 'd:delta'], 'after updates that leave, enter and stay');
      await server.ts.http(`${docs}/delete`, { body: { filter: { _id: 'd' } } });
      await expectNotes(['b:beta', 'c:g2'], 'after a delete');
      assert.deepEqual(pageErrors(page), []);
    } finally {
      await page.close();
    }
  });

  test(
    'a live table comes back after its client is closed and opened again',
    { timeout: 60_000 },
    async () => {
      const page = await open('reopen');
      try {
        await eventually(async () => (await shown(page, 'items')).status === 'active', 'the live table');
        await page.click('#close');
        await eventually(async () => (await text(page, '#state')) === 'closed', 'the client closed');
        assert.equal((await shown(page, 'items')).status, 'ended');
        await fixture(server, "INSERT INTO items (name) VALUES ('while closed')");
        await page.click('#open');
        const expected = await storedItems();
        await eventually(async () => {
          const now = await shown(page, 'items');
          return now.status === 'active' && JSON.stringify(now.items) === JSON.stringify(expected);
        }, 'the live table back, with the row added while closed');
        assert.deepEqual(pageErrors(page), []);
      } finally {
        await page.close();
      }
    },
  );

  test(
    'with the default retry policy a live table is back within about a second of a restarted server',
    { timeout: 60_000 },
    async () => {
      const page = await open('live');
      try {
        await eventually(async () => (await shown(page, 'live')).status === 'active', 'the live query');
        web.refuse = true;
        await server.restart();
        await eventually(async () => (await text(page, '#state')) === 'reconnecting', 'the page to notice');
        await fixture(server, "INSERT INTO items (name) VALUES ('after restart')");
        const back = performance.now();
        web.refuse = false;
        await eventually(
          async () => (await text(page, '#state')) === 'open',
          'the page to reconnect',
          10_000,
        );
        const recovered = performance.now() - back;
        const expected = await storedItems();
        await eventually(
          async () => JSON.stringify((await shown(page, 'live')).items) === JSON.stringify(expected),
          'the rows after the restart',
        );
        console.log(`# reconnected ${Math.round(recovered)} ms after the server was reachable again`);
        assert.ok(recovered < 2000, `reconnected ${Math.round(recovered)} ms after the server was back`);
        assert.deepEqual(pageErrors(page), []);
      } finally {
        await page.close();
      }
    },
  );
});
