/**
 * `ws /api/v1/metrics/stream`: live server metrics. Authentication as on `/api/v1/stream` (`?token=` or
 * an `auth` message first); the envelope and error codes are the protocol's. The client picks metrics
 * and an interval with `subscribe`, and receives `data` messages until it sends `unsubscribe`:
 *
 *   → {"type":"subscribe","id":"m1","payload":{"metrics":["cpu_percent","queries_per_sec"],"interval_ms":500}}
 *   ← {"type":"subscribed","id":"m1","payload":{"status":"success","metrics":[…],"interval_ms":500}}
 *   ← {"type":"data","id":"m1","payload":{"status":"success","metrics":{"cpu_percent":3.1,…}}}   (every 500 ms)
 *
 * Every subscription needs the MONITOR privilege, checked at subscribe and again at each tick (a revoked
 * grant ends it with PERMISSION_DENIED).
 */
import { z } from 'zod';
import type { ErrorCode } from '@rustydb/protocol';
import { ANONYMOUS, sameIdentity, type Authenticator, type Principal } from '../auth/authenticator.ts';
import type { AccessControl } from '../auth/access-control.ts';
import type { ServerConfig } from '../config/config.ts';
import { envelope, errorEnvelope } from '../core/envelope.ts';
import { describeError, type Logger } from '../core/logger.ts';
import type { SessionHandle, SessionRegistry } from '../core/session-registry.ts';
import { switchRefused, type SessionSocket } from '../core/stream-session.ts';
import { RustyError, normalizeError } from '../errors/rusty-error.ts';
import type { EndpointHandler } from '../ws/websocket-gateway.ts';
import { wireSession } from '../ws/session-wiring.ts';
import { adaptSocket } from '../ws/socket-adapter.ts';
import { URL_TOKEN_DISABLED } from '../ws/stream-endpoint.ts';
import { listParameter, numberParameter, streamFromUrl } from '../ws/url-stream.ts';
import { isMetricName, METRIC_NAMES, type MetricName, type MetricsSampler, type Totals } from './sampler.ts';

export const METRICS_STREAM_PATH = '/api/v1/metrics/stream';
export const MIN_INTERVAL_MS = 100;
export const MAX_INTERVAL_MS = 60_000;
export const DEFAULT_INTERVAL_MS = 1000;
/** Subscriptions one connection may hold at once. */
export const MAX_SUBSCRIPTIONS = 16;

const id = z.string().min(1).max(128);
const messageSchema = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('auth'),
    id: id.optional(),
    timestamp: z.string().optional(),
    payload: z.object({ token: z.string().min(1) }),
  }),
  z.object({
    type: z.literal('ping'),
    id: id.optional(),
    timestamp: z.string().optional(),
    payload: z.unknown().optional(),
  }),
  z.object({
    type: z.literal('subscribe'),
    id,
    timestamp: z.string().optional(),
    payload: z
      .object({
        metrics: z.array(z.string()).min(1).max(METRIC_NAMES.length).optional(),
        interval_ms: z.number().int().min(MIN_INTERVAL_MS).max(MAX_INTERVAL_MS).optional(),
      })
      .default({}),
  }),
  z.object({
    type: z.literal('unsubscribe'),
    id,
    timestamp: z.string().optional(),
    payload: z.unknown().optional(),
  }),
]);
type Message = z.infer<typeof messageSchema>;

export interface MetricsSessionDeps {
  authenticator: Authenticator;
  access: AccessControl;
  config: ServerConfig;
  logger: Logger;
  sampler: MetricsSampler;
  sessions?: SessionRegistry;
}

interface Subscription {
  metrics: readonly MetricName[];
  intervalMs: number;
  timer: NodeJS.Timeout | undefined;
  previous: Totals | undefined;
  release: () => void;
}

export class MetricsSession {
  readonly #socket: SessionSocket;
  readonly #deps: MetricsSessionDeps;
  readonly #remoteAddress: string;
  readonly #handle: SessionHandle | undefined;
  readonly #subscriptions = new Map<string, Subscription>();
  #principal: Principal | undefined;
  /** Messages that arrived while a URL token was being checked; handled in order once it is. */
  #pending: string[] | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** The subscription the URL asked for, started once authenticated. */
  #startWith: string | undefined;

  constructor(socket: SessionSocket, deps: MetricsSessionDeps, remoteAddress: string, startWith?: string) {
    this.#socket = socket;
    this.#deps = deps;
    this.#remoteAddress = remoteAddress;
    this.#startWith = startWith;
    this.#handle = deps.sessions?.open(METRICS_STREAM_PATH, remoteAddress, {
      terminate: (code, message, reason) => this.#terminate(code, message, reason),
      bufferedAmount: () => socket.bufferedAmount,
    });
  }

  async open(urlToken: string | undefined): Promise<void> {
    if (!this.#deps.config.require_authentication) {
      this.#principal = ANONYMOUS;
      this.#socket.authenticated?.();
      this.#begin();
      return;
    }
    if (urlToken !== undefined) {
      this.#pending = [];
      try {
        await this.#authenticate(urlToken, undefined);
      } finally {
        const pending = this.#pending;
        this.#pending = undefined;
        for (const text of pending) this.handleText(text);
      }
    }
  }

  handleText(text: string): void {
    if (this.#closed) return;
    if (this.#pending) {
      this.#pending.push(text);
      return;
    }
    this.#deps.sampler.messageIn();
    this.#parseAndRun(text);
  }

  /** Starts what the URL asked for, once, after the first authentication. */
  #begin(): void {
    const text = this.#startWith;
    this.#startWith = undefined;
    if (text !== undefined) this.#parseAndRun(text);
  }

  #parseAndRun(text: string): void {
    let message: Message;
    let requestId: string | undefined;
    try {
      const raw: unknown = JSON.parse(text);
      requestId = typeof (raw as { id?: unknown })?.id === 'string' ? (raw as { id: string }).id : undefined;
      const parsed = messageSchema.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
        throw new RustyError('INVALID_MESSAGE', `${where}${issue?.message ?? 'invalid message'}`);
      }
      message = parsed.data;
    } catch (err) {
      const failure =
        err instanceof RustyError ? err : new RustyError('INVALID_MESSAGE', 'message is not valid JSON');
      this.#send(errorEnvelope(failure, requestId));
      return;
    }
    this.#dispatch(message).catch((err) => {
      const failure = normalizeError(err, (e) =>
        this.#deps.logger.error('metrics request failed', describeError(e)),
      );
      this.#send(errorEnvelope(failure, message.id));
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#handle?.release();
    clearTimeout(this.#expiryTimer);
    for (const id of [...this.#subscriptions.keys()]) this.#end(id);
  }

  async #dispatch(message: Message): Promise<void> {
    if (message.type === 'auth') {
      await this.#authenticate(message.payload.token, message.id);
      return;
    }
    if (!this.#principal) {
      throw new RustyError('AUTH_REQUIRED', 'authenticate first: send an auth message');
    }
    switch (message.type) {
      case 'ping':
        this.#send(envelope('pong', {}, message.id));
        return;
      case 'subscribe':
        await this.#subscribe(message.id, message.payload.metrics, message.payload.interval_ms);
        return;
      case 'unsubscribe':
        if (!this.#subscriptions.has(message.id)) {
          throw new RustyError('NOT_FOUND', `no subscription '${message.id}' on this connection`);
        }
        this.#end(message.id);
        this.#send(envelope('unsubscribed', { status: 'success', reason: 'unsubscribed' }, message.id));
        return;
    }
  }

  async #subscribe(
    id: string,
    names: readonly string[] | undefined,
    intervalMs = DEFAULT_INTERVAL_MS,
  ): Promise<void> {
    await this.#deps.access.requireGlobal(this.#principal!, 'MONITOR');
    if (this.#subscriptions.has(id))
      throw new RustyError('INVALID_MESSAGE', `subscription '${id}' already exists on this connection`);
    if (this.#subscriptions.size >= MAX_SUBSCRIPTIONS) {
      throw new RustyError(
        'RATE_LIMIT_EXCEEDED',
        `at most ${MAX_SUBSCRIPTIONS} metrics subscriptions per connection`,
      );
    }
    const unknown = (names ?? []).filter((n) => !isMetricName(n));
    if (unknown.length > 0) {
      throw new RustyError('INVALID_MESSAGE', `unknown metrics: ${unknown.join(', ')}`, {
        known: [...METRIC_NAMES],
      });
    }
    const metrics = (names as MetricName[] | undefined) ?? METRIC_NAMES;
    const subscription: Subscription = {
      metrics,
      intervalMs,
      timer: undefined,
      previous: undefined,
      release: this.#deps.sampler.trackStream(),
    };
    this.#subscriptions.set(id, subscription);
    this.#send(envelope('subscribed', { status: 'success', metrics, interval_ms: intervalMs }, id));
    await this.#tick(id, subscription);
  }

  /** Sends one reading, then schedules the next; a revoked MONITOR grant ends the subscription. */
  async #tick(id: string, subscription: Subscription): Promise<void> {
    try {
      await this.#deps.access.requireGlobal(this.#principal!, 'MONITOR');
      if (this.#socket.congested()) {
        // The client is behind: this reading is skipped rather than queued. The next one's rates cover
        // the whole time since the last reading sent.
        subscription.timer = setTimeout(() => void this.#tick(id, subscription), subscription.intervalMs);
        return;
      }
      const { values, totals } = await this.#deps.sampler.read(subscription.previous);
      if (this.#subscriptions.get(id) !== subscription) return;
      subscription.previous = totals;
      const picked: Record<string, unknown> = {};
      for (const name of subscription.metrics) picked[name] = values[name];
      this.#send(
        envelope('data', { status: 'success', metrics: picked, interval_ms: subscription.intervalMs }, id),
      );
      subscription.timer = setTimeout(() => void this.#tick(id, subscription), subscription.intervalMs);
    } catch (err) {
      if (this.#subscriptions.get(id) !== subscription) return;
      this.#end(id);
      const failure = normalizeError(err, (e) =>
        this.#deps.logger.error('metrics reading failed', describeError(e)),
      );
      this.#send(errorEnvelope(failure, id));
    }
  }

  #end(id: string): void {
    const subscription = this.#subscriptions.get(id);
    if (!subscription) return;
    this.#subscriptions.delete(id);
    clearTimeout(subscription.timer);
    subscription.release();
  }

  async #authenticate(token: string, requestId: string | undefined): Promise<void> {
    let principal: Principal;
    try {
      principal = await this.#deps.authenticator.authenticate(token, {
        ip: this.#remoteAddress,
        endpoint: METRICS_STREAM_PATH,
      });
    } catch (err) {
      const failure = normalizeError(err, (e) =>
        this.#deps.logger.error('authentication failed', describeError(e)),
      );
      this.#send(errorEnvelope(failure, requestId, 'auth_error'));
      this.#closeWith(1008, failure.code === 'AUTH_EXPIRED' ? 'token expired' : 'authentication failed');
      return;
    }
    if (this.#closed) return;
    // As on /api/v1/stream: a connection is one user's for its whole life.
    const current = this.#principal;
    if (current && !current.anonymous && !sameIdentity(current, principal)) {
      this.#send(
        errorEnvelope(new RustyError('AUTH_FAILED', switchRefused(current)), requestId, 'auth_error'),
      );
      this.#closeWith(1008, 'authentication failed');
      return;
    }
    if (this.#handle && !this.#handle.authenticated(principal)) {
      this.#send(
        errorEnvelope(
          new RustyError('CONNECTION_LIMIT', `user '${principal.user}' has too many connections open`),
          requestId,
        ),
      );
      this.#closeWith(1013, 'connection limit reached');
      return;
    }
    this.#principal = principal;
    this.#socket.authenticated?.();
    clearTimeout(this.#expiryTimer);
    const expiresAt = principal.expiresAt!;
    this.#expiryTimer = setTimeout(
      () => this.#terminate('AUTH_EXPIRED', 'token has expired; authenticate again', 'token expired'),
      Math.min(Math.max(expiresAt - Date.now(), 0), 2_147_483_647),
    );
    this.#send(
      envelope(
        'auth_success',
        {
          status: 'success',
          user: principal.user,
          roles: principal.roles,
          expires_at: new Date(expiresAt).toISOString(),
        },
        requestId,
      ),
    );
    this.#begin();
  }

  #terminate(code: ErrorCode, message: string, reason: string): void {
    if (this.#closed) return;
    this.#send(errorEnvelope(new RustyError(code, message)));
    this.#closeWith(1008, reason);
  }

  #send(text: string): void {
    if (this.#closed) return;
    this.#deps.sampler.messageOut();
    this.#socket.sendMessage(text);
  }

  #closeWith(code: number, reason: string): void {
    if (this.#closed) return;
    this.close();
    this.#socket.closeWith(code, reason);
  }
}

/** The endpoint: a thin adapter between `ws` and MetricsSession. */
export function metricsEndpoint(deps: MetricsSessionDeps): EndpointHandler {
  return (ws, request, target) => {
    const urlToken = target.param('token') ?? undefined;
    if (urlToken !== undefined && !deps.config.allow_url_token) {
      ws.send(envelope('auth_error', { status: 'error', code: 'AUTH_FAILED', message: URL_TOKEN_DISABLED }));
      ws.close(1008, 'token in URL not allowed');
      return;
    }
    const startWith = streamFromUrl(target.url, 'subscribe', 'metrics', {
      metrics: listParameter,
      interval_ms: numberParameter,
    });
    const session = new MetricsSession(adaptSocket(ws), deps, request.socket.remoteAddress ?? '', startWith);
    wireSession(ws, session, urlToken, deps.logger);
  };
}
