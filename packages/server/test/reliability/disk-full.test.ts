/**
 * A full disk, for real: the data directory is a small tmpfs that fills up. The failing request gets
 * STORAGE_FULL and its socket stays open; reads and deletes keep working; readiness says not ready
 * while writes cannot commit; and once space returns the server recovers by itself. Mounting needs
 * root: where it is not possible this test fails and says why, it never skips.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

const MOUNT_BYTES = 32 * 1024 * 1024;
/** Room the test leaves for the database to fill. */
const ROOM_BYTES = 3 * 1024 * 1024;
const RESERVE_BYTES = 2 * 1024 * 1024;

let mountPoint: string;
let ts: TestServer;

function run(command: string, args: string[]): void {
  try {
    execFileSync(command, args, { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString().trim();
    throw new Error(
      `\`${command} ${args.join(' ')}\` failed: ${stderr || (err as Error).message}. This test needs a ` +
        'tmpfs it can fill: run it as root (or with CAP_SYS_ADMIN) so that it can mount one.',
    );
  }
}

before(() => {
  mountPoint = mkdtempSync(join(tmpdir(), 'rustydb-full-'));
  run('mount', ['-t', 'tmpfs', '-o', `size=${MOUNT_BYTES},mode=0700`, 'tmpfs', mountPoint]);
});

after(async () => {
  await ts?.close();
  // Lazily: libsql frees a closed connection's files only when the garbage collector frees its
  // statements, so they may still be open here. The tmpfs goes away when the last of them closes.
  run('umount', ['--lazy', mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

const freeBytes = (): number => {
  const stats = statfsSync(mountPoint);
  return stats.bavail * stats.bsize;
};

async function insert(client: TestClient, n: number) {
  return client.request(
    {
      type: 'query',
      payload: { sql: 'INSERT INTO blobs (n, data) VALUES (?, randomblob(8000))', params: [n] },
    },
    15_000,
  );
}

async function readiness(): Promise<number> {
  return (await ts.http('/api/v1/health/readiness', { token: null })).status;
}

test(
  'a full disk: STORAGE_FULL on the request, the socket open, reads and deletes working, not ready; recovery when space returns',
  { timeout: 120_000 },
  async (t) => {
    const dataDir = join(mountPoint, 'data');
    ts = await startTestServer({ enable_rate_limiting: false, storage_reserve: RESERVE_BYTES }, { dataDir });
    const admin = await ts.connectAuthed();
    assert.equal(
      (
        await admin.request({
          type: 'query',
          payload: { sql: 'CREATE TABLE blobs (n INTEGER PRIMARY KEY, data BLOB)' },
        })
      ).type,
      'data',
    );
    assert.equal(await readiness(), 200);

    // Take all but a little of the space, as other files on a shared disk would.
    const ballast = join(mountPoint, 'ballast');
    writeFileSync(ballast, Buffer.alloc(Math.max(0, freeBytes() - ROOM_BYTES)));

    let n = 0;
    let failure;
    for (; n < 10_000; n++) {
      const reply = await insert(admin, n);
      if (reply.type === 'error') {
        failure = reply;
        break;
      }
    }
    t.diagnostic(`${n} rows of 8 KB inserted before the disk was full`);
    assert.ok(failure, 'the disk never filled');
    assert.equal(failure.payload.code, 'STORAGE_FULL', JSON.stringify(failure.payload));
    assert.ok(admin.isOpen, 'the socket was closed');

    // Writes keep failing cleanly while the disk is full; the socket stays usable.
    const again = await insert(admin, n + 1);
    assert.equal(again.payload.code, 'STORAGE_FULL', JSON.stringify(again.payload));
    assert.equal(await readiness(), 503);

    // Reads work.
    const count = await admin.query('SELECT count(*) FROM blobs');
    assert.equal(count.error, undefined, JSON.stringify(count.error?.payload));
    assert.deepEqual(count.rows, [[n]]);
    // Deletes work, over the stream and in a transactional batch.
    const deleted = await admin.request({
      type: 'query',
      payload: { sql: 'DELETE FROM blobs WHERE n < ?', params: [10] },
    });
    assert.equal(deleted.type, 'data', JSON.stringify(deleted.payload));
    assert.equal(deleted.payload.rows_affected, Math.min(n, 10));
    const batch = await admin.request({
      type: 'batch',
      payload: { transaction: true, queries: [{ sql: 'DELETE FROM blobs WHERE n < ?', params: [20] }] },
    });
    assert.equal(batch.type, 'data', JSON.stringify(batch.payload));
    assert.ok(admin.isOpen);

    // Space returns: the server notices by itself.
    rmSync(ballast);
    let status = 0;
    for (let i = 0; i < 50 && status !== 200; i++) {
      await sleep(200);
      status = await readiness();
    }
    assert.equal(status, 200, 'still not ready 10 s after space returned');
    for (let i = 0; i < 20; i++) {
      const reply = await insert(admin, 100_000 + i);
      assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
    }
    assert.ok(admin.isOpen);
  },
);
