/**
 * The SQL editor in chromium against a real server: a 100,000-row result streams into the grid
 * with its count and both ends reachable; a long query is cancelled on the server; errors show
 * their code; completion offers the user's tables; the result exports; the history keeps statements.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { RustyDBClient } from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  adminSql,
  runSql,
  screenshot,
  signIn,
  startConsole,
  typeInEditor,
  type ConsoleHarness,
} from './helpers.ts';

describe('console SQL editor', () => {
  let h: ConsoleHarness;
  let page: Page;

  before(async () => {
    h = await startConsole();
    await adminSql(
      h.ts,
      'CREATE TABLE inventory (id INTEGER PRIMARY KEY, item TEXT NOT NULL, quantity INTEGER)',
    );
    page = await h.newPage();
    await signIn(page, h.url, 'admin', ADMIN_PASSWORD);
    await page.getByRole('heading', { name: 'SQL editor' }).waitFor();
  });
  after(() => h?.close());

  test('a 100,000-row query streams into the grid: the count, the first, middle and last rows', async () => {
    // amount mixes fractions with a NULL every 1,000th row: a column of a chunk that is not all numbers.
    await runSql(
      page,
      "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 100000) SELECT x, 'row ' || x AS label, CASE WHEN x % 1000 = 0 THEN NULL ELSE x * 0.5 END AS amount FROM n",
    );
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^done$/ })
      .waitFor({ timeout: 60_000 });
    assert.equal(await page.getByTestId('row-count').textContent(), '100,000 rows');
    const grid = page.getByRole('grid', { name: 'Query result' });
    assert.equal(await grid.getAttribute('aria-rowcount'), '100001');
    await grid.getByRole('gridcell', { name: 'row 1', exact: true }).waitFor();
    await h.checkAccessibility(page, 'SQL editor with a result');
    await screenshot(page, 'sql-editor');
    // The end of the result, by keyboard: the grid takes focus and End scrolls to the bottom.
    await grid.focus();
    await page.keyboard.press('End');
    await grid.getByRole('gridcell', { name: 'row 100000', exact: true }).waitFor();
    await grid.getByRole('gridcell', { name: 'row 1', exact: true }).waitFor({ state: 'detached' });
    // Rows 2,000 and 2,001 lie either side of the console's chunk boundary (2,000 rows a chunk): each
    // shows its own values, in order, whichever chunk it was stored with.
    await page.evaluate("document.querySelector('[role=grid]').scrollTop = 1995 * 24");
    const cells = (n: number) => grid.locator(`[aria-rowindex="${n + 1}"] [role=gridcell]`).allTextContents();
    await grid.getByRole('gridcell', { name: 'row 2001', exact: true }).waitFor();
    assert.deepEqual(await cells(1999), ['1999', 'row 1999', '999.5']);
    assert.deepEqual(await cells(2000), ['2000', 'row 2000', 'NULL']);
    assert.deepEqual(await cells(2001), ['2001', 'row 2001', '1000.5']);
  });

  test('dark mode: the same page is readable (axe colour contrast) and the choice is kept', async () => {
    await page.getByRole('button', { name: 'Switch to dark mode' }).click();
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
    await h.checkAccessibility(page, 'SQL editor in dark mode');
    await screenshot(page, 'sql-editor-dark');
    await page.reload();
    await page.getByTestId('user').waitFor();
    assert.equal(await page.evaluate('document.documentElement.dataset.theme'), 'dark');
    await page.getByRole('button', { name: 'Switch to light mode' }).click();
    await page.getByRole('heading', { name: 'SQL editor' }).waitFor();
  });

  test('Cancel stops a long query on the server, and the next query runs', async () => {
    await runSql(
      page,
      'WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000000000) SELECT count(*) FROM n',
    );
    await page.getByTestId('run-status').filter({ hasText: 'running' }).waitFor();
    await page.getByRole('button', { name: 'Cancel' }).click();
    await page.getByTestId('run-status').filter({ hasText: 'cancelled' }).waitFor({ timeout: 5000 });
    await runSql(page, 'SELECT 42 AS answer');
    await page.getByRole('gridcell', { name: '42', exact: true }).waitFor({ timeout: 10_000 });
  });

  test('an error shows its code; completion offers table names; the history keeps the statement', async () => {
    await runSql(page, 'SELECT * FROM no_such_table');
    const alert = page.getByRole('alert');
    await alert.waitFor();
    assert.match((await alert.textContent()) ?? '', /TABLE_NOT_FOUND|QUERY_ERROR/);

    await typeInEditor(page, /SQL statement/, 'SELECT * FROM inven');
    await page.keyboard.press('Control+Space');
    await page
      .getByRole('option', { name: /inventory/ })
      .first()
      .waitFor();
    await page.keyboard.press('Escape');

    await page.getByRole('button', { name: /History/ }).click();
    await page.getByRole('button', { name: /SELECT \* FROM no_such_table/ }).waitFor();
    await page.getByRole('button', { name: /History/ }).click();
  });

  test('the result exports as CSV and as JSON', async () => {
    await adminSql(
      h.ts,
      "INSERT INTO inventory (item, quantity) VALUES ('bolt, M4', 120), ('nut \"hex\"', NULL)",
    );
    await runSql(page, 'SELECT id, item, quantity FROM inventory ORDER BY id');
    await page
      .getByTestId('run-status')
      .filter({ hasText: /^done$/ })
      .waitFor();
    const [csv] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    assert.equal(
      readFileSync((await csv.path())!, 'utf8'),
      'id,item,quantity\r\n1,"bolt, M4",120\r\n2,"nut ""hex""",\r\n',
    );
    const [json] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export JSON' }).click(),
    ]);
    assert.deepEqual(JSON.parse(readFileSync((await json.path())!, 'utf8')), [
      { id: 1, item: 'bolt, M4', quantity: 120 },
      { id: 2, item: 'nut "hex"', quantity: null },
    ]);
    assert.deepEqual(
      h.problems.filter((p) => !/status of 40\d/.test(p)),
      [],
    );
  });

  test('a table created in the editor is in the table browser at once, and its rows arrive live', async () => {
    await page.goto(`${h.url}#/sql`);
    await runSql(page, 'CREATE TABLE sensors (id INTEGER PRIMARY KEY, place TEXT, reading REAL)');
    await page.getByTestId('run-status').filter({ hasText: /^done/ }).waitFor();
    await page.getByRole('link', { name: 'Tables' }).click();
    await page
      .getByRole('navigation', { name: 'Tables and views' })
      .getByRole('link', { name: 'sensors' })
      .click();
    await page.getByRole('heading', { name: 'sensors', exact: true }).waitFor();
    await page.getByRole('tab', { name: 'Rows' }).click();
    await page.getByRole('switch', { name: 'Live' }).check();
    await page.waitForTimeout(300);
    const other = new RustyDBClient({ url: h.ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    try {
      await other.query("INSERT INTO sensors (place, reading) VALUES ('boiler room', 71.5)");
      await page.locator('tr[data-change="inserted"]', { hasText: 'boiler room' }).waitFor({ timeout: 5000 });
    } finally {
      await other.close();
    }
    await page.getByRole('switch', { name: 'Live' }).uncheck();
  });
});
