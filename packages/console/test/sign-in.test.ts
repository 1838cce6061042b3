/**
 * Signing in and out of the console served by the server itself: the page and its headers, the
 * sign-in form, the lock-out page after too many failures, a reload keeping the tab's session, and
 * sign-out revoking the token on the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ADMIN_PASSWORD, runSql, screenshot, signIn, startConsole, type ConsoleHarness } from './helpers.ts';

describe('console sign-in', () => {
  let h: ConsoleHarness;

  before(async () => {
    // The first lock-out lasts a minute: long enough to read its countdown on a busy machine.
    h = await startConsole({ login_max_attempts: 3, login_backoff_base: 60 });
  });
  after(() => h?.close());

  test('/ serves the console with a strict Content-Security-Policy, its assets cached and gzipped', async () => {
    const res = await fetch(h.url, { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(res.headers.get('x-frame-options'), 'DENY');
    const html = await res.text();
    const nonce = /'nonce-([A-Za-z0-9+/=]+)'/.exec(csp)?.[1];
    assert.ok(nonce && html.includes(`content="${nonce}"`), 'the page carries its response nonce');
    const script = /<script type="module" crossorigin src="([^"]+)"/.exec(html)?.[1];
    assert.ok(script, html);
    assert.doesNotMatch(html, /<script>|<script type="module">|style=/, 'no inline script or style');
    const asset = await fetch(new URL(script, h.url), { headers: { 'accept-encoding': 'gzip' } });
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('cache-control') ?? '', /immutable/);
    assert.equal(asset.headers.get('content-encoding'), 'gzip');
    assert.equal((await fetch(new URL('/assets/nope.js', h.url))).status, 404);
  });

  test('sign in, reload keeps the session for the tab, sign out revokes the token', async () => {
    const page = await h.newPage();
    await page.goto(h.url);
    await page.getByRole('heading', { name: 'Sign in to RustyDB' }).waitFor();
    await h.checkAccessibility(page, 'sign-in page');
    await screenshot(page, 'sign-in');

    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'wrong' }).waitFor();

    await signIn(page, h.url, 'admin', ADMIN_PASSWORD);
    const saved = await page.evaluate<string>("sessionStorage.getItem('rustydb.console.token')");
    const token = (JSON.parse(saved) as { token: string }).token;
    assert.ok(token);
    await page.reload();
    await page.getByTestId('user').waitFor();
    assert.equal(await page.getByTestId('user').textContent(), 'admin');

    // A slow network: the sign-in page must not come back before the server has revoked the token.
    await page.route('**/api/v1/auth/logout', async (route) => {
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await route.continue();
    });
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in to RustyDB' }).waitFor();
    assert.equal(await page.evaluate("sessionStorage.getItem('rustydb.console.token')"), null);
    const res = await h.ts.http('/api/v1/auth/me', { token });
    assert.equal(res.status, 401, 'the signed-out token is refused');
    // The browser itself logs the refused wrong password (401); nothing else may appear.
    assert.deepEqual(
      h.problems.filter((p) => !/status of 401/.test(p)),
      [],
    );
    await page.close();
  });

  test('too many failed sign-ins show the lock-out page with the time left', async () => {
    const page = await h.newPage();
    await page.goto(h.url);
    const locked = page.getByRole('heading', { name: 'Sign-in locked for now' });
    for (let i = 0; i < 6 && !(await locked.isVisible()); i++) {
      await page.getByLabel('User name').fill('nobody');
      await page.getByLabel('Password').fill(`guess-${i}`);
      await page.getByRole('button', { name: 'Sign in' }).click();
      // The answer has come when the button is back (or the page changed to the lock-out page).
      await Promise.race([
        locked.waitFor(),
        page.getByRole('button', { name: 'Sign in', disabled: false }).waitFor(),
      ]);
    }
    await page.getByRole('heading', { name: 'Sign-in locked for now' }).waitFor();
    assert.match((await page.locator('main').textContent()) ?? '', /try again in \d+ s/);
    await h.checkAccessibility(page, 'lock-out page');
    await screenshot(page, 'locked-out');
    // The browser logs the 401 and 429 answers themselves as console errors; nothing else may appear.
    const unexpected = h.problems.filter((p) => !/status of (401|429)/.test(p));
    assert.deepEqual(unexpected, []);
    await page.close();
  });
});

describe('console token renewal', () => {
  let h: ConsoleHarness;

  before(async () => {
    // Tokens that live 4 seconds: the console must renew them on its own, several times.
    h = await startConsole({ token_ttl: 4 });
  });
  after(() => h?.close());

  test('the token is renewed before it expires and kept for the tab; the session goes on', async () => {
    const page = await h.newPage();
    await signIn(page, h.url, 'admin', ADMIN_PASSWORD);
    const savedToken = async (): Promise<string> =>
      (
        JSON.parse(await page.evaluate<string>("sessionStorage.getItem('rustydb.console.token')")) as {
          token: string;
        }
      ).token;
    const first = await savedToken();
    await page.waitForTimeout(9000);
    assert.notEqual(await savedToken(), first, 'a renewed token replaced the first in the tab');
    assert.match((await page.locator('header').textContent()) ?? '', /connected/);
    await runSql(page, "SELECT 'still signed in' AS state");
    await page.getByRole('gridcell', { name: 'still signed in' }).waitFor();
    // A reload picks up the renewed token, not the expired first one.
    await page.reload();
    await page.getByTestId('user').waitFor();
    assert.deepEqual(
      h.problems.filter((p) => !/status of 40\d/.test(p)),
      [],
    );
    await page.close();
  });
});
