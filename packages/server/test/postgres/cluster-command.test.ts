/**
 * `npm run cluster` (scripts/cluster.mjs) as a user runs it: a throwaway PostgreSQL and three nodes of the
 * compiled server; a write through node 1 reaches a subscriber on node 3 with a token node 1 issued; SIGINT
 * stops every process it started and removes its directory. Without PostgreSQL it says how to install it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, cleanEnv, runCli } from '../helpers/cli.ts';
import { postgresCases } from '../helpers/engines.ts';
import { login } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';

const SCRIPT = join(REPO_ROOT, 'scripts', 'cluster.mjs');

/** Whether a process with this id runs (a zombie not yet reaped runs nothing). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

const clusterDirs = (): string[] =>
  readdirSync(tmpdir()).filter((name) => name.startsWith('rustydb-cluster-'));

test('without PostgreSQL, npm run cluster says how to install it and leaves nothing behind', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'rustydb-no-pg-'));
  try {
    const before = clusterDirs();
    const run = runCli(['--port', '0'], cleanEnv({ RUSTYDB_PG_BIN: empty }), SCRIPT);
    const { code } = await run.exited(20_000);
    assert.equal(code, 1, run.stderr());
    assert.match(run.stderr(), /needs PostgreSQL 15 or later/);
    assert.match(run.stderr(), /apt-get install postgresql/);
    assert.match(run.stderr(), /RUSTYDB_PG_BIN/);
    assert.deepEqual(clusterDirs(), before);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

postgresCases('three nodes', () => {
  test('three nodes on one throwaway PostgreSQL: a write through node 1 reaches node 3; SIGINT stops all', async () => {
    // The caller's RUSTYDB_* settings stay out, except where to find PostgreSQL.
    const pgBin = process.env.RUSTYDB_PG_BIN;
    const run = runCli(['--port', '0'], cleanEnv(pgBin ? { RUSTYDB_PG_BIN: pgBin } : {}), SCRIPT);
    try {
      const password = (await run.waitForOutput(/as admin with password (\S+)/, 90_000))[1]!;
      const out = run.stdout();
      const nodes = [
        ...out.matchAll(/node (\d): (http:\/\/127\.0\.0\.1:\d+) +\(WebSocket (\S+), pid (\d+)\)/g),
      ];
      assert.deepEqual(
        nodes.map((m) => m[1]),
        ['1', '2', '3'],
        out,
      );
      assert.equal(new Set(nodes.map((m) => m[2])).size, 3, 'distinct ports');
      const dir = /all in (\S+)/.exec(out)![1]!;
      const postgresPid = Number(/PostgreSQL: \S+ \(pid (\d+)/.exec(out)![1]);
      const pids = [...nodes.map((m) => Number(m[4])), postgresPid];
      assert.ok(existsSync(dir));
      for (const pid of pids) assert.ok(running(pid), `process ${pid} runs`);

      const url1 = nodes[0]![2]!;
      const ws3 = nodes[2]![3]!;
      const answer = await login(url1, 'admin', password);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const token = (answer.body as { data: { token: string } }).data.token;
      const query = async (sqlText: string): Promise<void> => {
        const res = await fetch(`${url1}/api/v1/query`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify({ sql: sqlText }),
          signal: AbortSignal.timeout(30_000),
        });
        assert.equal(res.status, 200, await res.text());
      };
      await query('CREATE TABLE notes (id serial PRIMARY KEY, body text NOT NULL)');

      // Node 3 accepts node 1's token (the signing secret is shared through the database).
      const watcher = await TestClient.connect(ws3);
      try {
        const auth = await watcher.request({ type: 'auth', payload: { token } }, 10_000);
        assert.equal(auth.type, 'auth_success', JSON.stringify(auth));
        const ack = await watcher.request({ type: 'subscribe', payload: { table: 'notes' } }, 10_000);
        assert.equal(ack.type, 'subscribed', JSON.stringify(ack));
        await query("INSERT INTO notes (body) VALUES ('written through node 1')");
        const change = await watcher.next((m) => m.type === 'change', 15_000);
        assert.equal((change.payload.row as { body: string }).body, 'written through node 1');
      } finally {
        watcher.ws.terminate();
      }

      run.child.kill('SIGINT');
      const exit = await run.exited(30_000);
      assert.equal(exit.code, 0, run.stderr());
      assert.match(run.stdout(), /SIGINT received: stopping 3 node\(s\) and PostgreSQL/);
      for (const pid of pids) assert.ok(!running(pid), `process ${pid} still runs after SIGINT`);
      assert.ok(!existsSync(dir), `${dir} was not removed`);
    } finally {
      // After a failure: let the script stop what it started (SIGKILL would leave its children running).
      if (run.child.exitCode === null && run.child.signalCode === null) {
        run.child.kill('SIGINT');
        await run.exited(30_000).catch(() => run.kill());
      }
    }
  });
});
