/**
 * The HS256 signing secret: configured (`jwt_secret`), or generated on first start and kept in the data
 * directory, readable by the server's user only.
 */
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const FILE_NAME = 'jwt-secret';

export function loadSigningSecret(dataDir: string, configured: string | undefined): Uint8Array {
  if (configured) {
    if (Buffer.byteLength(configured) < 32) {
      throw new Error('invalid configuration: jwt_secret: must be at least 32 bytes');
    }
    return new TextEncoder().encode(configured);
  }
  const path = join(dataDir, FILE_NAME);
  if (existsSync(path)) {
    const secret = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
    if (secret.length < 32)
      throw new Error(`the signing secret in ${path} is too short; delete it to generate a new one`);
    chmodSync(path, 0o600);
    return secret;
  }
  const secret = randomBytes(48);
  writeFileSync(path, secret.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return secret;
}
