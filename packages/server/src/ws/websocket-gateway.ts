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
import { describeError, type Logger } from '../core/logger.ts';
import { sinceStart } from '../core/process-clock.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import { FlowControlledWebSocket, type FlowLimits } from './flow-controlled-socket.ts';
import { authTimeoutMs } from '../config/config.ts';
import type { OriginPolicy } from '../auth/origin-policy.ts';
import { ConnectionAdmission, type Admission } from './connection-admission.ts';
import { requestTarget, type RequestTarget } from './request-target.ts';

/**
 * Serves one admitted socket. The endpoint calls `admission.authenticated()` once the client has
 * authenticated (at once when authentication is off); until then the socket counts against the
 * unauthenticated limits and is closed when its time to authenticate is up. `ahead` is what the
 * endpoint's `ahead` step returned for this socket (see EndpointHandler).
 */
export type ServeSocket<Ahead> = (
  ws: WebSocket,
  request: IncomingMessage,
  target: RequestTarget,
  admission: Admission,
  ahead: Ahead | undefined,
) => void;

/**
 * An endpoint: serves each admitted socket, and may do part of that work `ahead`. The upgrades that
 * arrive in one turn of the event loop are completed together (see WebSocketGateway.#flush): `ahead`
 * runs for each of them, back to back, then each socket is upgraded, admitted and served with its
 * result, in the same tick. For work that costs less done in a row than spread between other work (the
 * URL token's SQLite step: see stream-endpoint.ts). It runs before the socket is admitted, so it may
 * have no effect of its own (no audit, no counts): the handler acts on its result, or never sees it
 * when the socket is refused.
 */
export type EndpointHandler<Ahead = never> = ServeSocket<Ahead> & {
  ahead?: (request: IncomingMessage, target: RequestTarget) => Ahead | undefined;
};

/** A close code and reason. */
export type Close = readonly [code: number, reason: string];

/** How a RustyDB endpoint closes a socket that did not authenticate in time. */
const AUTH_TIMEOUT_CLOSE: Close = [1008, 'authentication timeout'];

/** A route: the handler, the endpoint's name in connection counts, and who performs the upgrade. */
interface Route {
  handler: EndpointHandler<unknown>;
  endpoint: string;
  /** Set for endpoints that speak another protocol (graphql-ws): their own server upgrades the socket. */
  server?: WebSocketServer;
  /** How the endpoint's protocol closes a socket that did not authenticate in time. */
  authTimeoutClose: Close;
  /**
   * For an endpoint whose code is loaded at first use: undefined once it is ready, else a promise that
   * settles when it is (the upgrade waits for it; the client sends nothing before the upgrade's answer).
   */
  prepare?: () => Promise<void> | undefined;
}

/**
 * A module-level handler: a closure made inside handleUpgrade would keep the upgrade request (headers
 * and all) alive for as long as the socket lives.
 */
function destroySocket(this: Duplex): void {
  this.destroy();
}

function uncorkSocket(socket: Duplex): void {
  socket.uncork();
}

/** The route of an endpoint of RustyDB's protocol. */
function routeOf<Ahead>(handler: EndpointHandler<Ahead>, endpoint: string): Route {
  return {
    // The gateway hands the handler only what its own `ahead` returned.
    handler: handler as EndpointHandler<unknown>,
    endpoint,
    authTimeoutClose: AUTH_TIMEOUT_CLOSE,
  };
}

/** Answers an upgrade request that is refused before any WebSocket exists, and closes the connection. */
function refuseUpgrade(socket: Duplex, status: string, body = ''): void {
  const type = body ? 'Content-Type: text/plain\r\n' : '';
  socket.end(
    `HTTP/1.1 ${status}\r\nConnection: close\r\n${type}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

/** How long a closing socket may take to finish the close handshake before it is destroyed. */
const CLOSE_GRACE_MS = 2000;
/** The close code for a client that fell more than websocket_max_send_buffer bytes behind. */
const SEND_BUFFER_FULL = 4013;

/** `ws` server options every endpoint shares. */
function serverOptions(config: ServerConfig) {
  return {
    noServer: true,
    maxPayload: config.websocket_max_message_size,
    // Every socket bounds what waits to be sent on it (see flow-controlled-socket.ts).
    WebSocket: FlowControlledWebSocket,
    // ws drops a socket without a close frame when 60 pongs are pending (a burst of pings); the pongs are
    // bounded instead by no longer reading a client that is behind, like its messages.
    maxPendingAutoPongs: 0,
  } as const;
}

/** An upgrade request waiting for the end of its turn (see WebSocketGateway.#flush). */
interface QueuedUpgrade {
  request: IncomingMessage;
  socket: Duplex;
  head: Buffer;
  target: RequestTarget;
  route: Route;
}

export class WebSocketGateway {
  readonly #wss: WebSocketServer;
  readonly #config: ServerConfig;
  readonly #logger: Logger;
  readonly #routes = new Map<string, Route>();
  readonly #patterns: [RegExp, Route][] = [];
  /** Open sockets per endpoint, for the metrics. */
  readonly #perEndpoint = new Map<string, number>();
  /**
   * Open sockets (until closed, or timed out for idleness); when each was last heard from and pinged,
   * and its place in the admission counts, are kept on the socket (see FlowControlledWebSocket).
   */
  readonly #open = new Set<FlowControlledWebSocket>();
  /** Per-address and unauthenticated counts, and the deadline to authenticate. */
  readonly #admission: ConnectionAdmission;
  readonly #audit: AuditLog | undefined;
  readonly #origins: OriginPolicy;
  readonly #heartbeat: NodeJS.Timeout;
  #shuttingDown = false;
  /**
   * The error listener every socket shares (`ws` calls it with the socket as `this`): one function per
   * socket would cost each connection a closure.
   */
  readonly #onSocketError: (err: Error) => void;
  /**
   * What may wait to be sent on a socket, what happens past it, and what the gateway does as it closes:
   * one object for every socket. (The socket also keeps when its client was last heard from.)
   */
  readonly #flowLimits: FlowLimits;
  /** Upgrades that arrived in this turn of the event loop, to be completed together (see #flush). */
  #queued: QueuedUpgrade[] = [];
  readonly #flushQueued = (): void => this.#flush();

  constructor(config: ServerConfig, logger: Logger, origins: OriginPolicy, audit?: AuditLog) {
    this.#config = config;
    this.#logger = logger;
    this.#origins = origins;
    this.#audit = audit;
    this.#admission = new ConnectionAdmission({
      perAddress: config.max_connections_per_ip,
      unauthenticated: config.max_unauthenticated_connections,
      unauthenticatedPerAddress: config.max_unauthenticated_connections_per_ip,
      authTimeoutMs: authTimeoutMs(config),
    });
    this.#wss = new WebSocketServer({
      ...serverOptions(config),
      clientTracking: false,
      // Without context takeover each message compresses alone: far cheaper, and memory per socket stays flat.
      // Level 1: most of the size win for a fraction of the CPU of the default level.
      perMessageDeflate: {
        serverNoContextTakeover: true,
        clientNoContextTakeover: true,
        threshold: 1024,
        zlibDeflateOptions: { level: 1 },
      },
    });
    const pingMs = config.websocket_ping_interval * 1000;
    const timeoutMs = config.websocket_timeout * 1000;
    this.#heartbeat = setInterval(
      () => this.#beat(pingMs, timeoutMs),
      Math.max(25, Math.min(pingMs, timeoutMs) / 4),
    );
    this.#heartbeat.unref();
    this.#flowLimits = {
      maxBuffered: config.websocket_max_send_buffer,
      onOverflow: (socket) => this.#closeOverflowing(socket),
      onClosed: (socket) => this.#closed(socket),
      onAuthenticated: (socket) => this.#admission.authenticated(socket),
    };
    this.#onSocketError = (err) => this.#logger.info('websocket error', { error: err.message });
  }

  get connectionCount(): number {
    return this.#open.size;
  }

  /** Open sockets that have not authenticated yet. */
  get unauthenticatedCount(): number {
    return this.#admission.unauthenticatedCount;
  }

  /** For endpoints served by their own `ws` server (routeServer): the socket has authenticated. */
  authenticated(ws: WebSocket): void {
    this.#admission.authenticated(ws as FlowControlledWebSocket);
  }

  /** Open sockets per endpoint (a pattern route counts under its label). */
  connectionsByEndpoint(): Record<string, number> {
    return Object.fromEntries(this.#perEndpoint);
  }

  route<Ahead>(path: string, handler: EndpointHandler<Ahead>): void {
    this.#routes.set(path, routeOf(handler, path));
  }

  /** Routes every path matching `pattern` (for paths with a name in them, like a collection's). */
  routePattern<Ahead>(pattern: RegExp, handler: EndpointHandler<Ahead>, label = pattern.source): void {
    this.#patterns.push([pattern, routeOf(handler, label)]);
  }

  /**
   * Hands the sockets of `path` to a `ws` server of their own (made here with the gateway's limits and
   * compression settings) whose 'connection' listeners serve them: for libraries that attach to a
   * WebSocketServer, like graphql-ws. The gateway still counts, limits, heartbeats and shuts them down;
   * a refused socket is closed without a RustyDB envelope, which that protocol would not understand.
   * The endpoint reports authentication with `authenticated(ws)`; `authTimeoutClose` is how its protocol
   * closes a socket that did not authenticate in time. `prepare` (see Route) lets the endpoint load its
   * code at the first upgrade instead of at start.
   */
  routeServer(
    path: string,
    authTimeoutClose: Close,
    prepare?: () => Promise<void> | undefined,
  ): WebSocketServer {
    const server = new WebSocketServer({
      ...serverOptions(this.#config),
      perMessageDeflate: { serverNoContextTakeover: true, clientNoContextTakeover: true, threshold: 1024 },
    });
    this.#routes.set(path, {
      handler: (ws, request) => server.emit('connection', ws, request),
      endpoint: path,
      server,
      authTimeoutClose,
      ...(prepare ? { prepare } : {}),
    });
    return server;
  }

  /** For the HTTP server's `upgrade` event. */
  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', destroySocket);
    const target = requestTarget(request.url ?? '/');
    if (!target) {
      // No URL can be made of it (`//[`): a bad request, not an error of the server's.
      refuseUpgrade(socket, '400 Bad Request');
      return;
    }
    const { pathname } = target;
    const route =
      this.#routes.get(pathname) ?? this.#patterns.find(([pattern]) => pattern.test(pathname))?.[1];
    if (!route) {
      refuseUpgrade(socket, '404 Not Found');
      return;
    }
    // A page of a foreign site, driving a visitor's browser: refused before the upgrade.
    const origin = request.headers.origin;
    if (!this.#origins.allows(origin, request.headers.host)) {
      this.#audit?.record({
        event: 'origin.denied',
        ip: request.socket.remoteAddress ?? '',
        endpoint: pathname,
        details: { origin: origin?.slice(0, 200) },
      });
      refuseUpgrade(socket, '403 Forbidden', 'origin not allowed; list it in allowed_origins');
      return;
    }
    const preparing = route.prepare?.();
    if (preparing) {
      preparing.then(
        () => this.#upgrade(request, socket, head, target, route),
        (err: unknown) => {
          this.#logger.error(`${route.endpoint}: loading the endpoint failed`, describeError(err));
          refuseUpgrade(socket, '503 Service Unavailable');
        },
      );
      return;
    }
    this.#upgrade(request, socket, head, target, route);
  }

  /**
   * Queues the upgrade; the upgrades that arrive in this turn of the event loop are completed together
   * at its end (#flush). The queue holds only connections already open (each one's request has been
   * read) and is emptied in full once a turn, so it is bounded by the upgrades one turn reads. Nothing
   * is counted for a queued upgrade: one whose socket closes or fails meanwhile is dropped at the flush.
   */
  #upgrade(
    request: IncomingMessage,
    socket: Duplex,
    head: Buffer,
    target: RequestTarget,
    route: Route,
  ): void {
    if (this.#queued.push({ request, socket, head, target, route }) === 1) {
      setImmediate(this.#flushQueued);
    }
  }

  /**
   * Completes the upgrades that arrived in one turn: runs the endpoints' `ahead` steps for all of them
   * back to back, then upgrades, admits and serves each in turn, as one upgrade alone would be (so an
   * authenticated socket leaves the unauthenticated counts before the next is admitted). A connect's
   * token check is mostly SQLite's first call after other work (its code and data cold: 25–50 µs),
   * where a run of them costs a few µs each; see bench/connects.ts (i).
   */
  #flush(): void {
    const queued = this.#queued;
    this.#queued = [];
    const aheads: unknown[] = [];
    for (const { request, socket, target, route } of queued) {
      const { ahead } = route.handler;
      // Closed or failed while queued: no WebSocket, no count, nothing to answer, nothing to check.
      if (socket.destroyed || !ahead) {
        aheads.push(undefined);
        continue;
      }
      try {
        aheads.push(ahead(request, target));
      } catch (err) {
        // The endpoint then does the work itself, and answers its failure.
        this.#logger.error('endpoint failed to prepare a socket', describeError(err));
        aheads.push(undefined);
      }
    }
    for (let i = 0; i < queued.length; i++) {
      const upgrade = queued[i]!;
      if (upgrade.socket.destroyed) continue;
      this.#upgradeNow(upgrade, aheads[i]);
    }
  }

  #upgradeNow({ request, socket, head, target, route }: QueuedUpgrade, ahead: unknown): void {
    // The upgrade's answer waits for the end of this tick: what the endpoint sends in the same tick (the
    // auth_success of a token in the URL, checked synchronously) leaves with it, in one write. The
    // uncork is queued once the endpoint has run, behind the end-of-tick flush of the frames it sent
    // (flow-controlled-socket.ts queues that with its first frame), so that they are in that write too.
    socket.cork();
    try {
      (route.server ?? this.#wss).handleUpgrade(request, socket, head, (ws) => {
        // `ws` has its own error listener on the TCP socket now (it destroys it too): ours, left beside
        // it, would cost every connection an array of two listeners for its whole life (~64 bytes).
        socket.removeListener('error', destroySocket);
        const admission = this.#admit(ws, request, target, route);
        if (admission) this.#serve(ws, request, target, route, admission, ahead);
      });
    } finally {
      process.nextTick(uncorkSocket, socket);
    }
  }

  /**
   * Counts and limits a new socket: the socket itself as its Admission (it keeps its place in the
   * counts: see Admitted), or undefined when refused (and closing).
   */
  #admit(
    ws: WebSocket,
    request: IncomingMessage,
    target: RequestTarget,
    route: Route,
  ): Admission | undefined {
    // Sockets of another protocol are refused with a close code alone.
    const refuse = (message: string): void => {
      if (!route.server) ws.send(envelope('error', errorPayload('CONNECTION_LIMIT', message)));
    };
    // Errors (bad UTF-8, oversized frames) make `ws` close the socket with the right code itself.
    ws.on('error', this.#onSocketError);
    if (this.#shuttingDown) {
      ws.close(1001, 'server shutting down');
      return undefined;
    }
    if (this.#open.size >= this.#config.websocket_max_connections) {
      refuse('too many connections; retry later');
      ws.close(1013, 'connection limit reached');
      this.#forceCloseLater(ws);
      return undefined;
    }
    const address = request.socket.remoteAddress ?? '';
    const socket = ws as FlowControlledWebSocket;
    const refusal = this.#admission.admit(address, socket, () => {
      if (ws.readyState !== ws.OPEN) return;
      ws.close(...route.authTimeoutClose);
      this.#forceCloseLater(ws);
    });
    if (refusal) {
      this.#audit?.record({
        event: 'connection.limit',
        ip: address,
        endpoint: target.pathname,
        details: { limit: refusal.limit, max: refusal.max },
      });
      refuse(refusal.message);
      ws.close(1013, 'connection limit reached');
      this.#forceCloseLater(ws);
      return undefined;
    }
    socket.control(request.socket, this.#flowLimits, route.endpoint);
    this.#perEndpoint.set(route.endpoint, (this.#perEndpoint.get(route.endpoint) ?? 0) + 1);
    const now = sinceStart();
    socket.heardAt = now;
    socket.pingedAt = now;
    this.#open.add(socket);
    return socket;
  }

  /** Hands an admitted socket to its endpoint, with the result of the endpoint's `ahead` step. */
  #serve(
    ws: WebSocket,
    request: IncomingMessage,
    target: RequestTarget,
    route: Route,
    admission: Admission,
    ahead: unknown,
  ): void {
    try {
      route.handler(ws, request, target, admission, ahead);
    } catch (err) {
      this.#logger.error('endpoint failed to start', { error: (err as Error).message });
      ws.close(1011, 'internal error');
    }
  }

  /** An admitted socket closed: it leaves the counts (once: its admission key is the mark that it is counted). */
  #closed(ws: FlowControlledWebSocket): void {
    this.#open.delete(ws);
    if (ws.admissionKey === undefined) return;
    this.#admission.release(ws);
    const open = (this.#perEndpoint.get(ws.endpoint) ?? 1) - 1;
    if (open > 0) this.#perEndpoint.set(ws.endpoint, open);
    else this.#perEndpoint.delete(ws.endpoint);
  }

  #beat(pingMs: number, timeoutMs: number): void {
    const now = sinceStart();
    for (const ws of this.#open) {
      if (now - ws.heardAt > timeoutMs) {
        ws.close(1001, 'idle timeout');
        this.#forceCloseLater(ws);
        this.#open.delete(ws);
        continue;
      }
      if (now - ws.pingedAt >= pingMs && ws.readyState === ws.OPEN) {
        ws.pingedAt = now;
        ws.ping();
      }
    }
  }

  /** A client too far behind: it is not reading, so it is not waited for either. */
  #closeOverflowing(ws: FlowControlledWebSocket): void {
    this.#logger.info('closing a connection that fell too far behind', {
      ip: ws.remoteAddress,
      endpoint: ws.endpoint,
      limit: this.#config.websocket_max_send_buffer,
    });
    ws.close(SEND_BUFFER_FULL, 'send buffer limit exceeded');
    this.#forceCloseLater(ws);
  }

  #forceCloseLater(ws: WebSocket): void {
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  /** Closes every socket with 1001 and waits (briefly) for them to go. */
  async shutdown(): Promise<void> {
    this.#shuttingDown = true;
    clearInterval(this.#heartbeat);
    const sockets = [...this.#open];
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
    const servers = [this.#wss, ...[...this.#routes.values()].flatMap((r) => (r.server ? [r.server] : []))];
    await Promise.all(servers.map((wss) => new Promise<void>((resolve) => wss.close(() => resolve()))));
  }
}
