/** The error-code and close-code tables: the guide's codes, with the guide's numbers. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE_CODES, ERROR_CODES, RETRYABLE_CLOSE_CODES, isErrorCode } from '@rustydb/protocol';

test('every error code of the guide is in the table', () => {
  for (const code of [
    'AUTH_REQUIRED',
    'AUTH_FAILED',
    'AUTH_EXPIRED',
    'PERMISSION_DENIED',
    'INVALID_MESSAGE',
    'QUERY_ERROR',
    'TABLE_NOT_FOUND',
    'CONNECTION_LIMIT',
    'RATE_LIMIT_EXCEEDED',
    'INTERNAL_ERROR',
  ]) {
    assert.equal(isErrorCode(code), true, code);
    assert.equal(typeof ERROR_CODES[code as keyof typeof ERROR_CODES].description, 'string');
  }
  assert.equal(isErrorCode('QUERY_CANCELLED'), true);
  assert.equal(isErrorCode('QUERY_TIMEOUT'), true);
  assert.equal(isErrorCode('NOT_A_CODE'), false);
  assert.equal(isErrorCode('toString'), false);
  assert.equal(isErrorCode(undefined), false);
});

test('close codes have the RFC 6455 numbers the guide lists, plus 1013 and the private 4013', () => {
  assert.deepEqual(Object.fromEntries(Object.entries(CLOSE_CODES).map(([name, { code }]) => [name, code])), {
    NORMAL: 1000,
    GOING_AWAY: 1001,
    PROTOCOL_ERROR: 1002,
    UNSUPPORTED_DATA: 1003,
    INVALID_PAYLOAD: 1007,
    POLICY_VIOLATION: 1008,
    MESSAGE_TOO_BIG: 1009,
    INTERNAL_ERROR: 1011,
    TRY_AGAIN_LATER: 1013,
    SEND_BUFFER_FULL: 4013,
  });
  assert.equal(RETRYABLE_CLOSE_CODES.has(1001), true);
  assert.equal(RETRYABLE_CLOSE_CODES.has(1013), true);
  // A client that fell behind may reconnect and resume at once.
  assert.equal(RETRYABLE_CLOSE_CODES.has(4013), true);
  assert.equal(RETRYABLE_CLOSE_CODES.has(1008), false);
  assert.equal(RETRYABLE_CLOSE_CODES.has(1000), false);
});
