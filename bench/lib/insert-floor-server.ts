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
 * Run: node --import tsx bench/lib/insert-floor-server.ts DATABASE_FILE SYNCHRONOUS
 */
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { dataEnvelope } from '../../packages/server/src/core/envelope.ts';
import { openSync } from '../../packages/server/src/engine/sqlite/driver.ts';

const [file, synchronous] = process.argv.slice(2);
if (!file || !synchronous) throw new Error('usage: insert-floor-server.ts DATABASE_FILE SYNCHRONOUS');
const db = openSync(file, { timeout: 5000 });
db.exec(`PRAGMA journal_mode = WAL; PRAGMA synchronous = ${synchronous};`);
const statements = new Map<string, ReturnType<typeof db.prepare>>();
const begin = db.prepare('BEGIN');
const commit = db.prepare('COMMIT');

interface Answer {
  socket: WebSocket;
  text: string;
}
/** The answers of the open transaction, sent once it commits; undefined while none is open. */
let pending: Answer[] | undefined;

function commitTurn(): void {
  const answers = pending!;
  pending = undefined;
  commit.run();
  const corked = new Set<Socket>();
  for (const { socket, text } of answers) {
    const raw = (socket as unknown as { _socket: Socket })._socket;
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
    const request = JSON.parse(data.toString()) as {
      id: string;
      payload: { sql: string; params: unknown[] };
    };
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
