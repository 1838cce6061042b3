/**
 * The yardstick for fan-out: the smallest useful `ws` broadcast server. Any message a client sends is
 * sent on, unchanged, to every other open socket in one loop, and the sender then gets
 * `{"sent": n, "loop_ms": t}` back. It runs as its own process (like the RustyDB server) and prints
 * its port once listening.
 *
 * Plain JavaScript, run with no loader (`node bench/lib/broadcast-server.mjs`), as the RustyDB server
 * runs its compiled JavaScript: under `--import tsx` the process also held tsx's module-loader thread
 * with a V8 heap of its own (~26 MB of RSS), and memory given back there while the sockets connected
 * came off the baseline's growth in (e)'s memory per connection.
 */
import { performance } from 'node:perf_hooks';
import { WebSocketServer } from 'ws';

// ws's own defaults (no compression, client tracking on), as a bare WebSocket service would run.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });

// Listeners are shared functions rather than closures made per connection: the memory per connection
// measured here is then that of `ws` itself.
/** @this {import('ws').WebSocket} */
function onError() {
  // A client killed mid-frame must not crash the baseline.
  this.terminate();
}

/**
 * @this {import('ws').WebSocket}
 * @param {import('ws').RawData} data
 * @param {boolean} isBinary
 */
function onMessage(data, isBinary) {
  const started = performance.now();
  let sent = 0;
  for (const client of wss.clients) {
    if (client !== this && client.readyState === client.OPEN) {
      client.send(data, { binary: isBinary });
      sent++;
    }
  }
  this.send(JSON.stringify({ sent, loop_ms: performance.now() - started }));
}

wss.on('connection', (ws) => {
  ws.on('error', onError);
  ws.on('message', onMessage);
});
wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`broadcast listening on ws://127.0.0.1:${port}\n`);
});
// Exit normally on SIGTERM, so that `node --cpu-prof` writes its profile; there is nothing to close.
process.once('SIGTERM', () => process.exit(0));
