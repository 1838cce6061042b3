/**
 * The server, `backup` and `restore` run as the `rustydb` command does, each its own process: restore
 * must find the database free of every other process's connections.
 *
 * Backups without stopping: `rustydb backup --to FILE` takes a consistent copy through the admin
 * endpoint while writers run (every batch in it whole, every batch acknowledged before it began in it);
 * `rustydb restore --from FILE` brings it back (refused while a server has the database open); after the
 * restore the change log continues past every position the old server handed out, so a subscriber
 * resuming from one is answered `reset`, never a silent gap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSync } from '../../src/engine/sqlite/driver.ts';
import { runCli } from '../helpers/cli.ts';
import { startServerProcess, type ServerProcess } from '../helpers/server-process.ts';
import { freshDataDir, sleep } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';

const WRITERS = 4;
const STATEMENTS = 10;

/** Writers keeping transactional batches of STATEMENTS rows going until `stop()`. */
function startWriters(clients: TestClient[]) {
  const acknowledged: string[] = [];
  const failures: string[] = [];
  let running = true;
  const done = Promise.all(
    clients.map(async (client, c) => {
      for (let n = 0; running; n++) {
        const batch = `w${c}-${n}`;
        const queries = Array.from({ length: STATEMENTS }, (_, i) => ({
          sql: 'INSERT INTO ledger (batch, n, pad) VALUES (?, ?, randomblob(200))',
          params: [batch, i],
        }));
        const reply = await client.request(
          { type: 'batch', payload: { queries, transaction: true } },
          30_000,
        );
        if (reply.type === 'data') acknowledged.push(batch);
        else failures.push(`${batch}: ${JSON.stringify(reply.payload)}`);
      }
    }),
  );
  return {
    acknowledged,
    failures,
    stop: async () => {
      running = false;
      await done;
    },
  };
}

/** Rows per batch in a database file. */
function batchesIn(file: string): Map<string, number> {
  const db = openSync(file, { timeout: 0 });
  try {
    const rows = db.prepare('SELECT batch, count(*) FROM ledger GROUP BY batch').raw().all([]);
    return new Map(rows.map(([batch, count]) => [String(batch), Number(count)]));
  } finally {
    db.close();
  }
}

interface Served extends ServerProcess {
  connect(): Promise<TestClient>;
}

/** `rustydb serve` on the data directory, in a process of its own. */
async function serve(dataDir: string): Promise<Served> {
  const server = await startServerProcess(['--enable-rate-limiting', 'false'], { dataDir });
  const clients: TestClient[] = [];
  return {
    ...server,
    async connect() {
      const client = await TestClient.connect(`${server.wsUrl}/api/v1/stream?token=${server.token}`);
      assert.equal((await client.next()).type, 'auth_success');
      clients.push(client);
      return client;
    },
    async stop() {
      for (const client of clients) client.terminate();
      await server.stop();
    },
  };
}

/** Runs `rustydb ARGS…` to its end: its exit code and output. */
async function rustydb(args: string[]): Promise<{ code: number | null; out: string }> {
  const cli = runCli(args);
  const { code } = await cli.exited(60_000);
  return { code, out: cli.stdout() + cli.stderr() };
}

test(
  'online backup while writers run, restore, and the change sequence continuing with reset',
  { timeout: 150_000 },
  async (t) => {
    const dataDir = freshDataDir();
    const work = mkdtempSync(join(tmpdir(), 'rustydb-backup-'));
    const backupFile = join(work, 'copy.sqlite');
    let server: Served | undefined;
    try {
      server = await serve(dataDir);
      await server.sql(
        'CREATE TABLE ledger (id INTEGER PRIMARY KEY, batch TEXT NOT NULL, n INTEGER NOT NULL, pad BLOB)',
      );
      const watcher = await server.connect();
      await watcher.subscribed('w', { table: 'ledger' }, 5000);
      const writers = startWriters(
        await Promise.all(Array.from({ length: WRITERS }, () => server!.connect())),
      );
      await sleep(1500);

      // The backup, while the writers go on.
      const ackedBefore = [...writers.acknowledged];
      const backup = await rustydb([
        'backup',
        '--to',
        backupFile,
        '--url',
        server.url,
        '--token',
        server.token,
      ]);
      const ackedAfter = writers.acknowledged.length;
      t.diagnostic(backup.out.trim());
      assert.equal(backup.code, 0, backup.out);
      await sleep(500);
      await writers.stop();
      assert.deepEqual(writers.failures.slice(0, 3), []);
      assert.ok(writers.acknowledged.length > ackedAfter, 'the writers were not running after the backup');

      const copied = batchesIn(backupFile);
      t.diagnostic(
        `${ackedBefore.length} batches acknowledged before the backup began, ${copied.size} in it, ${writers.acknowledged.length} in all`,
      );
      assert.deepEqual(
        ackedBefore.filter((b) => copied.get(b) !== STATEMENTS).slice(0, 5),
        [],
        'a batch acknowledged before the backup began is not in it',
      );
      assert.deepEqual(
        [...copied].filter(([, count]) => count !== STATEMENTS).slice(0, 5),
        [],
        'a batch is in the backup in part',
      );
      assert.ok(copied.size < writers.acknowledged.length, 'the backup holds every batch, even later ones');
      const backupSequence = Number(/change-log position (\d+)/.exec(backup.out)?.[1]);
      assert.ok(backupSequence > 0, backup.out);

      // Only an administrator may take one.
      assert.equal((await fetch(`${server.url}/api/v1/admin/backup`, { method: 'POST' })).status, 401);

      // The last position the old server handed out; the subscriber reading along has seen it.
      const heads = await fetch(`${server.url}/api/v1/subscriptions`, {
        headers: { authorization: `Bearer ${server.token}` },
      });
      const lastSeen = ((await heads.json()) as { data: { head: number } }).data.head;
      await watcher.next(
        (m) => m.id === 'w' && m.type === 'change' && m.payload.sequence === lastSeen,
        10_000,
      );
      assert.ok(lastSeen > backupSequence, `head ${lastSeen} not past the backup's ${backupSequence}`);

      // Restore is refused while the server has the database open; so is a file that is no backup.
      const busy = await rustydb(['restore', '--from', backupFile, '--data-dir', dataDir]);
      assert.notEqual(busy.code, 0);
      assert.match(busy.out, /in use/);
      const bogus = await rustydb(['restore', '--from', join(dataDir, 'jwt-secret'), '--data-dir', dataDir]);
      assert.notEqual(bogus.code, 0);
      assert.match(bogus.out, /not a RustyDB database|damaged/);

      await server.stop();
      server = undefined;
      const restore = await rustydb(['restore', '--from', backupFile, '--data-dir', dataDir]);
      t.diagnostic(restore.out.trim());
      assert.equal(restore.code, 0, restore.out);
      assert.ok(
        readdirSync(dataDir).some((f) => f.startsWith('rustydb.sqlite.before-restore-')),
        'the replaced database was not kept',
      );

      server = await serve(dataDir);
      // The data is the backup's.
      const rows = await server.sql('SELECT batch, count(*) FROM ledger GROUP BY batch');
      assert.deepEqual(new Map(rows.map(([b, c]) => [b as string, c as number])), copied);

      // Positions of the old server, past the backup or within it, get reset: never a silent gap.
      const client = await server.connect();
      for (const since of [lastSeen, backupSequence, Math.max(1, backupSequence - 5)]) {
        const reply = await client.subscribe(`r${since}`, { table: 'ledger', since }, 5000);
        assert.equal(reply.type, 'reset', `since ${since}: ${JSON.stringify(reply.payload)}`);
      }
      // New changes are numbered after everything the old server handed out, and are delivered.
      const fresh = await client.subscribed('fresh', { table: 'ledger' }, 5000);
      assert.ok((fresh.payload.sequence as number) > lastSeen);
      await server.sql("INSERT INTO ledger (batch, n) VALUES ('after', 0)");
      const change = await client.next((m) => m.id === 'fresh' && m.type !== 'subscribed', 5000);
      assert.equal(change.type, 'change', JSON.stringify(change.payload));
      assert.ok((change.payload.sequence as number) > lastSeen);
      // Resuming from a position of the restored server works as always.
      await client.subscribed('again', { table: 'ledger', since: fresh.payload.sequence }, 5000);
      const replayed = await client.next((m) => m.id === 'again' && m.type !== 'subscribed', 5000);
      assert.equal(replayed.payload.sequence, change.payload.sequence);
    } finally {
      await server?.stop();
      rmSync(work, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
      assert.ok(!existsSync(dataDir));
    }
  },
);
