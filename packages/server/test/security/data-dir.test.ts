/**
 * The data directory holds the database (every password hash), the token signing key and the audit
 * log: the server creates it readable by its own user only (0700, every file 0600), tightens files an
 * older version left open, and refuses to start on a directory other users can read or write unless
 * allow_insecure_data_dir says otherwise.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startTestServer, sql, type TestServer } from '../helpers/test-server.ts';
import { silentLogger, type Logger } from '../../src/core/logger.ts';

const parents: string[] = [];
after(() => {
  for (const dir of parents) rmSync(dir, { recursive: true, force: true });
});

function parentDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'rustydb-datadir-'));
  parents.push(dir);
  return dir;
}

const mode = (path: string): number => statSync(path).mode & 0o777;
const octal = (m: number): string => `0${m.toString(8)}`;

/** Every file of the directory with its mode, for messages. */
function modes(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((name) => [name, octal(mode(join(dir, name)))]));
}

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    ...silentLogger,
    warn: (message: string) => void warnings.push(message),
    warnings,
  };
}

async function withServer(
  dataDir: string,
  work: (ts: TestServer) => Promise<void>,
  overrides = {},
): Promise<void> {
  const ts = await startTestServer(overrides, { dataDir });
  try {
    await work(ts);
  } finally {
    await ts.close();
  }
}

test('a new data directory is 0700 and every file in it 0600, whatever the umask', async () => {
  const previous = process.umask(0o022);
  try {
    const dataDir = join(parentDir(), 'data');
    await withServer(dataDir, async (ts) => {
      await sql(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
      await sql(ts, "INSERT INTO t (v) VALUES ('x')");
      assert.equal(octal(mode(dataDir)), '0700');
      const files = readdirSync(dataDir);
      for (const expected of ['rustydb.sqlite', 'rustydb.sqlite-wal', 'jwt-secret', 'audit.log']) {
        assert.ok(files.includes(expected), `${expected} missing: ${files.join(', ')}`);
      }
      for (const name of files)
        assert.equal(octal(mode(join(dataDir, name))), '0600', `${name}: ${JSON.stringify(modes(dataDir))}`);
    });
  } finally {
    process.umask(previous);
  }
});

test('a data directory other users can read stops start-up with a message saying what to do', async () => {
  const dataDir = join(parentDir(), 'open');
  // First start makes the directory; then it is opened up as a careless operator (or an old version) would.
  await withServer(dataDir, async () => {});
  for (const open of [0o755, 0o750, 0o701, 0o707]) {
    chmodSync(dataDir, open);
    await assert.rejects(
      startTestServer({}, { dataDir }),
      (err: Error) => {
        assert.match(err.message, /data_dir/);
        assert.match(err.message, new RegExp(octal(open)));
        assert.match(err.message, /chmod 700/);
        assert.match(err.message, /allow_insecure_data_dir/);
        return true;
      },
      octal(open),
    );
  }
});

test('allow_insecure_data_dir starts anyway, with a warning', async () => {
  const dataDir = join(parentDir(), 'shared');
  await withServer(dataDir, async () => {});
  chmodSync(dataDir, 0o750);
  const logger = recordingLogger();
  const ts = await startTestServer({ allow_insecure_data_dir: true }, { dataDir, logger });
  try {
    assert.ok(
      logger.warnings.some((w) => /data_dir/.test(w) && /0750/.test(w)),
      logger.warnings.join('\n'),
    );
    // The directory is the operator's choice; the files in it are still the server's own.
    for (const name of readdirSync(dataDir)) assert.equal(octal(mode(join(dataDir, name))), '0600', name);
  } finally {
    await ts.close();
  }
});

test('files an older version left readable are made 0600 at start', async () => {
  const dataDir = join(parentDir(), 'old');
  await withServer(dataDir, async () => {});
  for (const name of readdirSync(dataDir)) chmodSync(join(dataDir, name), 0o644);
  writeFileSync(join(dataDir, 'notes.txt'), 'left here by an operator', { mode: 0o644 });
  await withServer(dataDir, async () => {
    for (const name of readdirSync(dataDir)) assert.equal(octal(mode(join(dataDir, name))), '0600', name);
  });
});

test('a data directory path that is a file is refused clearly', async () => {
  const file = join(parentDir(), 'plain-file');
  writeFileSync(file, '');
  await assert.rejects(startTestServer({}, { dataDir: file }), /data_dir: .*not a directory/);
});
