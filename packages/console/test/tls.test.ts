/**
 * The console over TLS (`enable_tls`): served over https, signed in, a query over wss; and the page a
 * browser gets when it asks for the console over plain http on that port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { launchChromium, type Chromium } from '../../client/test/browser/chromium.ts';
import { loadConfig } from '../../server/src/config/config.ts';
import { silentLogger } from '../../server/src/core/logger.ts';
import { startServer, type RustyServer } from '../../server/src/server.ts';
import { freshDataDir } from '../../server/test/helpers/test-server.ts';
import {
  ADMIN_PASSWORD,
  assertAccessible,
  ensureConsoleBuilt,
  runSql,
  screenshot,
  signIn,
} from './helpers.ts';

describe('console over TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-console-tls-'));
  const dataDir = freshDataDir();
  let server: RustyServer;
  let browser: Chromium;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    ensureConsoleBuilt();
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
        '-days',
        '2',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=IP:127.0.0.1,DNS:localhost',
      ],
      { stdio: 'pipe' },
    );
    const config = loadConfig({
      overrides: {
        port: 0,
        data_dir: dataDir,
        admin_password: ADMIN_PASSWORD,
        enable_tls: true,
        tls_cert_path: join(dir, 'cert.pem'),
        tls_key_path: join(dir, 'key.pem'),
      },
    });
    server = await startServer(config, { logger: silentLogger });
    // The certificate is self-signed: the browser is told to accept it, as a user would.
    browser = await launchChromium({ ignoreHTTPSErrors: true });
    page = await browser.context.newPage();
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(e.message));
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('signs in over https and runs a query over wss', async () => {
    assert.match(server.url, /^https:/);
    await signIn(page, `${server.url}/`, 'admin', ADMIN_PASSWORD);
    await runSql(page, "SELECT 'over wss' AS transport");
    await page.getByRole('gridcell', { name: 'over wss' }).waitFor();
    assert.equal(await page.evaluate('location.protocol'), 'https:');
    assert.deepEqual(problems, []);
  });

  test('plain http on the TLS port shows a page that says to use https', async () => {
    await page.goto(`http://127.0.0.1:${server.port}/`);
    await page.getByRole('heading', { name: 'This RustyDB server requires HTTPS' }).waitFor();
    const link = page.getByRole('link', { name: `https://127.0.0.1:${server.port}/` });
    await link.waitFor();
    await assertAccessible(page, 'https-required page');
    await screenshot(page, 'tls-required');
    await link.click();
    await page.getByTestId('user').waitFor();
  });
});
