/**
 * With TLS on, the port speaks only TLS, so someone who types `http://host:port/` would see the
 * browser's "empty response" and no explanation. This looks at the first byte of each connection: a
 * TLS handshake (0x16) goes to the HTTPS server as usual; anything else gets one plain HTTP answer
 * saying that the server requires HTTPS, with the https:// address, and is closed. Nothing but that
 * notice is ever served over plain HTTP.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Server } from 'node:https';
import type { Socket } from 'node:net';

const TLS_HANDSHAKE = 0x16;
/** A connection that says nothing is dropped after this long (the TLS server has its own timeouts). */
const FIRST_BYTE_TIMEOUT_MS = 10_000;
const SAFE_HOST = /^[A-Za-z0-9.-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/;

function answer(request: IncomingMessage, response: ServerResponse): void {
  const host =
    request.headers.host && SAFE_HOST.test(request.headers.host) ? request.headers.host : undefined;
  const secureUrl = host ? `https://${host}/` : undefined;
  const headers = { connection: 'close', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' };
  if (/\btext\/html\b/.test(String(request.headers.accept ?? ''))) {
    const link = secureUrl ? `<p><a href="${secureUrl}">${secureUrl}</a></p>` : '';
    response.writeHead(400, {
      ...headers,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'",
    });
    response.end(
      `<!doctype html><html lang="en"><meta charset="utf-8"><title>HTTPS required · RustyDB</title>` +
        `<h1>This RustyDB server requires HTTPS</h1>` +
        `<p>It accepts only encrypted connections, so that passwords and data never cross the network in clear text. ` +
        `Open the console with <code>https://</code> instead of <code>http://</code>:</p>${link}</html>`,
    );
    return;
  }
  response.writeHead(400, { ...headers, 'content-type': 'application/json' });
  response.end(
    JSON.stringify({
      success: false,
      error: { code: 'INVALID_MESSAGE', message: 'this server requires TLS: use https:// and wss://' },
    }),
  );
}

/** Installs the first-byte check on an HTTPS server that is not listening yet. */
export function answerPlainHttpOnTlsPort(server: Server): void {
  const tlsListeners = server.listeners('connection') as ((socket: Socket) => void)[];
  server.removeAllListeners('connection');
  const notice = createServer(answer);
  notice.keepAliveTimeout = 1;
  server.on('connection', (socket: Socket) => {
    socket.setTimeout(FIRST_BYTE_TIMEOUT_MS, () => socket.destroy());
    socket.once('error', () => socket.destroy());
    socket.once('data', (chunk: Buffer) => {
      socket.setTimeout(0);
      socket.pause();
      // Put the bytes back: the TLS socket takes what is buffered when it starts reading (on the next
      // tick), and the notice's HTTP parser receives it as the first 'data' once the socket flows again.
      socket.unshift(chunk);
      if (chunk[0] === TLS_HANDSHAKE) {
        for (const listener of tlsListeners) listener.call(server, socket);
      } else {
        notice.emit('connection', socket);
        socket.resume();
      }
    });
  });
}
