/**
 * GraphQL through the client: operations over `POST /graphql` with the client's token, and
 * subscriptions (or any operation) over `/graphql/ws` with the graphql-ws protocol
 * (`graphql-transport-ws`). One socket carries every subscription of a client; it is opened with
 * the first one, authenticated in `connection_init`, kept alive by answering the server's pings, and
 * given the client's renewed token when the server says the current one is about to expire.
 *
 * When the socket is lost, the client's retry policy (the one its main connection follows) opens a
 * new one and every running operation is subscribed again, so a loop carries on. An operation that
 * declares a `$since` variable is resumed: it is sent again with `since` set to the last `sequence`
 * it delivered, and the server replays what was committed meanwhile (nothing missed, nothing twice).
 */
import { defaultWebSocket } from '#websocket';
import type { AuthManager } from './auth.ts';
import { Channel } from './channel.ts';
import { RustyDBError } from './errors.ts';
import type { FetchLike } from './http.ts';
import { RetryTimer, allowsRetry, type RetryPolicyOptions } from './retry-policy.ts';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './transport/socket.ts';
import { listenForWake } from './wake-events.ts';

export const GRAPHQL_PATH = '/graphql';
export const GRAPHQL_WS_PATH = '/graphql/ws';
const SUBPROTOCOL = 'graphql-transport-ws';

export interface GraphQLRequest {
  query: string;
  variables?: Record<string, unknown> | undefined;
  operationName?: string | undefined;
}

export interface GraphQLError {
  message: string;
  path?: (string | number)[];
  extensions?: Record<string, unknown>;
}

/** What GraphQL answers: `data`, `errors`, or both (a partial result). */
export interface GraphQLResult<T = Record<string, unknown>> {
  data?: T | null;
  errors?: GraphQLError[];
  extensions?: Record<string, unknown>;
}

/**
 * One operation over HTTP. GraphQL errors (a bad field, a refused table) come back in `errors`;
 * only a transport failure or an answer that is not GraphQL throws.
 */
export async function graphqlHttp<T>(
  httpUrl: string,
  request: GraphQLRequest,
  options: {
    token?: string | undefined;
    timeoutMs: number;
    fetch?: FetchLike | undefined;
    signal?: AbortSignal;
  },
): Promise<GraphQLResult<T>> {
  const doFetch = options.fetch ?? (globalThis.fetch as unknown as FetchLike);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs);
  const onAbort = (): void => controller.abort();
  options.signal?.addEventListener('abort', onAbort, { once: true });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    accept: 'application/graphql-response+json, application/json',
  };
  if (options.token) headers.authorization = `Bearer ${options.token}`;
  let status: number;
  let text: string;
  try {
    const res = await doFetch(`${httpUrl}${GRAPHQL_PATH}`, {
      method: 'POST',
      headers,
      body: JSON.stringify(request),
      signal: controller.signal,
    });
    status = res.status;
    text = await res.text();
  } catch (err) {
    throw new RustyDBError(
      options.signal?.aborted
        ? 'CLIENT_CLOSED'
        : controller.signal.aborted
          ? 'REQUEST_TIMEOUT'
          : 'HTTP_ERROR',
      `${GRAPHQL_PATH}: ${(err as Error).message ?? String(err)}`,
      { cause: err },
    );
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
  try {
    const parsed = JSON.parse(text) as GraphQLResult<T>;
    if (parsed && typeof parsed === 'object' && ('data' in parsed || 'errors' in parsed)) return parsed;
  } catch {
    // Not JSON: reported below.
  }
  throw new RustyDBError('HTTP_ERROR', `${GRAPHQL_PATH}: HTTP ${status} without a GraphQL answer`, {
    status,
  });
}

interface Operation {
  channel: Channel<GraphQLResult>;
  request: GraphQLRequest;
  /** The operation declares `$since`: it is resumed after the last sequence it delivered. */
  resumable: boolean;
}

/** graphql-ws closes that a new socket cannot mend: a malformed message, a protocol misuse. */
const FINAL_CLOSE_CODES = new Set([4400, 4406, 4409, 4429]);
/** graphql-ws closes for a token that is missing, refused or expired. */
const AUTH_CLOSE_CODES = new Set([4401, 4403]);

/** Whether the operation text declares a `$since` variable (`query ($since: BigInt) { … }`). */
function declaresSince(query: string): boolean {
  return /\$since\s*:/.test(query);
}

/** The `sequence` of a result's first field that has one (`{ tableChanges: { sequence } }`). */
function sequenceOf(result: GraphQLResult): unknown {
  if (!result.data || typeof result.data !== 'object') return undefined;
  for (const field of Object.values(result.data)) {
    const sequence = (field as { sequence?: unknown } | null)?.sequence;
    if (typeof sequence === 'number' || typeof sequence === 'string') return sequence;
  }
  return undefined;
}

/** The retry policy and wake handling the GraphQL socket shares with the client's main connection. */
export interface GraphQLReconnectOptions extends RetryPolicyOptions {
  retryOnWake: boolean;
}

/** The graphql-ws socket of one client, shared by its subscriptions. */
export class GraphQLSocket {
  readonly #url: string;
  readonly #auth: AuthManager;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #policy: GraphQLReconnectOptions;
  readonly #operations = new Map<string, Operation>();
  readonly #retry = new RetryTimer();
  #socket: WebSocketLike | undefined;
  #acknowledged = false;
  #seq = 0;
  #closed = false;
  /** Failed attempts in a row since the last acknowledged socket. */
  #attempt = 0;
  #everAcknowledged = false;
  /** A refused token was renewed once since the last acknowledged socket (a second refusal is final). */
  #renewedAfterRefusal = false;
  #stopWakeListening: (() => void) | undefined;

  constructor(
    url: string,
    auth: AuthManager,
    policy: GraphQLReconnectOptions,
    WebSocketClass?: WebSocketConstructor,
  ) {
    this.#url = url;
    this.#auth = auth;
    this.#policy = policy;
    this.#WebSocket = WebSocketClass ?? defaultWebSocket;
    if (policy.retryOnWake) this.#stopWakeListening = listenForWake(() => this.#retry.fireNow());
  }

  /** Runs an operation (usually a subscription); each result arrives as one value of the iterator. */
  subscribe<T = Record<string, unknown>>(request: GraphQLRequest): AsyncIterableIterator<GraphQLResult<T>> {
    const id = `g${++this.#seq}`;
    const channel: Channel<GraphQLResult> = new Channel<GraphQLResult>(() => {
      // The consumer stopped: tell the server, unless the operation already completed.
      if (this.#operations.delete(id) && this.#acknowledged) this.#send({ type: 'complete', id });
    });
    if (this.#closed) {
      channel.end();
      return channel as unknown as AsyncIterableIterator<GraphQLResult<T>>;
    }
    this.#operations.set(id, { channel, request, resumable: declaresSince(request.query) });
    if (this.#acknowledged) this.#send({ type: 'subscribe', id, payload: request });
    else if (!this.#retry.pending) void this.#open();
    return channel as unknown as AsyncIterableIterator<GraphQLResult<T>>;
  }

  async #open(): Promise<void> {
    if (this.#socket || this.#closed) return;
    const WebSocketClass = this.#WebSocket;
    if (!WebSocketClass) {
      this.#failAll(new RustyDBError('CONNECTION_FAILED', 'no WebSocket implementation'));
      return;
    }
    let token: string | undefined;
    try {
      token = this.#auth.enabled ? await this.#auth.token() : undefined;
    } catch (err) {
      const error = err instanceof RustyDBError ? err : new RustyDBError('AUTH_FAILED', String(err));
      if (error.retryable) this.#retryLater(error);
      else this.#failAll(error);
      return;
    }
    if (this.#closed || this.#socket) return;
    const socket = new WebSocketClass(this.#url, SUBPROTOCOL);
    this.#socket = socket;
    socket.onopen = () => {
      this.#send({ type: 'connection_init', payload: token ? { token } : {} });
    };
    socket.onmessage = (event) =>
      this.#onMessage(typeof event.data === 'string' ? event.data : String(event.data));
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      this.#acknowledged = false;
      this.#onLost(event.code, event.reason);
    };
    socket.onerror = () => {
      // The close event follows.
    };
  }

  /** The socket closed without close(): open another one, or fail the operations if that cannot help. */
  #onLost(code: number, reason: string): void {
    const why = `${GRAPHQL_WS_PATH} closed (${code}${reason ? `: ${reason}` : ''})`;
    if (this.#operations.size === 0) return; // The next subscribe() opens a socket.
    if (AUTH_CLOSE_CODES.has(code)) {
      if (!this.#auth.canReauthenticate || this.#renewedAfterRefusal) {
        this.#failAll(new RustyDBError('AUTH_FAILED', why, { closeCode: code }));
        return;
      }
      // The token expired or was revoked: get another, then connect again.
      this.#renewedAfterRefusal = true;
      this.#auth.renew('expired').then(
        () => void this.#open(),
        (err: unknown) =>
          this.#failAll(err instanceof RustyDBError ? err : new RustyDBError('AUTH_FAILED', String(err))),
      );
      return;
    }
    if (FINAL_CLOSE_CODES.has(code)) {
      this.#failAll(new RustyDBError('CONNECTION_FAILED', why, { closeCode: code }));
      return;
    }
    this.#retryLater(new RustyDBError('CONNECTION_LOST', why, { closeCode: code }));
  }

  /** Another attempt after the retry policy's wait, or every operation fails if the policy says stop. */
  #retryLater(error: RustyDBError): void {
    this.#attempt++;
    const context = { attempt: this.#attempt, error, everConnected: this.#everAcknowledged };
    let allowed: boolean;
    try {
      allowed = allowsRetry(this.#policy, context);
    } catch {
      allowed = false;
    }
    if (!allowed) {
      this.#failAll(
        new RustyDBError('CONNECTION_FAILED', `gave up on ${GRAPHQL_WS_PATH}: ${error.message}`, {
          cause: error,
          closeCode: error.closeCode,
        }),
      );
      return;
    }
    this.#retry.start(this.#policy, context, () => void this.#open());
  }

  #onMessage(text: string): void {
    let message: { type?: string; id?: string; payload?: unknown };
    try {
      message = JSON.parse(text) as typeof message;
    } catch {
      return;
    }
    switch (message.type) {
      case 'connection_ack':
        this.#acknowledged = true;
        this.#everAcknowledged = true;
        this.#attempt = 0;
        this.#renewedAfterRefusal = false;
        for (const [id, operation] of this.#operations)
          this.#send({ type: 'subscribe', id, payload: operation.request });
        return;
      case 'ping': {
        this.#send({ type: 'pong' });
        // The token runs out soon: hand the server the one the client renewed meanwhile.
        const payload = message.payload as { auth_expiring?: boolean } | undefined;
        const current = this.#auth.current?.token;
        if (payload?.auth_expiring && current) this.#send({ type: 'ping', payload: { token: current } });
        return;
      }
      case 'next': {
        const operation = this.#operations.get(message.id ?? '');
        if (!operation) return;
        const result = message.payload as GraphQLResult;
        const sequence = operation.resumable ? sequenceOf(result) : undefined;
        if (sequence !== undefined) {
          // Sent again after a reconnect, it resumes right after this result.
          operation.request = {
            ...operation.request,
            variables: { ...operation.request.variables, since: sequence },
          };
        }
        operation.channel.push(result);
        return;
      }
      case 'error': {
        const operation = this.#operations.get(message.id ?? '');
        if (!operation) return;
        this.#operations.delete(message.id!);
        // A refused operation is a GraphQL result with errors, as over HTTP.
        operation.channel.push({ errors: message.payload as GraphQLError[] });
        operation.channel.end();
        return;
      }
      case 'complete': {
        const operation = this.#operations.get(message.id ?? '');
        this.#operations.delete(message.id ?? '');
        operation?.channel.end();
        return;
      }
    }
  }

  #send(message: Record<string, unknown>): void {
    if (this.#socket?.readyState === OPEN) this.#socket.send(JSON.stringify(message));
  }

  #failAll(error: RustyDBError): void {
    const operations = [...this.#operations.values()];
    this.#operations.clear();
    for (const operation of operations) operation.channel.fail(error);
  }

  /** Ends every operation (its loop just finishes) and closes the socket for good. */
  close(): void {
    this.#closed = true;
    this.#retry.cancel();
    this.#stopWakeListening?.();
    this.#stopWakeListening = undefined;
    const operations = [...this.#operations.values()];
    this.#operations.clear();
    for (const operation of operations) operation.channel.end();
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && socket.readyState <= OPEN) socket.close(1000, 'client closed');
  }
}
