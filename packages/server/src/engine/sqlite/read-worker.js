// A worker thread that runs read statements for the SQLite engine, so that no part of a long or
// sparse scan ever runs on the main event loop (libsql fetches rows after the first in synchronous
// batches, which on the main thread would stall every other client).
//
// Messages in:  { type: 'run', runId, sql, params, schemaVersion, chunkSize }   start a statement
//               { type: 'more', runId }                          send the next chunk
//               { type: 'stop', runId }                          cancel / timeout / consumer gone
// Messages out: { type: 'columns', runId, columns }
//               { type: 'chunk', runId, rows, done }             at most chunkSize rows; then waits for 'more'
//               { type: 'error', runId, code, message }       code SCHEMA_CHANGED: the database's schema
//                                                              version is not `schemaVersion` (nothing ran)
//               { type: 'stopped', runId }                       after a stop: the worker is free again
// Every message names its run, so a late message of an earlier run is never taken for the current one.
// Plain JavaScript: workers do not inherit the TypeScript loader the server runs under.
import { parentPort, workerData } from 'node:worker_threads';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const Database = require('libsql/promise');

const BUSY_TIMEOUT_S = 5;
let db = open();
/** BEGIN, PRAGMA schema_version and ROLLBACK, prepared once per connection (run synchronously). */
let control = null;
let stopRequested = false;
let running = false;
let wake = null;
let currentRun = 0;
/** SQLite drops an interrupt that arrives before a statement starts: repeat until the run ends. */
let interrupter = null;

function open() {
  const conn = new Database(workerData.path, { timeout: BUSY_TIMEOUT_S });
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

function toWireRow(row) {
  for (let i = 0; i < row.length; i++) {
    const value = row[i];
    if (value !== null && typeof value === 'object')
      row[i] = { $base64: Buffer.from(value).toString('base64') };
    else if (typeof value === 'bigint') row[i] = Number(value);
  }
  return row;
}

function waitForMore() {
  return new Promise((resolve) => {
    wake = resolve;
  });
}

async function run(message) {
  stopRequested = false;
  running = true;
  currentRun = message.runId;
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
    stmt.raw();
    parentPort.postMessage({ type: 'columns', runId, columns: stmt.columns().map((c) => c.name) });
    const it = await stmt.iterate(message.params);
    for (;;) {
      if (stopRequested) throw Object.assign(new Error('stopped'), { code: 'STOPPED' });
      const rows = [];
      let done = false;
      while (rows.length < message.chunkSize) {
        const next = it.next();
        if (next.done) {
          done = true;
          break;
        }
        rows.push(toWireRow(next.value));
      }
      parentPort.postMessage({ type: 'chunk', runId, rows, done });
      if (done) return;
      await waitForMore();
    }
  } catch (err) {
    if (stopRequested) {
      // The statement may have been left mid-way: a fresh connection holds no old snapshot.
      try {
        db.close();
      } catch {
        // already broken
      }
      db = open();
      control = null;
      transaction = null;
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
  }
}

parentPort.on('message', (message) => {
  if (message.type === 'run') void run(message);
  else if (message.runId !== currentRun || !running) {
    // A 'more' or 'stop' for a run that is already over.
    if (message.type === 'stop') parentPort.postMessage({ type: 'stopped', runId: message.runId });
  } else if (message.type === 'more') {
    const resolve = wake;
    wake = null;
    resolve?.();
  } else if (message.type === 'stop') {
    stopRequested = true;
    db.interrupt();
    interrupter ??= setInterval(() => db.interrupt(), 25);
    const resolve = wake;
    wake = null;
    resolve?.();
  }
});
