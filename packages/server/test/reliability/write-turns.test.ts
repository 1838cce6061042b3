/**
 * How writes wait: behind another write of the server they queue and succeed; a read-only transaction
 * takes no write lock at all; a lock held by another process ends in a retryable error only once the
 * timeout has really passed, and leaves no connection of the server unable to commit afterwards.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSync } from '../../src/engine/sqlite/driver.ts';
import { ENDLESS, sleep, sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';

let ts: TestServer;
before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false });
  await sql(ts, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
});
after(() => ts.close());

/** Holds SQLite's write lock from outside the server, as another process would. */
function holdWriteLock(dataDir: string): { release(): void } {
  const db = openSync(join(dataDir, 'rustydb.sqlite'));
  db.exec('BEGIN IMMEDIATE');
  return {
    release() {
      db.exec('ROLLBACK');
      db.close();
    },
  };
}

async function insert(client: TestClient, v: string, timeoutMs = 15_000) {
  return client.request(
    { type: 'query', payload: { sql: 'INSERT INTO t (v) VALUES (?)', params: [v] } },
    timeoutMs,
  );
}

test('writes queued behind a long write transaction wait for it and all succeed', async () => {
  const holder = await ts.connectAuthed();
  const writer = await ts.connectAuthed();
  // A write transaction that runs until it is cancelled.
  holder.send({
    type: 'batch',
    id: 'long',
    payload: {
      transaction: true,
      queries: [{ sql: 'INSERT INTO t (v) VALUES (?)', params: ['long'] }, { sql: ENDLESS }],
    },
  });
  await sleep(300);
  const waiting = Array.from({ length: 10 }, (_, i) => insert(writer, `queued-${i}`));
  const batches = Array.from({ length: 5 }, (_, i) =>
    writer.request(
      {
        type: 'batch',
        payload: {
          transaction: true,
          queries: [
            { sql: 'INSERT INTO t (v) VALUES (?)', params: [`tx-${i}-a`] },
            { sql: 'INSERT INTO t (v) VALUES (?)', params: [`tx-${i}-b`] },
          ],
        },
      },
      15_000,
    ),
  );
  await sleep(1000);
  holder.send({ type: 'cancel', payload: { id: 'long' } });
  const cancelled = await holder.reply('long', 5000);
  assert.equal(cancelled.payload.code, 'QUERY_CANCELLED');
  for (const reply of [...(await Promise.all(waiting)), ...(await Promise.all(batches))]) {
    assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
  }
  const { rows } = await sql(ts, "SELECT count(*) FROM t WHERE v LIKE 'queued-%' OR v LIKE 'tx-%'");
  assert.deepEqual(rows, [[20]]);
  assert.deepEqual((await sql(ts, "SELECT count(*) FROM t WHERE v = 'long'")).rows, [[0]]);
});

test('a read-only transactional batch takes no write lock: writes go on while it reads', async () => {
  const reader = await ts.connectAuthed();
  const writer = await ts.connectAuthed();
  reader.send({
    type: 'batch',
    id: 'read',
    payload: { transaction: true, queries: [{ sql: 'SELECT count(*) FROM t' }, { sql: ENDLESS }] },
  });
  await sleep(300);
  for (let i = 0; i < 20; i++) {
    const started = Date.now();
    const reply = await insert(writer, `beside-read-${i}`, 5000);
    assert.equal(reply.type, 'data', JSON.stringify(reply.payload));
    assert.ok(Date.now() - started < 1000, `a write waited ${Date.now() - started} ms for a read`);
  }
  reader.send({ type: 'cancel', payload: { id: 'read' } });
  assert.equal((await reader.reply('read', 5000)).payload.code, 'QUERY_CANCELLED');
});

test('a lock held by another process: QUERY_TIMEOUT once the statement timeout passes, then writes work', async () => {
  const short = await startTestServer({ enable_rate_limiting: false, statement_timeout: 1 });
  try {
    await sql(short, 'CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)');
    const client = await short.connectAuthed();
    const lock = holdWriteLock(short.dataDir);
    let started = Date.now();
    let reply;
    try {
      reply = await insert(client, 'blocked');
    } finally {
      lock.release();
    }
    assert.equal(reply.payload.code, 'QUERY_TIMEOUT', JSON.stringify(reply.payload));
    assert.ok(Date.now() - started >= 950, `gave up after ${Date.now() - started} ms, before the timeout`);
    // Nothing the failed attempt left behind stops later writes, autocommit or transactional.
    started = Date.now();
    for (let i = 0; i < 5; i++) assert.equal((await insert(client, `after-${i}`)).type, 'data');
    const tx = await client.request({
      type: 'batch',
      payload: { transaction: true, queries: [{ sql: 'INSERT INTO t (v) VALUES (?)', params: ['tx'] }] },
    });
    assert.equal(tx.type, 'data', JSON.stringify(tx.payload));
    assert.deepEqual((await sql(short, 'SELECT count(*) FROM t')).rows, [[6]]);
  } finally {
    await short.close();
  }
});

test('a lock held by another process longer than the busy timeout: BUSY with retry_after_ms', async () => {
  const client = await ts.connectAuthed();
  const lock = holdWriteLock(ts.dataDir);
  const started = Date.now();
  let reply;
  try {
    reply = await insert(client, 'blocked');
  } finally {
    lock.release();
  }
  assert.equal(reply.payload.code, 'BUSY', JSON.stringify(reply.payload));
  assert.ok(
    Date.now() - started >= 4900,
    `gave up after ${Date.now() - started} ms, before the busy timeout`,
  );
  assert.equal(typeof reply.payload.details?.retry_after_ms, 'number');
  assert.equal((await insert(client, 'afterwards')).type, 'data');
});
