/**
 * The floor of (b): the least any WebSocket service must do to answer a keyed query. It is the echo
 * server (same `ws` defaults, own process) plus the work no implementation can leave out: parse the
 * request's JSON, read the row from the same SQLite file with libsql (a prepared statement, one native
 * `get`), and write the answer's JSON: RustyDB's own `data` text (dataEnvelope), so the client parses the
 * same bytes. No authentication, no authorization, no routing, no limits, no metrics: what RustyDB adds
 * to this is its own cost; what this adds to the echo is what no server can avoid.
 * Plain JavaScript on the server's compiled modules (`npm run build` makes them), run with no loader as
 * the server itself is.
 * Run: node bench/lib/keyed-read-server.mjs DATABASE_FILE TABLE
 */
import { WebSocketServer } from 'ws';
import { dataEnvelope } from '../../packages/server/dist/core/envelope.js';
import { openSync } from '../../packages/server/dist/engine/sqlite/driver.js';

const [file, table] = process.argv.slice(2);
if (!file || !table) throw new Error('usage: keyed-read-server.mjs DATABASE_FILE TABLE');
// Another connection to the server's file, as the server's own read connection is: WAL lets both read.
const db = openSync(file, { timeout: 5000 });
const read = db.prepare(`SELECT v FROM ${table} WHERE k = ?`).raw(true);
const COLUMNS = ['v'];

const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  ws.on('message', (data) => {
    /** @type {{ id: string, payload: { params: [number] } }} */
    const request = JSON.parse(data.toString());
    const row = read.get(request.payload.params);
    const rows = row === undefined ? [] : [row];
    ws.send(dataEnvelope(request.id, COLUMNS, rows, false, undefined, undefined));
  });
});
wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`keyed reads listening on ws://127.0.0.1:${port}\n`);
});
// Exit normally on SIGTERM, so that `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => {
  db.close();
  process.exit(0);
});
