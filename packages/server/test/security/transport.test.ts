/**
 * Transport security: real TLS with a certificate made by the `openssl` CLI (https and wss, TLS 1.2 at
 * least, HSTS), start-up refusing a missing or unusable certificate with a message naming the field,
 * start-up warnings for an exposed configuration (seen through the logger), `allow_url_token`, and no
 * token or password ever reaching the log.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config/config.ts';
import { silentLogger, type Logger } from '../../src/core/logger.ts';
import { startServer, type RustyServer } from '../../src/server.ts';
import { ADMIN_PASSWORD, freshDataDir, login, startTestServer } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';
import { cleanEnv, runCli } from '../helpers/cli.ts';
import { identityOf, signToken } from '../helpers/tokens.ts';

const dir = mkdtempSync(join(tmpdir(), 'rustydb-tls-'));
const certPath = join(dir, 'cert.pem');
const keyPath = join(dir, 'key.pem');
const otherKeyPath = join(dir, 'other-key.pem');
let ca: Buffer;

function openssl(args: string[]): void {
  try {
    execFileSync('openssl', args, { stdio: 'pipe' });
  } catch (err) {
    throw new Error(
      `the openssl CLI is needed to make a test certificate (apt-get install openssl): ${(err as Error).message}`,
    );
  }
}

before(() => {
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    keyPath,
    '-out',
    certPath,
    '-days',
    '2',
    '-subj',
    '/CN=localhost',
    '-addext',
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
  ]);
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', otherKeyPath]);
  ca = readFileSync(certPath);
});

after(() => rmSync(dir, { recursive: true, force: true }));

interface Captured {
  level: string;
  message: string;
  fields?: Record<string, unknown>;
}

function capturingLogger(): { logger: Logger; lines: Captured[] } {
  const lines: Captured[] = [];
  const at = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void lines.push({ level, message, ...(fields ? { fields } : {}) });
  return { logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') }, lines };
}

function httpsGet(url: string, options: { ca?: Buffer; maxVersion?: 'TLSv1.1' | 'TLSv1.2' } = {}) {
  return new Promise<{
    status: number;
    headers: Record<string, unknown>;
    protocol: string | null;
    body: string;
  }>((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        ...(options.ca ? { ca: options.ca } : {}),
        ...(options.maxVersion ? { maxVersion: options.maxVersion } : {}),
      },
      (res) => {
        let body = '';
        const protocol = (res.socket as TLSSocket).getProtocol();
        res.on('data', (chunk: Buffer) => (body += chunk.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, protocol, body }));
      },
    );
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** The shared helper logs in with fetch, which does not trust a self-signed certificate: start directly. */
async function startTls(): Promise<{ server: RustyServer; close(): Promise<void> }> {
  const dataDir = freshDataDir();
  const config = loadConfig({
    overrides: {
      port: 0,
      data_dir: dataDir,
      admin_password: ADMIN_PASSWORD,
      enable_tls: true,
      tls_cert_path: certPath,
      tls_key_path: keyPath,
    },
  });
  const server = await startServer(config, { logger: silentLogger });
  return {
    server,
    async close() {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

test('https: TLS 1.2 or later, the certificate served, and an HSTS header', async () => {
  const ts = await startTls();
  try {
    assert.match(ts.server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const res = await httpsGet(`${ts.server.url}/api/v1/health/liveness`, { ca });
    assert.equal(res.status, 200);
    assert.ok(res.protocol === 'TLSv1.3' || res.protocol === 'TLSv1.2', String(res.protocol));
    assert.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    // Error responses carry it too.
    const missing = await httpsGet(`${ts.server.url}/api/v1/nowhere`, { ca });
    assert.equal(missing.status, 404);
    assert.equal(missing.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    // Capped at TLS 1.2 the client still connects.
    assert.equal(
      (await httpsGet(`${ts.server.url}/api/v1/health/liveness`, { ca, maxVersion: 'TLSv1.2' })).protocol,
      'TLSv1.2',
    );
  } finally {
    await ts.close();
  }
});

test('TLS 1.1 and older are refused', async () => {
  const ts = await startTls();
  try {
    const error = await new Promise<Error>((resolve) => {
      const socket = tlsConnect(
        { host: '127.0.0.1', port: ts.server.port, ca, minVersion: 'TLSv1', maxVersion: 'TLSv1.1' },
        () => {
          socket.destroy();
          resolve(new Error('handshake succeeded'));
        },
      );
      socket.on('error', resolve);
    });
    assert.notEqual(error.message, 'handshake succeeded');
  } finally {
    await ts.close();
  }
});

test('a client that does not trust the certificate refuses it; plain http gets only a notice to use https', async () => {
  const ts = await startTls();
  try {
    await assert.rejects(
      httpsGet(`${ts.server.url}/api/v1/health/liveness`),
      /self[- ]signed|unable to verify|certificate/i,
    );
    const plain = (path: string, accept: string) =>
      new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest(
          `http://127.0.0.1:${ts.server.port}${path}`,
          { headers: { accept } },
          (res) => {
            let body = '';
            res.on('data', (chunk: Buffer) => (body += chunk.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
          },
        );
        req.setTimeout(3000, () => req.destroy(new Error('timeout')));
        req.on('error', reject);
        req.end();
      });
    // A browser gets a page that says so, with the https:// address; nothing of the API is served.
    const page = await plain('/', 'text/html,application/xhtml+xml');
    assert.equal(page.status, 400);
    assert.match(page.body, /requires HTTPS/);
    assert.ok(page.body.includes(`https://127.0.0.1:${ts.server.port}/`), page.body);
    const api = await plain('/api/v1/health/liveness', 'application/json');
    assert.equal(api.status, 400);
    assert.deepEqual(JSON.parse(api.body), {
      success: false,
      error: { code: 'INVALID_MESSAGE', message: 'this server requires TLS: use https:// and wss://' },
    });
    // And TLS on the same port still works after those.
    const secure = await httpsGet(`${ts.server.url}/api/v1/health/liveness`, { ca });
    assert.equal(secure.status, 200);
  } finally {
    await ts.close();
  }
});

test('wss: log in over https, authenticate over wss, run a query; ws:// is refused', async () => {
  const ts = await startTls();
  try {
    assert.match(ts.server.wsUrl, /^wss:\/\//);
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        `${ts.server.url}/api/v1/auth/login`,
        { method: 'POST', ca, headers: { 'content-type': 'application/json' } },
        (r) => {
          let body = '';
          r.on('data', (c: Buffer) => (body += c.toString()));
          r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(JSON.stringify({ username: 'admin', password: ADMIN_PASSWORD }));
    });
    assert.equal(res.status, 200);
    const token = (JSON.parse(res.body) as { data: { token: string } }).data.token;
    const c = await TestClient.adopt(new WebSocket(`${ts.server.wsUrl}/api/v1/stream`, { ca }));
    c.send({ type: 'auth', id: 'a', payload: { token } });
    assert.equal((await c.reply('a')).type, 'auth_success');
    assert.deepEqual((await c.query('SELECT 6 * 7')).rows, [[42]]);
    c.close();
    await assert.rejects(TestClient.connect(`ws://127.0.0.1:${ts.server.port}/api/v1/stream`, {}, 3000));
  } finally {
    await ts.close();
  }
});

async function expectStartFailure(overrides: Record<string, unknown>, message: RegExp): Promise<void> {
  const dataDir = freshDataDir();
  try {
    const config = loadConfig({
      overrides: {
        port: 0,
        data_dir: dataDir,
        admin_password: ADMIN_PASSWORD,
        enable_tls: true,
        ...overrides,
      },
    });
    const { logger } = capturingLogger();
    await assert.rejects(startServer(config, { logger }), message);
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('a missing certificate stops start-up naming tls_cert_path', async () => {
  await expectStartFailure(
    { tls_cert_path: join(dir, 'nope.pem'), tls_key_path: keyPath },
    /invalid configuration: tls_cert_path: cannot read .*nope\.pem: ENOENT/,
  );
});

test('a missing key stops start-up naming tls_key_path', async () => {
  await expectStartFailure(
    { tls_cert_path: certPath, tls_key_path: join(dir, 'nope-key.pem') },
    /invalid configuration: tls_key_path: cannot read .*: ENOENT/,
  );
});

test('a directory where the certificate should be stops start-up naming tls_cert_path', async () => {
  const sub = join(dir, 'a-directory');
  mkdirSync(sub, { recursive: true });
  await expectStartFailure(
    { tls_cert_path: sub, tls_key_path: keyPath },
    /invalid configuration: tls_cert_path: cannot read .*: EISDIR/,
  );
});

test('a file that is not a certificate stops start-up naming tls_cert_path', async () => {
  const junk = join(dir, 'junk.pem');
  writeFileSync(junk, 'this is not a certificate\n');
  await expectStartFailure(
    { tls_cert_path: junk, tls_key_path: keyPath },
    /invalid configuration: tls_cert_path: .*junk\.pem is not a usable PEM certificate/,
  );
});

test('a key that does not belong to the certificate stops start-up naming tls_key_path', async () => {
  await expectStartFailure(
    { tls_cert_path: certPath, tls_key_path: otherKeyPath },
    /invalid configuration: tls_key_path: .*other-key\.pem is not a usable PEM private key/,
  );
});

test('enable_tls without the paths is a configuration error naming enable_tls', () => {
  assert.throws(
    () => loadConfig({ overrides: { enable_tls: true } }),
    /invalid configuration: enable_tls: needs both tls_cert_path and tls_key_path/,
  );
  assert.throws(() => loadConfig({ overrides: { enable_tls: true, tls_cert_path: certPath } }), /enable_tls/);
});

test('the CLI exits 1 with the message when the certificate is missing', { timeout: 30_000 }, async () => {
  const dataDir = freshDataDir();
  const cli = runCli(
    [
      'serve',
      '--port',
      '0',
      '--data-dir',
      dataDir,
      '--enable-tls',
      '--tls-cert-path',
      join(dir, 'gone.pem'),
      '--tls-key-path',
      keyPath,
    ],
    cleanEnv({ RUSTYDB_ADMIN_PASSWORD: 'x-password' }),
  );
  try {
    assert.equal((await cli.exited()).code, 1);
    assert.match(cli.stderr(), /invalid configuration: tls_cert_path: cannot read .*gone\.pem/);
    assert.doesNotMatch(cli.stdout(), /listening/);
  } finally {
    cli.kill();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

async function warningsFor(overrides: Record<string, unknown>): Promise<string[]> {
  const { logger, lines } = capturingLogger();
  const dataDir = freshDataDir();
  const server = await startServer(
    loadConfig({ overrides: { port: 0, data_dir: dataDir, admin_password: ADMIN_PASSWORD, ...overrides } }),
    { logger },
  );
  await server.close();
  rmSync(dataDir, { recursive: true, force: true });
  return lines.filter((l) => l.level === 'warn').map((l) => l.message);
}

test('start-up warns when listening beyond loopback without TLS', async () => {
  const warnings = await warningsFor({ host: '0.0.0.0' });
  assert.deepEqual(warnings, [
    'listening on 0.0.0.0 without TLS: passwords and tokens cross the network in clear text; set enable_tls in production',
  ]);
});

test('start-up warns when authentication is off, louder beyond loopback', async () => {
  assert.deepEqual(await warningsFor({ require_authentication: false }), [
    'require_authentication is off: every client acts as admin',
  ]);
  const exposed = await warningsFor({
    host: '0.0.0.0',
    require_authentication: false,
    enable_tls: true,
    tls_cert_path: certPath,
    tls_key_path: keyPath,
  });
  assert.deepEqual(exposed, [
    'require_authentication is off while listening on 0.0.0.0: every client on the network acts as admin',
  ]);
});

test('no warning on loopback with authentication on, nor beyond loopback with TLS', async () => {
  assert.deepEqual(await warningsFor({}), []);
  assert.deepEqual(
    await warningsFor({ host: '0.0.0.0', enable_tls: true, tls_cert_path: certPath, tls_key_path: keyPath }),
    [],
  );
});

test('allow_url_token off: a URL token is refused with auth_error and 1008; the auth message works', async () => {
  const ts = await startTestServer({ allow_url_token: false });
  try {
    const c = await ts.connect({ token: ts.token });
    const m = await c.next();
    assert.equal(m.type, 'auth_error');
    assert.equal(m.payload.code, 'AUTH_FAILED');
    assert.equal(
      m.payload.message,
      'tokens in the URL are disabled on this server (allow_url_token is off); send an auth message instead',
    );
    assert.deepEqual(await c.closed(), { code: 1008, reason: 'token in URL not allowed' });
    const ok = await ts.connect();
    ok.send({ type: 'auth', id: 'a', payload: { token: ts.token } });
    assert.equal((await ok.reply('a')).type, 'auth_success');
    ok.close();
  } finally {
    await ts.close();
  }
});

test('no token or password ever reaches the log or the audit log', async () => {
  const { logger, lines } = capturingLogger();
  const ts = await startTestServer({}, { logger });
  try {
    const wrongPassword = 'guess-me-not-1';
    await login(ts.server.url, 'admin', wrongPassword);
    const forged = await signToken(new TextEncoder().encode('z'.repeat(40)));
    const expired = await signToken(ts.secret(), { claims: identityOf(ts.token), iat: 1, exp: 2 });
    for (const token of [ts.token, forged, expired, 'garbage.token.value']) {
      const c = await ts.connect({ token });
      await c.next();
      c.close();
      await ts.http('/api/v1/query', { body: { sql: 'SELECT * FROM missing_table' }, token });
    }
    // An internal failure path too: a socket that errors.
    const c = await ts.connect({ token: ts.token });
    await c.next();
    c.sendRaw(Buffer.from([0xff]), { binary: false });
    await c.closed();
    await ts.http('/api/v1/audit');
    const logged = JSON.stringify(lines);
    const audit = readFileSync(join(ts.dataDir, 'audit.log'), 'utf8');
    for (const secret of [ts.token, forged, expired, 'garbage.token.value', ADMIN_PASSWORD, wrongPassword]) {
      assert.ok(!logged.includes(secret), `log contains ${secret.slice(0, 10)}…`);
      assert.ok(!audit.includes(secret), `audit log contains ${secret.slice(0, 10)}…`);
    }
    assert.ok(!audit.includes('?token='), 'a URL with its query string reached the audit log');
    assert.ok(audit.includes('"endpoint":"/api/v1/stream"'));
  } finally {
    await ts.close();
  }
});
