/**
 * `ws /graphql/ws`: GraphQL over WebSocket with the graphql-ws protocol (subprotocol
 * `graphql-transport-ws`), served by graphql-ws's own `useServer` on a `ws` server the gateway hands the
 * upgrades to — so the gateway's connection limits, heartbeats and shutdown apply as to every socket.
 *
 * Authentication is the `connection_init` payload: `{authorization: "Bearer <token>"}` or
 * `{token: "<token>"}`; a missing or rejected token closes the socket with 4403. The protocol's other
 * close codes are graphql-ws's own (4400, 4401, 4408, 4409, 4429, 4500).
 *
 * Extensions (ignored by standard clients, documented in docs/graphql.md):
 * - token refresh: a client `ping` with payload `{authorization: "Bearer <new>"}` (or `{token}`) is
 *   answered by a `pong` with `{refreshed: true, expires_at}` (or `{refreshed: false, code, message}`,
 *   the connection going on under the old token);
 * - a minute before the token expires the server sends `ping` with `{auth_expiring: true, expires_at}`;
 *   at expiry, without a refresh, it closes the socket with 4403.
 */
import { randomUUID } from 'node:crypto';
import { execute, GraphQLError, type DocumentNode, type ExecutionArgs } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import type { WebSocket, WebSocketServer } from 'ws';
import { ANONYMOUS, sameIdentity, type Authenticator, type Principal } from '../auth/authenticator.ts';
import type { ServerConfig } from '../config/config.ts';
import type { Logger } from '../core/logger.ts';
import type { SessionHandle, SessionRegistry } from '../core/session-registry.ts';
import { normalizeError } from '../errors/rusty-error.ts';
import type { MetricsSampler } from '../metrics/sampler.ts';
import { MAX_RUNNING_QUERIES } from '../core/stream-session.ts';
import { HIGH_WATER_MARK, type FlowControlledWebSocket } from '../ws/flow-controlled-socket.ts';
import { FORBIDDEN, GRAPHQL_WS_PATH } from './endpoints.ts';
import type { WebSocketGateway } from '../ws/websocket-gateway.ts';
import { formatGraphQLError } from './errors.ts';
import { subscribeWithPlans } from './event-execution.ts';
import type { GraphQLService } from './graphql-service.ts';

export { FORBIDDEN, GRAPHQL_WS_PATH };

/** How long before expiry the server pings with `auth_expiring`. */
const EXPIRY_WARNING_MS = 60_000;
/** The end of a `next` message after its payload. */
const CLOSE_BRACE = Buffer.from('}');
/** setTimeout's longest delay. */
const MAX_DELAY = 2_147_483_647;

export interface GraphQLWsDeps {
  service: GraphQLService;
  gateway: WebSocketGateway;
  authenticator: Authenticator;
  config: ServerConfig;
  logger: Logger;
  sessions?: SessionRegistry;
  sampler?: MetricsSampler;
}

/** The token of a `connection_init` or `ping` payload, if it carries one. */
export function tokenOf(payload: unknown): string | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const fields = payload as { authorization?: unknown; Authorization?: unknown; token?: unknown };
  const authorization = fields.authorization ?? fields.Authorization;
  const token = fields.token;
  if (typeof authorization === 'string') return /^Bearer\s+(\S+)$/i.exec(authorization.trim())?.[1];
  return typeof token === 'string' && token.length > 0 ? token : undefined;
}

/** Write errors that mean the peer closed or reset the connection. */
const DISCONNECTED = new Set(['ECONNRESET', 'EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_WRITE_AFTER_END']);

/** True when a failed write only says that the client is gone. */
function wentAway(socket: WebSocket, err: Error): boolean {
  return socket.readyState !== socket.OPEN || DISCONNECTED.has((err as { code?: string }).code ?? '');
}

/** One graphql-ws connection's own state: who it is, its registry entry, its expiry timers. */
class Connection {
  principal: Principal | undefined;
  readonly handle: SessionHandle | undefined;
  readonly socket: WebSocket;
  /** Each running operation's controller: aborted when the connection ends. */
  readonly #operations = new Map<string, AbortController>();
  readonly id: string;
  #expiry: NodeJS.Timeout | undefined;
  #warning: NodeJS.Timeout | undefined;
  /** Queries and mutations executing now, and the wake-ups of those waiting for one of them to end. */
  #executing = 0;
  readonly #turns: (() => void)[] = [];

  constructor(socket: WebSocket, sessions: SessionRegistry | undefined, remoteAddress: string) {
    this.socket = socket;
    this.handle = sessions?.open(GRAPHQL_WS_PATH, remoteAddress, {
      terminate: (_code, _message, reason) => this.close(FORBIDDEN, reason),
      bufferedAmount: () => socket.bufferedAmount,
    });
    this.id = this.handle?.id ?? randomUUID();
  }

  close(code: number, reason: string): void {
    this.release();
    if (this.socket.readyState === this.socket.OPEN || this.socket.readyState === this.socket.CONNECTING) {
      this.socket.close(code, reason);
    }
  }

  /** Closes with 4403 when the token expires, after a warning ping a minute before. */
  armExpiry(expiresAt: number | undefined): void {
    clearTimeout(this.#expiry);
    clearTimeout(this.#warning);
    if (expiresAt === undefined) return;
    const remaining = expiresAt - Date.now();
    if (remaining > EXPIRY_WARNING_MS) {
      this.#warning = setTimeout(
        () => {
          if (this.socket.readyState !== this.socket.OPEN) return;
          this.socket.send(
            JSON.stringify({
              type: 'ping',
              payload: { auth_expiring: true, expires_at: new Date(expiresAt).toISOString() },
            }),
          );
        },
        Math.min(remaining - EXPIRY_WARNING_MS, MAX_DELAY),
      );
    }
    this.#expiry = setTimeout(
      () => {
        if (Date.now() < expiresAt) this.armExpiry(expiresAt);
        else this.close(FORBIDDEN, 'token expired');
      },
      Math.min(Math.max(remaining, 0), MAX_DELAY),
    );
  }

  /**
   * A signal for one operation, aborted if the connection ends first: its statements are then interrupted
   * rather than left to run. One per operation, so that nothing listens on it after the operation is over.
   */
  operationSignal(id: string): AbortSignal {
    const controller = new AbortController();
    this.#operations.get(id)?.abort();
    this.#operations.set(id, controller);
    return controller.signal;
  }

  /**
   * Counts operation `id` from its start, before its context exists; false when the connection already
   * holds `limit` operations (0: no limit). `running` says whether graphql-ws still holds an operation:
   * one the client completed while it was being set up is never reported done, so it stops counting here.
   */
  admit(id: string, limit: number, running: (id: string) => boolean): boolean {
    if (limit > 0 && this.#operations.size >= limit) {
      for (const held of this.#operations.keys()) if (!running(held)) this.#operations.delete(held);
      if (this.#operations.size >= limit) return false;
    }
    if (!this.#operations.has(id)) this.#operations.set(id, new AbortController());
    return true;
  }

  /**
   * Waits for a query's or mutation's turn to execute: at most MAX_RUNNING_QUERIES at once (as on
   * /api/v1/stream), and none starts while HIGH_WATER_MARK bytes wait to be sent. Without it, a burst
   * of requests from a client that does not read all ran at once (the socket holds the client's messages
   * only once answers are queued, and none is queued yet when a burst arrives): their answers were built
   * together and queued up to websocket_max_send_buffer. False once the connection is closed.
   */
  async turn(): Promise<boolean> {
    const socket = this.socket as FlowControlledWebSocket;
    for (;;) {
      if (socket.readyState !== socket.OPEN) return false;
      if (this.#executing >= MAX_RUNNING_QUERIES) {
        await new Promise<void>((resolve) => this.#turns.push(resolve));
      } else if (socket.bufferedAmount >= HIGH_WATER_MARK) {
        await socket.drained();
      } else {
        this.#executing++;
        return true;
      }
    }
  }

  /** A query or mutation has its result; graphql-ws queues its answer in this same turn of the event loop. */
  executed(): void {
    // The next one looks at the queue once that answer is in it.
    setImmediate(() => {
      this.#executing--;
      this.#turns.shift()?.();
    });
  }

  operationDone(id: string): void {
    this.#operations.delete(id);
  }

  release(): void {
    clearTimeout(this.#expiry);
    clearTimeout(this.#warning);
    this.handle?.release();
    for (const controller of this.#operations.values()) controller.abort();
    this.#operations.clear();
    for (const wake of this.#turns.splice(0)) wake();
  }
}

/**
 * Serves graphql-ws on `wss`, the server the gateway hands `/graphql/ws` upgrades to
 * (`gateway.routeServer(GRAPHQL_WS_PATH, INIT_TIMEOUT_CLOSE)`).
 */
export function serveGraphQLWs(wss: WebSocketServer, deps: GraphQLWsDeps): void {
  const { service, gateway, authenticator, config, logger, sampler } = deps;
  const connections = new WeakMap<WebSocket, Connection>();
  /** The connection of each operation's context, for `execute`. */
  const connectionOfContext = new WeakMap<object, Connection>();

  // Registered before graphql-ws's own listener: counts every message in and out.
  wss.on('connection', (socket: WebSocket, request) => {
    connections.set(socket, new Connection(socket, deps.sessions, request.socket.remoteAddress ?? ''));
    if (sampler) socket.on('message', () => sampler.messageIn());
    const send = socket.send.bind(socket) as (data: unknown, cb?: (err?: Error) => void) => void;
    socket.send = ((data: unknown, cb?: (err?: Error) => void) => {
      sampler?.messageOut();
      // Without a callback a failed write surfaces as the socket's close, as on every other socket.
      if (!cb) return send(data);
      // graphql-ws sends every message with a callback and awaits it: an answer that does not fit waits
      // for room, holding the client's further messages meanwhile, as answers do on /api/v1/stream. One
      // larger than the connection may ever hold is sent, and the socket closes with 4013.
      const flow = socket as FlowControlledWebSocket;
      const text = data as string;
      if (!flow.fits(text.length * 3)) {
        const bytes = Buffer.byteLength(text);
        if (bytes <= flow.maxBuffered) {
          void flow.room(bytes).then(() => deliver(data, cb));
          return;
        }
      }
      deliver(data, cb);
    }) as WebSocket['send'];
    const deliver = (data: unknown, cb: (err?: Error) => void): void =>
      send(data, (err) => {
        // An answer that cannot be written because the client went away is no server failure; passed
        // on, graphql-ws would log it at error level with a stack trace, once per operation in flight.
        if (err && wentAway(socket, err)) {
          logger.debug('request ended: the client went away', { endpoint: GRAPHQL_WS_PATH });
          cb();
          return;
        }
        cb(err);
      });
  });

  const connectionOf = (socket: WebSocket): Connection => {
    const connection = connections.get(socket);
    if (!connection) throw new Error('graphql-ws socket without connection state');
    return connection;
  };
  const principalOf = (socket: WebSocket): Principal => {
    const principal = connectionOf(socket).principal;
    if (!principal) throw new Error('graphql-ws operation before authentication');
    return principal;
  };
  const authenticate = (token: string, socket: WebSocket, ip: string): Promise<Principal> =>
    authenticator.authenticate(token, { ip, endpoint: GRAPHQL_WS_PATH, session: connectionOf(socket).id });

  useServer(
    {
      isProd: true,
      // Events are completed by a plan made when the subscription starts, not a graphql-js run each.
      subscribe: subscribeWithPlans,
      execute: async (args: ExecutionArgs) => {
        const connection = connectionOfContext.get(args.contextValue as object);
        if (!connection) return execute(args);
        if (!(await connection.turn())) return { errors: [new GraphQLError('the connection closed')] };
        try {
          return await execute(args);
        } finally {
          connection.executed();
        }
      },
      // The gateway closes a socket that has not authenticated in time (with INIT_TIMEOUT_CLOSE).
      connectionInitWaitTimeout: Infinity,
      onConnect: async (ctx) => {
        const { socket, request } = ctx.extra;
        const connection = connectionOf(socket);
        let principal: Principal = ANONYMOUS;
        if (config.require_authentication) {
          const token = tokenOf(ctx.connectionParams);
          if (!token) {
            connection.close(
              FORBIDDEN,
              'Forbidden: send {"authorization": "Bearer <token>"} in connection_init',
            );
            return false;
          }
          try {
            principal = await authenticate(token, socket, request.socket.remoteAddress ?? '');
          } catch (err) {
            const failure = normalizeError(err);
            connection.close(
              FORBIDDEN,
              `Forbidden: ${failure.code === 'AUTH_EXPIRED' ? 'token expired' : 'authentication failed'}`,
            );
            return false;
          }
        }
        // As on /api/v1/stream, only authenticated sessions are listed (and count toward the per-user limit).
        if (!principal.anonymous && connection.handle && !connection.handle.authenticated(principal)) {
          connection.close(1013, 'connection limit reached');
          return false;
        }
        connection.principal = principal;
        connection.armExpiry(principal.expiresAt);
        gateway.authenticated(socket);
        return {
          user: principal.user,
          ...(principal.expiresAt !== undefined
            ? { expires_at: new Date(principal.expiresAt).toISOString() }
            : {}),
        };
      },
      onPing: async (ctx, payload) => {
        const token = tokenOf(payload);
        if (!token || !payload) return;
        // The pong echoes this very payload: the token is taken out and the answer put in.
        const answer = payload as Record<string, unknown>;
        delete answer.authorization;
        delete answer.Authorization;
        delete answer.token;
        const connection = connectionOf(ctx.extra.socket);
        const current = connection.principal;
        if (!ctx.acknowledged || !current || current.anonymous) {
          Object.assign(answer, { refreshed: false, code: 'AUTH_REQUIRED', message: 'nothing to refresh' });
          return;
        }
        try {
          const principal = await authenticate(
            token,
            ctx.extra.socket,
            ctx.extra.request.socket.remoteAddress ?? '',
          );
          if (!sameIdentity(principal, current)) {
            Object.assign(answer, {
              refreshed: false,
              code: 'AUTH_FAILED',
              message: 'the new token is for another user',
            });
            return;
          }
          connection.handle?.authenticated(principal);
          connection.principal = principal;
          connection.armExpiry(principal.expiresAt);
          Object.assign(answer, {
            refreshed: true,
            expires_at: new Date(principal.expiresAt!).toISOString(),
          });
        } catch (err) {
          const failure = normalizeError(err);
          Object.assign(answer, { refreshed: false, code: failure.code, message: failure.message });
        }
      },
      // Parsing, the schema and validation happen here rather than inside graphql-ws, where a document
      // that does not parse throws and closes the whole connection (4500): here every failure is the
      // `error` message of that one operation.
      onSubscribe: async (ctx, id, payload) => {
        const limit = config.max_subscriptions_per_connection;
        if (!connectionOf(ctx.extra.socket).admit(id, limit, (held) => held in ctx.subscriptions)) {
          return [
            new GraphQLError(
              `a connection may hold at most ${limit} operations (max_subscriptions_per_connection): complete one first`,
              { extensions: { code: 'RATE_LIMIT_EXCEEDED' } },
            ),
          ];
        }
        let document: DocumentNode;
        try {
          document = service.documents.parse(payload.query);
        } catch (err) {
          if (err instanceof GraphQLError) return [err];
          throw err;
        }
        const schema = await service.schemaFor(principalOf(ctx.extra.socket));
        const errors = service.documents.validate(schema, document);
        if (errors.length > 0) return errors;
        return {
          schema,
          document,
          operationName: payload.operationName ?? null,
          variableValues: payload.variables ?? null,
        };
      },
      context: async (ctx, id) => {
        const socket = ctx.extra.socket as FlowControlledWebSocket;
        // The bytes graphql-ws's own `next` would send: {"id", "type": "next", "payload"}, in that order;
        // the part before the payload is this operation's own, made once.
        const head = Buffer.from(`{"id":${JSON.stringify(id)},"type":"next","payload":`);
        const connection = connectionOf(socket);
        const context = await service.contextFor(principalOf(socket), {
          sessionId: connection.id,
          operationId: id,
          bufferedAmount: () => socket.bufferedAmount,
          signal: connection.operationSignal(id),
          sendNext: (payload) => {
            sampler?.messageOut();
            socket.sendText([head, payload, CLOSE_BRACE]);
          },
        });
        connectionOfContext.set(context, connection);
        return context;
      },
      onNext: (_ctx, _id, _payload, _args, result) =>
        result.errors
          ? {
              ...result,
              errors: result.errors.map((e) => formatGraphQLError(e as GraphQLError, logger).toJSON()),
            }
          : undefined,
      onError: (ctx, id, _payload, errors) => {
        connections.get(ctx.extra.socket)?.operationDone(id);
        return errors.map((e) => formatGraphQLError(e, logger).toJSON());
      },
      onComplete: (ctx, id) => connections.get(ctx.extra.socket)?.operationDone(id),
      onClose: (ctx) => connections.get(ctx.extra.socket)?.release(),
    },
    wss,
    // The gateway pings every socket and drops silent ones; graphql-ws's own keep-alive is not needed.
    0,
  );
}
