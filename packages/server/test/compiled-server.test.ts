/**
 * The `rustydb` command runs the compiled JavaScript: no TypeScript loader and no `.ts` module in the
 * server process, and the read workers (which run every streamed SELECT) start from the build too.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freshDataDir, login } from './helpers/test-server.ts';
import { cleanEnv, runCli } from './helpers/cli.ts';
import { TestClient } from './helpers/ws-client.ts';

const MODULE_LOG_PRELOAD = pathToFileURL(
  fileURLToPath(new URL('./helpers/module-log/register.mjs', import.meta.url)),
).href;

test(
  'rustydb serve loads only compiled JavaScript, and its read workers answer',
  { timeout: 60_000 },
  async () => {
    const dataDir = freshDataDir();
    const logDir = mkdtempSync(join(tmpdir(), 'rustydb-modules-'));
    const moduleLog = join(logDir, 'modules.txt');
    const cli = runCli(
      ['serve', '--port', '0', '--data-dir', dataDir, '--admin-password', 'compiled-secret'],
      cleanEnv({ NODE_OPTIONS: `--import=${MODULE_LOG_PRELOAD}`, RUSTYDB_MODULE_LOG: moduleLog }),
    );
    let client: TestClient | undefined;
    try {
      const [, baseUrl, wsUrl] = await cli.waitForOutput(/RustyDB listening on (\S+) \(WebSocket (\S+)\)/);
      // The start-up lines end with where the web console is (the console package is built with the rest).
      await cli.waitForOutput(/^Web console: http:\/\/127\.0\.0\.1:\d+\/$/m);
      const res = await login(baseUrl!, 'admin', 'compiled-secret');
      assert.equal(res.status, 200);
      client = await TestClient.connect(
        `${wsUrl}?token=${(res.body as { data: { token: string } }).data.token}`,
      );
      assert.equal((await client.next()).type, 'auth_success');
      // A scan, so it runs on a read worker rather than inline.
      const { rows } = await client.query(
        'WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000) SELECT count(*) FROM n',
      );
      assert.deepEqual(rows, [[5000]]);

      const modules = readFileSync(moduleLog, 'utf8').trim().split('\n');
      const serverModules = modules.filter((url) => url.includes('/packages/server/'));
      assert.ok(
        serverModules.some((url) => url.endsWith('/packages/server/dist/server.js')),
        `the server's modules did not come from dist/:\n${serverModules.join('\n')}`,
      );
      assert.deepEqual(
        modules.filter((url) => /\.[cm]?ts$/.test(url) || /\/node_modules\/(tsx|typescript)\//.test(url)),
        [],
        'TypeScript was loaded',
      );
    } finally {
      client?.terminate();
      cli.kill();
      await cli.exited().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(logDir, { recursive: true, force: true });
    }
  },
);
