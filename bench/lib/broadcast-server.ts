/**
 * The yardstick for fan-out: the smallest useful `ws` broadcast server. Any message a client sends is
 * sent on, unchanged, to every other open socket in one loop, and the sender then gets
 * `{"sent": n, "loop_ms": t}` back. It runs as its own process (like the RustyDB server) and prints
 * its port once listening.
 * Run: node --import tsx bench/lib/broadcast-server.ts
 */
import { WebSocketServer, type RawData, type WebSocket } from 'ws';

// ws's own defaults (no compression, client tracking on), as a bare WebSocket service would run.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });

// Listeners are shared functions rather than closures made per connection: the memory per connection
// measured here is then that of `ws` itself (tsx's keepNames would add a `name` property to every
// closure, ~250 bytes each).
function onError(this: WebSocket): void {
  // A client killed mid-frame must not crash the baseline.
  this.terminate();
}

function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
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
