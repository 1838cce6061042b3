/**
 * Owns every WebSocket of the server, whatever its endpoint: the upgrade, the connection limit, the
 * message-size limit and compression settings, heartbeats, and closing everyone on shutdown.
 * Endpoints receive an open, counted socket and only deal with messages.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ServerConfig } from '../config/config.ts';
import { envelope, errorPayload } from '../core/envelope.ts';
import type { Logger } from '../core/logger.ts';
import type { AuditLog } from '../audit/audit-log.ts';

export type EndpointHandler = (ws: WebSocket, request: IncomingMessage, url: URL) => void;

/** How long a closing socket may take to finish the close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 2000;

export class WebSocketGateway {
  readonly #wss: WebSocketServer;
  readonly #config: ServerConfig;
  readonly #logger: Logger;
  readonly #routes = new Map<string, EndpointHandler>();
  readonly #patterns: [RegExp, EndpointHandler][] = [];
  /** Open sockets and when each was last heard from. */
  readonly #lastSeen = new Map<WebSocket, number>();
  readonly #lastPing = new Map<WebSocket, number>();
  /** Open sockets per client address, for max_connections_per_ip. */
  readonly #perAddress = new Map<string, number>();
  readonly #audit: AuditLog | undefined;
  readonly #heartbeat: NodeJS.Timeout;
  #shuttingDown = false;

  constructor(config: ServerConfig, logger: Logger, audit?: AuditLog) {
    this.#config = config;
    this.#logger = logger;
    this.#audit = audit;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: config.websocket_max_message_size,
      clientTracking: false,
      // Without context takeover each message compresses alone: far cheaper, and memory per socket stays flat.
      perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 1024 },
    });
    const pingMs = config.websocket_ping_interval * 1000;
    const timeoutMs = config.websocket_timeout * 1000;
    this.#heartbeat = setInterval(
      () => this.#beat(pingMs, timeoutMs),
      Math.max(25, Math.min(pingMs, timeoutMs) / 4),
    );
    this.#heartbeat.unref();
  }

  get connectionCount(): number {
    return this.#lastSeen.size;
  }

  route(path: string, handler: EndpointHandler): void {
    this.#routes.set(path, handler);
  }

  /** Routes every path matching `pattern` (for paths with a name in them, like a collection's). */
  routePattern(pattern: RegExp, handler: EndpointHandler): void {
    this.#patterns.push([pattern, handler]);
  }

  /** For the HTTP server's `upgrade` event. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    const url = new URL(request.url ?? '/', 'http://localhost');
    const handler =
      this.#routes.get(url.pathname) ?? this.#patterns.find(([pattern]) => pattern.test(url.pathname))?.[1];
    if (!handler) {
      socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    this.#wss.handleUpgrade(request, socket, head, (ws) => this.#accept(ws, request, url, handler));
  }

  #accept(ws: WebSocket, request: IncomingMessage, url: URL, handler: EndpointHandler): void {
    // Errors (bad UTF-8, oversized frames) make `ws` close the socket with the right code itself.
    ws.on('error', (err) => this.#logger.info('websocket error', { error: err.message }));
    if (this.#shuttingDown) {
      ws.close(1001, 'server shutting down');
      return;
    }
    if (this.#lastSeen.size >= this.#config.websocket_max_connections) {
      ws.send(envelope('error', errorPayload('CONNECTION_LIMIT', 'too many connections; retry later')));
      ws.close(1013, 'connection limit reached');
      this.#forceCloseLater(ws);
      return;
    }
    const address = request.socket.remoteAddress ?? '';
    const fromAddress = this.#perAddress.get(address) ?? 0;
    const perIp = this.#config.max_connections_per_ip;
    if (perIp > 0 && fromAddress >= perIp) {
      this.#audit?.record({
        event: 'connection.limit',
        ip: address,
        endpoint: url.pathname,
        details: { limit: 'max_connections_per_ip', max: perIp },
      });
      ws.send(
        envelope(
          'error',
          errorPayload(
            'CONNECTION_LIMIT',
            `too many connections from this address (at most ${perIp}); retry later`,
          ),
        ),
      );
      ws.close(1013, 'connection limit reached');
      this.#forceCloseLater(ws);
      return;
    }
    this.#perAddress.set(address, fromAddress + 1);
    let counted = true;
    const now = Date.now();
    this.#lastSeen.set(ws, now);
    this.#lastPing.set(ws, now);
    const seen = (): void => void this.#lastSeen.set(ws, Date.now());
    ws.on('message', seen);
    ws.on('pong', seen);
    ws.on('close', () => {
      this.#lastSeen.delete(ws);
      this.#lastPing.delete(ws);
      if (counted) {
        counted = false;
        const left = (this.#perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(address, left);
        else this.#perAddress.delete(address);
      }
    });
    try {
      handler(ws, request, url);
    } catch (err) {
      this.#logger.error('endpoint failed to start', { error: (err as Error).message });
      ws.close(1011, 'internal error');
    }
  }

  #beat(pingMs: number, timeoutMs: number): void {
    const now = Date.now();
    for (const [ws, lastSeen] of this.#lastSeen) {
      if (now - lastSeen > timeoutMs) {
        ws.close(1001, 'idle timeout');
        this.#forceCloseLater(ws);
        this.#lastSeen.delete(ws);
        continue;
      }
      if (now - (this.#lastPing.get(ws) ?? 0) >= pingMs && ws.readyState === ws.OPEN) {
        this.#lastPing.set(ws, now);
        ws.ping();
      }
    }
  }

  #forceCloseLater(ws: WebSocket): void {
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Closes every socket with 1001 and waits (briefly) for them to go. */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    clearInterval(this.#heartbeat);
    const sockets = [...this.#lastSeen.keys()];
    await Promise.all(
      sockets.map(
        (ws) =>
          new Promise<void>((resolve) => {
            if (ws.readyState === ws.CLOSED) return resolve();
            ws.once('close', () => resolve());
            ws.close(1001, 'server shutting down');
            setTimeout(() => {
              ws.terminate();
              resolve();
            }, CLOSE_GRACE_MS).unref();
          }),
      ),
    );
    await new Promise<void>((resolve) => this.#wss.close(() => resolve()));
  }
}
