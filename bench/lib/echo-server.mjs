/**
 * The yardstick for round trips: the smallest useful `ws` server, echoing every message back as text.
 * It runs as its own process (like the RustyDB server) and prints its port once listening.
 *
 * Plain JavaScript, run with no loader (`node bench/lib/echo-server.mjs`), as the RustyDB server runs
 * its compiled JavaScript: under `--import tsx` its process also held tsx's module-loader thread with a
 * V8 heap of its own, and spent more CPU per connect (median 310–330 µs against 290–300 µs to open and
 * close a socket, two alternating runs of 8 × 1,000).
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
