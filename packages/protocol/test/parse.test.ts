/** parseClientMessage: every client message shape it accepts, and a descriptive error (never a throw) for the rest. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT_MESSAGE_TYPES, parseClientMessage, type ParseResult } from '@rustydb/protocol';

function ok(value: unknown): ParseResult & { ok: true } {
  const result = parseClientMessage(typeof value === 'string' ? value : JSON.stringify(value));
  assert.equal(result.ok, true, `rejected ${JSON.stringify(value)}: ${result.ok ? '' : result.error}`);
  return result as ParseResult & { ok: true };
}

function bad(value: unknown): ParseResult & { ok: false } {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const result = parseClientMessage(text);
  assert.equal(result.ok, false, `accepted ${text}`);
  const failure = result as ParseResult & { ok: false };
  assert.equal(typeof failure.error, 'string');
  assert.ok(failure.error.length > 0);
  return failure;
}

test('the client message types include auth, query, batch, ping and cancel', () => {
  for (const type of ['auth', 'query', 'batch', 'ping', 'cancel'] as const) {
    assert.ok(CLIENT_MESSAGE_TYPES.includes(type), type);
  }
  assert.equal(new Set(CLIENT_MESSAGE_TYPES).size, CLIENT_MESSAGE_TYPES.length);
});

test('a full query message parses with every field', () => {
  const { message } = ok({
    type: 'query',
    id: 'q1',
    timestamp: '2025-12-13T10:30:00.000Z',
    payload: {
      sql: 'SELECT ?',
      params: ['a', 1, 1.5, true, null, { $base64: 'AAE=' }],
      streaming: true,
      chunk_size: 10,
    },
  });
  assert.deepEqual(message, {
    type: 'query',
    id: 'q1',
    timestamp: '2025-12-13T10:30:00.000Z',
    payload: {
      sql: 'SELECT ?',
      params: ['a', 1, 1.5, true, null, { $base64: 'AAE=' }],
      streaming: true,
      chunk_size: 10,
    },
  });
});

test('timestamp and id are optional; ping needs no payload', () => {
  assert.equal(ok({ type: 'query', payload: { sql: 'SELECT 1' } }).message.type, 'query');
  assert.equal(ok({ type: 'ping' }).message.type, 'ping');
  assert.equal(ok({ type: 'ping', payload: { anything: 1 } }).message.type, 'ping');
  assert.equal(ok({ type: 'auth', payload: { token: 'abc' } }).message.type, 'auth');
  assert.equal(ok({ type: 'cancel', id: 'c', payload: { id: 'q1' } }).message.type, 'cancel');
  const batch = ok({ type: 'batch', payload: { queries: [{ sql: 'SELECT 1' }], transaction: true } }).message;
  assert.deepEqual(batch, { type: 'batch', payload: { queries: [{ sql: 'SELECT 1' }], transaction: true } });
});

test('text that is not JSON, or JSON that is not an object', () => {
  assert.equal(bad('not json').error, 'message is not valid JSON');
  assert.equal(bad('').error, 'message is not valid JSON');
  for (const text of ['[]', '[{"type":"ping"}]', '"ping"', '1', 'null', 'true']) {
    assert.equal(bad(text).error, 'message must be a JSON object', text);
  }
});

test('a missing or non-string type', () => {
  assert.match(bad({}).error, /type/);
  assert.match(bad({ type: 1 }).error, /type/);
  assert.match(bad({ type: null, id: 'x' }).error, /type/);
  assert.equal(bad({ type: ['ping'], id: 'x' }).id, 'x');
});

test('an unknown type is named in the error, with the expected ones', () => {
  const failure = bad({ type: 'drop_everything', id: 's1', payload: {} });
  assert.match(failure.error, /unknown message type 'drop_everything'/);
  for (const type of CLIENT_MESSAGE_TYPES)
    assert.ok(failure.error.includes(type), `error does not list '${type}'`);
  assert.equal(failure.id, 's1');
  // Type names are case-sensitive.
  assert.match(bad({ type: 'PING' }).error, /unknown message type 'PING'/);
  // A huge type is not echoed back whole.
  const long = bad({ type: 'x'.repeat(10_000) });
  assert.ok(long.error.length < 300, `error is ${long.error.length} chars`);
});

test('wrong field types name the field', () => {
  assert.match(bad({ type: 'query', payload: { sql: 5 } }).error, /^payload\.sql: /);
  assert.match(bad({ type: 'query', payload: {} }).error, /^payload\.sql: /);
  assert.match(bad({ type: 'query' }).error, /^payload: /);
  assert.match(bad({ type: 'query', payload: null }).error, /^payload: /);
  assert.match(bad({ type: 'query', payload: { sql: 'x', params: 'a' } }).error, /^payload\.params: /);
  assert.match(bad({ type: 'query', payload: { sql: 'x', params: [[1]] } }).error, /^payload\.params\.0/);
  assert.match(bad({ type: 'query', payload: { sql: 'x', streaming: 1 } }).error, /^payload\.streaming: /);
  assert.match(
    bad({ type: 'batch', payload: { queries: [{ sql: 1 }] } }).error,
    /^payload\.queries\.0\.sql: /,
  );
  assert.match(
    bad({ type: 'batch', payload: { queries: [{ sql: 'x' }], transaction: 'yes' } }).error,
    /transaction/,
  );
  assert.match(bad({ type: 'cancel', payload: { id: 3 } }).error, /^payload\.id: /);
  assert.match(bad({ type: 'auth', payload: {} }).error, /^payload\.token: /);
  assert.match(bad({ type: 'ping', id: 5 }).error, /^id: /);
});

test('limits: empty sql, empty batch, chunk_size range, id length, empty token', () => {
  bad({ type: 'query', payload: { sql: '' } });
  bad({ type: 'batch', payload: { queries: [] } });
  bad({ type: 'query', payload: { sql: 'x', chunk_size: 0 } });
  bad({ type: 'query', payload: { sql: 'x', chunk_size: 100_001 } });
  bad({ type: 'query', payload: { sql: 'x', chunk_size: 2.5 } });
  ok({ type: 'query', payload: { sql: 'x', chunk_size: 1 } });
  ok({ type: 'query', payload: { sql: 'x', chunk_size: 100_000 } });
  bad({ type: 'ping', id: '' });
  bad({ type: 'ping', id: 'x'.repeat(129) });
  ok({ type: 'ping', id: 'x'.repeat(128) });
  bad({ type: 'auth', payload: { token: '' } });
  bad({ type: 'batch', payload: { queries: Array.from({ length: 1001 }, () => ({ sql: 'SELECT 1' })) } });
});

test('blob parameters must be exactly {"$base64": string}', () => {
  ok({ type: 'query', payload: { sql: 'x', params: [{ $base64: '' }] } });
  bad({ type: 'query', payload: { sql: 'x', params: [{ $base64: 1 }] } });
  bad({ type: 'query', payload: { sql: 'x', params: [{ $base64: 'AA==', extra: 1 }] } });
  bad({ type: 'query', payload: { sql: 'x', params: [{ nested: 'object' }] } });
});

test('the id of a bad message is returned when it is usable, so the error can answer it', () => {
  assert.equal(bad({ type: 'query', id: 'q9', payload: { sql: 5 } }).id, 'q9');
  assert.equal(bad({ type: 'nope', id: 'n1' }).id, 'n1');
  assert.equal(bad({ type: 'query', id: 7, payload: { sql: 5 } }).id, undefined);
  assert.equal(bad({ type: 'query', id: '', payload: { sql: 5 } }).id, undefined);
  assert.equal(bad({ type: 'query', id: 'y'.repeat(129), payload: { sql: 5 } }).id, undefined);
  assert.equal(bad('not json').id, undefined);
});

test('never throws, whatever the input', () => {
  const inputs = [
    '{"type":"query","payload":{"sql":"x","params":[1e400]}}',
    '{"__proto__":{"type":"ping"}}',
    '{"type":"constructor"}',
    '{"type":"toString","id":"t"}',
    '{"type":"query","payload":[]}',
    '{"type":"batch","payload":{"queries":null}}',
    '\u0000',
    '{"type":"ping"}\u0000',
    JSON.stringify({ type: 'query', payload: { sql: 'x'.repeat(100_000) } }),
  ];
  for (const text of inputs) {
    assert.doesNotThrow(() => parseClientMessage(text), text.slice(0, 60));
  }
  assert.equal(parseClientMessage('{"type":"constructor"}').ok, false);
  assert.equal(parseClientMessage('{"type":"toString"}').ok, false);
  assert.equal(parseClientMessage('{"__proto__":{"type":"ping"}}').ok, false);
});
