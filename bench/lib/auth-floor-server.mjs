/**
 * The floor of (i): the least any WebSocket service must do to accept a connection authenticated by a
 * token in its URL. It is the echo server's `ws` upgrade (same defaults, own process) plus the work no
 * implementation can leave out, done the way RustyDB does it at its cheapest: the token's HS256
 * signature checked once per token (kept per token, as RustyDB keeps it) and its expiry at every
 * connect; the user's row and the revocations of the token and its login read from the server's own
 * SQLite file with libsql at every connect (RustyDB's statement, one native `get`: neither may be
 * cached, another node may write them), the upgrades read in one turn checked back to back as RustyDB's
 * gateway checks them; and auth_success (RustyDB's own text) sent in the same write as the upgrade's
 * answer. No routing, origin check, limits, admission counts, session registry, expiry
 * timer or heartbeat: what RustyDB adds to this is its own cost; what this adds to the bare upgrade is
 * what no server can avoid.
 * Plain JavaScript on the server's compiled modules (`npm run build` makes them), run with no loader as
 * the server itself is.
 * Run: node bench/lib/auth-floor-server.mjs DATA_DIR
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { FIND_FOR_TOKEN_SQL } from '../../packages/server/dist/auth/user-store.js';
import { authSuccessEnvelope } from '../../packages/server/dist/core/envelope.js';
import { openSync } from '../../packages/server/dist/engine/sqlite/driver.js';

const dataDir = process.argv[2];
if (!dataDir) throw new Error('usage: auth-floor-server.mjs DATA_DIR');
// The server's signing secret, as it keeps it in its data directory (auth/signing-secret.ts).
const secret = Buffer.from(readFileSync(join(dataDir, 'jwt-secret'), 'utf8').trim(), 'base64');
// Another connection to the server's file, as the server's own read connection is: WAL lets both read.
// (bench/lib/dataset.ts's databasePath: the engine's default file name.)
const db = openSync(join(dataDir, 'rustydb.sqlite'), { timeout: 5000 });
const findForToken = db.prepare(FIND_FOR_TOKEN_SQL).raw(true);

/**
 * A token's claims; `principal` is what auth_success names: one object per token, as RustyDB's
 * principal is, made at its first use.
 * @typedef {{ sub: string, uid: string, jti: string, sid: string, gen: number, exp: number,
 *   principal?: { user: string, roles: readonly string[], expiresAt: number } }} Claims
 */

/** Verified tokens' claims, by token. @type {Map<string, Claims>} */
const verified = new Map();

/** @param {string} token @returns {Claims | undefined} */
function claimsOf(token) {
  const kept = verified.get(token);
  if (kept) return kept;
  const [header, body, signature] = token.split('.');
  if (!header || !body || !signature) return undefined;
  const expected = createHmac('sha256', secret).update(`${header}.${body}`).digest();
  const given = Buffer.from(signature, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
  /** @type {Claims} */
  const claims = JSON.parse(Buffer.from(body, 'base64url').toString());
  verified.set(token, claims);
  return claims;
}

/**
 * The user named by the URL's token, if it still holds; undefined refuses the connection.
 * @param {string} url
 * @returns {Claims | undefined}
 */
function authenticate(url) {
  const at = url.indexOf('token=');
  if (at < 0) return undefined;
  const end = url.indexOf('&', at);
  const claims = claimsOf(url.slice(at + 6, end < 0 ? undefined : end));
  if (!claims || claims.exp * 1000 <= Date.now()) return undefined;
  /** @type {[userId: string, roles: string, disabled: number, generation: number, revoked: number] | undefined} */
  const row = findForToken.get([claims.sid, claims.jti, claims.sub]);
  if (!row || row[0] !== claims.uid || row[2] !== 0 || row[3] !== claims.gen || row[4] !== 0)
    return undefined;
  // Frozen, with its expiry: authSuccessEnvelope then keeps its text up to the timestamp, as RustyDB's.
  claims.principal ??= Object.freeze({
    user: claims.sub,
    roles: Object.freeze(JSON.parse(row[1])),
    expiresAt: claims.exp * 1000,
  });
  return claims;
}

const wss = new WebSocketServer({ noServer: true });
const server = createServer();
/**
 * The upgrades read in this turn of the event loop, completed together at its end as RustyDB's gateway
 * does (websocket-gateway.ts #flush): their tokens checked back to back (SQLite's first call after
 * other work costs several times one in a run), then each upgraded and answered.
 */
/** @type {[request: import('node:http').IncomingMessage, socket: import('node:stream').Duplex, head: Buffer][]} */
let queued = [];
function flush() {
  const batch = queued;
  queued = [];
  const checked = batch.map(([request, socket]) =>
    socket.destroyed ? undefined : authenticate(request.url ?? ''),
  );
  batch.forEach(([request, socket, head], i) => {
    if (socket.destroyed) return;
    // The 101 and auth_success leave in one write, as RustyDB's do.
    socket.cork();
    wss.handleUpgrade(request, socket, head, (ws) => {
      const claims = checked[i];
      if (!claims) {
        ws.close(1008, 'authentication failed');
        return;
      }
      ws.send(authSuccessEnvelope(claims.principal, claims.exp * 1000, '{}', undefined));
    });
    process.nextTick(() => socket.uncork());
  });
}
server.on('upgrade', (request, socket, head) => {
  if (queued.push([request, socket, head]) === 1) setImmediate(flush);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`auth floor listening on ws://127.0.0.1:${port}\n`);
});
// Exit normally on SIGTERM, so that `node --cpu-prof` writes its profile.
process.once('SIGTERM', () => {
  db.close();
  process.exit(0);
});
