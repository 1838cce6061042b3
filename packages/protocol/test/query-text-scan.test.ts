/**
 * The scan of a query message's text (query-text-scan.ts) must agree with JSON.parse and the schema on
 * every text: what it accepts, they accept with the same value; everything else it leaves to them. Checked
 * on the layouts clients write, on the edges of each part, and on many texts made by changing those.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { clientMessageSchema, parseClientMessage } from '@rustydb/protocol';
import { scanQueryText } from '../src/query-text-scan.ts';

/** What JSON.parse and the schema make of `text`: the message, or undefined when they refuse it. */
function fullCheck(text: string): unknown {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = clientMessageSchema.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/** Agreement on one text; returns whether the scan read it. */
function agrees(text: string): boolean {
  const scanned = scanQueryText(text);
  if (scanned === undefined) return false;
  const full = fullCheck(text);
  assert.notEqual(full, undefined, `the scan accepted what the full check refuses: ${text}`);
  assert.deepEqual(scanned, full, `different values for ${text}`);
  // And parseClientMessage answers with the scan's value.
  assert.deepEqual(parseClientMessage(text), { ok: true, message: full });
  return true;
}

const keyed = '{"type":"query","id":"rt-1","payload":{"sql":"SELECT v FROM kv WHERE k = ?","params":[4711]}}';
const fromClient =
  '{"type":"query","id":"q-7","payload":{"sql":"SELECT ?, ?","params":["a",-3]},' +
  '"timestamp":"2026-12-06T18:00:00.000Z"}';

test('the scan reads the layouts clients write (it is not a path nothing takes)', () => {
  for (const text of [
    keyed,
    fromClient,
    '{"type":"query","payload":{"sql":"SELECT 1"}}',
    '{"type":"query","id":"x","payload":{"sql":"SELECT 1"}}',
    '{"type":"query","payload":{"sql":"SELECT 1","params":[]}}',
    '{"type":"query","payload":{"sql":"SELECT 1"},"timestamp":""}',
    '{"type":"query","payload":{"sql":"S","params":[null,true,false,0,-0,"",1,-1]}}',
    `{"type":"query","payload":{"sql":"S","params":[${'9'.repeat(15)},-${'9'.repeat(15)}]}}`,
    `{"type":"query","id":"${'i'.repeat(128)}","payload":{"sql":"S"}}`,
    '{"type":"query","payload":{"sql":"SELECT \'é\', \'😀\'","params":["ü","\ud800"]}}',
  ]) {
    assert.equal(agrees(text), true, `not read by the scan: ${text}`);
  }
  assert.deepEqual(scanQueryText(keyed), {
    type: 'query',
    id: 'rt-1',
    payload: { sql: 'SELECT v FROM kv WHERE k = ?', params: [4711] },
  });
  assert.ok(
    Object.is(scanQueryText('{"type":"query","payload":{"sql":"S","params":[-0]}}')!.payload.params![0], -0),
  );
});

test('the scan leaves every other text to the full check, which gives its own answer', () => {
  for (const text of [
    // Refused by the full check: the error must still be its own.
    '{"type":"query","id":"","payload":{"sql":"S"}}',
    `{"type":"query","id":"${'i'.repeat(129)}","payload":{"sql":"S"}}`,
    '{"type":"query","payload":{"sql":""}}',
    '{"type":"query","payload":{"sql":"S","params":[01]}}',
    '{"type":"query","payload":{"sql":"S","params":[1,]}}',
    '{"type":"query","payload":{"sql":"S","params":[,1]}}',
    '{"type":"query","payload":{"sql":"S","params":[-]}}',
    '{"type":"query","payload":{"sql":"S","params":[nul]}}',
    '{"type":"query","payload":{"sql":"S\u0001"}}',
    '{"type":"query","payload":{"sql":"S"}}}',
    '{"type":"query","payload":{"sql":"S"}',
    '{"type":"query","payload":{"sql":"S","params":[1]},"timestamp":1}',
    `{"type":"query","payload":{"sql":"S","params":[${'1,'.repeat(32766)}1]}}`,
    // Accepted by the full check, written otherwise: read by it.
    '{"type":"query","payload":{"sql":"S\\"","params":[1]}}',
    '{"type":"query","payload":{"sql":"S","params":["\\u0041"]}}',
    '{"type":"query","payload":{"sql":"S","params":[1.5,1e3,-2E-1]}}',
    `{"type":"query","payload":{"sql":"S","params":[${'9'.repeat(16)}]}}`,
    '{"type":"query","payload":{"sql":"S","params":[{"$base64":"AA=="}]}}',
    '{"type":"query","payload":{"sql":"S","streaming":false}}',
    '{"type":"query","payload":{"sql":"S","params":[1],"chunk_size":5}}',
    '{"type":"query","payload":{"params":[1],"sql":"S"}}',
    '{"type":"query", "payload":{"sql":"S"}}',
    '{"type":"query","payload":{"sql":"S"},"other":1}',
    '{"id":"a","type":"query","payload":{"sql":"S"}}',
    '{"type":"query","payload":{"sql":"S"},"id":"a"}',
    '{"type":"query","payload":{"sql":"S"}} ',
  ]) {
    assert.equal(scanQueryText(text), undefined, `read by the scan: ${text}`);
    const full = fullCheck(text);
    const result = parseClientMessage(text);
    assert.equal(result.ok, full !== undefined, text);
    if (full !== undefined) assert.deepEqual(result, { ok: true, message: full });
  }
  assert.match(
    (
      parseClientMessage(`{"type":"query","id":"${'i'.repeat(129)}","payload":{"sql":"S"}}`) as {
        error: string;
      }
    ).error,
    /^id: /,
  );
  assert.match(
    (parseClientMessage('{"type":"query","payload":{"sql":""}}') as { error: string }).error,
    /^payload\.sql: /,
  );
});

test('the scan agrees with the full check on texts made by changing the common ones', () => {
  let state = 11;
  const random = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const inserts = [
    '"',
    '\\',
    ',',
    ']',
    '}',
    '[',
    '{',
    ' ',
    '\n',
    '\u0000',
    '\u001f',
    '-',
    '0',
    '9',
    '.',
    'e',
    'n',
    'é',
    'x',
    '"id":"a",',
    ',1',
    ',"x"',
  ];
  const seeds = [
    keyed,
    fromClient,
    '{"type":"query","payload":{"sql":"SELECT 1"}}',
    '{"type":"query","id":"a","payload":{"sql":"S","params":[null,true,false,-0,"s",123456789012345]}}',
    '{"type":"query","payload":{"sql":"S","params":[]},"timestamp":"t"}',
  ];
  let read = 0;
  for (let i = 0; i < 20_000; i++) {
    let text = pick(seeds);
    for (let changes = 1 + Math.floor(random() * 3); changes > 0; changes--) {
      const at = Math.floor(random() * (text.length + 1));
      const kind = random();
      if (kind < 0.4) text = text.slice(0, at) + pick(inserts) + text.slice(at);
      else if (kind < 0.8) text = text.slice(0, at) + text.slice(at + 1);
      else text = text.slice(0, at) + pick(inserts) + text.slice(at + 1);
    }
    if (agrees(text)) read++;
    else {
      const full = fullCheck(text);
      const result = parseClientMessage(text);
      assert.equal(result.ok, full !== undefined, text);
    }
  }
  // Some changes keep a text the scan reads (a digit, a letter of a string): the agreement was tested.
  assert.ok(read > 1000, `only ${read} changed texts were read by the scan`);
});

test('the statement text read from a long message does not keep the message alive', () => {
  // The router keeps statements by their text: a view of a message with a megabyte of parameters would
  // keep that megabyte too (V8's slices are views of the whole string).
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  gc();
  const before = process.memoryUsage().heapUsed;
  const kept: string[] = [];
  for (let i = 0; i < 40; i++) {
    const text = JSON.stringify({
      type: 'query',
      id: 'big',
      payload: { sql: `SELECT v FROM kv WHERE k = ? -- ${i}`, params: ['x'.repeat(1_000_000 + i)] },
    });
    kept.push(scanQueryText(text)!.payload.sql);
  }
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  assert.equal(kept.length, 40);
  assert.ok(grown < 10_000_000, `40 statement texts kept ${(grown / 1e6).toFixed(1)} MB alive`);
  // A keyed query's message is short: its text may stay a view of it.
  assert.equal(scanQueryText(keyed)!.payload.sql, 'SELECT v FROM kv WHERE k = ?');
});
