/**
 * Authorization is decided from the program SQLite compiles for a statement; that program must be the
 * one that runs. A statement authorized against one definition of a view and left waiting (for a read
 * worker, for a pooled connection) must not run against another definition committed meanwhile.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import type { TestClient } from '../helpers/ws-client.ts';
import { connectWith, createRole, createUser } from './helpers.ts';

const SECRET = 'vault-combination-31';
const POOL = 2;

let ts: TestServer;
let mallory: string;

before(async () => {
  ts = await startTestServer({ enable_rate_limiting: false, engine_pool_size: POOL });
  await sql(ts, 'CREATE TABLE public_t (id INTEGER PRIMARY KEY, v TEXT)');
  await sql(ts, 'CREATE TABLE secret (id INTEGER PRIMARY KEY, s TEXT)');
  await sql(ts, "INSERT INTO public_t (id, v) VALUES (1, 'one')");
  await sql(ts, 'INSERT INTO secret (id, s) VALUES (1, ?)', [SECRET]);
  await createRole(ts, 'swapper', [
    { privilege: 'CREATE' },
    { privilege: 'DROP' },
    { privilege: 'SELECT', table: 'public_t' },
  ]);
  mallory = await createUser(ts, 'mallory', ['swapper']);
});

after(() => ts.close());

/** A result far larger than any socket buffer: its stream stalls once the client stops reading. */
const HUGE =
  "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000000) SELECT x, printf('%.200c', 'x') FROM c";

test('a read queued behind busy workers is authorized again when a view it reads is redefined meanwhile', async () => {
  const c: TestClient = await connectWith(ts, mallory);
  assert.equal((await c.query('CREATE VIEW mine AS SELECT id, v FROM public_t')).error, undefined);
  // Hold every read worker: each streams to a socket that stopped reading, so its worker waits.
  const holders: TestClient[] = [];
  for (let i = 0; i < POOL; i++) {
    const holder = await connectWith(ts, mallory);
    holder.record = false;
    (holder.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    holder.send({ type: 'query', id: 'hold', payload: { sql: HUGE, chunk_size: 100 } });
    holders.push(holder);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  // Authorized now (the view reads public_t), then waits for a worker.
  c.send({ type: 'query', id: 'queued', payload: { sql: 'SELECT * FROM mine' } });
  await new Promise((resolve) => setTimeout(resolve, 100));
  // Swap the view while the read waits.
  assert.equal((await c.query('DROP VIEW mine')).error, undefined);
  assert.equal((await c.query('CREATE VIEW mine AS SELECT id, s AS v FROM secret')).error, undefined);
  for (const holder of holders) holder.terminate();
  const queued = await c.collect('queued', 10_000);
  assert.ok(!JSON.stringify(queued).includes(SECRET), `the queued read returned ${JSON.stringify(queued)}`);
  // Compiled and authorized again against the new definition, which reads secret.
  assert.equal(queued.error?.payload.code, 'PERMISSION_DENIED', JSON.stringify(queued));
  assert.deepEqual(queued.error?.payload.details, { privilege: 'SELECT', table: 'secret' });
  c.close();
});
