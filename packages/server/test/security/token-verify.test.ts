/**
 * TokenService.verify on its own, on the edges of the compact HS256 form that the end-to-end token
 * suite (tokens.test.ts) does not reach: audience lists, `nbf`, `b64`, non-object parts, non-canonical
 * signatures, claim types, and which failure wins when a token is both forged and expired.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { TokenService } from '../../src/auth/tokens.ts';
import { RustyError } from '../../src/errors/rusty-error.ts';

const secret = randomBytes(32);
const service = new TokenService(secret, 3600);
const now = (): number => Math.floor(Date.now() / 1000);
const part = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs header and claims by hand with `key` (the server's secret unless told). */
function sign(header: unknown, claims: unknown, key: Uint8Array = secret): string {
  const signed = `${part(header)}.${part(claims)}`;
  return `${signed}.${createHmac('sha256', key).update(signed).digest('base64url')}`;
}

/** Claims of a token the service accepts. */
function validClaims(): Record<string, unknown> {
  return {
    sub: 'alice',
    iss: 'rustydb',
    aud: 'rustydb',
    iat: now(),
    exp: now() + 600,
    jti: 'token-1',
    uid: 'user-1',
    gen: 0,
    sid: 'login-1',
  };
}

const HEADER = { alg: 'HS256', typ: 'JWT' };

async function refusedWith(token: string, code: 'AUTH_FAILED' | 'AUTH_EXPIRED'): Promise<void> {
  await assert.rejects(service.verify(token), (err: unknown) => {
    assert.ok(err instanceof RustyError);
    assert.equal(err.code, code);
    return true;
  });
}

describe('TokenService.verify', () => {
  test('a token it issued verifies, with every claim read back', async () => {
    const issued = await service.issue({ username: 'alice', id: 'user-1', tokenGeneration: 3 }, 'login-9');
    const claims = await service.verify(issued.token);
    assert.equal(claims.user, 'alice');
    assert.equal(claims.userId, 'user-1');
    assert.equal(claims.generation, 3);
    assert.equal(claims.loginId, 'login-9');
    assert.equal(claims.tokenId, issued.tokenId);
    assert.equal(claims.expiresAt, Math.floor(issued.expiresAt.getTime() / 1000));
  });

  test('an audience list naming this server is accepted; one that does not is refused', async () => {
    assert.equal(
      (await service.verify(sign(HEADER, { ...validClaims(), aud: ['x', 'rustydb'] }))).user,
      'alice',
    );
    await refusedWith(sign(HEADER, { ...validClaims(), aud: ['x', 'y'] }), 'AUTH_FAILED');
  });

  test('nbf in the past is accepted, in the future refused, and must be a number', async () => {
    assert.equal((await service.verify(sign(HEADER, { ...validClaims(), nbf: now() - 10 }))).user, 'alice');
    await refusedWith(sign(HEADER, { ...validClaims(), nbf: now() + 60 }), 'AUTH_FAILED');
    await refusedWith(sign(HEADER, { ...validClaims(), nbf: 'yesterday' }), 'AUTH_FAILED');
  });

  test('a header with b64 (unencoded payload) or crit is refused even when correctly signed', async () => {
    await refusedWith(sign({ ...HEADER, b64: false, crit: ['b64'] }, validClaims()), 'AUTH_FAILED');
    await refusedWith(sign({ ...HEADER, b64: true }, validClaims()), 'AUTH_FAILED');
    await refusedWith(sign({ ...HEADER, crit: [] }, validClaims()), 'AUTH_FAILED');
  });

  test('a payload or header that is not a JSON object is refused', async () => {
    await refusedWith(sign(HEADER, [validClaims()]), 'AUTH_FAILED');
    await refusedWith(sign(HEADER, 'alice'), 'AUTH_FAILED');
    await refusedWith(sign(['HS256'], validClaims()), 'AUTH_FAILED');
    const garbage = `${part(HEADER)}.bm90IGpzb24`;
    await refusedWith(
      `${garbage}.${createHmac('sha256', secret).update(garbage).digest('base64url')}`,
      'AUTH_FAILED',
    );
  });

  test('only the canonical signature text is accepted: padding, extra or foreign characters are refused', async () => {
    const token = sign(HEADER, validClaims());
    assert.equal((await service.verify(token)).user, 'alice');
    await refusedWith(`${token}=`, 'AUTH_FAILED');
    await refusedWith(`${token}A`, 'AUTH_FAILED');
    await refusedWith(`${token.slice(0, -1)}+`, 'AUTH_FAILED');
    await refusedWith(` ${token}`, 'AUTH_FAILED');
  });

  test('claims of the wrong type are refused', async () => {
    for (const change of [
      { sub: 7 },
      { exp: String(now() + 600) },
      { iat: undefined },
      { gen: 1.5 },
      { uid: 1 },
      { sid: null },
      { jti: undefined },
    ]) {
      await refusedWith(sign(HEADER, { ...validClaims(), ...change }), 'AUTH_FAILED');
    }
  });

  test('a token expiring this second is expired; a forged expired token is forged, not expired', async () => {
    await refusedWith(sign(HEADER, { ...validClaims(), iat: now() - 600, exp: now() }), 'AUTH_EXPIRED');
    await refusedWith(sign(HEADER, { ...validClaims(), exp: now() - 1 }, randomBytes(32)), 'AUTH_FAILED');
  });

  // A checked signature is remembered (reconnects do not pay for the HMAC again): the lifetime is not.
  test('a token verified once is refused once it has expired', { timeout: 10_000 }, async () => {
    const expiring = sign(HEADER, { ...validClaims(), exp: now() + 1 });
    assert.equal((await service.verify(expiring)).user, 'alice');
    await new Promise((resolve) => setTimeout(resolve, (now() + 1) * 1000 - Date.now() + 20));
    await refusedWith(expiring, 'AUTH_EXPIRED');
  });

  test('a verified token does not vouch for another signature over the same claims', async () => {
    const token = sign(HEADER, validClaims());
    assert.equal((await service.verify(token)).user, 'alice');
    const [header, body] = token.split('.');
    const forged = `${header}.${body}.${createHmac('sha256', randomBytes(32)).update(`${header}.${body}`).digest('base64url')}`;
    await refusedWith(forged, 'AUTH_FAILED');
    await refusedWith(`${token}x`, 'AUTH_FAILED');
  });

  test('the claims of a remembered token cannot be changed by a caller', async () => {
    const token = sign(HEADER, validClaims());
    const first = await service.verify(token);
    (first as { user: string }).user = 'mallory';
    assert.equal((await service.verify(token)).user, 'alice');
  });
});
