/**
 * The floor of (j): the least a WebSocket service must do to answer single-row INSERTs with the
 * guarantees RustyDB gives, and nothing else. It is the echo server of (b) (same `ws` defaults, own
 * process) plus the work no such server can leave out:
 * - parse each request's JSON;
 * - run the prepared INSERT with libsql on a database that has the server's own change capture (its
 *   change log, indexes and triggers): every acknowledged row must be in the log that resuming clients
 *   read, in the same transaction;
 * - commit the requests read in one turn of the event loop together, in one transaction, at the turn's
 *   end (the cheapest way to commit; RustyDB groups the same way), and only then answer: no answer may
 *   go out before its row is committed;
 * - write the answers as RustyDB's own `data` text (dataEnvelope), all of the turn's in one write.
 * No authentication, authorization, routing, limits, metrics, statement timeouts or error handling: what
 * RustyDB adds to this is its own cost; what this adds to the bare INSERT loop is what no server can
 * avoid. The database must exist with its table and change capture (the bench makes it), and the
 * `synchronous` level is the durability's.
 * Plain JavaScript on the server's compiled modules (`npm run build` makes them), run with no loader as
 * the server itself is.
 * Run: node bench/lib/insert-floor-server.mjs DATABASE_FILE SYNCHRONOUS
 */
import { WebSocketServer } from 'ws';
import { dataEnvelope } from '../../packages/server/dist/core/envelope.js';
import { openSync } from '../../packages/server/dist/engine/sqlite/driver.js';

const [file, synchronous] = process.argv.slice(2);
if (!file || !synchronous) throw new Error('usage: insert-floor-server.mjs DATABASE_FILE SYNCHRONOUS');
const db = openSync(file, { timeout: 5000 });
db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
/** Prepared statements, by their text. @type {Map<string, ReturnType<typeof db.prepare>>} */
const statements = new Map();
const begin = db.prepare('BEGIN');
const commit = db.prepare('COMMIT');

/**
 * The answers of the open transaction, sent once it commits; undefined while none is open.
 * @type {{ socket: import('ws').WebSocket, text: string }[] | undefined}
 */
let pending;

function commitTurn() {
  const answers = pending ?? [];
  pending = undefined;
  commit.run();
  /** @type {Set<import('node:net').Socket>} */
  const corked = new Set();
  for (const { socket, text } of answers) {
    // ws's own TCP socket, corked so that each socket's answers of the turn leave in one write.
    /** @type {import('node:net').Socket} */
    const raw = /** @type {any} */ (socket)._socket;
    if (!corked.has(raw)) {
      raw.cork();
      corked.add(raw);
    }
    socket.send(text);
  }
  for (const raw of corked) raw.uncork();
}

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (socket) => {
  socket.on('message', (data) => {
    /** @type {{ id: string, payload: { sql: string, params: unknown[] } }} */
    const request = JSON.parse(data.toString());
    let statement = statements.get(request.payload.sql);
    if (statement === undefined) {
      statement = db.prepare(request.payload.sql);
      statements.set(request.payload.sql, statement);
    }
    if (pending === undefined) {
      begin.run();
      pending = [];
      setImmediate(commitTurn);
    }
    const result = statement.run(request.payload.params);
    pending.push({
      socket,
      text: dataEnvelope(request.id, [], [], false, result.changes, Number(result.lastInsertRowid)),
    });
  });
});
wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`inserts listening on ws://127.0.0.1:${port}\n`);
});
// Exit normally on SIGTERM, so that `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => {
  db.close();
  process.exit(0);
});
