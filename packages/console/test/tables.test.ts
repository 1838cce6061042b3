/**
 * The table browser in chromium against a real server: schema, paging, sorting and filtering;
 * insert, edit and delete for a user who may; a read-only user sees no edit controls and why; a
 * refusal that comes anyway is shown; with Live on, a row inserted by another client appears within
 * a second, highlighted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { RustyDBClient } from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  adminSql,
  createUser,
  screenshot,
  signIn,
  startConsole,
  type ConsoleHarness,
} from './helpers.ts';

async function openTable(page: Page, url: string, table: string): Promise<void> {
  await page.goto(`${url}#/tables/${table}`);
  await page.getByRole('heading', { name: table, exact: true }).waitFor();
  await page.getByRole('tab', { name: 'Rows' }).click();
  await page
    .getByTestId('row-range')
    .filter({ hasText: /rows|no rows/ })
    .waitFor();
}

describe('console tables', () => {
  let h: ConsoleHarness;
  let admin: Page;

  before(async () => {
    h = await startConsole();
    await adminSql(
      h.ts,
      'CREATE TABLE parts (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, weight REAL, maker_id INTEGER REFERENCES makers(id))',
    );
    await adminSql(h.ts, 'CREATE TABLE makers (id INTEGER PRIMARY KEY, name TEXT)');
    await adminSql(h.ts, 'CREATE INDEX parts_weight ON parts (weight)');
    await adminSql(h.ts, 'CREATE VIEW heavy_parts AS SELECT id, name FROM parts WHERE weight > 50');
    await adminSql(
      h.ts,
      "INSERT INTO parts (name, weight) SELECT 'part ' || value, value * 1.5 FROM generate_series(1, 60)",
    ).catch(async () => {
      // Without generate_series: a recursive CTE.
      await adminSql(
        h.ts,
        "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 60) INSERT INTO parts (name, weight) SELECT 'part ' || x, x * 1.5 FROM n",
      );
    });
    admin = await h.newPage();
    admin.on('dialog', (dialog) => void dialog.accept());
    await signIn(admin, h.url, 'admin', ADMIN_PASSWORD);
  });
  after(() => h?.close());

  test('the schema: columns, types, keys, indexes and foreign keys', async () => {
    await openTable(admin, h.url, 'parts');
    await admin.getByRole('tab', { name: 'Schema' }).click();
    const columns = admin.getByRole('table').first();
    await columns.getByRole('cell', { name: 'weight', exact: true }).waitFor();
    assert.match((await columns.textContent()) ?? '', /idINTEGERyes/);
    await admin.getByRole('cell', { name: 'parts_weight' }).waitFor();
    await admin.getByRole('cell', { name: 'UNIQUE constraint' }).waitFor();
    await admin.getByRole('link', { name: 'makers' }).first().waitFor();
    await h.checkAccessibility(admin, 'table schema');
    await screenshot(admin, 'tables-schema');
  });

  test('rows a page at a time, sorted and filtered on the server', async () => {
    await openTable(admin, h.url, 'parts');
    assert.equal(await admin.getByTestId('row-range').textContent(), 'rows 1–25 of 60');
    await admin.getByRole('button', { name: 'Next page' }).click();
    await admin.getByTestId('row-range').filter({ hasText: 'rows 26–50 of 60' }).waitFor();
    await admin.getByRole('button', { name: /^weight/ }).click();
    await admin.getByRole('button', { name: /^weight/ }).click();
    await admin.getByRole('cell', { name: 'part 35', exact: true }).waitFor();
    await admin.getByLabel('Column').selectOption('name');
    await admin.getByLabel('Condition').selectOption('contains');
    await admin.getByLabel('Value').fill('part 5');
    await admin.getByRole('button', { name: 'Filter', exact: true }).click();
    await admin.getByTestId('row-range').filter({ hasText: 'rows 1–11 of 11' }).waitFor();
    await h.checkAccessibility(admin, 'table rows');
    await screenshot(admin, 'tables-rows');
  });

  test('insert, edit and delete a row; with Live on, another client’s insert appears within a second', async () => {
    await openTable(admin, h.url, 'makers');
    await admin.getByRole('button', { name: 'Insert row' }).click();
    const dialog = admin.getByRole('dialog');
    await dialog.getByLabel('name', { exact: true }).fill('Acme');
    await dialog.getByRole('button', { name: 'Insert' }).click();
    await admin.getByRole('cell', { name: 'Acme', exact: true }).waitFor();
    await admin.getByRole('button', { name: 'Edit' }).first().click();
    await dialog.getByLabel('name', { exact: true }).fill('Acme Corp');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await admin.getByRole('cell', { name: 'Acme Corp', exact: true }).waitFor();

    await admin.getByRole('switch', { name: 'Live' }).check();
    // Changes are sure to be shown once the server has acknowledged the subscription.
    await admin.getByRole('status').filter({ hasText: 'Following changes' }).waitFor();
    const other = new RustyDBClient({ url: h.ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    try {
      const started = Date.now();
      await other.query("INSERT INTO makers (name) VALUES ('Globex')");
      const inserted = admin.locator('tr[data-change="inserted"]', { hasText: 'Globex' });
      await inserted.waitFor({ timeout: 1000 });
      assert.ok(Date.now() - started < 1000);
      await screenshot(admin, 'tables-live');
      await other.query("UPDATE makers SET name = 'Globex Inc' WHERE name = 'Globex'");
      await admin.locator('tr[data-change="updated"]', { hasText: 'Globex Inc' }).waitFor({ timeout: 1000 });
    } finally {
      await other.close();
    }
    await admin
      .getByRole('row', { name: /Acme Corp/ })
      .getByRole('button', { name: 'Delete' })
      .click();
    await admin.locator('tr[data-change="deleted"]', { hasText: 'Acme Corp' }).waitFor({ timeout: 2000 });
    await admin.getByRole('switch', { name: 'Live' }).uncheck();
  });

  test('a table created elsewhere after the schema was loaded opens by its address', async () => {
    // The admin's page loaded its catalog in the tests above; the table comes from another client.
    await adminSql(h.ts, 'CREATE TABLE gadgets (id INTEGER PRIMARY KEY, label TEXT)');
    await openTable(admin, h.url, 'gadgets');
    await admin.getByRole('navigation', { name: 'Tables and views' }).getByText('gadgets').waitFor();
  });

  test('a table created while the catalog was loading opens by its address', async () => {
    // A reload's schema request is answered, then held while the table is created: that load's
    // catalog predates the table. Opening the table asks for a reload while it is still under way.
    let answered!: () => void;
    const schemaAnswered = new Promise<void>((resolve) => (answered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await admin.route(
      '**/api/v1/schema*',
      async (route) => {
        const response = await route.fetch();
        answered();
        await released;
        await route.fulfill({ response });
      },
      { times: 1 },
    );
    await admin.getByRole('button', { name: 'Reload schema' }).click();
    await schemaAnswered;
    await adminSql(h.ts, 'CREATE TABLE widgets (id INTEGER PRIMARY KEY, label TEXT)');
    await admin.goto(`${h.url}#/tables/widgets`);
    // Time for the page to ask for its reload (after its next frame) before the held load ends.
    await admin.waitForTimeout(500);
    release();
    await admin.getByRole('heading', { name: 'widgets', exact: true }).waitFor({ timeout: 10_000 });
  });

  test('a read-only user has no edit controls and is told why', async () => {
    await createUser(h.ts, 'reader', 'reader-password', ['readonly']);
    const page = await h.newPage();
    await signIn(page, h.url, 'reader', 'reader-password');
    await openTable(page, h.url, 'parts');
    const reason = page.getByTestId('read-only-reason');
    await reason.waitFor();
    assert.match((await reason.textContent()) ?? '', /reader \(roles: readonly\).*SELECT/);
    assert.equal(await page.getByRole('button', { name: 'Insert row' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0);
    await h.checkAccessibility(page, 'read-only table');
    await screenshot(page, 'tables-read-only');
    // The schema as this user may see it: indexes and foreign keys too, and the views it may read.
    await page.getByRole('tab', { name: 'Schema' }).click();
    await page.getByRole('cell', { name: 'parts_weight' }).waitFor();
    await page.getByRole('link', { name: 'makers' }).first().waitFor();
    await page.getByRole('navigation', { name: 'Tables and views' }).getByText('heavy_parts').waitFor();
    await page.close();
  });

  test('a refusal that comes anyway (the grant was revoked meanwhile) is shown', async () => {
    await adminSql(h.ts, 'CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)');
    await h.ts.http('/api/v1/roles', {
      body: {
        name: 'clerk',
        grants: [
          { privilege: 'SELECT', table: 'notes' },
          { privilege: 'INSERT', table: 'notes' },
        ],
      },
    });
    await createUser(h.ts, 'clerk', 'clerk-password', ['clerk']);
    const page = await h.newPage();
    await signIn(page, h.url, 'clerk', 'clerk-password');
    await openTable(page, h.url, 'notes');
    await page.getByRole('button', { name: 'Insert row' }).click();
    await page.getByRole('dialog').getByLabel('body', { exact: true }).fill('call Initech');
    const revoked = await h.ts.http('/api/v1/roles/clerk/grants', {
      method: 'DELETE',
      body: { privilege: 'INSERT', table: 'notes' },
    });
    assert.equal(revoked.status, 200);
    await page.getByRole('dialog').getByRole('button', { name: 'Insert' }).click();
    const alert = page.getByRole('dialog').getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /PERMISSION_DENIED.*INSERT on table notes/);
    await page.close();
    assert.deepEqual(
      h.problems.filter((p) => !/status of 40\d/.test(p)),
      [],
    );
  });
});

describe('console tables: the catalog still loading as the page renders', () => {
  let h: ConsoleHarness;

  before(async () => {
    // A harness of its own: the page clock held below is the whole browser context's.
    h = await startConsole();
    await adminSql(h.ts, 'CREATE TABLE crates (id INTEGER PRIMARY KEY, label TEXT)');
  });
  after(() => h?.close());

  test('a table opened while the catalog loads shows once the load has ended', async () => {
    // A page's effects run after the browser paints, a frame or more after its render (much later on
    // a busy machine). A catalog load that ended between the table page's render and its effect was
    // heard by nobody: the page stayed without its table. Here the load is made to end there for sure:
    // the first catalog load (the SQL editor's, after signing in) is held at its schema request, the
    // table page's code at its download; the page's clock (timers, animation frames, so its effects) is
    // held from the table page's render until the load has ended.
    const page = await h.newPage();
    await page.clock.install();
    const gate = (pattern: string) => {
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let reached!: () => void;
      const reachedIt = new Promise<void>((resolve) => (reached = resolve));
      return {
        route: page.route(pattern, async (route) => {
          reached();
          await released;
          await route.continue();
        }),
        reached: reachedIt,
        release,
      };
    };
    const schema = gate('**/api/v1/schema*');
    const pageCode = gate('**/assets/tables-page-*.js');
    await Promise.all([schema.route, pageCode.route]);
    // The page's queries over its socket, and which of them are still unanswered.
    const unanswered = new Set<string>();
    let queries = 0;
    let lastFrame = Date.now();
    page.on('websocket', (ws) => {
      ws.on('framesent', ({ payload }) => {
        const message = JSON.parse(String(payload)) as { type: string; id?: string };
        if (message.type === 'query' && message.id) {
          queries++;
          unanswered.add(message.id);
        }
        lastFrame = Date.now();
      });
      ws.on('framereceived', ({ payload }) => {
        const message = JSON.parse(String(payload)) as {
          type: string;
          id?: string;
          payload?: { has_more?: boolean };
        };
        if (message.id && (message.type === 'error' || message.payload?.has_more === false)) {
          unanswered.delete(message.id);
        }
        lastFrame = Date.now();
      });
    });
    await signIn(page, h.url, 'admin', ADMIN_PASSWORD);
    await schema.reached;
    await page.goto(`${h.url}#/tables/crates`);
    await pageCode.reached;
    await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 100);
    pageCode.release();
    await page.getByRole('heading', { name: 'Tables', level: 1 }).waitFor();
    const asked = queries;
    schema.release();
    // The rest of the load is a few queries over the page's socket: it has ended once they are all
    // answered and nothing has moved for a while.
    const deadline = Date.now() + 20_000;
    while (queries === asked || unanswered.size > 0 || Date.now() - lastFrame < 500) {
      assert.ok(Date.now() < deadline, 'the catalog load did not end');
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await page.clock.resume();
    await page.getByRole('heading', { name: 'crates', exact: true }).waitFor({ timeout: 10_000 });
    await page.close();
  });
});
