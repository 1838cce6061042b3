/**
 * Tokens from an external identity provider: RS256 and ES256, checked against the keys the provider
 * publishes (a real JWKS served over HTTP here), its issuer and this server's audience; the roles come
 * from a claim through jwks_role_map. Forged, misaddressed, expired and confused-algorithm tokens are
 * refused, and the server's own tokens keep working beside them.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK } from 'jose';
import { loadConfig } from '../../src/config/config.ts';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { assertAlive, snapshot } from './helpers.ts';

const ISSUER = 'https://idp.example.test/';
const AUDIENCE = 'rustydb-prod';

let jwks: Server;
let jwksUrl: string;
let jwksRequests = 0;
let ts: TestServer;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const rogue = generateKeyPairSync('rsa', { modulusLength: 2048 });

before(async () => {
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ec.publicKey)), kid: 'ec-1', alg: 'ES256', use: 'sig' },
  ];
  jwks = createServer((_req, res) => {
    jwksRequests++;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
  ts = await startTestServer({
    jwks_url: jwksUrl,
    jwks_issuer: ISSUER,
    jwks_audience: AUDIENCE,
    jwks_user_claim: 'email',
    jwks_roles_claim: 'groups',
    jwks_role_map: JSON.stringify({ 'db-readers': 'ledger_reader', 'db-admins': ['admin'] }),
  });
  await sql(ts, 'CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER)');
  await sql(ts, 'CREATE TABLE payroll (id INTEGER PRIMARY KEY, salary INTEGER)');
  await sql(ts, 'INSERT INTO ledger (amount) VALUES (5)');
  await sql(ts, 'INSERT INTO payroll (salary) VALUES (9000)');
  const role = await ts.http('/api/v1/roles', {
    body: { name: 'ledger_reader', grants: [{ privilege: 'SELECT', table: 'ledger' }] },
  });
  assert.equal(role.status, 201);
});

after(async () => {
  await ts.close();
  await new Promise<void>((resolve) => jwks.close(() => resolve()));
});

interface Spec {
  alg?: 'RS256' | 'ES256' | 'PS256';
  key?: KeyObject;
  kid?: string;
  iss?: string;
  aud?: string;
  exp?: number;
  claims?: Record<string, unknown>;
}

async function idpToken(spec: Spec = {}): Promise<string> {
  const alg = spec.alg ?? 'RS256';
  const key = spec.key ?? (alg === 'ES256' ? ec.privateKey : rsa.privateKey);
  return new SignJWT({ email: 'erika@example.test', groups: ['db-readers'], ...spec.claims })
    .setProtectedHeader({ alg, kid: spec.kid ?? (alg === 'ES256' ? 'ec-1' : 'rsa-1') })
    .setSubject('idp-user-123')
    .setIssuer(spec.iss ?? ISSUER)
    .setAudience(spec.aud ?? AUDIENCE)
    .setIssuedAt()
    .setJti(crypto.randomUUID())
    .setExpirationTime(spec.exp ?? Math.floor(Date.now() / 1000) + 600)
    .sign(key);
}

async function query(
  token: string,
  statement: string,
): Promise<{ status: number; code?: string; rows?: unknown[][] }> {
  const res = await ts.http('/api/v1/query', { body: { sql: statement }, token });
  const body = res.body as { data?: { rows: unknown[][] }; error?: { code: string } };
  return { status: res.status, ...(body.error ? { code: body.error.code } : { rows: body.data!.rows }) };
}

test('an RS256 token maps its group to a role: the granted table is readable, nothing else', async () => {
  const token = await idpToken();
  assert.deepEqual(await query(token, 'SELECT amount FROM ledger'), { status: 200, rows: [[5]] });
  assert.deepEqual(await query(token, 'SELECT salary FROM payroll'), {
    status: 403,
    code: 'PERMISSION_DENIED',
  });
  assert.deepEqual(await query(token, 'DELETE FROM ledger'), { status: 403, code: 'PERMISSION_DENIED' });
  assert.equal((await ts.http('/api/v1/users', { token })).status, 403);
});

test('an ES256 token works on the WebSocket, and auth_success names the user and mapped roles', async () => {
  const token = await idpToken({ alg: 'ES256' });
  const c = await ts.connect();
  c.send({ type: 'auth', id: 'a', payload: { token } });
  const m = await c.reply('a');
  assert.equal(m.type, 'auth_success');
  assert.equal(m.payload.user, 'erika@example.test');
  assert.deepEqual(m.payload.roles, ['ledger_reader']);
  assert.deepEqual((await c.query('SELECT amount FROM ledger')).rows, [[5]]);
  assert.equal((await c.query('SELECT * FROM payroll')).error?.payload.code, 'PERMISSION_DENIED');
  c.close();
});

test('a mapped admin group gives admin; an unmapped group gives nothing', async () => {
  const admin = await idpToken({ claims: { groups: ['db-admins'], email: 'boss@example.test' } });
  assert.deepEqual(await query(admin, 'SELECT salary FROM payroll'), { status: 200, rows: [[9000]] });
  const nobody = await idpToken({ claims: { groups: ['marketing', 'admin'], email: 'mk@example.test' } });
  assert.deepEqual(await query(nobody, 'SELECT amount FROM ledger'), {
    status: 403,
    code: 'PERMISSION_DENIED',
  });
});

test('a key the provider does not publish is refused', async () => {
  const token = await idpToken({ key: rogue.privateKey });
  assert.deepEqual(await query(token, 'SELECT 1'), { status: 401, code: 'AUTH_FAILED' });
  const unknownKid = await idpToken({ key: rogue.privateKey, kid: 'rogue-kid' });
  assert.deepEqual(await query(unknownKid, 'SELECT 1'), { status: 401, code: 'AUTH_FAILED' });
});

test('the wrong issuer or audience is refused', async () => {
  assert.deepEqual(await query(await idpToken({ iss: 'https://evil.example.test/' }), 'SELECT 1'), {
    status: 401,
    code: 'AUTH_FAILED',
  });
  assert.deepEqual(await query(await idpToken({ aud: 'another-app' }), 'SELECT 1'), {
    status: 401,
    code: 'AUTH_FAILED',
  });
});

test('an expired provider token is AUTH_EXPIRED', async () => {
  const token = await idpToken({ exp: Math.floor(Date.now() / 1000) - 120 });
  assert.deepEqual(await query(token, 'SELECT 1'), { status: 401, code: 'AUTH_EXPIRED' });
});

test('algorithms other than RS256/ES256 are refused, and the RSA public key is no HMAC secret', async () => {
  const ps = await idpToken({ alg: 'PS256' });
  assert.deepEqual(await query(ps, 'SELECT 1'), { status: 401, code: 'AUTH_FAILED' });
  // Algorithm confusion: an HS256 token "signed" with the provider's public key.
  const pem = rsa.publicKey.export({ type: 'spki', format: 'pem' });
  const confused = await new SignJWT({ email: 'boss@example.test', groups: ['db-admins'] })
    .setProtectedHeader({ alg: 'HS256', kid: 'rsa-1' })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(String(pem)));
  assert.deepEqual(await query(confused, 'SELECT salary FROM payroll'), { status: 401, code: 'AUTH_FAILED' });
});

test('a token without the user claim is refused', async () => {
  const token = await idpToken({ claims: { email: undefined } });
  assert.deepEqual(await query(token, 'SELECT 1'), { status: 401, code: 'AUTH_FAILED' });
});

test('a provider token can be logged out by its jti, but not refreshed here', async () => {
  const token = await idpToken();
  assert.equal((await ts.http('/api/v1/auth/refresh', { method: 'POST', token })).status, 400);
  assert.equal((await ts.http('/api/v1/auth/logout', { method: 'POST', token })).status, 200);
  assert.deepEqual(await query(token, 'SELECT 1'), { status: 401, code: 'AUTH_FAILED' });
});

test("the server's own tokens keep working beside the provider's; keys are fetched once and cached", async () => {
  assert.deepEqual(await query(ts.token, 'SELECT salary FROM payroll'), { status: 200, rows: [[9000]] });
  const before_ = jwksRequests;
  for (let i = 0; i < 5; i++) assert.equal((await query(await idpToken(), 'SELECT 1')).status, 200);
  assert.equal(jwksRequests, before_);
});

test('jwks_url without issuer and audience, or a role map that is not an object, is a configuration error', () => {
  assert.throws(
    () => loadConfig({ overrides: { jwks_url: jwksUrl } }),
    /invalid configuration: jwks_url: needs both jwks_issuer and jwks_audience/,
  );
  assert.throws(
    () => loadConfig({ overrides: { jwks_url: 'ftp://x', jwks_issuer: 'a', jwks_audience: 'b' } }),
    /jwks_url: must be an http\(s\) URL/,
  );
  assert.throws(
    () => loadConfig({ overrides: { jwks_role_map: '["admin"]' } }),
    /jwks_role_map: must be a JSON object/,
  );
  assert.throws(
    () => loadConfig({ overrides: { jwks_role_map: '{"g": 5}' } }),
    /jwks_role_map: the value for 'g'/,
  );
});

test('data untouched and the server serves', async () => {
  assert.deepEqual(await snapshot(ts, ['ledger', 'payroll']), { ledger: [[1, 5]], payroll: [[1, 9000]] });
  await assertAlive(ts);
});
