/**
 * An upgrade request's path and query parameters, read without a URL object where the text is plain,
 * say exactly what WHATWG URL parsing says (the routing, the per-endpoint limits and the token in the
 * URL all depend on it): for hand-picked awkward targets, and for thousands of random ones built from
 * the characters where the two readings could part (escapes, `+`, dot segments, fragments, `//`).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RequestTarget } from '../src/ws/request-target.ts';

const NAMES = ['token', 'id', 'a', '', 'tok', 'tokenx', 'b c', 'pipeline', 't+k', 'é'];

function assertSameAsUrl(raw: string): void {
  let url: URL;
  try {
    url = new URL(raw, 'http://localhost');
  } catch {
    // What URL cannot parse (a `//` naming an impossible host) is refused alike.
    assert.throws(() => new RequestTarget(raw), { code: 'ERR_INVALID_URL' }, JSON.stringify(raw));
    return;
  }
  const target = new RequestTarget(raw);
  assert.equal(target.pathname, url.pathname, `pathname of ${JSON.stringify(raw)}`);
  for (const name of NAMES) {
    assert.equal(
      target.param(name),
      url.searchParams.get(name),
      `param ${JSON.stringify(name)} of ${JSON.stringify(raw)}`,
    );
  }
}

test('awkward targets read as URL reads them', () => {
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJlLV9fLQ';
  for (const raw of [
    '/api/v1/stream',
    `/api/v1/stream?token=${jwt}`,
    `/api/v1/stream?id=1&token=${jwt}&token=second`,
    '/api/v1/stream?token',
    '/api/v1/stream?token=',
    '/api/v1/stream?=x&&token=a=b',
    '/api/v1/stream?tokenx=1&tok=2',
    '/api/v1/stream?',
    '/api/v1/stream?&&',
    '/api/v1/stream?token=a%20b',
    '/api/v1/stream?token=a+b',
    '/api/v1/stream?to%6Ben=escaped-name',
    '/api/v1/stream?token=x#fragment',
    '/api/v1/stream#?token=in-fragment',
    '/api/v1/../v1/stream?token=x',
    '/api/v1/./stream',
    '/api/v1/%73tream',
    '//evil.example/api/v1/stream?token=x',
    '/api\\v1\\stream',
    '/api/v1/stream?token=a b',
    '/api/v1/stream?token="quoted"',
    "/api/v1/stream?token='single'",
    '/api/v1/stream?token=é',
    '/api/v1/stream?token=a\tb',
    '/api/v1/documents/collections/people/watch?token=t&resumeAfter=82&fullDocument=updateLookup',
    '/',
    '*',
  ]) {
    assertSameAsUrl(raw);
  }
});

test('random targets read as URL reads them', () => {
  // A fixed pseudo-random sequence, so that a failure can be replayed.
  let seed = 20261206;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const pieces = [
    'a',
    'token',
    'id',
    '=',
    '&',
    '?',
    '/',
    '.',
    '..',
    '%',
    '%6B',
    '%zz',
    '+',
    '#',
    ' ',
    '-',
    '_',
    '~',
    ':',
    ',',
    'é',
    '\\',
  ];
  for (let i = 0; i < 5000; i++) {
    let raw = random(8) === 0 ? '' : '/';
    const length = random(14);
    for (let j = 0; j < length; j++) raw += pieces[random(pieces.length)]!;
    assertSameAsUrl(raw);
  }
});
