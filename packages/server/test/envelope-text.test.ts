/**
 * The `data` and `auth_success` message texts written directly (dataEnvelope, authSuccessEnvelope) are
 * exactly the text the general envelope makes of the same payload, and the shared timestamp is the
 * current instant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  authSuccessEnvelope,
  dataEnvelope,
  envelope,
  isoTimestamp,
  timestampAt,
  timestampNow,
} from '../src/core/envelope.ts';

/** The envelope text with its timestamp replaced, and the timestamp it had. */
function withoutTimestamp(text: string): [string, string] {
  const parsed = JSON.parse(text) as { timestamp: string };
  return [text.replace(`"timestamp":"${parsed.timestamp}"`, '"timestamp":"T"'), parsed.timestamp];
}

test('dataEnvelope writes what envelope would for every kind of data message, from rows or their JSON', () => {
  type Case = [string | undefined, string[], unknown[], boolean, number | undefined, number | undefined];
  const cases: Case[] = [
    ['q-1', ['v'], [['value-1']], false, undefined, undefined],
    [
      undefined,
      ['a', 'b'],
      [
        [1, null],
        [2.5, { $base64: 'AAE=' }],
      ],
      false,
      2,
      undefined,
    ],
    ['q"\\\u2028', ['weird "name"'], [['tab\there', true]], true, undefined, undefined],
    ['w', [], [], false, 1, 42],
    ['w', [], [], false, 0, undefined],
    // Texts, numbers and nulls are written without JSON.stringify: every character that needs escaping,
    // and every value that is none of those, must come out as JSON.stringify writes it.
    [
      'rt-7',
      ['k', 'v', 'é ü'],
      [
        [-0, 1.5e300, 'plain text, ~ and \u007f and 漢字'],
        [null, -12, 'a "quoted" \\ back\\slash'],
        [3, 0.1, 'nul \u0000 bell \u0007 newline \n'],
        [4, 5, 'lone \ud800 surrogate, pair 😀, line separator \u2028'],
        [Number.MAX_SAFE_INTEGER, 6, 'back\\slash'],
        [1, 'x'.repeat(300), 'y'.repeat(256)],
      ],
      false,
      undefined,
      2 ** 40,
    ],
    ['n', ['a', 'b'], [[NaN, Infinity]], false, undefined, undefined],
    ['b', ['a', 'b'], [[1, { $base64: 'AA==' }]], false, undefined, undefined],
    ['long', ['n'], Array.from({ length: 20 }, (_, i) => [i]), true, undefined, undefined],
    ['a\u0001"id"', ['c"o\\l'], [[true, false]], false, 1, undefined],
  ];
  for (const [id, columns, rows, hasMore, rowsAffected, lastInsertId] of cases) {
    const payload: Record<string, unknown> = { status: 'success', columns, rows, has_more: hasMore };
    if (!hasMore) payload.rows_affected = rowsAffected ?? rows.length;
    if (!hasMore && lastInsertId !== undefined) payload.last_insert_id = lastInsertId;
    const [direct] = withoutTimestamp(dataEnvelope(id, columns, rows, hasMore, rowsAffected, lastInsertId));
    const [general] = withoutTimestamp(envelope('data', payload, id));
    assert.equal(direct, general);
    // The rows as a read worker hands them over: their JSON text, and how many.
    const json = { text: JSON.stringify(rows), count: rows.length };
    const [fromJson] = withoutTimestamp(dataEnvelope(id, columns, json, hasMore, rowsAffected, lastInsertId));
    assert.equal(fromJson, general);
  }
});

test('authSuccessEnvelope writes what envelope would, with the limits serialized once', () => {
  const limits = { max_message_size: 1048576, rate_limit_rps: null, max_running_queries: 16 };
  for (const [user, roles, id] of [
    ['admin', ['admin'], undefined],
    ['o"dd\\ \u2028name', ['reader', 'writer'], 'a-1'],
    ['nobody', [], 'x'],
  ] as [string, string[], string | undefined][]) {
    const expiresAt = Date.UTC(2031, 0, 2, 3, 4, 5, 678);
    const [direct] = withoutTimestamp(
      authSuccessEnvelope({ user, roles, expiresAt }, expiresAt, JSON.stringify(limits), id),
    );
    const payload = { status: 'success', user, roles, expires_at: new Date(expiresAt).toISOString(), limits };
    const [general] = withoutTimestamp(envelope('auth_success', payload, id));
    assert.equal(direct, general);
  }
});

test('authSuccessEnvelope keeps its text per frozen principal only, and never says what a principal no longer says', () => {
  const limits = JSON.stringify({ max_message_size: 1048576 });
  const expiresAt = Date.UTC(2031, 0, 2, 3, 4, 5, 678);
  const expected = (user: string, roles: string[], at: number, limitsText: string, id?: string): string =>
    withoutTimestamp(
      envelope(
        'auth_success',
        {
          status: 'success',
          user,
          roles,
          expires_at: new Date(at).toISOString(),
          limits: JSON.parse(limitsText),
        },
        id,
      ),
    )[0];
  // The same frozen principal, as every connection of one token gets: the same text each time, its id
  // and timestamp its own.
  const frozen = Object.freeze({ user: 'ann', roles: Object.freeze(['reader']), expiresAt });
  for (const id of [undefined, 'q-1', 'q-2']) {
    assert.equal(
      withoutTimestamp(authSuccessEnvelope(frozen, expiresAt, limits, id))[0],
      expected('ann', ['reader'], expiresAt, limits, id),
    );
  }
  // Other limits, for the same principal.
  const otherLimits = JSON.stringify({ max_message_size: 2048 });
  assert.equal(
    withoutTimestamp(authSuccessEnvelope(frozen, expiresAt, otherLimits, undefined))[0],
    expected('ann', ['reader'], expiresAt, otherLimits),
  );
  // A principal that can change is read afresh each time.
  const mutable = { user: 'bob', roles: ['reader'], expiresAt };
  assert.equal(
    withoutTimestamp(authSuccessEnvelope(mutable, expiresAt, limits, undefined))[0],
    expected('bob', ['reader'], expiresAt, limits),
  );
  mutable.roles.push('writer');
  mutable.user = 'bobby';
  assert.equal(
    withoutTimestamp(authSuccessEnvelope(mutable, expiresAt, limits, undefined))[0],
    expected('bobby', ['reader', 'writer'], expiresAt, limits),
  );
});

test('the timestamp is the current instant in ISO-8601', () => {
  const before = Date.now();
  const stamp = timestampNow();
  const after = Date.now();
  const at = Date.parse(stamp);
  assert.equal(new Date(at).toISOString(), stamp);
  assert.ok(at >= before && at <= after, `${stamp} is not between ${before} and ${after}`);
  const [, inEnvelope] = withoutTimestamp(envelope('pong', {}));
  assert.ok(Date.parse(inEnvelope) >= at);
});

test('the timestamp of a clock reading just made (timestampAt) is the current instant, across milliseconds', () => {
  // Readings over ~30 ms, many per millisecond: the stamp kept for a millisecond must never outlive it.
  const end = performance.now() + 30;
  let stamps = 0;
  let last = 0;
  for (let reading = performance.now(); reading < end; reading = performance.now()) {
    const before = Date.now();
    const stamp = timestampAt(performance.now());
    const after = Date.now();
    const at = Date.parse(stamp);
    assert.equal(new Date(at).toISOString(), stamp);
    // (A clock a few µs behind the other may stamp the millisecond just begun with the one before.)
    assert.ok(at >= before - 1 && at <= after, `${stamp} is not between ${before} and ${after}`);
    assert.ok(at >= last, 'timestamps go back');
    last = at;
    stamps++;
  }
  assert.ok(stamps > 100);
  // A data message stamped so is the same text.
  const [stamped] = withoutTimestamp(
    dataEnvelope('q', ['v'], [['x']], false, 1, undefined, performance.now()),
  );
  assert.equal(stamped, withoutTimestamp(dataEnvelope('q', ['v'], [['x']], false, 1, undefined))[0]);
});

test('isoTimestamp writes what toISOString does, millisecond after millisecond and across seconds', () => {
  const starts = [
    0,
    Date.now(),
    Date.UTC(1999, 11, 31, 23, 59, 59, 990),
    Date.UTC(2026, 11, 6, 18, 40, 12, 5),
    -1500,
    Date.UTC(9999, 11, 31, 23, 59, 59, 995),
    Date.UTC(-1, 0, 1),
  ];
  for (const start of starts) {
    for (let ms = start; ms < start + 2500; ms += ms % 7 === 0 ? 1 : 3) {
      assert.equal(isoTimestamp(ms), new Date(ms).toISOString());
    }
  }
  // Seconds out of order, as clocks set back give.
  for (const ms of [5_000_123, 4_999_999, 5_000_001, 5_000_000, 4_000_010]) {
    assert.equal(isoTimestamp(ms), new Date(ms).toISOString());
  }
});
