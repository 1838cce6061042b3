/**
 * Cross-site requests: a web page on another site must not be able to drive a user's browser into the
 * server. The Origin header of WebSocket upgrades (every endpoint) and HTTP requests (CORS) is checked
 * against an allow-list: clients that send no Origin (Node, Python, the CLI) are unaffected; the server's
 * own origin and loopback origins are allowed by default; any other origin needs `allowed_origins`.
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import WebSocket from 'ws';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';

const servers: TestServer[] = [];
after(async () => {
  for (const ts of servers) await ts.close();
});

async function server(overrides: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer(overrides);
  servers.push(ts);
  return ts;
}

const WS_ENDPOINTS = [
  ['/api/v1/stream', undefined],
  ['/graphql/ws', 'graphql-transport-ws'],
  ['/api/v1/metrics/stream', undefined],
  ['/api/v1/documents/collections/things/watch', undefined],
] as const;

/** The HTTP status of a WebSocket upgrade (101 when it was accepted). */
function upgradeStatus(
  ts: TestServer,
  path: string,
  headers: Record<string, string>,
  protocol?: string,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${ts.server.wsUrl}${path}`, protocol ? [protocol] : [], { headers });
    ws.once('open', () => {
      ws.terminate();
      resolve(101);
    });
    ws.once('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      resolve(res.statusCode ?? 0);
    });
    ws.once('error', (err) => reject(err));
  });
}

interface HttpAnswer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A raw HTTP request, so that the test chooses the Origin and Host headers a browser would send. */
function httpCall(
  ts: TestServer,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: unknown,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const text = body === undefined ? undefined : JSON.stringify(body);
    const req = httpRequest(
      `${ts.server.url}${path}`,
      {
        method,
        headers: {
          ...headers,
          ...(text !== undefined
            ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)) }
            : {}),
        },
      },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (data += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

test('a WebSocket upgrade from a foreign origin is refused with 403 on every endpoint', async () => {
  const ts = await server();
  for (const [path, protocol] of WS_ENDPOINTS) {
    assert.equal(
      await upgradeStatus(ts, path, { origin: 'https://evil.example' }, protocol),
      403,
      `${path} accepted a foreign origin`,
    );
    assert.equal(await upgradeStatus(ts, path, { origin: 'null' }, protocol), 403, `${path} accepted null`);
    // No Origin (a Node, Python or CLI client): unaffected.
    assert.equal(await upgradeStatus(ts, path, {}, protocol), 101, `${path} refused a client without Origin`);
  }
  const audit = await ts.http('/api/v1/audit?event=origin');
  const events = (audit.body as { data: { events: { event: string; details: { origin: string } }[] } }).data
    .events;
  assert.ok(events.some((e) => e.event === 'origin.denied' && e.details.origin === 'https://evil.example'));
});

test('loopback origins (an application dev server on another port) are allowed by default', async () => {
  const ts = await server();
  for (const origin of [
    'http://localhost:3000',
    'http://127.0.0.1:5173',
    'http://[::1]:8081',
    'https://localhost',
  ]) {
    assert.equal(await upgradeStatus(ts, '/api/v1/stream', { origin }), 101, origin);
  }
  // Only loopback: a name that merely starts like one is foreign.
  for (const origin of [
    'http://localhost.evil.example',
    'http://127.0.0.1.evil.example',
    'http://10.0.0.1',
  ]) {
    assert.equal(await upgradeStatus(ts, '/api/v1/stream', { origin }), 403, origin);
  }
});

test('a server on a loopback address does not take a page under another name for its own (DNS rebinding)', async () => {
  const ts = await server({ require_authentication: false });
  const { port } = ts.server;
  const rebound = { origin: `http://rebind.example:${port}`, host: `rebind.example:${port}` };
  assert.equal(await upgradeStatus(ts, '/api/v1/stream', rebound), 403);
  const answer = await httpCall(ts, 'POST', '/api/v1/query', rebound, { sql: 'SELECT 1' });
  assert.equal(answer.status, 403);
  // A same-origin GET carries no Origin: without authentication, the rebound name itself is refused.
  const read = await httpCall(ts, 'GET', '/api/v1/users', { host: `rebind.example:${port}` });
  assert.equal(read.status, 403);
  assert.doesNotMatch(read.body, /admin/);
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
    assert.equal((await httpCall(ts, 'GET', '/api/v1/users', { host })).status, 200, host);
  }
});

test('a server on a public address allows its own origin, and only that', async () => {
  const ts = await server({ host: '0.0.0.0' });
  const port = ts.server.port;
  const url = `ws://127.0.0.1:${port}/api/v1/stream`;
  const status = (headers: Record<string, string>): Promise<number> =>
    new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      ws.once('open', () => (ws.terminate(), resolve(101)));
      ws.once(
        'unexpected-response',
        (_req, res) => (res.resume(), ws.terminate(), resolve(res.statusCode ?? 0)),
      );
      ws.once('error', reject);
    });
  assert.equal(
    await status({ host: `db.example.test:${port}`, origin: `http://db.example.test:${port}` }),
    101,
  );
  // Behind a proxy that terminates TLS the page is https on the default port, and so is the Host.
  assert.equal(await status({ host: 'db.example.test', origin: 'https://db.example.test' }), 101);
  assert.equal(
    await status({ host: `db.example.test:${port}`, origin: `http://app.example.test:${port}` }),
    403,
  );
  assert.equal(await status({ host: `db.example.test:${port}`, origin: 'http://db.example.test:9' }), 403);
});

test('HTTP: a foreign origin is refused before anything runs; an allowed one gets CORS headers', async () => {
  const ts = await server();
  await sql(ts, 'CREATE TABLE visits (id INTEGER PRIMARY KEY, who TEXT)');
  const auth = { authorization: `Bearer ${ts.token}` };

  const foreign = await httpCall(
    ts,
    'POST',
    '/api/v1/query',
    { ...auth, origin: 'https://evil.example' },
    { sql: "INSERT INTO visits (who) VALUES ('evil')" },
  );
  assert.equal(foreign.status, 403);
  assert.equal(JSON.parse(foreign.body).error.code, 'PERMISSION_DENIED');
  assert.equal(foreign.headers['access-control-allow-origin'], undefined);
  assert.deepEqual((await sql(ts, 'SELECT count(*) FROM visits')).rows, [[0]]);

  const preflightForeign = await httpCall(ts, 'OPTIONS', '/api/v1/query', {
    origin: 'https://evil.example',
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  });
  assert.equal(preflightForeign.status, 403);
  assert.equal(preflightForeign.headers['access-control-allow-origin'], undefined);

  const origin = 'http://localhost:3000';
  const preflight = await httpCall(ts, 'OPTIONS', '/api/v1/query', {
    origin,
    'access-control-request-method': 'POST',
    'access-control-request-headers': 'authorization, content-type',
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers['access-control-allow-origin'], origin);
  const allowedHeaders = String(preflight.headers['access-control-allow-headers']).toLowerCase();
  assert.match(allowedHeaders, /authorization/);
  assert.match(allowedHeaders, /content-type/);
  assert.match(String(preflight.headers['access-control-allow-methods']), /POST/);
  assert.match(String(preflight.headers.vary), /origin/i);
  // Tokens travel in a header, never in cookies: credentials are not allowed.
  assert.equal(preflight.headers['access-control-allow-credentials'], undefined);

  const allowed = await httpCall(
    ts,
    'POST',
    '/api/v1/query',
    { ...auth, origin },
    { sql: "INSERT INTO visits (who) VALUES ('app')" },
  );
  assert.equal(allowed.status, 200);
  assert.equal(allowed.headers['access-control-allow-origin'], origin);
  assert.deepEqual((await sql(ts, 'SELECT who FROM visits')).rows, [['app']]);

  // Login, GraphQL and the document API sit behind the same check.
  for (const path of ['/api/v1/auth/login', '/graphql', '/api/v1/documents/collections']) {
    const refused = await httpCall(ts, 'POST', path, { origin: 'https://evil.example' }, {});
    assert.equal(refused.status, 403, path);
  }
  // Without an Origin nothing changes, and no CORS header is sent.
  const plain = await httpCall(ts, 'POST', '/api/v1/query', auth, { sql: 'SELECT 1' });
  assert.equal(plain.status, 200);
  assert.equal(plain.headers['access-control-allow-origin'], undefined);
});

test('allowed_origins lists the origins of applications served elsewhere; * allows any', async () => {
  const ts = await server({ allowed_origins: 'https://app.example.com, https://admin.example.com:8443' });
  for (const origin of [
    'https://app.example.com',
    'https://admin.example.com:8443',
    'https://APP.example.com:443',
  ]) {
    assert.equal(await upgradeStatus(ts, '/api/v1/stream', { origin }), 101, origin);
    const answer = await httpCall(ts, 'OPTIONS', '/api/v1/batch', {
      origin,
      'access-control-request-method': 'POST',
    });
    assert.equal(answer.status, 204, origin);
  }
  for (const origin of ['http://app.example.com', 'https://admin.example.com', 'https://evil.example']) {
    assert.equal(await upgradeStatus(ts, '/api/v1/stream', { origin }), 403, origin);
  }
  // Loopback origins stay allowed.
  assert.equal(await upgradeStatus(ts, '/api/v1/stream', { origin: 'http://localhost:3000' }), 101);

  const any = await server({ allowed_origins: '*' });
  assert.equal(await upgradeStatus(any, '/api/v1/stream', { origin: 'https://anything.example' }), 101);
});

test('allowed_origins entries that are not origins stop start-up naming the field', async () => {
  for (const bad of [
    'app.example.com',
    'https://app.example.com/path',
    'ftp://app.example.com',
    'https://*.example.com',
  ]) {
    await assert.rejects(
      startTestServer({ allowed_origins: bad }),
      /allowed_origins: .* is not an origin/,
      bad,
    );
  }
});

test('a page on a foreign origin cannot use a server whose authentication is off', async () => {
  const ts = await server({ require_authentication: false });
  const refused = await upgradeStatus(ts, '/api/v1/stream', { origin: 'https://evil.example' });
  assert.equal(refused, 403);
  // The same server still serves a client without Origin, which acts as admin.
  const c = await TestClient.connect(`${ts.server.wsUrl}/api/v1/stream`);
  const { rows } = await c.query('SELECT 1');
  assert.deepEqual(rows, [[1]]);
  c.close();
});
