/**
 * The hand-written check of `query` messages (query-fast-path.ts) must agree with the schema on every
 * input: what it accepts, the schema accepts with the same value, and what the schema refuses, it
 * leaves to the schema. Checked on the edges of each field and on many generated messages.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clientMessageSchema, parseClientMessage } from '@rustydb/protocol';
import { fastQueryMessage } from '../src/query-fast-path.ts';

/** Agreement on one message, taken through JSON as messages arrive. */
function agrees(value: Record<string, unknown>): void {
  const raw = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  const schema = clientMessageSchema.safeParse(raw);
  const fast = fastQueryMessage(raw);
  const text = JSON.stringify(raw);
  if (fast === undefined) return;
  assert.equal(schema.success, true, `the fast path accepted what the schema refuses: ${text}`);
  assert.deepEqual(fast, schema.data, `different values for ${text}`);
}

const EDGE_VALUES: unknown[] = [
  undefined,
  null,
  '',
  'x',
  'x'.repeat(128),
  'x'.repeat(129),
  0,
  1,
  -1,
  1.5,
  100_000,
  100_001,
  2 ** 53,
  true,
  false,
  [],
  ['a'],
  {},
  { $base64: 'AAE=' },
  { $base64: 1 },
  { $base64: 'AA', extra: 1 },
  JSON.parse('{"__proto__":{"$base64":"AA"}}'),
  JSON.parse('{"$base64":"AA","__proto__":1}'),
];

test('the fast path agrees with the schema on the edges of every field', () => {
  for (const value of EDGE_VALUES) {
    agrees({ type: 'query', id: value, payload: { sql: 'SELECT 1' } });
    agrees({ type: 'query', timestamp: value, payload: { sql: 'SELECT 1' } });
    agrees({ type: 'query', payload: value });
    agrees({ type: 'query', payload: { sql: value } });
    agrees({ type: 'query', payload: { sql: 'SELECT ?', params: value } });
    agrees({ type: 'query', payload: { sql: 'SELECT ?', params: [value] } });
    agrees({ type: 'query', payload: { sql: 'SELECT 1', streaming: value } });
    agrees({ type: 'query', payload: { sql: 'SELECT 1', chunk_size: value } });
    agrees({ type: 'query', payload: { sql: 'SELECT 1', unknown: value }, unknown: value });
  }
});

test('the fast path accepts the common query messages (it is not a path nothing takes)', () => {
  for (const raw of [
    { type: 'query', payload: { sql: 'SELECT 1' } },
    {
      type: 'query',
      id: 'q',
      payload: { sql: 'SELECT ?', params: [1, 'a', null, true, { $base64: 'AA==' }] },
    },
    { type: 'query', id: 'q', timestamp: 't', payload: { sql: 'SELECT 1', streaming: false, chunk_size: 5 } },
  ]) {
    assert.notEqual(fastQueryMessage(raw), undefined, JSON.stringify(raw));
    agrees(raw);
  }
});

test('a refused query message still gets the schema’s error', () => {
  const result = parseClientMessage(
    JSON.stringify({ type: 'query', id: 'q', payload: { sql: 'SELECT 1', chunk_size: 0 } }),
  );
  assert.equal(result.ok, false);
  assert.match((result as { error: string }).error, /payload\.chunk_size/);
  assert.equal((result as { id?: string }).id, 'q');
});

test('the fast path agrees with the schema on generated messages', () => {
  let state = 7;
  const random = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const maybe = (value: () => unknown): unknown => (random() < 0.5 ? undefined : value());
  const edge = (): unknown => pick(EDGE_VALUES);
  for (let i = 0; i < 5000; i++) {
    const payload: Record<string, unknown> = {};
    for (const [key, value] of [
      ['sql', maybe(() => pick(['SELECT 1', '', 1]))],
      [
        'params',
        maybe(() => (random() < 0.7 ? Array.from({ length: Math.floor(random() * 4) }, edge) : edge())),
      ],
      ['streaming', maybe(edge)],
      ['chunk_size', maybe(() => (random() < 0.5 ? Math.floor(random() * 200_000) - 10 : edge()))],
      ['other', maybe(edge)],
    ] as const) {
      if (value !== undefined) payload[key] = value;
    }
    const raw: Record<string, unknown> = { type: 'query', payload: random() < 0.1 ? edge() : payload };
    const id = maybe(edge);
    if (id !== undefined) raw.id = id;
    const timestamp = maybe(edge);
    if (timestamp !== undefined) raw.timestamp = timestamp;
    agrees(raw);
  }
});
