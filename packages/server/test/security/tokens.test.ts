/**
 * Forged, tampered, expired and revoked tokens. Each is presented three ways — an `auth` message, the
 * `?token=` URL parameter and an HTTP `Authorization: Bearer` header carrying a destructive statement —
 * and each must be refused with the exact code (auth_error + close 1008 on the socket, 401 over HTTP),
 * with no data touched.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { SignJWT, UnsecuredJWT } from 'jose';
import { sql, startTestServer, type TestServer } from '../helpers/test-server.ts';
import { nowSeconds, identityOf, signToken, unsignedToken } from '../helpers/tokens.ts';
import { assertAlive, createUser, loginToken, snapshot } from './helpers.ts';
import { dialectOf, ENGINES, type EngineName } from '../helpers/engines.ts';

/** The suite, run once per engine. */
function suite(engine: EngineName): void {
  const dialect = dialectOf(engine);
  let ts: TestServer;
  let aliceToken: string;
  let before_: Record<string, unknown[][]>;

  before(async () => {
    ts = await startTestServer({}, { engine });
    await sql(ts, `CREATE TABLE victims (id ${dialect.autoId}, v TEXT)`);
    await sql(ts, "INSERT INTO victims (v) VALUES ('a'), ('b'), ('c')");
    aliceToken = await createUser(ts, 'alice', ['readonly']);
    before_ = await snapshot(ts, ['victims'], 'id');
  });

  after(async () => {
    await ts.close();
  });

  const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

  /** Presents `token` on every route and checks each refusal. */
  async function expectRefused(token: string, code: 'AUTH_FAILED' | 'AUTH_EXPIRED'): Promise<void> {
    const reason = code === 'AUTH_EXPIRED' ? 'token expired' : 'authentication failed';
    // An auth message.
    const c = await ts.connect();
    c.send({ type: 'auth', id: 'forged', payload: { token } });
    const m = await c.reply('forged');
    assert.equal(m.type, 'auth_error');
    assert.equal(m.payload.code, code);
    assert.deepEqual(await c.closed(), { code: 1008, reason });
    // The URL.
    const u = await ts.connect({ token });
    const mu = await u.next();
    assert.equal(mu.type, 'auth_error');
    assert.equal(mu.payload.code, code);
    assert.deepEqual(await u.closed(), { code: 1008, reason });
    // HTTP, with a statement that would destroy data.
    const res = await ts.http('/api/v1/query', { body: { sql: 'DELETE FROM victims' }, token });
    assert.equal(res.status, 401);
    assert.equal((res.body as { error: { code: string } }).error.code, code);
    assert.deepEqual(await snapshot(ts, ['victims'], 'id'), before_);
  }

  test('alg none (unsigned) is refused', async () => {
    await expectRefused(unsignedToken(), 'AUTH_FAILED');
  });

  test('alg none with an empty signature appended is refused', async () => {
    await expectRefused(`${unsignedToken().replace(/\.$/, '')}.`, 'AUTH_FAILED');
  });

  test('a header saying "NONE" in capitals is refused', async () => {
    const payload = {
      sub: 'admin',
      iss: 'rustydb',
      aud: 'rustydb',
      iat: nowSeconds(),
      exp: nowSeconds() + 600,
    };
    await expectRefused(`${b64url({ alg: 'NONE', typ: 'JWT' })}.${b64url(payload)}.`, 'AUTH_FAILED');
  });

  test('a token signed with another secret is refused', async () => {
    await expectRefused(await signToken(new TextEncoder().encode('x'.repeat(48))), 'AUTH_FAILED');
  });

  test('a token signed with the right secret but HS512 is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), { claims: identityOf(ts.token), alg: 'HS512' }),
      'AUTH_FAILED',
    );
  });

  test('a token signed with HS384 is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), { claims: identityOf(ts.token), alg: 'HS384' }),
      'AUTH_FAILED',
    );
  });

  test('an RS256 token from a key the server never heard of is refused', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const token = await new SignJWT({ ...identityOf(ts.token) })
      .setProtectedHeader({ alg: 'RS256' })
      .setSubject('admin')
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(privateKey);
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('algorithm confusion: header RS256 over an HMAC signature with the server secret is refused', async () => {
    const real = await signToken(ts.secret(), { claims: identityOf(ts.token) });
    const [, payload, signature] = real.split('.');
    await expectRefused(`${b64url({ alg: 'RS256', typ: 'JWT' })}.${payload}.${signature}`, 'AUTH_FAILED');
  });

  test('the wrong issuer is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), { claims: identityOf(ts.token), iss: 'evil-idp' }),
      'AUTH_FAILED',
    );
  });

  test('the wrong audience is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), { claims: identityOf(ts.token), aud: 'another-service' }),
      'AUTH_FAILED',
    );
  });

  test('a token without an audience is refused', async () => {
    const token = await new SignJWT({ ...identityOf(ts.token) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('admin')
      .setIssuer('rustydb')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(ts.secret());
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('a token without an expiry is refused', async () => {
    const token = await new SignJWT({ ...identityOf(ts.token) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('admin')
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .sign(ts.secret());
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('a token without a subject is refused', async () => {
    const token = await new SignJWT({ ...identityOf(ts.token) })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(ts.secret());
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('a token issued an hour in the future is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), {
        claims: identityOf(ts.token),
        iat: nowSeconds() + 3600,
        exp: nowSeconds() + 7200,
      }),
      'AUTH_FAILED',
    );
  });

  test('a token that is not valid before an hour from now (nbf) is refused', async () => {
    const token = await new SignJWT({ ...identityOf(ts.token) })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('admin')
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .setNotBefore(nowSeconds() + 3600)
      .setExpirationTime('2h')
      .sign(ts.secret());
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('an expired token is AUTH_EXPIRED', async () => {
    await expectRefused(
      await signToken(ts.secret(), {
        claims: identityOf(ts.token),
        iat: nowSeconds() - 7200,
        exp: nowSeconds() - 10,
      }),
      'AUTH_EXPIRED',
    );
  });

  test('a token whose payload was swapped for the admin (signature of alice) is refused', async () => {
    const [header, payload, signature] = aliceToken.split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    await expectRefused(`${header}.${b64url({ ...claims, sub: 'admin' })}.${signature}`, 'AUTH_FAILED');
  });

  test('a token with its signature removed is refused', async () => {
    const [header, payload] = aliceToken.split('.');
    await expectRefused(`${header}.${payload}.`, 'AUTH_FAILED');
  });

  test('a token with one signature character changed is refused', async () => {
    const last = aliceToken.at(-2) === 'A' ? 'B' : 'A';
    await expectRefused(`${aliceToken.slice(0, -2)}${last}${aliceToken.at(-1)}`, 'AUTH_FAILED');
  });

  test('a token with an unknown critical header is refused', async () => {
    // jose will not sign this, so it is signed by hand with the server's real secret.
    const header = b64url({
      alg: 'HS256',
      typ: 'JWT',
      crit: ['x-must-understand'],
      'x-must-understand': true,
    });
    const payload = b64url({
      ...identityOf(ts.token),
      sub: 'admin',
      iss: 'rustydb',
      aud: 'rustydb',
      iat: nowSeconds(),
      exp: nowSeconds() + 600,
    });
    const signature = createHmac('sha256', ts.secret()).update(`${header}.${payload}`).digest('base64url');
    await expectRefused(`${header}.${payload}.${signature}`, 'AUTH_FAILED');
    // Control: the same hand signing without `crit` is accepted, so the refusal is about `crit`.
    const plain = b64url({ alg: 'HS256', typ: 'JWT' });
    const control = `${plain}.${payload}.${createHmac('sha256', ts.secret()).update(`${plain}.${payload}`).digest('base64url')}`;
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: control })).status, 200);
  });

  test('garbage, a five-part (JWE-shaped) token and an empty-looking token are refused', async () => {
    await expectRefused('not-a-token', 'AUTH_FAILED');
    await expectRefused('a.b.c.d.e', 'AUTH_FAILED');
    await expectRefused('..', 'AUTH_FAILED');
  });

  test('a token naming a user who does not exist is refused', async () => {
    await expectRefused(
      await signToken(ts.secret(), { claims: identityOf(ts.token), sub: 'mallory' }),
      'AUTH_FAILED',
    );
  });

  test('a token of a deleted user is refused, and stays refused when the name is reused', async () => {
    const token = await createUser(ts, 'gone', ['readwrite']);
    assert.equal((await ts.http('/api/v1/users/gone', { method: 'DELETE' })).status, 200);
    await expectRefused(token, 'AUTH_FAILED');
    // Someone else gets the name later: the old token must not open the new account.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fresh = await createUser(ts, 'gone', ['readonly']);
    await expectRefused(token, 'AUTH_FAILED');
    const ok = await ts.http('/api/v1/query', {
      body: { sql: 'SELECT count(*) FROM victims' },
      token: fresh,
    });
    assert.equal(ok.status, 200);
  });

  test('a token of a disabled user is refused, and re-enabling does not revive it', async () => {
    const token = await createUser(ts, 'dormant', ['readwrite']);
    assert.equal(
      (await ts.http('/api/v1/users/dormant', { method: 'PATCH', body: { disabled: true } })).status,
      200,
    );
    await expectRefused(token, 'AUTH_FAILED');
    assert.equal(
      (await ts.http('/api/v1/users/dormant', { method: 'PATCH', body: { disabled: false } })).status,
      200,
    );
    await expectRefused(token, 'AUTH_FAILED');
    // A new login works again.
    const fresh = await loginToken(ts, 'dormant');
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: fresh })).status, 200);
  });

  test('a token issued before a password change is refused; one issued just after works', async () => {
    const token = await createUser(ts, 'rotator', ['readonly']);
    const res = await ts.http('/api/v1/users/rotator', {
      method: 'PATCH',
      body: { password: 'brand-new-password' },
    });
    assert.equal(res.status, 200);
    await expectRefused(token, 'AUTH_FAILED');
    // Within the same second as the change: the new token must be accepted.
    const fresh = await loginToken(ts, 'rotator', 'brand-new-password');
    assert.equal((await ts.http('/api/v1/query', { body: { sql: 'SELECT 1' }, token: fresh })).status, 200);
  });

  test('a logged-out token is refused on every route', async () => {
    const token = await createUser(ts, 'leaver', ['readonly']);
    const res = await ts.http('/api/v1/auth/logout', { method: 'POST', token });
    assert.equal(res.status, 200);
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('roles written into a validly signed token are ignored: privileges come from the server', async () => {
    const token = await new SignJWT({
      ...identityOf(aliceToken),
      roles: ['admin'],
      role: 'admin',
      admin: true,
    })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('alice')
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .setExpirationTime('1h')
      .sign(ts.secret());
    const res = await ts.http('/api/v1/query', { body: { sql: 'DELETE FROM victims' }, token });
    assert.equal(res.status, 403);
    assert.equal((res.body as { error: { code: string } }).error.code, 'PERMISSION_DENIED');
    const users = await ts.http('/api/v1/users', { token });
    assert.equal(users.status, 403);
    assert.deepEqual(await snapshot(ts, ['victims'], 'id'), before_);
  });

  test('an unsigned token in the Authorization header with another scheme is AUTH_REQUIRED', async () => {
    const res = await fetch(`${ts.server.url}/api/v1/query`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from('admin:x').toString('base64')}`,
      },
      body: JSON.stringify({ sql: 'DELETE FROM victims' }),
    });
    assert.equal(res.status, 401);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'AUTH_REQUIRED');
    assert.deepEqual(await snapshot(ts, ['victims'], 'id'), before_);
  });

  test('an UnsecuredJWT for an existing non-admin user is refused too', async () => {
    const token = new UnsecuredJWT({ ...identityOf(aliceToken) })
      .setSubject('alice')
      .setIssuer('rustydb')
      .setAudience('rustydb')
      .setIssuedAt()
      .setExpirationTime('1h')
      .encode();
    await expectRefused(token, 'AUTH_FAILED');
  });

  test('after every forged token the server still serves and the data is intact', async () => {
    assert.deepEqual(await snapshot(ts, ['victims'], 'id'), before_);
    await assertAlive(ts);
  });
}

for (const engine of ENGINES) describe(engine, () => suite(engine));
