// The floor: no GraphQL library at all. A bare `ws` server that speaks just enough of the graphql-ws
// protocol (connection_init → connection_ack, subscribe, complete) for the same client, and on
// `bumpAll` bumps N in-memory items and sends each subscriber of an item its `next` message with one
// JSON.stringify and one ws.send. What it costs per event is what any server pays on this machine to
// hand an event to a socket; its events/s bound what any server can reach with these clients.
//
// With `--durable 1` it is the durable floor: before any event leaves, `bumpAll` commits the bump in
// SQLite the way a database that promises durable, resumable events must — one UPDATE of the N rows,
// a trigger appending each row's change (key, old and new row as JSON, as RustyDB's capture does) to a
// change log in the same transaction, WAL with synchronous = FULL (RustyDB's default durability) — and
// sends each event from the values the UPDATE returned. Nothing else: no reading the log back, no
// GraphQL, no authorization. Its events/s bound what a server that commits before it publishes can reach.
// As in RustyDB, SQLite's automatic checkpoint (which would run inside a commit, on this one thread, every
// ~4 MB of WAL) is off and a checkpoint runs on a thread of its own once the WAL passes 1 MB: the round
// waits for its commit, not for the copying of earlier ones into the database. Each answer carries the
// commit's time (`extensions.commitMs`: the UPDATE, its trigger and the flush of the WAL), so the bench can
// tell the commit apart from the sends.
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { WebSocketServer } from 'ws';
import { args, makeItems } from './schema.mjs';

/** The WAL size past which a checkpoint runs (RustyDB's WAL_CHECKPOINT_BYTES). */
const WAL_CHECKPOINT_BYTES = 1024 * 1024;
/** The last commit's time, ms (durable only). */
let commitMs = 0;

const { port, items: count, durable } = args();
const items = makeItems(count);
const bump = durable ? durableBump() : () => items.values();

/** The durable write: the items live in SQLite with a change-log trigger; answers the bumped items. */
function durableBump() {
  // libsql is the server's own driver (a workspace dependency), resolved from the repository root.
  const require = createRequire(import.meta.url);
  const Database = require('libsql');
  const dir = mkdtempSync(join(tmpdir(), 'durable-floor-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'floor.db');
  const db = new Database(file);
  db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0;
    PRAGMA journal_size_limit = 65536;
    CREATE TABLE items (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
    CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, tbl TEXT NOT NULL, op TEXT NOT NULL,
      pk TEXT, old_row TEXT, new_row TEXT, ts INTEGER NOT NULL);
    CREATE TRIGGER items_upd AFTER UPDATE ON items BEGIN
      INSERT INTO changes (tbl, op, pk, old_row, new_row, ts) VALUES ('items', 'update',
        json_object('id', new.id), json_object('id', old.id, 'v', old.v), json_object('id', new.id, 'v', new.v),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER));
    END;`);
  const insert = db.prepare('INSERT INTO items (id, v) VALUES (?, ?)');
  db.transaction(() => {
    for (const item of items.values()) insert.run([item.id, item.v]);
  })();
  // The checkpoint's own thread and connection; one checkpoint at a time.
  const checkpointer = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
     const db = new (require(workerData.libsql))(workerData.file);
     db.exec('PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = 65536');
     parentPort.on('message', () => {
       try { db.exec('PRAGMA wal_checkpoint(PASSIVE)'); } finally { parentPort.postMessage('done'); }
     });`,
    { eval: true, workerData: { libsql: require.resolve('libsql'), file } },
  );
  checkpointer.unref();
  let checkpointing = false;
  checkpointer.on('message', () => (checkpointing = false));
  const update = db.prepare('UPDATE items SET v = v + 1 RETURNING id, v');
  return () => {
    const started = performance.now();
    const rows = update.all([]);
    commitMs = performance.now() - started;
    if (!checkpointing && statSync(`${file}-wal`).size >= WAL_CHECKPOINT_BYTES) {
      checkpointing = true;
      checkpointer.postMessage('checkpoint');
    }
    return rows;
  };
}
/** item id → [socket, operation id] of its subscribers */
const subscribers = new Map();

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    for (const item of bump()) {
      if (!durable) item.v++;
      for (const [socket, id] of subscribers.get(item.id) ?? []) {
        socket.send(JSON.stringify({ id, type: 'next', payload: { data: { itemUpdated: { ...item } } } }));
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({ data: { bumpAll: items.size }, ...(durable ? { extensions: { commitMs } } : {}) }),
    );
  });
});
const wss = new WebSocketServer({ server, path: '/graphql' });
wss.on('connection', (socket) => {
  const mine = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data));
    if (message.type === 'connection_init') socket.send(JSON.stringify({ type: 'connection_ack' }));
    else if (message.type === 'ping') socket.send(JSON.stringify({ type: 'pong' }));
    else if (message.type === 'subscribe') {
      const itemId = message.payload.variables.id;
      const entry = [socket, message.id];
      if (!subscribers.has(itemId)) subscribers.set(itemId, []);
      subscribers.get(itemId).push(entry);
      mine.push([itemId, entry]);
    }
  });
  socket.on('close', () => {
    for (const [itemId, entry] of mine) {
      const list = subscribers.get(itemId) ?? [];
      list.splice(list.indexOf(entry), 1);
    }
  });
});
server.listen(port, '127.0.0.1', () => {
  console.log(`raw ws listening on http://127.0.0.1:${server.address().port}/graphql`);
});
process.on('SIGTERM', () => process.exit(0));
