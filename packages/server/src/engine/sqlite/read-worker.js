// A worker thread that runs read statements for the SQLite engine, so that no part of a long or
// sparse scan ever runs on the main event loop (libsql fetches rows after the first in synchronous
// batches, which on the main thread would stall every other client).
//
// Messages in:  { type: 'run', runId, sql, params, schemaVersion, chunkSize, form, ahead }
//                                                                start a statement; `form` is how
//                                                                its chunks carry their rows
//               { type: 'more', runId, spare?, form? }           one chunk taken: one more may be sent;
//                                                                `spare`: a packed chunk's buffers, given
//                                                                back to pack another; `form`: the form
//                                                                of the run's chunks from now on
//               { type: 'stop', runId }                          cancel / timeout / consumer gone
//               { type: 'close' }                                stop what runs, close, and let the thread end
// Messages out: { type: 'columns', runId, columns }
//               { type: 'chunk', runId, rows, done }             at most chunkSize rows
//               { type: 'chunk', runId, json, count, done }      the same, as the JSON text of the rows
//                                                                array (form 'json')
//               { type: 'chunk', runId, packed, count, done }    the same, packed (form 'packed', see
//                                                                packRows); its buffers are transferred
//               { type: 'error', runId, code, message }       code SCHEMA_CHANGED: the database's schema
//                                                              version is not `schemaVersion` (nothing ran)
//               { type: 'stopped', runId }                       after a stop: the worker is free again
// Flow control is by credit: a run may have `ahead` chunks sent and not yet taken; each 'more' gives one
// back. So the worker reads (and serializes) while the consumer sends, and stops when it stops taking.
// Serializing here (form 'json') takes JSON.stringify of every row off the main thread, which then
// only frames the text and writes it. Packing (form 'packed') costs this thread a fifth of what
// serializing does, and leaves JSON.stringify to the main thread: for a stream that this thread would
// otherwise hold back (see ReadWorkerPool.stream).
// Every message names its run, so a late message of an earlier run is never taken for the current one.
// Plain JavaScript: workers do not inherit the TypeScript loader the server runs under.
//
// This thread is never terminated from outside: libsql's native binding aborts the whole process
// when its thread is torn down during a native call. A statement is stopped with SQLite's interrupt,
// and the thread ends by itself, after its last statement, when told to close.
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Database = require('libsql/promise');

/** libsql's busy timeout is in milliseconds. */
const BUSY_TIMEOUT_MS = 5000;
/**
 * Statements and cursors of the connection, kept until it is replaced. The garbage collector finalizes
 * what it frees on this thread, and finalizing takes the connection's mutex, which SQLite holds while a
 * statement runs (on libsql's own threads): freed during a long statement, a finalizer would block this
 * thread, and with it the interrupt that should stop that statement. So nothing is freed while the
 * connection can still run anything; past RETAINED_AT_MOST, the connection is replaced between runs.
 */
const RETAINED_AT_MOST = 256;
let kept = [];
let db = open();
/** BEGIN, PRAGMA schema_version and ROLLBACK, prepared once per connection (run synchronously). */
let control = null;
let stopRequested = false;
let closing = false;
let running = false;
let wake = null;
let currentRun = 0;
/** Chunks the current run may still send before the consumer takes one. */
let credit = 0;
/** How the current run's chunks carry their rows: 'values', 'json' or 'packed' (a 'more' may change it). */
let form = 'values';
/**
 * Packed chunks' buffers the main thread has given back, to pack the next chunks of the run into: a
 * run then allocates a few pairs, not one per chunk. (Allocated per chunk and freed on the main thread
 * only when its collector gets to them, they held 30-40 MB more of malloc's memory during a long fast
 * stream, bench (a).)
 */
let spare = [];
/** SQLite drops an interrupt that arrives before a statement starts: repeat until the run ends. */
let interrupter = null;

function open() {
  const conn = new Database(workerData.path, { timeout: BUSY_TIMEOUT_MS });
  return conn;
}

async function controlStatements() {
  control ??= {
    begin: await db.prepare('BEGIN'),
    version: (await db.prepare('PRAGMA schema_version')).raw(),
    rollback: await db.prepare('ROLLBACK'),
  };
  return control;
}

/** Kinds of value in a packed chunk (packRows); read-workers.ts unpacks them. */
const PACKED_NULL = 0;
const PACKED_NUMBER = 1;
const PACKED_TEXT = 2;
const PACKED_BLOB = 3;

/**
 * A chunk's rows, packed: for each value in row order, its kind (Uint8Array) and a number (Float64Array):
 * the value itself for a number, the length of its text for a string or a BLOB (as base64), whose texts
 * follow each other in `text`. The values are wireValue's, as in toWireRow, so the main thread's
 * JSON.stringify of the unpacked rows is the text this thread's would be, byte for byte. Packing costs
 * a fifth of serializing (no number formatting, no escaping, no per-row array walk), and the two
 * buffers move to the main thread without a copy.
 */
function packRows(it, chunkSize, width) {
  const size = chunkSize * width;
  const reused = spare.pop();
  const fits = reused !== undefined && reused.kinds.length === size;
  const kinds = fits ? reused.kinds : new Uint8Array(size);
  const numbers = fits ? reused.numbers : new Float64Array(size);
  let text = '';
  let count = 0;
  let k = 0;
  let done = false;
  while (count < chunkSize) {
    const next = it.next();
    if (next.done) {
      done = true;
      break;
    }
    const row = next.value;
    for (let i = 0; i < width; i++, k++) {
      const value = wireValue(row[i]);
      if (typeof value === 'number') {
        kinds[k] = PACKED_NUMBER;
        numbers[k] = value;
      } else if (typeof value === 'string') {
        kinds[k] = PACKED_TEXT;
        numbers[k] = value.length;
        text += value;
      } else if (value === null || value === undefined) {
        kinds[k] = PACKED_NULL;
      } else {
        // A BLOB, as wireValue writes it.
        kinds[k] = PACKED_BLOB;
        numbers[k] = value.$base64.length;
        text += value.$base64;
      }
    }
    count++;
  }
  return { packed: { kinds, numbers, text }, count, done };
}

/** A value as the wire carries it: a BLOB as `{ $base64 }`, a 64-bit integer as a number. */
function wireValue(value) {
  if (value !== null && typeof value === 'object') return { $base64: Buffer.from(value).toString('base64') };
  if (typeof value === 'bigint') return Number(value);
  return value;
}

function toWireRow(row) {
  for (let i = 0; i < row.length; i++) row[i] = wireValue(row[i]);
  return row;
}

/**
 * The run's next chunk of at most `chunkSize` rows, in the run's form: the message to post, the buffers
 * it transfers, and whether the rows are over.
 */
function nextChunk(it, runId, chunkSize, width) {
  if (form === 'packed') {
    const { packed, count, done } = packRows(it, chunkSize, width);
    const chunk = { type: 'chunk', runId, packed, count, done };
    return { chunk, transfer: [packed.kinds.buffer, packed.numbers.buffer], done };
  }
  const rows = [];
  let done = false;
  while (rows.length < chunkSize) {
    const next = it.next();
    if (next.done) {
      done = true;
      break;
    }
    rows.push(toWireRow(next.value));
  }
  const chunk =
    form === 'json'
      ? { type: 'chunk', runId, json: JSON.stringify(rows), count: rows.length, done }
      : { type: 'chunk', runId, rows, done };
  return { chunk, transfer: [], done };
}

/**
 * Stops a statement that is between rows (its last step gave a row): after the interrupt its next step
 * fails, and SQLite ends it there. (Dropped unfinished, libsql would keep it running, with its
 * snapshot, until collected.) Never after a failed step: SQLite resets such a statement, and stepping
 * it again would run it from the start, beyond the interrupt's reach.
 */
function halt(it) {
  db.interrupt();
  try {
    while (!it.next().done);
  } catch {
    // SQLITE_INTERRUPT: the statement is over.
  }
}

function stoppedError() {
  return Object.assign(new Error('stopped'), { code: 'STOPPED' });
}

function waitForCredit() {
  if (credit > 0) return undefined;
  return new Promise((resolve) => {
    wake = resolve;
  });
}

async function run(message) {
  stopRequested = false;
  running = true;
  spare = [];
  currentRun = message.runId;
  credit = message.ahead ?? 1;
  form = message.form;
  const runId = message.runId;
  let transaction = null;
  try {
    // The statement was authorized against one version of the schema: it runs in a read transaction
    // that sees exactly that version, or not at all (a view may have been redefined meanwhile).
    transaction = await controlStatements();
    transaction.begin.run();
    const version = Number(transaction.version.get()?.[0] ?? -1);
    if (version !== message.schemaVersion) {
      parentPort.postMessage({
        type: 'error',
        runId,
        code: 'SCHEMA_CHANGED',
        message: 'the schema changed after the statement was authorized',
      });
      return;
    }
    const stmt = await db.prepare(message.sql);
    kept.push(stmt);
    if (stopRequested) throw stoppedError();
    stmt.raw();
    const columns = stmt.columns().map((c) => c.name);
    parentPort.postMessage({ type: 'columns', runId, columns });
    const it = await stmt.iterate(message.params);
    kept.push(it);
    for (;;) {
      if (stopRequested) {
        halt(it);
        throw stoppedError();
      }
      const { chunk, transfer, done } = nextChunk(it, runId, message.chunkSize, columns.length);
      credit--;
      parentPort.postMessage(chunk, transfer);
      if (done) return;
      await waitForCredit();
    }
  } catch (err) {
    if (stopRequested) {
      parentPort.postMessage({ type: 'stopped', runId });
      return;
    }
    parentPort.postMessage({
      type: 'error',
      runId,
      code: err?.code ?? 'ERROR',
      message: String(err?.message ?? err),
    });
  } finally {
    // A read-only transaction: ending it changes nothing but its snapshot.
    try {
      transaction?.rollback.run();
    } catch {
      // Not open (BEGIN failed) or the connection is gone.
    }
    running = false;
    clearInterval(interrupter);
    interrupter = null;
    if (closing) shutDown();
    else if (kept.length > RETAINED_AT_MOST) replaceConnection();
  }
}

/** A fresh connection; the old one's statements can now be freed, as nothing runs on it any more. */
function replaceConnection() {
  db.close();
  db = open();
  control = null;
  kept = [];
}

function requestStop() {
  stopRequested = true;
  db.interrupt();
  interrupter ??= setInterval(() => db.interrupt(), 25);
  const resolve = wake;
  wake = null;
  resolve?.();
}

/** Closes the connection and the port: with nothing left to do, the thread ends by itself. */
function shutDown() {
  db.close();
  parentPort.close();
}

parentPort.on('message', (message) => {
  if (message.type === 'close') {
    closing = true;
    if (running) requestStop();
    else shutDown();
  } else if (message.type === 'run') void run(message);
  else if (message.runId !== currentRun || !running) {
    // A 'more' or 'stop' for a run that is already over.
    if (message.type === 'stop') parentPort.postMessage({ type: 'stopped', runId: message.runId });
  } else if (message.type === 'more') {
    if (message.spare) spare.push(message.spare);
    if (message.form) form = message.form;
    credit++;
    const resolve = wake;
    wake = null;
    resolve?.();
  } else if (message.type === 'stop') requestStop();
});
