/**
 * One client of `/api/v1/stream`, independent of the WebSocket library: it receives text messages,
 * sends text messages through `SessionSocket`, and owns everything the client started (running
 * queries, timers). `close()` is the one clean-up path and is safe to call twice.
 */
import {
  parseClientMessage,
  type ErrorCode,
  type BatchMessage,
  type CancelMessage,
  type ClientMessage,
  type QueryMessage,
  type ServerLimits,
  type ServerMessageType,
  type StatementResult,
} from '@rustydb/protocol';
import type { ServerConfig } from '../config/config.ts';
import { lastInlineRun, type Engine } from '../engine/engine.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import {
  ANONYMOUS,
  sameIdentity,
  type Authenticator,
  type CheckedNow,
  type Principal,
} from '../auth/authenticator.ts';
import type { AccessControl } from '../auth/access-control.ts';
import {
  authSuccessEnvelope,
  dataEnvelope,
  envelope,
  errorEnvelope,
  idTail,
  sharedPayloadEnvelope,
  sharedPayloadHead,
} from './envelope.ts';
import { describeError, type Logger } from './logger.ts';
import { TokenBucket, ViolationCounter } from './rate-limiter.ts';
import { DeadlineQueue, type Scheduled } from './deadline-queue.ts';
import { RegistryEntry, type SessionRegistry } from './session-registry.ts';
import type { AuditLog } from '../audit/audit-log.ts';
import type { SubscriptionHub } from '../changes/subscription-hub.ts';
import { SessionSubscriptions } from './session-subscriptions.ts';
import type { SubscriberOwner } from '../changes/subscriber.ts';
import { WritesAhead, waitForWritesAhead } from './writes-ahead.ts';
import { RequestCancel } from './request-cancel.ts';

/**
 * Where a subscription's messages go when their payload is shared by many connections: the transport's
 * socket (a change fanned out to 10,000 subscribers calls it 10,000 times in a row).
 */
export interface SharedMessageSink {
  /**
   * Queues the text message `head` + `tail`: `head` the UTF-8 bytes shared with other connections
   * (sharedPayloadHead), `tail` this connection's own end of it (idTail). Nothing when not open.
   */
  sendShared(head: Buffer, tail: string): void;
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number;
}

/**
 * The transport a session sends through. The names differ from a WebSocket's own (`send`, `close`,
 * `bufferedAmount()`) so that the gateway's socket can be one itself, with no adapter object per
 * connection between (see FlowControlledWebSocket).
 */
export interface SessionSocket {
  /**
   * Queues a message; nothing once the connection is closing. Past `maxBuffered` the transport closes
   * the connection instead.
   */
  sendMessage(text: string): void;
  /**
   * Queues the text message made of `parts` (UTF-8 bytes, which may be shared with other connections:
   * see sharedPayloadHead; or text, written as UTF-8): a transport that has it frames them without
   * making them one string first. Nothing once the connection is closing.
   */
  sendText?(parts: readonly (Buffer | string)[]): void;
  /** The transport's sink for shared messages, where it has one. */
  readonly sharedSink?: SharedMessageSink | undefined;
  /** True while the transport holds more unsent data than it should. */
  congested(): boolean;
  /** Bytes queued and not yet handed to the network. */
  readonly bufferedAmount: number;
  /** Bytes that may be queued at most (websocket_max_send_buffer): no message can be larger. */
  readonly maxBuffered: number;
  /** Whether `bytes` more can be queued now. */
  fits(bytes: number): boolean;
  /** Resolves once `bytes` more can be queued (or the transport is closed). */
  room(bytes: number): Promise<void>;
  /** Resolves when the transport has room again (or is closed). */
  drained(): Promise<void>;
  /** Closes the connection with `code` and `reason`, unless it is closing (or closed) already. */
  closeWith(code: number, reason: string): void;
  /**
   * Tells the transport the client has authenticated (or needs no authentication): it then stops
   * counting the connection as unauthenticated and no longer closes it for taking too long.
   */
  authenticated?(): void;
}

export interface SessionDeps {
  engine: Engine;
  authenticator: Authenticator;
  access: AccessControl;
  config: ServerConfig;
  logger: Logger;
  /** Where authenticated sessions are listed, so that they can be ended from outside. */
  sessions?: SessionRegistry;
  audit?: AuditLog;
  /** Table subscriptions and live queries; without it, `subscribe` is refused. */
  subscriptions?: SubscriptionHub;
  /** Counts messages in and out (queries are counted by the engine the session is given). */
  metrics?: { messageIn(): void; messageOut(): void };
}

/** Where a session's client is and which endpoint it reached (for the session list and the audit log). */
export interface SessionOrigin {
  endpoint: string;
  remoteAddress: string;
  /** On a collection's watch endpoint: the collection every `watch` is about. */
  collection?: string;
  /** A message (text) the session handles as soon as it is authenticated: the stream its URL asked for. */
  startWith?: string;
}

/** Rows a `streaming: false` query may return; larger results must be streamed. */
export const MAX_UNSTREAMED_ROWS = 100_000;
/** Queries one connection may run at the same time. */
export const MAX_RUNNING_QUERIES = 16;
/** How long before expiry the server warns that a token is about to expire. */
const EXPIRY_WARNING_MS = 60_000;
/** Refused messages that close the socket by default: 50 seconds' worth of the rate. */
const DEFAULT_VIOLATIONS_PER_RPS = 50;

/** The rate limiter's settings, with the defaults that depend on other fields filled in. */
export function rateLimits(config: ServerConfig): { burst: number; maxViolations: number; windowMs: number } {
  return {
    burst: config.rate_limit_burst ?? config.rate_limit_rps,
    maxViolations: config.rate_limit_max_violations ?? config.rate_limit_rps * DEFAULT_VIOLATIONS_PER_RPS,
    windowMs: config.rate_limit_violation_window * 1000,
  };
}

/** A connection's count of refused messages, made at its first refusal (see StreamSession.#violations). */
function newViolationCounter(config: ServerConfig): ViolationCounter {
  const { maxViolations, windowMs } = rateLimits(config);
  return new ViolationCounter(maxViolations, windowMs);
}

/** Why an `auth` with another user's token is refused on an authenticated connection. */
export function switchRefused(current: Principal): string {
  return `this connection is authenticated as '${current.user}'; a token of another user needs a connection of its own`;
}

/** The `limits` of auth_success as JSON, by configuration (see #limitsJson). */
const limitsTexts = new WeakMap<ServerConfig, string>();

export class StreamSession extends RegistryEntry implements SubscriberOwner, Scheduled {
  readonly #socket: SessionSocket;
  /** The socket's sink for shared messages (SharedMessageSink), if it has one. */
  readonly #sink: SharedMessageSink | undefined;
  readonly #deps: SessionDeps;
  #principal: Principal | undefined;
  /** Named requests running, by id; made with the first one (most connections never run a long one). */
  #running: Map<string, RequestCancel> | undefined;
  #unnamedRunning = 0;
  #closed = false;
  /**
   * The connection's message rate (with rate limiting on), made at its first message: made at connect,
   * it would be just as full then (a bucket starts full and fills no further), and an idle connection
   * holds none.
   */
  #bucket: TokenBucket | undefined;
  /** Its refused messages, counted in windows from the first one (with rate limiting on). */
  #violations: ViolationCounter | undefined;
  /** Messages that arrived while a URL token was being checked; replayed in order once it is. */
  #pending: string[] | undefined;
  /**
   * @internal the expiry queue's (see #armExpiry): the session is its own entry there, due for the
   * expiry warning, then for the expiry itself (a Deadline object and its epoch time's number object
   * cost every authenticated connection ~70 bytes).
   */
  deadlineAt = 0;
  /** @internal the expiry queue's: the session's place in it, -1 when not scheduled. */
  deadlineIndex = -1;
  /** On a collection's watch endpoint: the collection every `watch` is about. */
  readonly #collection: string | undefined;
  #startWith: string | undefined;
  #subscriptions: SessionSubscriptions | undefined;
  /** This connection's writes that commit later in a group (see WritesAhead); made with the first. */
  #writesAhead: WritesAhead | undefined;
  /**
   * The engine's runInline (undefined where it has none), read once: the engine the endpoints get is a
   * view (a Proxy: audit, metrics, catalog scope) whose every method lookup runs a trap, and the fast
   * path looked it up twice per keyed query.
   */
  readonly #runInline: Engine['runInline'];

  constructor(
    socket: SessionSocket,
    deps: SessionDeps,
    origin: SessionOrigin = { endpoint: '', remoteAddress: '' },
  ) {
    // The session is its own entry in the registry: what it lists and ends (see RegistryEntry).
    super(origin.endpoint, origin.remoteAddress);
    this.#socket = socket;
    this.#sink = socket.sharedSink;
    this.#deps = deps;
    this.#collection = origin.collection;
    this.#startWith = origin.startWith;
    this.#runInline = deps.engine.runInline;
  }

  /** Where the session is listed once authenticated (see RegistryEntry). */
  protected get registry(): SessionRegistry | undefined {
    return this.#deps.sessions;
  }

  get principal(): Principal | undefined {
    return this.#principal;
  }

  /**
   * Starts the session, with the token from the URL if the client gave one; `checked`, that token's
   * check when the gateway did it ahead in this tick.
   */
  async open(urlToken: string | undefined, checked?: CheckedNow): Promise<void> {
    const { config } = this.#deps;
    if (!config.require_authentication) {
      this.#principal = ANONYMOUS;
      this.#socket.authenticated?.();
      this.#begin();
      return;
    }
    // Until it authenticates, the transport closes the socket when its time to do so is up.
    if (urlToken !== undefined) {
      this.#pending = [];
      try {
        await this.#authenticate(urlToken, undefined, checked);
      } finally {
        const pending = this.#pending;
        this.#pending = undefined;
        for (const text of pending) this.handleText(text);
      }
    }
  }

  handleText(text: string): void {
    if (this.#closed) return;
    this.#deps.metrics?.messageIn();
    if (this.#pending) {
      this.#pending.push(text);
      return;
    }
    const parsed = parseClientMessage(text);
    // Every message counts against the rate limit, malformed ones included: garbage is no way around it.
    const requestId = parsed.ok ? parsed.message.id : parsed.id;
    const { config } = this.#deps;
    if (config.enable_rate_limiting) {
      const retryAfter = (this.#bucket ??= new TokenBucket(
        config.rate_limit_rps,
        rateLimits(config).burst,
      )).take();
      if (retryAfter > 0) {
        if ((this.#violations ??= newViolationCounter(config)).record()) {
          this.#send(
            errorEnvelope(new RustyError('RATE_LIMIT_EXCEEDED', 'sustained rate limit violation'), requestId),
          );
          this.#audit('rate_limit.close', { refused_within_ms: rateLimits(config).windowMs });
          this.#closeWith(1008, 'rate limit exceeded');
          return;
        }
        this.#send(
          errorEnvelope(
            new RustyError('RATE_LIMIT_EXCEEDED', 'too many messages', { retry_after_ms: retryAfter }),
            requestId,
          ),
        );
        return;
      }
    }
    if (!parsed.ok) {
      this.#send(errorEnvelope(new RustyError('INVALID_MESSAGE', parsed.error), parsed.id));
      return;
    }
    this.#handleMessage(parsed.message);
  }

  /** Ends the session from outside (logout, revocation, an administrator): an error, then close 1008. */
  terminate(code: ErrorCode, message: string, reason: string): void {
    if (this.#closed) return;
    this.#send(errorEnvelope(new RustyError(code, message)));
    this.#closeWith(1008, reason);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.release();
    StreamSession.#expiries.cancel(this);
    for (const running of this.#running?.values() ?? []) running.abort();
    this.#running?.clear();
    this.#subscriptions?.close();
  }

  /** This connection's subscriptions, created with the first `subscribe`. */
  #subscriptionsFor(): SessionSubscriptions | undefined {
    const hub = this.#deps.subscriptions;
    if (!hub) return undefined;
    // The session is its subscriptions' owner itself: an owner object of closures cost every
    // subscribed connection a few hundred bytes.
    this.#subscriptions ??= new SessionSubscriptions(
      hub,
      this,
      this.#deps.logger,
      this.#deps.config.max_subscriptions_per_connection,
    );
    return this.#subscriptions;
  }

  /** As the owner of subscriptions: unique per connection (the registry's id: see RegistryEntry). */
  get sessionId(): string {
    return this.id;
  }

  /** As the owner of subscriptions: the connection's user (one user's for its whole life). */
  get user(): string {
    return this.#principal?.user ?? '';
  }

  /** As the owner of subscriptions: sends one of their messages. */
  deliver(type: ServerMessageType, payload: unknown, id: string): void {
    if (payload === null || typeof payload !== 'object') {
      this.#send(envelope(type, payload, id));
      return;
    }
    const socket = this.#socket;
    if (!socket.sendText) {
      this.#send(sharedPayloadEnvelope(type, payload, id));
      return;
    }
    // The payload, serialized once for every subscriber it goes to, is framed by the transport as bytes.
    if (this.#closed) return;
    this.#deps.metrics?.messageOut();
    socket.sendText([sharedPayloadHead(type, payload), idTail(id)]);
  }

  /**
   * As the owner of subscriptions: one of their messages whose payload (an object, read-only) goes to
   * many connections; `tail` is `idTail(id)`, made once by the subscription.
   */
  deliverShared(type: ServerMessageType, payload: object, id: string, tail: string): void {
    const sink = this.#sink;
    if (sink === undefined) {
      this.deliver(type, payload, id);
      return;
    }
    if (this.#closed) return;
    this.#deps.metrics?.messageOut();
    sink.sendShared(sharedPayloadHead(type, payload), tail);
  }

  /** As the owner of subscriptions: bytes queued on the connection. */
  bufferedAmount(): number {
    const sink = this.#sink;
    return sink !== undefined ? sink.bufferedAmount : this.#socket.bufferedAmount;
  }

  /**
   * Handles a checked message; a keyed query is answered at once, without #dispatch's promise and
   * microtask. A query or batch that arrives while writes of this connection wait for their commit
   * group runs once they are answered (a deferred write of its own joins them instead, in order), so
   * that it sees them, as it did when every keyed write ran at once.
   */
  #handleMessage(message: ClientMessage): void {
    if (this.#principal === undefined || (message.type !== 'query' && message.type !== 'batch')) {
      this.#dispatch(message).catch((err) => this.#fail(err));
      return;
    }
    const { engine } = this.#deps;
    const ahead = this.#writesAhead;
    if (
      ahead &&
      !ahead.empty &&
      !(message.type === 'query' && engine.deferredWrite?.(message.payload.sql) === true)
    ) {
      this.#dispatch(message, false, ahead.answered()).catch((err) => this.#fail(err));
      return;
    }
    if (message.type === 'batch') {
      this.#dispatch(message).catch((err) => this.#fail(err));
      return;
    }
    if (this.#runInlineQuery(message)) return;
    const deferred = engine.deferredWrite?.(message.payload.sql) === true;
    // Straight to the query's own path: what #dispatch checks first (authenticated, a query) holds here.
    const answered = this.#trackedQuery(message, undefined, deferred);
    if (deferred) (this.#writesAhead ??= new WritesAhead()).track(answered);
    answered.catch((err) => this.#fail(err));
  }

  /**
   * @param inlineTried the query was offered to the inline path already (and must take the normal one).
   * @param after the writes ahead of the request (see WritesAhead): it runs once they are answered.
   */
  async #dispatch(message: ClientMessage, inlineTried = false, after?: Promise<void>): Promise<void> {
    if (message.type === 'auth') {
      await this.#authenticate(message.payload.token, message.id);
      return;
    }
    if (!this.#principal) {
      this.#send(
        errorEnvelope(
          new RustyError('AUTH_REQUIRED', 'authenticate first: send an auth message'),
          message.id,
        ),
      );
      return;
    }
    switch (message.type) {
      case 'ping':
        this.#send(envelope('pong', {}, message.id));
        return;
      case 'query':
        if (!after && !inlineTried && this.#runInlineQuery(message)) return;
        await this.#trackedQuery(message, after);
        return;
      case 'batch':
        await this.#tracked(message.id, after, (cancel, timeoutMs) =>
          this.#runBatch(message, cancel, timeoutMs, this.#principal!),
        );
        return;
      case 'cancel':
        this.#cancel(message);
        return;
      case 'subscribe': {
        const subscriptions = this.#subscriptionsFor();
        if (!subscriptions) {
          this.#send(
            errorEnvelope(
              new RustyError('INVALID_MESSAGE', 'subscriptions are not available here'),
              message.id,
            ),
          );
          return;
        }
        await subscriptions.subscribe(message, this.#principal);
        return;
      }
      case 'unsubscribe':
        this.#subscriptionsFor()?.unsubscribe(message.id);
        return;
      case 'watch': {
        const subscriptions = this.#subscriptionsFor();
        if (!subscriptions) {
          this.#send(
            errorEnvelope(
              new RustyError('INVALID_MESSAGE', 'change streams are not available here'),
              message.id,
            ),
          );
          return;
        }
        const collection = this.#collection ?? message.payload.collection;
        await subscriptions.watch(message, collection, this.#principal);
        return;
      }
    }
  }

  /** `checked`: the URL token's check, done by the gateway in this tick (see Authenticator.checkNow). */
  async #authenticate(token: string, id: string | undefined, checked?: CheckedNow): Promise<void> {
    let principal: Principal;
    try {
      const { authenticator } = this.#deps;
      const context = { ip: this.remoteAddress, endpoint: this.endpoint };
      // In this tick when it can be: a URL token's auth_success then leaves with the upgrade's answer.
      principal =
        (checked
          ? authenticator.outcomeOf(checked, context)
          : authenticator.authenticateNow(token, context)) ??
        (await authenticator.authenticate(token, context));
    } catch (err) {
      const failure = normalizeError(err, (e) =>
        this.#deps.logger.error('authentication failed', describeError(e)),
      );
      this.#send(errorEnvelope(failure, id, 'auth_error'));
      this.#closeWith(1008, failure.code === 'AUTH_EXPIRED' ? 'token expired' : 'authentication failed');
      return;
    }
    if (this.#closed) return;
    // A connection is one user's for its whole life: what it opened (subscriptions, running queries)
    // was authorized for that user and ends with that user's revocation, never another's.
    const current = this.#principal;
    if (current && !current.anonymous && !sameIdentity(current, principal)) {
      this.#send(errorEnvelope(new RustyError('AUTH_FAILED', switchRefused(current)), id, 'auth_error'));
      this.#closeWith(1008, 'authentication failed');
      return;
    }
    if (!this.authenticated(principal)) {
      this.#audit('connection.limit', { user: principal.user, limit: 'max_connections_per_user' });
      this.#send(
        errorEnvelope(
          new RustyError(
            'CONNECTION_LIMIT',
            `user '${principal.user}' already has ${this.#deps.config.max_connections_per_user} connections open`,
          ),
          id,
        ),
      );
      this.#closeWith(1013, 'connection limit reached');
      return;
    }
    this.#principal = principal;
    this.#socket.authenticated?.();
    this.#armExpiry(principal.expiresAt!);
    this.#sendFramed(authSuccessEnvelope(principal, principal.expiresAt!, this.#limitsJson(), id));
    this.#begin();
  }

  /** Starts what the URL asked for, once, after the first authentication. */
  #begin(): void {
    const text = this.#startWith;
    this.#startWith = undefined;
    if (text === undefined) return;
    const parsed = parseClientMessage(text);
    if (!parsed.ok) {
      this.#send(errorEnvelope(new RustyError('INVALID_MESSAGE', parsed.error), parsed.id));
      return;
    }
    this.#handleMessage(parsed.message);
  }

  /**
   * Every session's token deadline, on one timer for the process: a timer per session cost each
   * authenticated connection a few hundred bytes.
   */
  static readonly #expiries = new DeadlineQueue<StreamSession>((session, at) => session.#expiryDue(at));

  /**
   * Warns shortly before the token expires, and ends the session when it does unless re-authenticated
   * (which arms it again for the new token). One deadline per session, first for the warning (unless
   * the token expires within the warning time), then for the expiry.
   */
  #armExpiry(expiresAt: number): void {
    const warnAt = expiresAt - EXPIRY_WARNING_MS;
    StreamSession.#expiries.schedule(this, warnAt > Date.now() ? warnAt : expiresAt);
  }

  /** The session's deadline came due: the one `at` was scheduled for, the warning or the expiry. */
  #expiryDue(at: number): void {
    if (this.#closed) return;
    const expiresAt = this.#principal!.expiresAt!;
    if (at < expiresAt) {
      this.#send(envelope('auth_expiring', { expires_at: new Date(expiresAt).toISOString() }));
      StreamSession.#expiries.schedule(this, expiresAt);
      return;
    }
    this.#send(errorEnvelope(new RustyError('AUTH_EXPIRED', 'token has expired; authenticate again')));
    this.#closeWith(1008, 'token expired');
  }

  /** The limits' JSON text, made once per configuration: every connect sends it. */
  #limitsJson(): string {
    const { config } = this.#deps;
    let json = limitsTexts.get(config);
    if (json === undefined) limitsTexts.set(config, (json = JSON.stringify(this.#limits())));
    return json;
  }

  #limits(): ServerLimits {
    const { config } = this.#deps;
    const rate = config.enable_rate_limiting ? rateLimits(config) : undefined;
    return {
      max_message_size: config.websocket_max_message_size,
      rate_limit_rps: rate ? config.rate_limit_rps : null,
      rate_limit_burst: rate?.burst ?? null,
      rate_limit_max_violations: rate?.maxViolations ?? null,
      rate_limit_violation_window_ms: rate?.windowMs ?? null,
      max_running_queries: MAX_RUNNING_QUERIES,
      max_subscriptions: config.max_subscriptions_per_connection || null,
      max_connections_per_ip: config.max_connections_per_ip || null,
      max_connections_per_user: config.max_connections_per_user || null,
      login_max_attempts: config.login_max_attempts,
      ping_interval_ms: config.websocket_ping_interval * 1000,
      idle_timeout_ms: config.websocket_timeout * 1000,
    };
  }

  #audit(event: 'rate_limit.close' | 'connection.limit', details: Record<string, unknown>): void {
    this.#deps.audit?.record({
      event,
      user: this.#principal?.user ?? (details.user as string | undefined),
      ip: this.remoteAddress,
      endpoint: this.endpoint,
      ...(this.listed ? { session: this.id } : {}),
      details,
    });
  }

  /** Runs a query, tracked (see #tracked); a write that waits for its commit group by its own path. */
  #trackedQuery(
    message: QueryMessage,
    after: Promise<void> | undefined,
    deferred = this.#deps.engine.deferredWrite?.(message.payload.sql) === true,
  ): Promise<void> {
    return this.#tracked(
      message.id,
      after,
      deferred
        ? (cancel, timeoutMs) => this.#runDeferredWrite(message, cancel, timeoutMs, this.#principal!)
        : (cancel, timeoutMs) => this.#runQuery(message, cancel, timeoutMs, this.#principal!),
    );
  }

  /**
   * Runs `work` with a cancellation that `cancel` (by id) and `close` can fire, and the milliseconds
   * left of the statement timeout. With `after`, it first waits for the connection's writes ahead (see
   * WritesAhead), counted as running meanwhile and bound to the same cancellation and timeout.
   */
  async #tracked(
    id: string | undefined,
    after: Promise<void> | undefined,
    work: (cancel: RequestCancel, timeoutMs: number) => Promise<void>,
  ): Promise<void> {
    if (id !== undefined && this.#running?.has(id)) {
      this.#send(
        errorEnvelope(new RustyError('INVALID_MESSAGE', `a request with id '${id}' is still running`), id),
      );
      return;
    }
    if ((this.#running?.size ?? 0) + this.#unnamedRunning >= MAX_RUNNING_QUERIES) {
      this.#send(
        errorEnvelope(
          new RustyError('RATE_LIMIT_EXCEEDED', `at most ${MAX_RUNNING_QUERIES} requests may run at once`, {
            retry_after_ms: 100,
          }),
          id,
        ),
      );
      return;
    }
    const cancel = new RequestCancel();
    if (id !== undefined) (this.#running ??= new Map()).set(id, cancel);
    else this.#unnamedRunning++;
    try {
      const timeoutMs = this.#deps.config.statement_timeout * 1000;
      if (!after) await work(cancel, timeoutMs);
      else {
        const started = performance.now();
        await waitForWritesAhead(after, cancel.signal, timeoutMs);
        const left = Math.max(1, Math.round(timeoutMs - (performance.now() - started)));
        await work(cancel, left);
      }
    } catch (err) {
      if (this.#closed) this.#leftBehind(err, id);
      else this.#sendFailure(err, id);
    } finally {
      if (id !== undefined) {
        if (this.#running?.get(id) === cancel) this.#running.delete(id);
      } else this.#unnamedRunning--;
    }
  }

  /**
   * The fast path: a keyed lookup or single-row write runs synchronously and is answered at once,
   * without the tracking, timers and async steps a long statement needs. False when the statement
   * must take the normal path (not known to be cheap, privileges not loaded yet, id still running).
   */
  #runInlineQuery(message: QueryMessage): boolean {
    const runInline = this.#runInline;
    if (!runInline || (message.id !== undefined && this.#running?.has(message.id))) return false;
    const { engine, access } = this.#deps;
    const caller = access.cachedCaller(this.#principal!);
    if (!caller) return false;
    let result;
    try {
      // The checked payload is the statement (its sql and params; the engine reads nothing else of it).
      result = runInline.call(engine, message.payload, caller);
    } catch (err) {
      this.#sendFailure(err, message.id);
      return true;
    }
    if (!result) return false;
    // Stamped with the run's end (lastInlineRun): one clock read less per keyed query.
    this.#sendResult(message, result, lastInlineRun.endedAt)?.catch((err) =>
      this.#sendFailure(err, message.id),
    );
    return true;
  }

  /**
   * Answers a query with its whole result, in chunks of the size asked for: sent at once when it fits
   * the socket's buffer (almost always: then nothing is returned), else as the client reads, by the
   * promise returned.
   */
  #sendResult(message: QueryMessage, result: StatementResult, madeAt?: number): Promise<void> | undefined {
    const { chunk_size, streaming } = message.payload;
    const size =
      streaming === false ? result.rows.length : (chunk_size ?? this.#deps.config.query_chunk_size);
    const { columns, rows } = result;
    if (rows.length <= size) {
      // Almost every keyed answer: one message, which fits unless the client is far behind.
      const text = chunkText(
        message.id,
        columns,
        rows,
        false,
        result.rows_affected,
        result.last_insert_id,
        madeAt,
      );
      if (!this.#socket.fits(text.length * 3)) return this.#answer(text);
      // Framed in one buffer and written with one `write` (see #sendFramed): ws's framing made a header
      // buffer, a copy of the text and a `writev` of the two for every keyed answer.
      this.#sendFramed(text);
      return undefined;
    }
    const texts: string[] = [];
    for (let at = 0; rows.length - at > size; at += size) {
      texts.push(chunkText(message.id, columns, rows.slice(at, at + size), true, undefined, undefined));
    }
    const rest = rows.length > size ? rows.slice(rows.length - (rows.length % size || size)) : rows;
    texts.push(chunkText(message.id, columns, rest, false, result.rows_affected, result.last_insert_id));
    // Almost always sent at once; an answer that does not fit yet waits for the client to read.
    let next = 0;
    while (next < texts.length && this.#socket.fits(texts[next]!.length * 3)) this.#send(texts[next++]!);
    if (next === texts.length) return undefined;
    const later = texts.slice(next);
    return (async () => {
      for (const text of later) await this.#answer(text);
    })();
  }

  /**
   * A write that waits for its turn (its commit group): a result of a row at most, which no stream of
   * chunks needs to carry. A function of its own, small: a suspended async function keeps a frame the
   * size of its whole body, and #runQuery serves every kind of query. Moved out of it, with #dispatch
   * skipped, a grouped INSERT allocated 13.6 KB instead of 15.4 (a sampling heap profile).
   */
  async #runDeferredWrite(
    message: QueryMessage,
    cancel: RequestCancel,
    timeoutMs: number,
    principal: Principal,
  ): Promise<void> {
    const { engine, access } = this.#deps;
    const caller = access.cachedCaller(principal) ?? (await access.callerFor(principal));
    const { sql, params } = message.payload;
    const result = await engine.execute({ sql, params }, { cancel, timeoutMs, caller });
    if (!this.#closed) await this.#sendResult(message, result);
  }

  async #runQuery(
    message: QueryMessage,
    cancel: RequestCancel,
    timeoutMs: number,
    principal: Principal,
  ): Promise<void> {
    const { engine, config, access } = this.#deps;
    const caller = await access.callerFor(principal);
    const { sql, params, streaming, chunk_size } = message.payload;
    if (streaming === false) {
      const chunks = engine.stream(
        { sql, params },
        { cancel, timeoutMs, caller, chunkSize: MAX_UNSTREAMED_ROWS + 1, asJson: true },
      );
      for await (const chunk of chunks) {
        if (!chunk.done) {
          throw new RustyError(
            'QUERY_ERROR',
            `result has more than ${MAX_UNSTREAMED_ROWS} rows; send the query with streaming enabled`,
          );
        }
        await this.#answer(
          chunkText(
            message.id,
            chunk.columns,
            chunk.json ?? chunk.rows,
            false,
            chunk.rowsAffected,
            chunk.lastInsertId,
          ),
        );
      }
      return;
    }
    const chunkSize = chunk_size ?? config.query_chunk_size;
    // The rows are only sent on: the engine may serialize them off the main thread (asJson).
    const options = { cancel, timeoutMs, caller, chunkSize, asJson: true };
    for await (const chunk of engine.stream({ sql, params }, options)) {
      if (this.#closed) return;
      await this.#answer(
        chunkText(
          message.id,
          chunk.columns,
          chunk.json ?? chunk.rows,
          !chunk.done,
          chunk.rowsAffected,
          chunk.lastInsertId,
        ),
      );
      // Backpressure: read no further rows while the client is behind.
      if (!chunk.done && this.#socket.congested()) await this.#socket.drained();
      if (cancel.cancelled) throw new RustyError('QUERY_CANCELLED', 'query cancelled');
    }
  }

  /**
   * Queues the answer to a request, first waiting (holding the client's further messages) while the
   * connection has no room for it; an answer larger than the connection may ever hold fails the request.
   */
  async #answer(text: string): Promise<void> {
    const socket = this.#socket;
    if (!socket.fits(text.length * 3)) {
      const bytes = Buffer.byteLength(text);
      if (bytes > socket.maxBuffered) {
        throw new RustyError(
          'QUERY_ERROR',
          `the answer is ${bytes} bytes, more than one connection may hold (websocket_max_send_buffer, ` +
            `${socket.maxBuffered}); stream it with a smaller chunk_size, or ask for less`,
          { bytes, websocket_max_send_buffer: socket.maxBuffered },
        );
      }
      await socket.room(bytes);
    }
    this.#send(text);
  }

  async #runBatch(
    message: BatchMessage,
    cancel: RequestCancel,
    timeoutMs: number,
    principal: Principal,
  ): Promise<void> {
    const { engine, access } = this.#deps;
    const results = await engine.batch(message.payload.queries, {
      cancel,
      caller: await access.callerFor(principal),
      timeoutMs,
      transaction: message.payload.transaction ?? false,
    });
    await this.#answer(envelope('data', { status: 'success', results }, message.id));
  }

  #cancel(message: CancelMessage): void {
    const running = this.#running?.get(message.payload.id);
    running?.abort();
    if (message.id !== undefined) {
      this.#send(envelope('data', { status: 'success', cancelled: running !== undefined }, message.id));
    }
  }

  #sendFailure(err: unknown, id: string | undefined): void {
    const failure = normalizeError(err, (e) => this.#deps.logger.error('request failed', describeError(e)));
    this.#send(errorEnvelope(failure, id));
    if (failure.fatal) this.#closeWith(1011, 'internal error');
  }

  /** A request that ended because its client went away: nobody to tell, nothing wrong. */
  #leftBehind(err: unknown, id: string | undefined): void {
    const { logger } = this.#deps;
    const failure = normalizeError(err, (e) => logger.error('request failed', describeError(e)));
    logger.debug('request ended: the client went away', {
      id,
      endpoint: this.endpoint,
      code: failure.code,
    });
  }

  /** A failure outside any request: a bug. The client is told and the socket closed with 1011. */
  #fail(err: unknown): void {
    this.#deps.logger.error('session failed', describeError(err));
    this.#send(errorEnvelope(new RustyError('INTERNAL_ERROR', 'internal server error')));
    this.#closeWith(1011, 'internal error');
  }

  #send(text: string): void {
    if (this.#closed) return;
    this.#deps.metrics?.messageOut();
    this.#socket.sendMessage(text);
  }

  /**
   * `#send`, framed by the transport in one buffer where it can (`sendText`): cheaper than ws's framing
   * for the one message every connect sends, auth_success, which then leaves in the same write as the
   * upgrade's answer (see the gateway's #upgrade), and for the one answer of a keyed query. Messages
   * still leave in the order they were sent.
   */
  #sendFramed(text: string): void {
    const socket = this.#socket;
    if (!socket.sendText) {
      this.#send(text);
      return;
    }
    if (this.#closed) return;
    this.#deps.metrics?.messageOut();
    socket.sendText([text]);
  }

  #closeWith(code: number, reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#socket.closeWith(code, reason);
  }
}

/** The text of one `data` message of a query result. */
const chunkText = dataEnvelope;
