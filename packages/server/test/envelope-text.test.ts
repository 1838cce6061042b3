/**
 * The `data` message text written directly (dataEnvelope) is exactly the text the general envelope
 * makes of the same payload, and the shared timestamp is the current instant.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dataEnvelope, envelope, timestampNow } from '../src/core/envelope.ts';

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
