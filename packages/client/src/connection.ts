/**
 * The socket lifecycle of one client: connect and authenticate, route answers to whoever asked,
 * keep the connection alive (heartbeat), renew the token on the open socket, reconnect with
 * exponential backoff and jitter, and hold outgoing messages in a bounded queue while offline or
 * while the rate limiter says wait. Knows nothing about queries or subscriptions: those are routes.
 *
 * States: connecting → authenticating → open ⇄ reconnecting → closed; `open()` starts over from closed.
 * When to try again is the retry policy's decision (retry-policy.ts); the browser's wake events skip a
 * pending wait (wake-events.ts).
 */
import type { AuthSuccessPayload, ClientMessage, ServerLimits } from '@rustydb/protocol';
import { defaultWebSocket } from '#websocket';
import type { AuthManager } from './auth.ts';
import { Emitter } from './emitter.ts';
import {
  RustyDBError,
  closeDisposition,
  closeError,
  errorFromPayload,
  type CloseDisposition,
} from './errors.ts';
import { ClientRateLimiter } from './rate-limiter.ts';
import { RetryTimer, allowsRetry, type RetryContext, type RetryPolicyOptions } from './retry-policy.ts';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './transport/socket.ts';
import { listenForWake, type WakeReason } from './wake-events.ts';

export type ConnectionState = 'connecting' | 'authenticating' | 'open' | 'reconnecting' | 'closed';

/** A server message as received: the envelope, with the payload left for its route to read. */
export interface InboundMessage {
  type: string;
  payload: unknown;
  timestamp?: string;
  id?: string;
}

/** A client message before it is stamped with a timestamp and sent. */
export type OutboundMessage = Omit<ClientMessage, 'timestamp'>;

/** Whoever waits for the answers to one id: a request, a stream, a subscription. */
export interface Route {
  /** A message with this route's id. Return true when it was the last one (the route is removed). */
  onMessage(message: InboundMessage): boolean;
  /** The route is over without an answer: timeout, connection lost or closed for good. */
  onFail(error: RustyDBError): void;
  /**
   * Subscriptions: the message that attaches (again) to a freshly authenticated socket. Routes with
   * it survive reconnects; routes without it are requests and fail when their socket goes.
   */
  resubscribe?(): OutboundMessage | undefined;
  /** Subscriptions: the socket went and the client is reconnecting. */
  onDisconnect?(error: RustyDBError): void;
  /** Flow control: the consumer waits for data on this route (reading is never paused then). Default true. */
  starving?(): boolean;
  /** Flow control: the consumer is behind; reading may pause. Default false. */
  pressured?(): boolean;
}

export interface SessionInfo {
  user: string | undefined;
  roles: string[];
  expiresAt: Date | undefined;
  limits: ServerLimits | undefined;
  /** False for the first connection, true after a reconnect. */
  reconnected: boolean;
}

export interface ConnectionEvents extends Record<string, unknown> {
  state: ConnectionState;
  open: SessionInfo;
  close: { code: number; reason: string; willReconnect: boolean; error: RustyDBError | undefined };
  /** Failures not tied to a request: a token refresh that failed, a server error without id. */
  error: RustyDBError;
  /** Every message received, before it is routed (debugging, metrics). */
  message: InboundMessage;
  /** A request was refused with RATE_LIMIT_EXCEEDED (and, if `retryRateLimited`, sent again later). */
  rateLimited: { id: string; retryAfterMs: number };
}

export interface ConnectionOptions extends RetryPolicyOptions {
  /**
   * How long the first connection may take, retries included, before the client closes with
   * CONNECTION_FAILED, ms (also after `open()`). Default 5000. 0: no limit (the retry policy decides).
   */
  initialConnectTimeout: number;
  /** Skip a pending retry wait when the browser reports `online` or the page becomes visible. Default true. */
  retryOnWake: boolean;
  /** Send a `ping` every `heartbeatInterval` ms and drop the socket when no answer comes. Default true. */
  heartbeat: boolean;
  heartbeatInterval: number;
  /** How long to wait for any message after a heartbeat ping, ms. Default 10 000. */
  heartbeatTimeout: number;
  /** From opening a socket to `auth_success`, ms. Default 10 000. */
  connectionTimeout: number;
  /** Default time a request may wait for its first answer, queueing included, ms. Default 30 000. 0: none. */
  requestTimeout: number;
  /** Messages that may wait while offline or rate limited; more are refused with QUEUE_FULL. Default 1000. */
  maxQueueSize: number;
  /** Keep under the limits the server advertises (token bucket, running requests). Default true. */
  rateLimit: boolean;
  /** Send again, after `retry_after_ms`, a request the server refused with RATE_LIMIT_EXCEEDED. Default true. */
  retryRateLimited: boolean;
  /** The WebSocket class; default: the browser's, or `ws` in Node. */
  WebSocket: WebSocketConstructor | undefined;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  reconnect: true,
  maxReconnectAttempts: Infinity,
  reconnectDelay: 1000,
  maxReconnectDelay: 5000,
  reconnectJitter: 0.25,
  shouldRetry: undefined,
  retryWait: undefined,
  initialConnectTimeout: 5000,
  retryOnWake: true,
  heartbeat: true,
  heartbeatInterval: 30_000,
  heartbeatTimeout: 10_000,
  connectionTimeout: 10_000,
  requestTimeout: 30_000,
  maxQueueSize: 1000,
  rateLimit: true,
  retryRateLimited: true,
  WebSocket: undefined,
};

interface Outgoing {
  message: OutboundMessage;
  /** `query`/`batch`: counts against the server's running-request limit. */
  gated: boolean;
  /** Internal messages (auth, resubscribe, cancel, unsubscribe) are not bounded by maxQueueSize. */
  internal: boolean;
}

type Timer = ReturnType<typeof setTimeout>;

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

export class Connection {
  readonly url: string;
  readonly #options: ConnectionOptions;
  readonly #auth: AuthManager;
  readonly #events = new Emitter<ConnectionEvents>();
  readonly #limiter = new ClientRateLimiter();
  readonly #routes = new Map<string, Route>();
  readonly #queue: Outgoing[] = [];
  /** Requests sent on the current socket and not finished. */
  readonly #inFlight = new Set<string>();
  /** Gated requests running on the server. */
  readonly #running = new Set<string>();
  /** Sent messages still waiting for their first answer (resent if refused for the rate). */
  readonly #unanswered = new Map<string, Outgoing>();
  readonly #requestTimers = new Map<string, Timer>();
  readonly #retry = new RetryTimer();
  #state: ConnectionState = 'connecting';
  #socket: WebSocketLike | undefined;
  #seq = 0;
  /** Failed attempts in a row (since the last successful authentication). */
  #attempt = 0;
  #everOpen = false;
  /** Bumped by every open() and shutdown: work begun in an earlier life of the client stops. */
  #life = 0;
  #lastError: RustyDBError | undefined;
  /** Why the last attempt failed: what the first connection's give-up reports. */
  #lastFailure: RustyDBError | undefined;
  #authId: string | undefined;
  /** The token the pending `auth` carries; undefined when the socket is probed without one. */
  #authToken: string | undefined;
  #sentSinceOpen = 0;
  #paused = false;
  #closing = false;
  #closedError: RustyDBError | undefined;
  #session: SessionInfo | undefined;
  #initialTimer: Timer | undefined;
  #connectTimer: Timer | undefined;
  #flushTimer: Timer | undefined;
  #heartbeatTimer: ReturnType<typeof setInterval> | undefined;
  #pongTimer: Timer | undefined;
  #refreshTimer: Timer | undefined;
  #stopWakeListening: (() => void) | undefined;

  constructor(url: string, auth: AuthManager, options: Partial<ConnectionOptions> = {}) {
    this.url = url;
    this.#auth = auth;
    this.#options = { ...DEFAULT_CONNECTION_OPTIONS, ...stripUndefined(options) };
    this.#begin();
  }

  get state(): ConnectionState {
    return this.#state;
  }

  /** Who the connection is authenticated as, and its limits; undefined until the first `open`. */
  get session(): SessionInfo | undefined {
    return this.#session;
  }

  /** The options in force: the defaults with the application's choices over them. */
  get options(): Readonly<ConnectionOptions> {
    return this.#options;
  }

  /** Messages waiting in the offline / rate-limit queue. */
  get queued(): number {
    return this.#queue.length;
  }

  get requestTimeout(): number {
    return this.#options.requestTimeout;
  }

  on<K extends keyof ConnectionEvents>(event: K, listener: (value: ConnectionEvents[K]) => void): () => void {
    return this.#events.on(event, listener);
  }

  /** Resolves when the connection is open; rejects if it closes for good first. */
  ready(): Promise<SessionInfo> {
    if (this.#state === 'open' && this.#session) return Promise.resolve(this.#session);
    if (this.#state === 'closed') return Promise.reject(this.#closedError ?? clientClosed());
    return new Promise((resolve, reject) => {
      const offOpen = this.on('open', (info) => {
        offOpen();
        offState();
        resolve(info);
      });
      const offState = this.on('state', (state) => {
        if (state !== 'closed') return;
        offOpen();
        offState();
        reject(this.#closedError ?? clientClosed());
      });
    });
  }

  /** A new request or subscription id, unique for the life of the client. */
  nextId(prefix: string): string {
    return `${prefix}${++this.#seq}`;
  }

  /**
   * Sends a request and routes its answers to `route` until it reports its last message. The request
   * waits in the queue while offline; `timeoutMs` (default: requestTimeout) bounds the wait for the
   * first answer. Fails at once with QUEUE_FULL or CLIENT_CLOSED.
   */
  request(message: OutboundMessage & { id: string }, route: Route, timeoutMs?: number): void {
    if (this.#state === 'closed') {
      route.onFail(this.#closedError ?? clientClosed());
      return;
    }
    if (this.#queue.filter((o) => !o.internal).length >= this.#options.maxQueueSize) {
      route.onFail(
        new RustyDBError(
          'QUEUE_FULL',
          `the offline queue holds ${this.#options.maxQueueSize} messages already`,
        ),
      );
      return;
    }
    this.#routes.set(message.id, route);
    const gated = message.type === 'query' || message.type === 'batch';
    this.#queue.push({ message, gated, internal: false });
    const timeout = timeoutMs ?? this.#options.requestTimeout;
    if (timeout > 0) {
      this.#requestTimers.set(
        message.id,
        setTimeout(() => this.#timeOut(message.id, timeout), timeout),
      );
    }
    this.#flush();
  }

  /** Attaches a subscription route: it is (re)subscribed on every freshly authenticated socket. */
  attach(id: string, route: Route): void {
    if (this.#state === 'closed') {
      route.onFail(this.#closedError ?? clientClosed());
      return;
    }
    this.#routes.set(id, route);
    if (this.#state === 'open') this.#resubscribe(id, route);
  }

  /** Sends a subscription's own message again (after a `reset` or a SLOW_CONSUMER error). */
  resubscribe(id: string): void {
    const route = this.#routes.get(id);
    if (route && this.#state === 'open') this.#resubscribe(id, route);
  }

  /** Removes a route; `unsubscribe` tells the server when the socket is open. Safe to call twice. */
  detach(id: string, unsubscribe: boolean): void {
    if (!this.#routes.delete(id)) return;
    this.#forgetRequest(id);
    const queuedAt = this.#queue.findIndex((o) => o.message.id === id);
    if (queuedAt !== -1) {
      // Never sent: nothing to undo on the server.
      this.#queue.splice(queuedAt, 1);
      return;
    }
    if (unsubscribe && this.#state === 'open') {
      this.#enqueueInternal({ type: 'unsubscribe', id, payload: {} });
    }
    this.flowChanged();
  }

  /**
   * Stops a request: removed from the queue if not sent yet (true), else a `cancel` goes to the
   * server (false; the request's route still receives its QUERY_CANCELLED error).
   */
  cancel(id: string): boolean {
    const queuedAt = this.#queue.findIndex((o) => o.message.id === id);
    if (queuedAt !== -1) {
      this.#queue.splice(queuedAt, 1);
      return true;
    }
    if (this.#inFlight.has(id) && this.#state === 'open') {
      this.#enqueueInternal({ type: 'cancel', id: this.nextId('cancel-'), payload: { id } }, true);
    }
    return false;
  }

  /** A route's flow-control state changed: pause or resume reading (Node only). */
  flowChanged(): void {
    const socket = this.#socket;
    if (!socket?.pause || !socket.resume || this.#state !== 'open') return;
    let pressured = false;
    let starving = false;
    for (const route of this.#routes.values()) {
      if (route.pressured?.()) pressured = true;
      else if (route.starving ? route.starving() : true) {
        starving = true;
        break;
      }
    }
    const pause = pressured && !starving;
    if (pause === this.#paused) return;
    this.#paused = pause;
    if (pause) {
      socket.pause();
      clearTimeout(this.#pongTimer);
      this.#pongTimer = undefined;
    } else socket.resume();
  }

  /**
   * Closes: code 1000; requests still waiting fail with CLIENT_CLOSED and every subscription and stream
   * ends (their loops finish). Resolves when the socket has closed (at most 2 s). Safe to call twice;
   * `open()` connects again.
   */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.#closing = true;
    const socket = this.#socket;
    this.#socket = undefined;
    const done = new Promise<void>((resolve) => {
      if (!socket || socket.readyState > OPEN) return resolve();
      socket.onopen = socket.onmessage = socket.onerror = null;
      socket.onclose = () => resolve();
      // A peer that never finishes the close handshake does not hold us up.
      setTimeout(resolve, 2000);
      try {
        socket.close(1000, 'client closed');
      } catch {
        // Already closing.
        resolve();
      }
    });
    this.#shutdown(clientClosed());
    return done;
  }

  /**
   * Opens a closed client again: a new connection, with the first connection's time limit. Requests
   * and subscriptions made from now on use it. Does nothing unless the client is closed.
   */
  open(): void {
    if (this.#state !== 'closed') return;
    this.#begin();
  }

  // ---- connecting ------------------------------------------------------------------------------

  /** Starts a life of the client: the first connection, bounded by initialConnectTimeout. */
  #begin(): void {
    this.#life++;
    this.#closing = false;
    this.#closedError = undefined;
    this.#everOpen = false;
    this.#attempt = 0;
    this.#lastFailure = undefined;
    this.#setState('connecting');
    const limit = this.#options.initialConnectTimeout;
    if (limit > 0 && Number.isFinite(limit)) {
      this.#initialTimer = setTimeout(() => this.#giveUpFirstConnection(limit), limit);
    }
    if (this.#options.retryOnWake) this.#stopWakeListening = listenForWake((reason) => this.#wake(reason));
    void this.#connect();
  }

  #giveUpFirstConnection(limitMs: number): void {
    this.#initialTimer = undefined;
    if (this.#everOpen || this.#state === 'closed') return;
    const cause = this.#lastFailure ?? this.#lastError;
    this.#shutdown(
      new RustyDBError(
        'CONNECTION_FAILED',
        `cannot connect to ${this.url} within ${limitMs} ms${cause ? `: ${cause.message}` : ''}`,
        { cause, closeCode: cause?.closeCode },
      ),
    );
  }

  /** A hint from the browser that now is a good time: skip the wait, or check that the socket lives. */
  #wake(_reason: WakeReason): void {
    if (this.#state === 'reconnecting' && this.#retry.pending) {
      this.#retry.fireNow();
      return;
    }
    const socket = this.#socket;
    if (this.#state === 'open' && socket) this.#checkAlive(socket);
  }

  async #connect(): Promise<void> {
    const life = this.#life;
    if (this.#closing) return;
    this.#setState(this.#everOpen || this.#attempt > 0 ? 'reconnecting' : 'connecting');
    this.#lastError = undefined;
    let token: string | undefined;
    try {
      // A login has its own timeout (requestTimeout).
      token = this.#auth.enabled ? await this.#auth.token() : undefined;
    } catch (err) {
      if (this.#closing || life !== this.#life) return;
      const error = toRustyError(err);
      // A refused login will be refused again; a server that cannot be reached may come back.
      if (error.code === 'AUTH_FAILED' || error.code === 'INVALID_MESSAGE' || error.code === 'AUTH_EXPIRED') {
        this.#shutdown(error);
        return;
      }
      this.#lastError = error;
      this.#retryOrGiveUp('reconnect', error);
      return;
    }
    // Closed (or closed and opened again) while the login ran.
    if (this.#closing || this.#closedError || life !== this.#life) return;
    const WebSocketClass = this.#options.WebSocket ?? defaultWebSocket;
    if (!WebSocketClass) {
      this.#shutdown(
        new RustyDBError('CONNECTION_FAILED', 'no WebSocket implementation: pass the WebSocket option'),
      );
      return;
    }
    let socket: WebSocketLike;
    try {
      socket = new WebSocketClass(this.url);
    } catch (err) {
      this.#shutdown(new RustyDBError('CONNECTION_FAILED', `cannot open ${this.url}: ${String(err)}`));
      return;
    }
    this.#socket = socket;
    this.#connectTimer = setTimeout(() => {
      this.#lastError = new RustyDBError('CONNECTION_LOST', 'connection timeout');
      this.#abandon(socket, 1006, 'connection timeout');
    }, this.#options.connectionTimeout);
    this.#sentSinceOpen = 0;
    socket.onopen = () => {
      if (this.#socket !== socket) return;
      this.#setState('authenticating');
      if (token === undefined) this.#probe(socket);
      else this.#sendAuth(socket, token, false);
    };
    socket.onmessage = (event) => {
      if (this.#socket !== socket) return;
      this.#onText(socket, typeof event.data === 'string' ? event.data : String(event.data));
    };
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#onClosed(event.code, event.reason);
    };
    socket.onerror = () => {
      // The close event follows with the details the browser is willing to give (1006).
    };
  }

  /**
   * Without a token: a `ping` tells whether the server lets this socket in. A server that requires
   * authentication answers AUTH_REQUIRED, which no retry can change; one that does not answers `pong`.
   */
  #probe(socket: WebSocketLike): void {
    const id = this.nextId('probe-');
    this.#authId = id;
    this.#authToken = undefined;
    this.#sendNow(socket, { type: 'ping', id });
  }

  #sendAuth(socket: WebSocketLike, token: string, priority: boolean): void {
    const id = this.nextId('auth-');
    this.#authId = id;
    this.#authToken = token;
    const message: OutboundMessage = { type: 'auth', id, payload: { token } };
    if (!priority) {
      this.#sendNow(socket, message);
      return;
    }
    this.#enqueueInternal(message, true);
  }

  #ready(
    socket: WebSocketLike,
    payload: AuthSuccessPayload | undefined,
    serverTime: string | undefined,
  ): void {
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#initialTimer);
    this.#connectTimer = this.#initialTimer = undefined;
    const reconnected = this.#everOpen;
    this.#everOpen = true;
    this.#attempt = 0;
    this.#lastError = undefined;
    this.#limiter.reset();
    if (this.#options.rateLimit) this.#limiter.configure(payload?.limits, this.#sentSinceOpen, true, now());
    this.#session = {
      user: payload?.user,
      roles: payload?.roles ?? [],
      expiresAt: payload ? new Date(payload.expires_at) : undefined,
      limits: payload?.limits,
      reconnected,
    };
    if (payload && this.#authToken) this.#tokenAccepted(this.#authToken, payload, serverTime);
    this.#setState('open');
    this.#startHeartbeat(socket);
    for (const [id, route] of this.#routes) if (route.resubscribe) this.#resubscribe(id, route);
    this.#flush();
    this.#events.emit('open', this.#session);
  }

  #tokenAccepted(token: string, payload: AuthSuccessPayload, serverTime: string | undefined): void {
    const expiresAt = new Date(payload.expires_at);
    this.#auth.accepted(token, expiresAt);
    if (this.#session) this.#session.expiresAt = expiresAt;
    const serverNow = serverTime ? Date.parse(serverTime) : Date.now();
    const remaining = expiresAt.getTime() - (Number.isNaN(serverNow) ? Date.now() : serverNow);
    this.#scheduleRefresh(this.#auth.refreshDelay(remaining));
  }

  #scheduleRefresh(delayMs: number): void {
    clearTimeout(this.#refreshTimer);
    // setTimeout holds at most 2^31-1 ms; a longer wait is re-armed when the first one fires.
    const capped = Math.min(delayMs, 2_147_483_647);
    this.#refreshTimer = setTimeout(() => {
      if (capped < delayMs) this.#scheduleRefresh(delayMs - capped);
      else void this.#refreshToken();
    }, capped);
  }

  /** Renews the token and re-authenticates the open socket with it. */
  async #refreshToken(): Promise<void> {
    clearTimeout(this.#refreshTimer);
    this.#refreshTimer = undefined;
    const socket = this.#socket;
    if (this.#state !== 'open' || !socket) return;
    try {
      const next = await this.#auth.renew('refresh');
      if (this.#socket !== socket || this.#state !== 'open') return;
      this.#sendAuth(socket, next.token, true);
    } catch (err) {
      // The client closed meanwhile (its renewal was aborted): nothing to report.
      if (this.#closedError) return;
      const error = toRustyError(err);
      this.#events.emit('error', error);
      // Try again a little later while the token lasts; the server closes the socket at expiry.
      const expiresAt = this.#session?.expiresAt?.getTime();
      const left = expiresAt ? expiresAt - Date.now() : 0;
      if (left > 0 && this.#socket === socket)
        this.#scheduleRefresh(Math.max(250, Math.min(10_000, left / 4)));
    }
  }

  // ---- receiving -------------------------------------------------------------------------------

  #onText(socket: WebSocketLike, text: string): void {
    let message: InboundMessage;
    try {
      message = JSON.parse(text) as InboundMessage;
    } catch {
      this.#events.emit(
        'error',
        new RustyDBError('INVALID_MESSAGE', 'the server sent a message that is not JSON'),
      );
      return;
    }
    if (message === null || typeof message !== 'object' || typeof message.type !== 'string') return;
    // Any message shows the connection is alive.
    clearTimeout(this.#pongTimer);
    this.#pongTimer = undefined;
    this.#events.emit('message', message);
    const { id } = message;
    if (id !== undefined && id === this.#authId) {
      this.#onAuthAnswer(socket, message);
      return;
    }
    if (id !== undefined) {
      const route = this.#routes.get(id);
      if (route) {
        this.#routeMessage(id, route, message);
        return;
      }
      // Late answers for requests that are gone (cancelled, timed out, unsubscribed): nothing to do.
      return;
    }
    switch (message.type) {
      case 'auth_expiring':
        void this.#refreshToken();
        return;
      case 'auth_error':
      case 'error': {
        const error = errorFromPayload(message.payload);
        // The server explains a close it is about to make; the close decides what happens next.
        this.#lastError = error;
        this.#events.emit('error', error);
        return;
      }
      case 'auth_success':
        // A token given in the URL is answered without an id; the SDK never sends one, so ignore.
        return;
    }
  }

  #onAuthAnswer(socket: WebSocketLike, message: InboundMessage): void {
    if (this.#authToken === undefined && this.#state === 'authenticating') {
      if (message.type === 'pong') this.#ready(socket, undefined, message.timestamp);
      else if (message.type === 'error') this.#shutdown(errorFromPayload(message.payload));
      return;
    }
    if (message.type === 'auth_success') {
      const payload = message.payload as AuthSuccessPayload;
      if (this.#state === 'open') {
        // A renewed token on the open socket: same session, new expiry and perhaps new limits.
        if (this.#options.rateLimit) this.#limiter.configure(payload.limits, 0, false, now());
        if (this.#authToken) this.#tokenAccepted(this.#authToken, payload, message.timestamp);
        if (this.#session) this.#session.limits = payload.limits;
        return;
      }
      this.#ready(socket, payload, message.timestamp);
      return;
    }
    if (message.type === 'auth_error' || message.type === 'error') {
      this.#lastError = errorFromPayload(message.payload);
      this.#events.emit('error', this.#lastError);
    }
  }

  #routeMessage(id: string, route: Route, message: InboundMessage): void {
    const first = this.#unanswered.get(id);
    if (first) {
      this.#unanswered.delete(id);
      clearTimeout(this.#requestTimers.get(id));
      this.#requestTimers.delete(id);
      if (message.type === 'error') {
        const error = errorFromPayload(message.payload);
        const retryAfter = error.details?.retry_after_ms;
        if (error.code === 'RATE_LIMIT_EXCEEDED' && typeof retryAfter === 'number') {
          this.#events.emit('rateLimited', { id, retryAfterMs: retryAfter });
          if (this.#options.retryRateLimited) {
            // The server did not run it: send it again once the server has room.
            this.#inFlight.delete(id);
            this.#running.delete(id);
            setTimeout(() => {
              if (this.#routes.get(id) !== route) return;
              if (this.#state === 'open') this.#queue.unshift(first);
              else if (!route.resubscribe) this.#queue.unshift(first);
              this.#flush();
            }, retryAfter);
            this.#flush();
            return;
          }
        }
      }
    }
    let finished: boolean;
    try {
      finished = route.onMessage(message);
    } catch (err) {
      finished = true;
      route.onFail(toRustyError(err));
    }
    if (finished && this.#routes.get(id) === route) {
      this.#routes.delete(id);
      this.#forgetRequest(id);
      this.#flush();
    }
  }

  #forgetRequest(id: string): void {
    this.#inFlight.delete(id);
    this.#running.delete(id);
    this.#unanswered.delete(id);
    clearTimeout(this.#requestTimers.get(id));
    this.#requestTimers.delete(id);
  }

  #timeOut(id: string, timeoutMs: number): void {
    this.#requestTimers.delete(id);
    const route = this.#routes.get(id);
    if (!route) return;
    const wasSent = this.#inFlight.has(id);
    this.cancel(id);
    this.#routes.delete(id);
    this.#forgetRequest(id);
    route.onFail(
      new RustyDBError(
        'REQUEST_TIMEOUT',
        `no answer within ${timeoutMs} ms${wasSent ? '' : ' (it was still waiting in the queue)'}`,
        { details: { sent: wasSent } },
      ),
    );
    this.#flush();
  }

  // ---- sending ---------------------------------------------------------------------------------

  #resubscribe(id: string, route: Route): void {
    const message = route.resubscribe?.();
    if (!message) return;
    // Already waiting to go (a resubscribe queued earlier): keep that one.
    if (this.#queue.some((o) => o.message.id === id)) return;
    this.#enqueueInternal(message, true);
  }

  #enqueueInternal(message: OutboundMessage, priority = false): void {
    const item: Outgoing = { message, gated: false, internal: true };
    if (priority) {
      // Ahead of application requests, behind other internal messages already at the front.
      const at = this.#queue.findIndex((o) => !o.internal);
      if (at === -1) this.#queue.push(item);
      else this.#queue.splice(at, 0, item);
    } else this.#queue.push(item);
    this.#flush();
  }

  #flush(): void {
    if (this.#flushTimer !== undefined) return;
    const socket = this.#socket;
    if (this.#state !== 'open' || !socket || socket.readyState !== OPEN) return;
    while (this.#queue.length > 0) {
      // The first message that may go: gated requests wait while the server's running limit is
      // reached; other messages pass them, requests keep their order among themselves.
      const full = this.#running.size >= this.#limiter.maxRunning;
      const at = full ? this.#queue.findIndex((o) => !o.gated) : 0;
      if (at === -1) return;
      const wait = this.#options.rateLimit ? this.#limiter.take(now()) : 0;
      if (wait > 0) {
        this.#flushTimer = setTimeout(() => {
          this.#flushTimer = undefined;
          this.#flush();
        }, wait);
        return;
      }
      const [item] = this.#queue.splice(at, 1);
      if (!item) return;
      this.#sendNow(socket, item.message);
      const { id } = item.message;
      if (id !== undefined && this.#routes.has(id)) {
        this.#inFlight.add(id);
        this.#unanswered.set(id, item);
        if (item.gated) this.#running.add(id);
      }
    }
  }

  #sendNow(socket: WebSocketLike, message: OutboundMessage): void {
    this.#sentSinceOpen++;
    socket.send(JSON.stringify({ ...message, timestamp: new Date().toISOString() }));
  }

  // ---- heartbeat -------------------------------------------------------------------------------

  #startHeartbeat(socket: WebSocketLike): void {
    clearInterval(this.#heartbeatTimer);
    if (!this.#options.heartbeat) return;
    this.#heartbeatTimer = setInterval(() => this.#checkAlive(socket), this.#options.heartbeatInterval);
  }

  /** Sends a `ping`; the socket is given up when nothing at all arrives within heartbeatTimeout. */
  #checkAlive(socket: WebSocketLike): void {
    if (this.#socket !== socket || this.#state !== 'open' || this.#paused) return;
    // Behind a long offline queue the ping would wait its turn; the socket is busy anyway.
    this.#enqueueInternal({ type: 'ping', id: this.nextId('hb-') }, true);
    if (this.#pongTimer !== undefined) return;
    this.#pongTimer = setTimeout(() => {
      this.#pongTimer = undefined;
      if (this.#socket === socket && !this.#paused) {
        this.#lastError = new RustyDBError('CONNECTION_LOST', 'no answer to the heartbeat');
        this.#abandon(socket, 1006, 'heartbeat timeout');
      }
    }, this.#options.heartbeatTimeout);
  }

  // ---- closing ---------------------------------------------------------------------------------

  /** Gives up on a socket that is dead or hanging: no close handshake, and the close is handled now. */
  #abandon(socket: WebSocketLike, code: number, reason: string): void {
    if (this.#socket !== socket) return;
    socket.onopen = socket.onmessage = socket.onclose = socket.onerror = null;
    try {
      if (socket.terminate) socket.terminate();
      else socket.close(4000, reason);
    } catch {
      // Closing a socket that never opened can throw in some implementations.
    }
    this.#onClosed(code, reason);
  }

  #onClosed(code: number, reason: string): void {
    this.#socket = undefined;
    this.#authId = undefined;
    this.#paused = false;
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#flushTimer);
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#refreshTimer);
    this.#connectTimer =
      this.#flushTimer =
      this.#heartbeatTimer =
      this.#pongTimer =
      this.#refreshTimer =
        undefined;
    this.#limiter.reset();
    if (this.#closing || this.#state === 'closed') return;
    const lastError = this.#lastError;
    const disposition: CloseDisposition = closeDisposition(code, lastError, this.#auth.canReauthenticate);
    const error = closeError(code, reason, lastError);
    const retry = disposition !== 'fatal' && this.#mayRetry(error);
    this.#events.emit('close', { code, reason, willReconnect: retry, error: lastError });
    if (!retry) {
      this.#shutdown(disposition === 'fatal' ? error : this.#gaveUp(error));
      return;
    }
    // Requests sent on the lost socket may or may not have run: they fail, and the caller decides.
    const lost = new RustyDBError('CONNECTION_LOST', error.message, { closeCode: code, cause: error });
    for (const id of [...this.#inFlight]) {
      const route = this.#routes.get(id);
      this.#forgetRequest(id);
      if (route && !route.resubscribe) {
        this.#routes.delete(id);
        route.onFail(lost);
      }
    }
    this.#inFlight.clear();
    this.#running.clear();
    this.#unanswered.clear();
    // Internal messages belonged to the old socket (pings, cancels, resubscribes); requests stay queued.
    for (let i = this.#queue.length - 1; i >= 0; i--) if (this.#queue[i]!.internal) this.#queue.splice(i, 1);
    for (const route of this.#routes.values()) route.onDisconnect?.(lost);
    this.#scheduleRetry(disposition, error);
  }

  /** Counts the attempt about to be made and asks the retry policy whether to make it. */
  #mayRetry(error: RustyDBError): boolean {
    this.#attempt++;
    this.#lastFailure = error;
    let allowed: boolean;
    try {
      allowed = allowsRetry(this.#options, this.#retryContext(error));
    } catch (err) {
      // A shouldRetry that throws says no, and the application hears why.
      this.#events.emit('error', toRustyError(err));
      allowed = false;
    }
    return allowed;
  }

  #retryContext(error: RustyDBError): RetryContext {
    return { attempt: this.#attempt, error, everConnected: this.#everOpen };
  }

  /** The error the client closes with when the retry policy says stop. */
  #gaveUp(error: RustyDBError): RustyDBError {
    return new RustyDBError(
      'CONNECTION_FAILED',
      `gave up connecting to ${this.url} after ${this.#attempt - 1} retries: ${error.message}`,
      { cause: error, closeCode: error.closeCode },
    );
  }

  /** A failed attempt: another one after the policy's wait, or closed if the policy says stop. */
  #retryOrGiveUp(disposition: CloseDisposition, error: RustyDBError): void {
    if (!this.#mayRetry(error)) {
      this.#shutdown(this.#gaveUp(error));
      return;
    }
    this.#scheduleRetry(disposition, error);
  }

  #scheduleRetry(disposition: CloseDisposition, error: RustyDBError): void {
    const life = this.#life;
    this.#setState('reconnecting');
    this.#retry.start(this.#options, this.#retryContext(error), () => {
      if (life !== this.#life || this.#closing) return;
      if (disposition !== 'reauthenticate') {
        void this.#connect();
        return;
      }
      this.#auth.renew('expired').then(
        () => {
          if (life === this.#life && !this.#closing) void this.#connect();
        },
        (err: unknown) => {
          if (life !== this.#life || this.#closing) return;
          const failure = toRustyError(err);
          if (failure.code === 'AUTH_FAILED' || failure.code === 'AUTH_EXPIRED') this.#shutdown(failure);
          else this.#retryOrGiveUp('reauthenticate', failure);
        },
      );
    });
  }

  /** Final: fails everything still pending and enters `closed`. */
  #shutdown(error: RustyDBError): void {
    if (this.#state === 'closed') return;
    this.#life++;
    this.#closedError = error;
    this.#retry.cancel();
    this.#stopWakeListening?.();
    this.#stopWakeListening = undefined;
    clearTimeout(this.#initialTimer);
    clearTimeout(this.#connectTimer);
    clearTimeout(this.#flushTimer);
    clearInterval(this.#heartbeatTimer);
    clearTimeout(this.#pongTimer);
    clearTimeout(this.#refreshTimer);
    for (const timer of this.#requestTimers.values()) clearTimeout(timer);
    this.#requestTimers.clear();
    const socket = this.#socket;
    this.#socket = undefined;
    this.#authId = undefined;
    this.#paused = false;
    if (socket) {
      socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
      try {
        if (socket.readyState <= OPEN) socket.close(1000, 'client giving up');
      } catch {
        // Nothing to close.
      }
    }
    this.#queue.length = 0;
    const routes = [...this.#routes.values()];
    this.#routes.clear();
    this.#inFlight.clear();
    this.#running.clear();
    this.#unanswered.clear();
    this.#setState('closed');
    for (const route of routes) route.onFail(error);
  }

  #setState(state: ConnectionState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#events.emit('state', state);
  }
}

function clientClosed(): RustyDBError {
  return new RustyDBError('CLIENT_CLOSED', 'the client was closed');
}

function toRustyError(err: unknown): RustyDBError {
  if (err instanceof RustyDBError) return err;
  return new RustyDBError('INTERNAL_ERROR', err instanceof Error ? err.message : String(err), { cause: err });
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}
