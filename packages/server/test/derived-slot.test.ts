/** DerivedSlot (core/derived-slot.ts): a value kept on its object, never answered for another one. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DerivedSlot } from '../src/core/derived-slot.ts';

test('a derived value is answered for its own object only, not for a copy made by a spread', () => {
  const slot = new DerivedSlot<{ op: string }, string>('rendered');
  const record = { op: 'update' };
  assert.equal(slot.get(record), undefined);
  slot.set(record, 'UPDATE');
  assert.equal(slot.get(record), 'UPDATE');
  const copy = { ...record, op: 'delete' };
  assert.equal(slot.get(copy), undefined, 'the copy carries the symbol, but is not its owner');
  slot.set(copy, 'DELETE');
  assert.deepEqual([slot.get(record), slot.get(copy)], ['UPDATE', 'DELETE']);
  // Nothing the slot keeps shows in the object's JSON or its keys.
  assert.equal(JSON.stringify(record), '{"op":"update"}');
  assert.deepEqual(Object.keys(record), ['op']);
});

test('two slots keep apart; a frozen object keeps nothing and does not throw', () => {
  const a = new DerivedSlot<object, number>('a');
  const b = new DerivedSlot<object, number>('b');
  const owner = {};
  a.set(owner, 1);
  b.set(owner, 2);
  assert.deepEqual([a.get(owner), b.get(owner)], [1, 2]);
  const frozen = Object.freeze({});
  a.set(frozen, 3);
  assert.equal(a.get(frozen), undefined);
});
