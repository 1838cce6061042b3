/**
 * GraphQL through the client: operations over `POST /graphql` with the client's token, and
 * subscriptions (or any operation) over `/graphql/ws` with the graphql-ws protocol
 * (`graphql-transport-ws`). One socket carries every subscription of a client; it is opened with
 * the first one, authenticated in `connection_init`, kept alive by answering the server's pings, and
 * given the client's renewed token when the server says the current one is about to expire.
 *
 * Subscriptions are not resumed after the socket drops: each fails with CONNECTION_LOST, and the
 * caller subscribes again (table subscriptions take `since` for a gapless resume).
 */
import { defaultWebSocket } from '#websocket';
import type { AuthManager } from './auth.ts';
import { Channel } from './channel.ts';
import { RustyDBError } from './errors.ts';
import type { FetchLike } from './http.ts';
import { OPEN, type WebSocketConstructor, type WebSocketLike } from './transport/socket.ts';

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
}

/** The graphql-ws socket of one client, shared by its subscriptions. */
export class GraphQLSocket {
  readonly #url: string;
  readonly #auth: AuthManager;
  readonly #WebSocket: WebSocketConstructor | undefined;
  readonly #operations = new Map<string, Operation>();
  #socket: WebSocketLike | undefined;
  #acknowledged = false;
  #seq = 0;
  #closed = false;

  constructor(url: string, auth: AuthManager, WebSocketClass?: WebSocketConstructor) {
    this.#url = url;
    this.#auth = auth;
    this.#WebSocket = WebSocketClass ?? defaultWebSocket;
  }

  /** Runs an operation (usually a subscription); each result arrives as one value of the iterator. */
  subscribe<T = Record<string, unknown>>(request: GraphQLRequest): AsyncIterableIterator<GraphQLResult<T>> {
    const id = `g${++this.#seq}`;
    const channel: Channel<GraphQLResult> = new Channel<GraphQLResult>(() => {
      // The consumer stopped: tell the server, unless the operation already completed.
      if (this.#operations.delete(id) && this.#acknowledged) this.#send({ type: 'complete', id });
    });
    if (this.#closed) {
      channel.fail(new RustyDBError('CLIENT_CLOSED', 'the client was closed'));
      return channel as unknown as AsyncIterableIterator<GraphQLResult<T>>;
    }
    this.#operations.set(id, { channel, request });
    if (this.#acknowledged) this.#send({ type: 'subscribe', id, payload: request });
    else void this.#open();
    return channel as unknown as AsyncIterableIterator<GraphQLResult<T>>;
  }

  async #open(): Promise<void> {
    if (this.#socket) return;
    const WebSocketClass = this.#WebSocket;
    if (!WebSocketClass) {
      this.#failAll(new RustyDBError('CONNECTION_FAILED', 'no WebSocket implementation'));
      return;
    }
    let token: string | undefined;
    try {
      token = this.#auth.enabled ? await this.#auth.token() : undefined;
    } catch (err) {
      this.#failAll(err instanceof RustyDBError ? err : new RustyDBError('AUTH_FAILED', String(err)));
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
      const code = event.code === 4403 || event.code === 4401 ? 'AUTH_FAILED' : 'CONNECTION_LOST';
      this.#failAll(
        new RustyDBError(
          code,
          `${GRAPHQL_WS_PATH} closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`,
          {
            closeCode: event.code,
          },
        ),
      );
    };
    socket.onerror = () => {
      // The close event follows.
    };
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
      case 'next':
        this.#operations.get(message.id ?? '')?.channel.push(message.payload as GraphQLResult);
        return;
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

  close(): void {
    this.#closed = true;
    this.#failAll(new RustyDBError('CLIENT_CLOSED', 'the client was closed'));
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket && socket.readyState <= OPEN) socket.close(1000, 'client closed');
  }
}
