/**
 * `rustydb query`, `rustydb shell` and `rustydb watch` as real processes against a real server: output
 * formats, exit codes, progress, multi-line input and backslash commands through a pipe, and the
 * interactive shell in a terminal (tmux): prompt, history, Ctrl-C cancelling a running statement.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ADMIN_PASSWORD, sleep, sql, startTestServer, type TestServer } from './helpers.ts';
import { REPO_ROOT, cleanEnv } from '../../server/test/helpers/cli.ts';
import { postgresCases } from '../../server/test/helpers/engines.ts';

/** The client package's `rustydb` (its own commands; the server's through @rustydb/server). */
const CLI = fileURLToPath(new URL('../bin/rustydb.js', import.meta.url));

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Running {
  child: ChildProcess;
  stdout(): string;
  stderr(): string;
  waitFor(pattern: RegExp, where?: 'stdout' | 'stderr', timeoutMs?: number): Promise<void>;
  finished(timeoutMs?: number): Promise<Finished>;
}

/** Spawns the CLI with a piped stdin (`input`, then end of input, unless `input` is undefined). */
function start(args: string[], env: NodeJS.ProcessEnv, input?: string): Running {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: REPO_ROOT, env, stdio: 'pipe' });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  if (input !== undefined) child.stdin!.end(input);
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const kill = (): void => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return {
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    async waitFor(pattern, where = 'stdout', timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pattern.test(where === 'stdout' ? stdout : stderr)) {
        if (Date.now() > deadline || child.exitCode !== null) {
          kill();
          throw new Error(`no ${pattern} on ${where}\nstdout: ${stdout}\nstderr: ${stderr}`);
        }
        await sleep(20);
      }
    },
    async finished(timeoutMs = 30_000) {
      let timer: NodeJS.Timeout | undefined;
      try {
        const code = await Promise.race([
          exit,
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`CLI did not exit\nstdout: ${stdout}\nstderr: ${stderr}`)),
              timeoutMs,
            );
          }),
        ]);
        return { code, stdout, stderr };
      } finally {
        clearTimeout(timer);
        kill();
      }
    },
  };
}

describe('rustydb query / shell / watch', { concurrency: false }, () => {
  let ts: TestServer;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    ts = await startTestServer({ enable_rate_limiting: false });
    await sql(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL)');
    await sql(
      ts,
      "INSERT INTO items (name, price) VALUES ('pen', 1.5), ('book, blue', 12), ('cup \"x\"', NULL)",
    );
    env = cleanEnv({ RUSTYDB_URL: ts.server.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD, RUSTYDB_HISTORY: '' });
  });
  after(async () => {
    await ts?.close();
  });

  test('query prints a table, CSV or JSON; parameters bind', async () => {
    const table = await start(['query', 'SELECT id, name, price FROM items ORDER BY id'], env).finished();
    assert.equal(table.code, 0, table.stderr);
    assert.equal(
      table.stdout,
      [
        ' id | name       | price',
        '----+------------+-------',
        '  1 | pen        |   1.5',
        '  2 | book, blue |    12',
        '  3 | cup "x"    |',
        '(3 rows)',
        '',
      ].join('\n'),
    );
    const csv = await start(
      ['query', 'SELECT id, name, price FROM items ORDER BY id', '--format', 'csv'],
      env,
    ).finished();
    assert.equal(csv.stdout, 'id,name,price\r\n1,pen,1.5\r\n2,"book, blue",12\r\n3,"cup ""x""",\r\n');
    const json = await start(
      [
        'query',
        'SELECT id, name FROM items WHERE price > ? ORDER BY id',
        '--params',
        '[1]',
        '--format',
        'json',
      ],
      env,
    ).finished();
    assert.deepEqual(JSON.parse(json.stdout), [
      { id: 1, name: 'pen' },
      { id: 2, name: 'book, blue' },
    ]);
    const write = await start(
      ['query', "INSERT INTO items (name) VALUES ('lamp')", '--format=json'],
      env,
    ).finished();
    assert.deepEqual(JSON.parse(write.stdout), { rows_affected: 1, last_insert_id: 4 });
    const fromStdin = await start(['query', '-'], env, 'SELECT count(*) AS n FROM items').finished();
    assert.match(fromStdin.stdout, /^ n\n---\n 4\n\(1 row\)\n$/);
  });

  test('query fails with exit code 1 and the message on stderr', async () => {
    const missing = await start(['query', 'SELECT * FROM nowhere'], env).finished();
    assert.equal(missing.code, 1);
    assert.equal(missing.stdout, '');
    assert.equal(missing.stderr, "rustydb: TABLE_NOT_FOUND: Table 'nowhere' not found\n");
    const badPassword = await start(['query', 'SELECT 1'], { ...env, RUSTYDB_PASSWORD: 'wrong' }).finished();
    assert.equal(badPassword.code, 1);
    assert.match(badPassword.stderr, /cannot connect to .*AUTH_FAILED/);
    const noCredentials = await start(['query', 'SELECT 1'], { ...env, RUSTYDB_PASSWORD: '' }).finished();
    assert.equal(noCredentials.code, 1);
    assert.match(noCredentials.stderr, /requires authentication: give --password \(RUSTYDB_PASSWORD\)/);
    const badFormat = await start(['query', 'SELECT 1', '--format', 'xml'], env).finished();
    assert.equal(badFormat.code, 2);
    assert.match(badFormat.stderr, /--format must be one of table, json, csv/);
  });

  test('query reports progress on stderr while a long result streams to a pipe', async () => {
    const run = await start(
      [
        'query',
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000) SELECT x, printf('%050d', x) FROM c",
        '--format',
        'csv',
        '--chunk-size',
        '500',
        '--progress-interval',
        '50',
      ],
      env,
    ).finished(60_000);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.split('\r\n').length, 300_002);
    assert.match(run.stderr, /^rustydb: \d+ rows so far \(\d+\.\d s\)$/m);
  });

  test('shell through a pipe: multi-line statements, backslash commands, errors (exit code 1)', async () => {
    const input = [
      'SELECT 1 AS a;',
      'SELECT name',
      '  FROM items',
      '  WHERE id = 2;',
      '\\dt',
      '\\d items',
      'SELECT \'semi;colon\' AS s; SELECT 3 AS "x;y";',
      'SELECT * FROM nowhere;',
      '\\timing on',
      'SELECT 4 AS last',
    ].join('\n');
    const run = await start(['shell'], env, `${input}\n`).finished();
    assert.equal(run.code, 1, 'a statement failed');
    const expected = [
      ' a\n---\n 1\n(1 row)\n',
      ' name\n------------\n book, blue\n(1 row)\n',
      ' Name  | Type\n-------+-------\n items | table\n(1 row)\n',
      'Table "items"\n Column | Type    | Nullable | Default | Key\n',
      ' id     | INTEGER |          |         | primary key\n',
      ' name   | TEXT    | not null |         |\n',
      ' s\n------------\n semi;colon\n(1 row)\n',
      ' x;y\n-----\n   3\n(1 row)\n',
      'Timing is on.\n',
      ' last\n------\n    4\n(1 row)\nTime: ',
    ];
    let at = 0;
    for (const part of expected) {
      const found = run.stdout.indexOf(part, at);
      assert.ok(found >= at, `expected ${JSON.stringify(part)} after position ${at} in:\n${run.stdout}`);
      at = found + part.length;
    }
    assert.equal(run.stderr, "ERROR: TABLE_NOT_FOUND: Table 'nowhere' not found\n");
  });

  test('watch prints each change as it happens, until Ctrl-C', async () => {
    const watch = start(['watch', 'items'], env);
    try {
      await watch.waitFor(/watching items/, 'stderr');
      await sql(ts, "INSERT INTO items (name, price) VALUES ('vase', 30)");
      await sql(ts, "UPDATE items SET price = 31 WHERE name = 'vase'");
      await sql(ts, "DELETE FROM items WHERE name = 'vase'");
      await watch.waitFor(/delete/);
      watch.child.kill('SIGINT');
      const done = await watch.finished();
      assert.equal(done.code, 0, done.stderr);
      const lines = done.stdout.trim().split('\n');
      assert.equal(lines.length, 3, done.stdout);
      assert.match(lines[0]!, /^#\d+ insert \{"id":\d+,"name":"vase","price":30\}$/);
      assert.match(lines[1]!, /^#\d+ update \{"id":\d+,"name":"vase","price":31\}$/);
      assert.match(lines[2]!, /^#\d+ delete \{"id":\d+\}$/);
    } finally {
      await watch.finished(1000).catch(() => {});
    }
  });

  const tmux = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;

  test(
    'the interactive shell in a terminal: prompt, continuation, Ctrl-C cancels a running query, history',
    { skip: tmux ? false : 'tmux is not installed', timeout: 90_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), 'rustydb-shell-'));
      const socket = `rustydb-test-${process.pid}`;
      const history = join(dir, 'history');
      const tm = (...args: string[]): string => {
        const result = spawnSync('tmux', ['-L', socket, ...args], { encoding: 'utf8' });
        if (result.status !== 0 && args[0] !== 'kill-server')
          throw new Error(`tmux ${args.join(' ')}: ${result.stderr}`);
        return result.stdout;
      };
      const screen = (): string => tm('capture-pane', '-p', '-J', '-S', '-200', '-t', 'shell');
      const waitForScreen = async (pattern: RegExp, what: string): Promise<void> => {
        const deadline = Date.now() + 20_000;
        while (!pattern.test(screen())) {
          if (Date.now() > deadline) throw new Error(`${what}: no ${pattern} on screen:\n${screen()}`);
          await sleep(50);
        }
      };
      /** Types `text` literally (tmux would read a trailing ';' as its own separator), then Enter. */
      const type = (text: string): void => {
        tm('send-keys', '-t', 'shell', '-l', text.replace(/;$/, '\\;'));
        tm('send-keys', '-t', 'shell', 'Enter');
      };
      const quote = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`;
      const command = [
        `cd ${quote(REPO_ROOT)} &&`,
        `RUSTYDB_URL=${quote(ts.server.url)} RUSTYDB_PASSWORD=${quote(ADMIN_PASSWORD)} RUSTYDB_HISTORY=${quote(history)}`,
        `${quote(process.execPath)} ${quote(CLI)} shell; echo "shell exited $?"; sleep 30`,
      ].join(' ');
      try {
        tm('new-session', '-d', '-s', 'shell', '-x', '160', '-y', '50', command);
        await waitForScreen(/Connected to .* as admin/, 'banner');
        await waitForScreen(/rustydb=> $/m, 'prompt');

        type('SELECT 40 + 2');
        await waitForScreen(/rustydb-> $/m, 'continuation prompt');
        type('AS answer;');
        await waitForScreen(/ answer\n-+\n +42\n\(1 row\)/, 'the result');

        type('WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;');
        await sleep(700);
        tm('send-keys', '-t', 'shell', 'C-c');
        await waitForScreen(/ERROR: canceling statement due to user request/, 'the cancel');
        await waitForScreen(/rustydb=> $/m, 'a prompt after the cancel');

        // The shell is still alive, and history recalls the two-line statement as one.
        tm('send-keys', '-t', 'shell', 'Up', 'Up');
        await waitForScreen(/rustydb=> SELECT 40 \+ 2 AS answer;$/m, 'the recalled statement');
        tm('send-keys', '-t', 'shell', 'Enter');
        await waitForScreen(/\(1 row\)[\s\S]*\(1 row\)/, 'the recalled statement run again');
        type('\\q');
        await waitForScreen(/shell exited 0/, 'exit');
        const saved = readFileSync(history, 'utf8');
        assert.deepEqual(saved.trim().split('\n'), [
          'WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c;',
          'SELECT 40 + 2 AS answer;',
          '\\q',
        ]);
      } finally {
        tm('kill-server');
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe('one rustydb command from either package', { concurrency: false }, () => {
  const SERVER_CLI = fileURLToPath(new URL('../../server/bin/rustydb.js', import.meta.url));

  test("the server's rustydb runs the client's commands (query)", async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    try {
      const env = cleanEnv({ RUSTYDB_URL: ts.server.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD });
      const child = spawn(
        process.execPath,
        [SERVER_CLI, 'query', 'SELECT 6 * 7 AS answer', '--format', 'json'],
        {
          cwd: REPO_ROOT,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      assert.equal(code, 0, stderr);
      assert.deepEqual(JSON.parse(stdout), [{ answer: 42 }]);
    } finally {
      await ts.close();
    }
  });

  test("the client's rustydb runs the server's commands (serve), and help lists both", async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'rustydb-client-serve-'));
    const server = start(
      ['serve', '--port', '0', '--data-dir', dataDir, '--admin-password', 'via-client-bin'],
      cleanEnv(),
    );
    try {
      await server.waitFor(/RustyDB listening on http:\/\/127\.0\.0\.1:\d+/);
      const url = /RustyDB listening on (\S+)/.exec(server.stdout())![1]!;
      const answer = await start(
        ['query', 'SELECT 1 AS one', '--url', url, '--password', 'via-client-bin', '--format', 'csv'],
        cleanEnv(),
      ).finished();
      assert.equal(answer.code, 0, answer.stderr);
      assert.equal(answer.stdout, 'one\r\n1\r\n');
    } finally {
      server.child.kill('SIGTERM');
      await server.finished().catch(() => undefined);
      rmSync(dataDir, { recursive: true, force: true });
    }
    const help = await start(['help'], cleanEnv()).finished();
    assert.equal(help.code, 0);
    assert.match(help.stdout, /client commands[^]*\n {2}shell /);
    assert.match(help.stdout, /server commands[^]*\n {2}serve /);
    assert.doesNotMatch(help.stdout, /not installed/);
  });
});

postgresCases('shell on PostgreSQL', () => {
  describe('rustydb shell on PostgreSQL', () => {
    let ts: TestServer;
    let env: NodeJS.ProcessEnv;

    before(async () => {
      ts = await startTestServer({ enable_rate_limiting: false }, { engine: 'postgres' });
      await sql(ts, 'CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL DEFAULT 0)');
      env = cleanEnv({ RUSTYDB_URL: ts.server.url, RUSTYDB_PASSWORD: ADMIN_PASSWORD, RUSTYDB_HISTORY: '' });
    });
    after(async () => {
      await ts?.close();
    });

    test('\\dt and \\d read PostgreSQL catalog (information_schema), not SQLite', async () => {
      const run = await start(['shell'], env, '\\dt\n\\d items\n\\d nowhere\n').finished();
      const expected = [
        ' Name  | Type\n-------+-------\n items | table\n(1 row)\n',
        'Table "items"\n Column | Type    | Nullable | Default | Key\n',
        ' id     | integer | not null |         | primary key\n',
        ' name   | text    | not null |         |\n',
        ' price  | real    |          | 0       |\n',
      ];
      let at = 0;
      for (const part of expected) {
        const found = run.stdout.indexOf(part, at);
        assert.ok(found >= at, `expected ${JSON.stringify(part)} after position ${at} in:\n${run.stdout}`);
        at = found + part.length;
      }
      assert.equal(run.stderr, 'Did not find any table named "nowhere".\n');
      assert.equal(run.code, 1);
    });
  });
});
