/**
 * An error's message must not contradict its code: a message telling the client to try or send the
 * request again belongs only to a code the docs call retryable (docs/protocol.md's Retry column, from
 * ERROR_CODES). Checked over every error the server's sources create with a literal message.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ERROR_CODES, isErrorCode } from '@rustydb/protocol';

const SRC = join(import.meta.dirname, '..', 'src');
/** `new RustyError('CODE', 'message'` and `super('CODE', 'message'` (in RustyError's subclasses). */
const CREATED = /(?:new RustyError|super)\(\s*'([A-Z_]+)',\s*(['`"])((?:(?!\2)[\s\S])*)\2/g;
const SAYS_RETRY = /\b(try|send)\b[^.;]*\bagain\b/i;

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) return sources(path);
    return entry.endsWith('.ts') ? [path] : [];
  });
}

test('no error tells the client to send again unless its code is retryable', () => {
  const wrong: string[] = [];
  let seen = 0;
  for (const file of sources(SRC)) {
    for (const [, code, , message] of readFileSync(file, 'utf8').matchAll(CREATED)) {
      if (!isErrorCode(code)) continue;
      seen++;
      if (SAYS_RETRY.test(message!) && !ERROR_CODES[code].retryable)
        wrong.push(`${file}: ${code} "${message}"`);
    }
  }
  assert.ok(seen > 50, `only ${seen} errors found: the pattern no longer matches the sources`);
  assert.deepEqual(wrong, []);
});
