/**
 * Sockets that never authenticate: a server exposed to the internet must not let them fill
 * websocket_max_connections. They are capped per address (max_unauthenticated_connections_per_ip) and in
 * total (max_unauthenticated_connections) on every WebSocket endpoint, they must authenticate within
 * websocket_auth_timeout, and a per-address limit on all connections (max_connections_per_ip) is on by
 * default. Several tests run with the defaults on purpose: the defaults are what is under test.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as tcpConnect } from 'node:net';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/config.ts';
import { addressKey } from '../../src/core/client-address.ts';
import { startTestServer, type TestServer } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';
import { within } from './helpers.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const ts of servers) await ts.close();
});

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer(overrides);
  servers.push(ts);
  return ts;
}

const DEFAULTS = loadConfig({});

/** A socket from a chosen loopback source address, to `path` (default /api/v1/stream), still unauthenticated. */
function socketFrom(
  ts: TestServer,
  localAddress = '127.0.0.1',
  path = '/api/v1/stream',
): Promise<TestClient> {
  return TestClient.adopt(new WebSocket(`${ts.server.wsUrl}${path}`, { localAddress }));
}

/** A graphql-ws socket that has not sent connection_init. */
function graphqlSocketFrom(ts: TestServer, localAddress = '127.0.0.1'): Promise<TestClient> {
  return TestClient.adopt(
    new WebSocket(`${ts.server.wsUrl}/graphql/ws`, 'graphql-transport-ws', { localAddress }),
  );
}

async function assertRefused(c: TestClient): Promise<void> {
  const m = await c.next();
  assert.equal(m.type, 'error');
  assert.equal(m.payload.code, 'CONNECTION_LIMIT');
  assert.equal((await c.closed()).code, 1013);
}

async function authenticate(c: TestClient, token: string): Promise<void> {
  c.send({ type: 'auth', id: 'auth', payload: { token } });
  assert.equal((await c.reply('auth')).type, 'auth_success');
}

async function closeAll(ts: TestServer, clients: TestClient[]): Promise<void> {
  for (const c of clients) c.close();
  await within(3000, () => ts.server.gateway.connectionCount === 0);
}

test('the defaults: unauthenticated sockets are capped per address and in total, connections per address too', () => {
  assert.ok(DEFAULTS.max_unauthenticated_connections_per_ip > 0);
  assert.ok(DEFAULTS.max_unauthenticated_connections_per_ip <= 16);
  assert.ok(DEFAULTS.max_connections_per_ip > 0);
  assert.ok(DEFAULTS.max_connections_per_ip < DEFAULTS.websocket_max_connections);
  assert.ok(DEFAULTS.websocket_auth_timeout <= 10);
});

test('with the defaults, unauthenticated sockets from one address are cut at the cap; others are unaffected', async () => {
  const ts = await server();
  const cap = ts.server.config.max_unauthenticated_connections_per_ip;
  const held: TestClient[] = [];
  for (let i = 0; i < cap; i++) held.push(await socketFrom(ts));
  await assertRefused(await socketFrom(ts));
  // Another address still connects and authenticates.
  const other = await socketFrom(ts, '127.0.0.2');
  await authenticate(other, ts.token);
  // An unauthenticated socket that authenticates frees its place for the next one.
  await authenticate(held[0]!, ts.token);
  const next = await socketFrom(ts);
  await authenticate(next, ts.token);
  await closeAll(ts, [...held, other, next]);
});

test('with the defaults, authenticated connections from one address are limited too', async () => {
  const ts = await server();
  const limit = ts.server.config.max_connections_per_ip;
  const held: TestClient[] = [];
  for (let i = 0; i < limit; i++) {
    const c = await socketFrom(ts);
    await authenticate(c, ts.token);
    held.push(c);
  }
  await assertRefused(await socketFrom(ts));
  const other = await socketFrom(ts, '127.0.0.2');
  await authenticate(other, ts.token);
  await closeAll(ts, [...held, other]);
});

test('with the defaults, a socket that never authenticates is closed within websocket_auth_timeout', async () => {
  const ts = await server();
  const c = await socketFrom(ts);
  const opened = Date.now();
  const closed = await c.closed(DEFAULTS.websocket_auth_timeout * 1000 + 3000);
  const elapsed = Date.now() - opened;
  assert.equal(closed.code, 1008);
  assert.equal(closed.reason, 'authentication timeout');
  assert.ok(elapsed >= DEFAULTS.websocket_auth_timeout * 1000 - 200, `closed after ${elapsed} ms`);
});

test('the total cap counts unauthenticated sockets of every address and every endpoint', async () => {
  const ts = await server({ max_unauthenticated_connections: 4, max_unauthenticated_connections_per_ip: 0 });
  const held = [
    await socketFrom(ts, '127.0.0.2'),
    await graphqlSocketFrom(ts, '127.0.0.3'),
    await socketFrom(ts, '127.0.0.4', '/api/v1/metrics/stream'),
    await socketFrom(ts, '127.0.0.5', '/api/v1/documents/collections/things/watch'),
  ];
  await assertRefused(await socketFrom(ts, '127.0.0.6'));
  // graphql-ws sockets are refused with a close code alone (the protocol has no RustyDB error message).
  const refusedGraphql = await graphqlSocketFrom(ts, '127.0.0.6');
  assert.equal((await refusedGraphql.closed()).code, 1013);
  // Authenticating (here: graphql-ws's connection_init) takes a socket out of the count.
  held[1]!.sendRaw(
    JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${ts.token}` } }),
  );
  await within(3000, () => held[1]!.rawTexts.some((t) => t.includes('connection_ack')));
  const next = await socketFrom(ts, '127.0.0.6');
  await authenticate(next, ts.token);
  // A socket that closes before authenticating frees its place too.
  held[0]!.close();
  await held[0]!.closed();
  await within(3000, () => ts.server.gateway.unauthenticatedCount === 2);
  const last = await socketFrom(ts, '127.0.0.7');
  await authenticate(last, ts.token);
  await closeAll(ts, [...held, next, last]);
});

test('every endpoint closes a socket that does not authenticate within websocket_auth_timeout', async () => {
  const ts = await server({ websocket_auth_timeout: 0.4, websocket_timeout: 60 });
  const started = Date.now();
  const stream = await socketFrom(ts);
  const metrics = await socketFrom(ts, '127.0.0.1', '/api/v1/metrics/stream');
  const watch = await socketFrom(ts, '127.0.0.1', '/api/v1/documents/collections/things/watch');
  const graphql = await graphqlSocketFrom(ts);
  for (const c of [stream, metrics, watch]) {
    const closed = await c.closed(3000);
    assert.deepEqual(closed, { code: 1008, reason: 'authentication timeout' });
  }
  assert.equal((await graphql.closed(3000)).code, 4408);
  assert.ok(Date.now() - started < 2500, `took ${Date.now() - started} ms`);
});

test('a URL token counts as authenticated once it is checked', async () => {
  const ts = await server({ max_unauthenticated_connections_per_ip: 1 });
  const authed: TestClient[] = [];
  for (let i = 0; i < 3; i++) authed.push(await ts.connectAuthed());
  const pending = await socketFrom(ts);
  await assertRefused(await socketFrom(ts));
  await closeAll(ts, [...authed, pending]);
});

test('per-address limits count an IPv6 client by its /64 and a mapped IPv4 address as IPv4', () => {
  const net = addressKey('2001:db8:1:2::1');
  for (const same of [
    '2001:db8:1:2::ffff',
    '2001:0db8:0001:0002:aaaa:bbbb:cccc:dddd',
    '2001:db8:1:2:0:0:0:7%eth0',
  ]) {
    assert.equal(addressKey(same), net, same);
  }
  assert.notEqual(addressKey('2001:db8:1:3::1'), net);
  assert.equal(addressKey('::ffff:203.0.113.7'), '203.0.113.7');
  assert.equal(addressKey('203.0.113.7'), '203.0.113.7');
  assert.notEqual(addressKey('::1'), addressKey('::2:0:0:0:1'));
  assert.equal(addressKey('::'), addressKey('0:0:0:0:1:2:3:4'));
});

/** A raw TCP connection that sends `text` and then nothing: how long until the server drops it. */
function heldFor(ts: TestServer, text: string, limitMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = tcpConnect(ts.server.port, '127.0.0.1', () => socket.write(text));
    socket.resume();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`still open after ${limitMs} ms`));
    }, limitMs);
    socket.on('error', () => {});
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Date.now() - started);
    });
  });
}

test('HTTP (and WebSocket upgrades) must send their headers within websocket_auth_timeout', async () => {
  const ts = await server({ websocket_auth_timeout: 1, websocket_timeout: 60 });
  // Slowloris: a request (plain or an upgrade) whose headers never end.
  const partialRequest = `GET /api/v1/health/liveness HTTP/1.1\r\nHost: 127.0.0.1:${ts.server.port}\r\nX-Slow: 1\r\n`;
  const partialUpgrade = `GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n`;
  // …and a connection that never sends a byte.
  for (const text of [partialRequest, partialUpgrade, '']) {
    const held = await heldFor(ts, text, 8000);
    assert.ok(held >= 900, `dropped after only ${held} ms`);
  }
  // A complete request on a kept-alive connection is answered as usual.
  const res = await ts.http('/api/v1/health/liveness', { token: null });
  assert.equal(res.status, 200);
});
