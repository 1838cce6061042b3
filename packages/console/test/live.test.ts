/**
 * The live pages in chromium against a real server: the realtime inspector shows a table
 * subscription's events with their sequences and, after its connection is dropped, resumes without
 * losing the change committed meanwhile; documents are inserted (invalid JSON refused before it is
 * sent), found with a filter, projection and sort, edited and watched live; the GraphQL explorer runs
 * a query, shows the schema and runs a subscription over graphql-ws that shows an event.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { RustyDBClient } from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  adminSql,
  screenshot,
  signIn,
  startConsole,
  typeInEditor,
  type ConsoleHarness,
} from './helpers.ts';

describe('console live pages', () => {
  let h: ConsoleHarness;
  let page: Page;
  let other: RustyDBClient;

  before(async () => {
    h = await startConsole();
    await adminSql(h.ts, 'CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, total REAL)');
    other = new RustyDBClient({ url: h.ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    page = await h.newPage();
    page.on('dialog', (dialog) => void dialog.accept());
    await signIn(page, h.url, 'admin', ADMIN_PASSWORD);
  });
  after(async () => {
    await other?.close();
    await h?.close();
  });

  test('the realtime inspector logs events with sequences and resumes after a dropped connection', async () => {
    await page.goto(`${h.url}#/realtime`);
    await page.getByRole('heading', { name: 'Realtime inspector' }).waitFor();
    await page.getByLabel('Table', { exact: true }).selectOption('orders');
    await page.getByRole('button', { name: 'Start' }).click();
    const log = page.getByRole('table', { name: 'Events, newest first' });
    await log.locator('tr[data-event="subscribed"]').waitFor();
    await other.query("INSERT INTO orders (customer, total) VALUES ('Okafor', 18)");
    await log.locator('tr[data-event="insert"]', { hasText: 'Okafor' }).waitFor();

    await page.getByRole('button', { name: 'Drop connection' }).click();
    await log.locator('tr[data-event="disconnected"]').waitFor();
    // Committed while the inspector is away.
    await other.query("INSERT INTO orders (customer, total) VALUES ('Lindqvist', 42)");
    await other.query("UPDATE orders SET total = 20 WHERE customer = 'Okafor'");
    await page.getByRole('button', { name: 'Reconnect and resume' }).click();
    await log.locator('tr[data-event="resumed"]').waitFor();
    await log.locator('tr[data-event="insert"]', { hasText: 'Lindqvist' }).waitFor();
    await log.locator('tr[data-event="update"]', { hasText: 'Okafor' }).waitFor();
    // Sequences only grow, and no change is shown twice.
    const changes = await log
      .locator('tr[data-event="insert"], tr[data-event="update"]')
      .evaluateAll((rows) =>
        rows.map((r) => Number((r as unknown as { cells: { textContent: string }[] }).cells[2]!.textContent)),
      );
    assert.equal(changes.length, 3);
    assert.deepEqual(
      [...changes].sort((a, b) => b - a),
      changes,
      'newest first, strictly ordered',
    );
    assert.equal(new Set(changes).size, 3);
    await h.checkAccessibility(page, 'realtime inspector');
    await screenshot(page, 'realtime');
    await page.getByRole('button', { name: 'Stop' }).click();

    await page.getByLabel('Source').selectOption('live');
    await page.getByLabel('Query').fill('SELECT id, customer, total FROM orders');
    await page.getByRole('button', { name: 'Start' }).click();
    await log.locator('tr[data-event="result"]').waitFor();
    await other.query("INSERT INTO orders (customer, total) VALUES ('Sato', 7)");
    await log.locator('tr[data-event="diff"]', { hasText: 'Sato' }).waitFor();
    await page.getByRole('button', { name: 'Stop' }).click();
  });

  test('documents: insert with JSON validation, find with filter, projection and sort, edit, watch live', async () => {
    await page.goto(`${h.url}#/documents`);
    await page.getByLabel('New collection').fill('people');
    await page.getByRole('button', { name: 'Create' }).click();
    await page.getByRole('heading', { name: 'people', exact: true }).waitFor();

    await page.getByRole('button', { name: 'Insert document' }).click();
    await page.getByLabel('New document (JSON)').fill('{"name": "Ann", age: 31}');
    await page.getByRole('button', { name: 'Insert', exact: true }).click();
    await page.getByRole('alert').filter({ hasText: 'not valid JSON' }).waitFor();
    await page.getByLabel('New document (JSON)').fill('{"_id": "ann", "name": "Ann", "age": 31}');
    await page.getByRole('button', { name: 'Insert', exact: true }).click();
    await page.getByRole('article', { name: 'Document "ann"' }).waitFor();

    await page.getByRole('switch', { name: 'Watch live' }).check();
    await page.getByText('Watching; no change yet.').waitFor();
    await other.request('/api/v1/documents/collections/people/bulk-insert', {
      body: {
        documents: [
          { _id: 'bob', name: 'Bob', age: 25 },
          { _id: 'cid', name: 'Cid', age: 40 },
        ],
      },
    });
    await page
      .getByTestId('doc-changes')
      .getByText(/insert "cid"/)
      .waitFor();
    await page.getByTestId('doc-count').filter({ hasText: '3 shown of 3' }).waitFor();

    await page.getByLabel('Filter').fill('{"age": {"$gte": 30}}');
    await page.getByLabel('Projection').fill('{"name": 1, "_id": 0}');
    await page.getByLabel('Sort').fill('{"age": -1}');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByTestId('doc-count').filter({ hasText: '2 shown of 2' }).waitFor();
    const shown = await page.locator('.docs-list pre').allTextContents();
    assert.deepEqual(
      shown.map((t) => JSON.parse(t)),
      [{ name: 'Cid' }, { name: 'Ann' }],
    );

    await page.getByLabel('Filter').fill('{"_id": "ann"}');
    await page.getByLabel('Projection').fill('');
    await page.getByRole('button', { name: 'Find' }).click();
    await page.getByRole('article', { name: 'Document "ann"' }).getByRole('button', { name: 'Edit' }).click();
    await page
      .getByRole('textbox', { name: 'Document "ann" (JSON)' })
      .fill('{"_id": "ann", "name": "Ann", "age": 32}');
    await page.getByRole('button', { name: 'Save document' }).click();
    await page
      .getByTestId('doc-changes')
      .getByText(/update "ann"|replace "ann"/)
      .waitFor();
    await page.getByRole('article', { name: 'Document "ann"' }).getByText('"age": 32').waitFor();
    await h.checkAccessibility(page, 'documents');
    await screenshot(page, 'documents');
    await page.getByRole('switch', { name: 'Watch live' }).uncheck();
  });

  test('documents: an older find that answers late never replaces a newer find', async () => {
    // The collection's first find (made as its page opens) is held back until the user's filtered find
    // has been answered; a live watch makes such overlapping finds at every change.
    await other.request('/api/v1/documents/collections', { body: { name: 'late' } });
    await other.request('/api/v1/documents/collections/late/bulk-insert', {
      body: {
        documents: [
          { _id: 'a', n: 1 },
          { _id: 'b', n: 2 },
          { _id: 'c', n: 3 },
        ],
      },
    });
    let releaseFirst!: () => void;
    const firstHeld = new Promise<void>((resolve) => (releaseFirst = resolve));
    let finds = 0;
    await page.route('**/collections/late/find', async (route) => {
      if (++finds === 1) await firstHeld;
      await route.continue();
    });
    try {
      await page.goto(`${h.url}#/documents/late`);
      await page.getByRole('heading', { name: 'late', exact: true }).waitFor();
      await page.getByLabel('Filter').fill('{"n": 2}');
      await page.getByRole('button', { name: 'Find' }).click();
      await page.getByTestId('doc-count').filter({ hasText: '1 shown of 1' }).waitFor();
      const lateAnswer = page.waitForResponse(
        (response) =>
          response.url().endsWith('/collections/late/find') &&
          !response.request().postData()?.includes('filter'),
      );
      releaseFirst();
      await lateAnswer;
      // Let the page handle the late answer before looking.
      await page.waitForTimeout(200);
      assert.equal(await page.getByTestId('doc-count').textContent(), '1 shown of 1');
      assert.equal(finds, 2);
    } finally {
      releaseFirst();
      await page.unroute('**/collections/late/find');
    }
  });

  test('the GraphQL editor highlights, completes and checks operations against the user’s schema', async () => {
    await page.goto(`${h.url}#/graphql`);
    await page.getByRole('paragraph').getByRole('button', { name: 'Query', exact: true }).waitFor();
    const editor = page.locator('.cm-content').first();
    await typeInEditor(page, /GraphQL operation/, 'query Recent { ord');
    await page.keyboard.press('Control+Space');
    // The schema's query fields are offered; choosing one puts it in the operation.
    await page.getByRole('option', { name: /^orders\[/ }).click();
    await editor.filter({ hasText: /query Recent \{ orders/ }).waitFor({ timeout: 5000 });
    // Keywords are styled tokens (a span of their own), not plain text.
    await editor
      .locator('span', { hasText: /^query$/ })
      .first()
      .waitFor();
    // A field the schema does not have is marked as an error before anything is sent.
    await typeInEditor(page, /GraphQL operation/, '{ orders { no_such_column } }');
    await page.locator('.cm-lintRange-error').first().waitFor();
  });

  test('the GraphQL explorer runs a query, documents the schema and shows a subscription event', async () => {
    await page.goto(`${h.url}#/graphql`);
    await page.getByRole('heading', { name: 'Schema' }).waitFor();
    await page.getByRole('paragraph').getByRole('button', { name: 'Subscription', exact: true }).click();
    await page
      .getByRole('article', { name: 'Type Subscription' })
      .getByText(/^tableChanges\(table: TableName/)
      .waitFor();

    await typeInEditor(page, /GraphQL operation/, '{ orders(orderBy: [{ id: ASC }]) { customer total } }');
    await page.keyboard.press('ControlOrMeta+Enter');
    await page.getByTestId('graphql-result').getByText('Okafor').waitFor();

    await typeInEditor(
      page,
      /GraphQL operation/,
      'subscription { tableChanges(table: orders) { changeType row sequence } }',
    );
    await page.getByRole('button', { name: 'Run (Ctrl+Enter)' }).click();
    await page.getByTestId('subscription-status').filter({ hasText: 'subscribed' }).waitFor();
    const events = page.getByRole('table', { name: 'Subscription events, newest first' });
    // The subscription starts on the server a moment after the page asks: insert until one arrives.
    for (let i = 0; i < 20 && (await events.getByText('GraphQL-buyer').count()) === 0; i++) {
      await other.query("INSERT INTO orders (customer, total) VALUES ('GraphQL-buyer', 1)");
      await page.waitForTimeout(250);
    }
    await events
      .getByText(/INSERT.*GraphQL-buyer/)
      .first()
      .waitFor();
    await h.checkAccessibility(page, 'GraphQL explorer');
    await screenshot(page, 'graphql');
    await page.getByRole('button', { name: 'Stop subscription' }).click();
    assert.deepEqual(
      h.problems.filter((p) => !/status of 40\d/.test(p)),
      [],
    );
  });
});
