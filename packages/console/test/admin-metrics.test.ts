/**
 * Administration and metrics in chromium against a real server: an administrator creates a user and
 * grants SELECT, and that user's open session reads the table at once; sessions and subscriptions
 * can be ended; the audit log filters; the metrics charts gain points; neither page is offered to a
 * user without the privilege.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { RustyDBClient } from '@rustydb/client';
import {
  ADMIN_PASSWORD,
  adminSql,
  eventually,
  runSql,
  screenshot,
  signIn,
  startConsole,
  type ConsoleHarness,
} from './helpers.ts';

async function runSqlPage(page: Page, sql: string): Promise<void> {
  await page.goto(page.url().replace(/#.*$/, '#/sql'));
  await runSql(page, sql);
}

describe('console administration and metrics', () => {
  let h: ConsoleHarness;
  let admin: Page;

  before(async () => {
    h = await startConsole();
    await adminSql(h.ts, 'CREATE TABLE plans (id INTEGER PRIMARY KEY, title TEXT)');
    await adminSql(h.ts, "INSERT INTO plans (title) VALUES ('world domination')");
    admin = await h.newPage();
    admin.on('dialog', (dialog) => void dialog.accept());
    await signIn(admin, h.url, 'admin', ADMIN_PASSWORD);
  });
  after(() => h?.close());

  test('admin creates a user and grants SELECT; the user’s open session reads the table at once', async () => {
    await admin.goto(`${h.url}#/admin/roles`);
    await admin.getByRole('heading', { name: 'Roles and grants' }).waitFor();
    await admin.getByLabel('Role name').fill('analyst');
    await admin.getByRole('button', { name: 'Create role' }).click();
    await admin.getByRole('cell', { name: 'analyst', exact: true }).waitFor();

    await admin.goto(`${h.url}#/admin/users`);
    await admin.getByLabel('User name').fill('ann');
    await admin.getByLabel('Password').fill('ann-password');
    await admin.getByRole('group', { name: 'Roles' }).getByLabel('analyst').check();
    await admin.getByRole('button', { name: 'Create user' }).click();
    await admin.getByRole('cell', { name: 'ann', exact: true }).waitFor();
    await h.checkAccessibility(admin, 'administration: users');
    await screenshot(admin, 'admin-users');

    const ann = await h.newPage();
    await signIn(ann, h.url, 'ann', 'ann-password');
    assert.equal(await ann.getByRole('link', { name: 'Administration' }).count(), 0);
    assert.equal(await ann.getByRole('link', { name: 'Metrics' }).count(), 0);
    await runSqlPage(ann, 'SELECT title FROM plans');
    await ann.getByRole('alert').filter({ hasText: 'PERMISSION_DENIED' }).waitFor();

    await admin.goto(`${h.url}#/admin/roles`);
    await admin.getByLabel('To role').selectOption('analyst');
    await admin.getByLabel('Privilege', { exact: true }).selectOption('SELECT');
    await admin.getByLabel('On table').fill('plans');
    await admin.getByRole('button', { name: 'Grant', exact: true }).click();
    await admin.getByRole('button', { name: 'Revoke SELECT on plans from analyst' }).waitFor();
    await h.checkAccessibility(admin, 'administration: roles');
    await screenshot(admin, 'admin-roles');

    // The same session, without signing in again.
    await ann.keyboard.press('ControlOrMeta+Enter');
    const editor = ann.getByRole('textbox', { name: /SQL statement/ });
    await editor.click();
    await ann.keyboard.press('ControlOrMeta+Enter');
    await ann.getByRole('gridcell', { name: 'world domination' }).waitFor({ timeout: 5000 });
    await ann.close();
  });

  test('sessions and subscriptions are listed with a kill button; the audit log filters', async () => {
    const other = new RustyDBClient({ url: h.ts.server.url, username: 'admin', password: ADMIN_PASSWORD });
    try {
      const sub = other.subscribe('plans');
      await sub.ready();
      await admin.goto(`${h.url}#/admin/subscriptions`);
      await admin.getByRole('button', { name: 'Kill subscription to plans of admin' }).click();
      await admin
        .getByRole('button', { name: 'Kill subscription to plans of admin' })
        .waitFor({ state: 'detached' });
      await admin.goto(`${h.url}#/admin/sessions`);
      await admin.getByRole('heading', { name: 'Open sessions' }).waitFor();
      await admin
        .getByRole('button', { name: /^Kill session/ })
        .first()
        .waitFor();
      // Each session with the node holding it (several nodes on one PostgreSQL database list them all).
      const listed = await h.ts.http('/api/v1/sessions');
      const node = (listed.body as { data: { node: string } }).data.node;
      const sessions = admin.getByRole('table', { name: /Sessions/ });
      await sessions.getByRole('columnheader', { name: 'Node' }).waitFor();
      assert.ok((await sessions.getByRole('cell', { name: node, exact: true }).count()) >= 2);
      await h.checkAccessibility(admin, 'administration: sessions');
      await screenshot(admin, 'admin-sessions');
    } finally {
      await other.close();
    }
    await admin.goto(`${h.url}#/admin/audit`);
    await admin.getByLabel('Events').fill('user.create');
    await admin.getByRole('button', { name: 'Apply' }).click();
    const log = admin.getByRole('table', { name: /Audit records/ });
    await eventually(async () => {
      const events = await log.locator('tbody tr td:nth-child(2)').allTextContents();
      return events.length > 0 && events.every((e) => e === 'user.create');
    }, 'only user.create records');
    await h.checkAccessibility(admin, 'administration: audit log');
    await screenshot(admin, 'admin-audit');
  });

  test('the metrics charts gain points as samples arrive', async () => {
    await admin.goto(`${h.url}#/metrics`);
    const cpu = admin.getByTestId('chart-cpu');
    await cpu.waitFor();
    // Polled from here: the page's CSP (rightly) refuses the eval behind waitForFunction.
    const points = async (): Promise<number> => Number(await cpu.getAttribute('data-points'));
    await eventually(async () => (await points()) >= 2, 'two samples');
    const before = await points();
    await eventually(async () => (await points()) > before, 'a further sample');
    assert.equal(await admin.locator('[data-testid="chart-cpu"] canvas').count(), 1);
    await admin.getByTestId('chart-connections').getByText('/api/v1/metrics/stream').waitFor();
    await admin.getByLabel('Window', { exact: true }).selectOption({ label: '5 min' });
    await h.checkAccessibility(admin, 'metrics');
    await screenshot(admin, 'metrics');
    assert.deepEqual(
      h.problems.filter((p) => !/status of 40\d/.test(p)),
      [],
    );
  });
});
