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
    // Give the subscription its acknowledgement before the other client writes.
    await admin.waitForTimeout(300);
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
