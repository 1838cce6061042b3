/** The real `rustydb serve` process: start-up line, graceful shutdown on SIGTERM/SIGINT, invalid configuration. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { freshDataDir, login } from './helpers/test-server.ts';
import { cleanEnv, runCli } from './helpers/cli.ts';
import { TestClient } from './helpers/ws-client.ts';

const LISTENING =
  /RustyDB listening on (http:\/\/127\.0\.0\.1:(\d+)) \(WebSocket (ws:\/\/127\.0\.0\.1:\d+\/api\/v1\/stream)\)/;

async function serveAndStop(signal: 'SIGTERM' | 'SIGINT', generatedPassword: boolean): Promise<void> {
  const dataDir = freshDataDir();
  const args = ['serve', '--port', '0', '--data-dir', dataDir];
  if (!generatedPassword) args.push('--admin-password', 'cli-secret');
  const cli = runCli(args);
  let client: TestClient | undefined;
  try {
    const [, baseUrl, port, wsUrl] = await cli.waitForOutput(LISTENING);
    // --port 0 prints the port actually bound, not 0.
    assert.notEqual(Number(port), 0);
    let password = 'cli-secret';
    if (generatedPassword) {
      const [, printed] = /Created user 'admin' with generated password: (\S+)/.exec(cli.stdout()) ?? [];
      assert.ok(printed, `no generated password in:\n${cli.stdout()}`);
      password = printed;
    }
    const res = await login(baseUrl!, 'admin', password);
    assert.equal(res.status, 200);
    const token = (res.body as { data: { token: string } }).data.token;
    client = await TestClient.connect(`${wsUrl}?token=${token}`);
    assert.equal((await client.next()).type, 'auth_success');
    const { rows } = await client.query('SELECT 6 * 7');
    assert.deepEqual(rows, [[42]]);

    cli.child.kill(signal);
    const closed = await client.closed(5000);
    assert.equal(closed.code, 1001);
    const exit = await cli.exited(10_000);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.match(cli.stdout(), new RegExp(`${signal} received`));
  } finally {
    client?.terminate();
    cli.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

// Each test spawns its own process on its own port and data directory: they run side by side.
describe('rustydb CLI', { concurrency: true }, () => {
  test('SIGTERM: clients get 1001 and the process exits 0', { timeout: 40_000 }, async () => {
    await serveAndStop('SIGTERM', false);
  });

  test(
    'SIGINT: clients get 1001 and the process exits 0 (with a generated admin password)',
    { timeout: 40_000 },
    async () => {
      await serveAndStop('SIGINT', true);
    },
  );

  test(
    'an invalid RUSTYDB_PORT stops start-up with a message naming the field',
    { timeout: 30_000 },
    async () => {
      const dataDir = freshDataDir();
      const cli = runCli(['serve', '--data-dir', dataDir], cleanEnv({ RUSTYDB_PORT: 'abc' }));
      try {
        const exit = await cli.exited();
        assert.notEqual(exit.code, 0);
        assert.equal(exit.code, 1);
        assert.match(cli.stderr(), /invalid configuration: port: .*abc/);
        assert.match(cli.stderr(), /RUSTYDB_PORT/);
        assert.doesNotMatch(cli.stdout(), /listening/);
      } finally {
        cli.kill();
        rmSync(dataDir, { recursive: true, force: true });
      }
    },
  );

  test('an invalid flag value stops start-up naming the field', { timeout: 30_000 }, async () => {
    const dataDir = freshDataDir();
    const cli = runCli(['serve', '--data-dir', dataDir, '--rate-limit-rps', '0']);
    try {
      const exit = await cli.exited();
      assert.equal(exit.code, 1);
      assert.match(cli.stderr(), /invalid configuration: rate_limit_rps: must be at least 1/);
    } finally {
      cli.kill();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('an unknown command exits 2 with usage', { timeout: 30_000 }, async () => {
    const cli = runCli(['frobnicate']);
    try {
      const exit = await cli.exited();
      assert.equal(exit.code, 2);
      assert.match(cli.stderr(), /unknown command 'frobnicate'/);
      assert.match(cli.stderr(), /usage: rustydb/);
    } finally {
      cli.kill();
    }
  });

  test(
    '--help, -h and help COMMAND print usage and exit 0, for the CLI and each command',
    { timeout: 60_000 },
    async () => {
      const cases: [string[], RegExp][] = [
        [['--help'], /^usage: rustydb <command>/],
        [['-h'], /^usage: rustydb <command>/],
        [['help'], /^usage: rustydb <command>/],
        [['serve', '--help'], /^usage: rustydb serve[\s\S]*--rate-limit-rps/],
        [['help', 'serve'], /^usage: rustydb serve/],
        [['user', '--help'], /rustydb user add NAME/],
        [['role', '-h'], /rustydb role grant ROLE PRIVILEGE/],
        [['shell', '--help'], /^usage: rustydb shell[\s\S]*--url URL/],
        [['query', '--help'], /^usage: rustydb query "SQL"/],
        [['query', 'SELECT 1', '--help'], /^usage: rustydb query "SQL"/],
        [['watch', '--help'], /^usage: rustydb watch TABLE/],
      ];
      await Promise.all(
        cases.map(async ([args, usage]) => {
          // No server runs: a command that tried to connect instead of printing help would fail.
          const cli = runCli(args, cleanEnv({ RUSTYDB_URL: 'http://127.0.0.1:9' }));
          try {
            const exit = await cli.exited();
            assert.deepEqual(exit, { code: 0, signal: null }, `rustydb ${args.join(' ')}: ${cli.stderr()}`);
            assert.match(cli.stdout(), usage, `rustydb ${args.join(' ')}`);
            assert.equal(cli.stderr(), '', `rustydb ${args.join(' ')}`);
          } finally {
            cli.kill();
          }
        }),
      );
    },
  );

  test('help for an unknown command exits 2', { timeout: 30_000 }, async () => {
    for (const args of [
      ['help', 'frobnicate'],
      ['frobnicate', '--help'],
    ]) {
      const cli = runCli(args);
      try {
        assert.equal((await cli.exited()).code, 2);
        assert.match(cli.stderr(), /unknown command 'frobnicate'/);
      } finally {
        cli.kill();
      }
    }
  });
});
