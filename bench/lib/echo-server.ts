/**
 * The yardstick for round trips: the smallest useful `ws` server, echoing every message back as text.
 * It runs as its own process (like the RustyDB server) and prints its port once listening.
 * Run: node --import tsx bench/lib/echo-server.ts
 */
import { WebSocketServer } from 'ws';

// ws's own defaults (no compression), as a bare WebSocket service would run.
const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
wss.on('listening', () => {
  const address = wss.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  process.stdout.write(`echo listening on ws://127.0.0.1:${port}\n`);
});
// Exit normally on SIGTERM, so that `node --cpu-prof` writes its profile; there is nothing to close.
process.once('SIGTERM', () => process.exit(0));
