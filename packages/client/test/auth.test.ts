/**
 * Tokens over time, against a server whose tokens live 3 seconds: the client renews them on the open
 * socket before they expire (through the application's callback, or /api/v1/auth/refresh), so the
 * connection is never closed with AUTH_EXPIRED; a revoked token makes it log in again and resume.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { RustyDBClient, login, type InboundMessage, type TableEvent } from '@rustydb/client';
import { ADMIN_PASSWORD, eventually, sleep, startTestServer, within } from './helpers.ts';

// Short enough to expire several times in a test, long enough for a login (scrypt) on a busy machine.
const TTL_SECONDS = 4;

/** Watches a client for everything that would show the token ran out. */
function watchForExpiry(client: RustyDBClient) {
  const seen = { closes: 0, opens: 0, expired: 0, errors: [] as string[] };
  client.on('close', () => seen.closes++);
  client.on('open', () => seen.opens++);
  client.on('error', (e) => seen.errors.push(`${e.code}: ${e.message}`));
  client.on('message', (m: InboundMessage) => {
    if ((m.payload as { code?: string } | undefined)?.code === 'AUTH_EXPIRED') seen.expired++;
  });
  return seen;
}

/** Inserts a row every 400 ms through the client itself for `ms`, checking each arrives on `sub`. */
async function keepBusy(client: RustyDBClient, ms: number): Promise<number> {
  const sub = client.subscribe('ticks');
  await sub.ready();
  const got: number[] = [];
  const reading = (async () => {
    for await (const e of sub as AsyncIterable<TableEvent>)
      if (e.type === 'change') got.push(e.row?.n as number);
  })();
  let n = 0;
  const until = Date.now() + ms;
  while (Date.now() < until) {
    await client.query('INSERT INTO ticks (n) VALUES (?)', [n++]);
    await sleep(400);
  }
  await eventually(() => got.length === n, `all ${n} changes`);
  assert.deepEqual(
    got,
    Array.from({ length: n }, (_, i) => i),
  );
  await sub.unsubscribe();
  await reading;
  return n;
}

describe('token renewal', () => {
  test(
    'a refreshToken callback renews the token before expiry, on the open socket: never AUTH_EXPIRED',
    { timeout: 60_000 },
    async () => {
      const ts = await startTestServer({ enable_rate_limiting: false, token_ttl: TTL_SECONDS });
      const first = await login(ts.server.url, 'admin', ADMIN_PASSWORD);
      const issued: string[] = [];
      const client = new RustyDBClient({
        url: ts.server.url,
        token: first.token,
        // The application renews through the server's refresh endpoint, as one with a refresh token
        // would: a login (scrypt) took 1.5 s of the 3 to 4 s left to a token on a busy machine, and the
        // token expired under it.
        refreshToken: async (current, { signal }) => {
          const res = await fetch(`${ts.server.url}/api/v1/auth/refresh`, {
            method: 'POST',
            headers: { authorization: `Bearer ${current!.token}` },
            signal,
          });
          const { data } = (await res.json()) as { data: { token: string; expires_at: string } };
          issued.push(data.token);
          return { token: data.token, expiresAt: new Date(data.expires_at) };
        },
      });
      const seen = watchForExpiry(client);
      try {
        await within(client.ready(), 10_000, 'connect');
        const firstExpiry = client.session!.expiresAt!.getTime();
        await client.query('CREATE TABLE ticks (id INTEGER PRIMARY KEY, n INTEGER)');
        // Three token lifetimes.
        await keepBusy(client, 3 * TTL_SECONDS * 1000);
        assert.ok(issued.length >= 3, `the callback ran ${issued.length} times`);
        assert.equal(client.auth.current?.token, issued.at(-1), 'the socket uses the newest token');
        assert.ok(client.session!.expiresAt!.getTime() > firstExpiry + 3000);
        assert.deepEqual(
          { closes: seen.closes, opens: seen.opens, expired: seen.expired, errors: seen.errors },
          { closes: 0, opens: 1, expired: 0, errors: [] },
        );
      } finally {
        await client.close();
        await ts.close();
      }
    },
  );

  test(
    'without a callback the client renews through /api/v1/auth/refresh with its current token',
    { timeout: 60_000 },
    async () => {
      const ts = await startTestServer({ enable_rate_limiting: false, token_ttl: TTL_SECONDS });
      const first = await login(ts.server.url, 'admin', ADMIN_PASSWORD);
      const client = new RustyDBClient({ url: ts.server.url, token: first.token });
      const seen = watchForExpiry(client);
      try {
        await within(client.ready(), 10_000, 'connect');
        await client.query('CREATE TABLE ticks (id INTEGER PRIMARY KEY, n INTEGER)');
        await keepBusy(client, 2 * TTL_SECONDS * 1000 + 500);
        assert.notEqual(client.auth.current?.token, first.token);
        assert.deepEqual(
          { closes: seen.closes, opens: seen.opens, expired: seen.expired, errors: seen.errors },
          { closes: 0, opens: 1, expired: 0, errors: [] },
        );
      } finally {
        await client.close();
        await ts.close();
      }
    },
  );

  test('a revoked token closes the socket (1008); with credentials the client logs in again and resumes', async () => {
    const ts = await startTestServer({ enable_rate_limiting: false });
    const client = new RustyDBClient({
      url: ts.server.url,
      username: 'admin',
      password: ADMIN_PASSWORD,
      reconnectDelay: 50,
    });
    try {
      await within(client.ready(), 10_000, 'connect');
      await client.query('CREATE TABLE ticks (id INTEGER PRIMARY KEY, n INTEGER)');
      const sub = client.subscribe('ticks');
      await sub.ready();
      const got: number[] = [];
      const reading = (async () => {
        for await (const e of sub) if (e.type === 'change') got.push(e.row?.n as number);
      })().catch((err: unknown) => err);
      const closes: number[] = [];
      client.on('close', (c) => closes.push(c.code));
      const oldToken = client.auth.current!.token;

      const out = await ts.http('/api/v1/auth/logout', { body: {}, token: oldToken });
      assert.equal(out.status, 200, JSON.stringify(out.body));
      // Committed while the client is being thrown out and logging in again.
      await ts.http('/api/v1/query', { body: { sql: 'INSERT INTO ticks (n) VALUES (1)' } });
      await eventually(() => client.state === 'open' && client.session?.reconnected, 'the reconnect');
      await client.query('INSERT INTO ticks (n) VALUES (2)');
      await eventually(() => got.length === 2, 'both changes');
      assert.deepEqual(got, [1, 2]);
      assert.deepEqual(closes, [1008]);
      assert.notEqual(client.auth.current!.token, oldToken);
      await sub.unsubscribe();
      assert.equal(await reading, undefined);
    } finally {
      await client.close();
      await ts.close();
    }
  });
});
