/**
 * `RustyDBClient`: one connection to `/api/v1/stream` and everything that runs over it. A thin
 * facade: the work is done by the connection (socket lifecycle), auth, query, batch and
 * subscriptions modules, which can also be used on their own.
 */
import type { SqlValue } from '@rustydb/protocol';
import { AuthManager, type AuthOptions } from './auth.ts';
import { runBatch, type BatchItemResult, type BatchOptions, type BatchStatement } from './batch.ts';
import {
  Connection,
  type ConnectionEvents,
  type ConnectionOptions,
  type ConnectionState,
  type SessionInfo,
} from './connection.ts';
import { RustyDBError } from './errors.ts';
import { httpJson, type FetchLike } from './http.ts';
import { GRAPHQL_WS_PATH, GraphQLSocket, graphqlHttp, type GraphQLResult } from './graphql.ts';
import { QueryStream, runQuery, type QueryOptions, type QueryResult, type StreamOptions } from './query.ts';
import type { ArrayRow, ArrayRowsOption, ObjectRow, ObjectRowsOption } from './rows.ts';
import { SCHEMA_PATH, schemaFromPayload, type DatabaseSchema, type SchemaPayload } from './schema.ts';
import {
  ChangeStream,
  LiveQuerySubscription,
  MetricsSubscription,
  TableSubscription,
  type Document,
  type LiveQueryOptions,
  type MetricsOptions,
  type Row,
  type TableSubscribeOptions,
  type WatchOptions,
} from './subscriptions.ts';

export const STREAM_PATH = '/api/v1/stream';
export const METRICS_PATH = '/api/v1/metrics/stream';

export interface ClientOptions extends Partial<ConnectionOptions>, AuthOptions {
  /**
   * The server: `http(s)://host:port` (the HTTP API; the WebSocket URL is derived) or
   * `ws(s)://host:port[/api/v1/stream]`. Default: the page's origin in a browser, else
   * `http://127.0.0.1:8080`.
   */
  url?: string | undefined;
  /** The fetch used for login and token refresh. Default: the global fetch. */
  fetch?: FetchLike | undefined;
}

/** The HTTP base URL and the WebSocket URLs of a server URL given in either form. */
export function resolveUrls(url: string | undefined): { httpUrl: string; wsUrl: string; metricsUrl: string } {
  const fallback =
    (globalThis as { location?: { origin?: string } }).location?.origin ?? 'http://127.0.0.1:8080';
  let parsed: URL;
  try {
    parsed = new URL(url ?? fallback);
  } catch (err) {
    throw new RustyDBError('INVALID_USE', `not a URL: ${JSON.stringify(url ?? fallback)}`, { cause: err });
  }
  const secure = parsed.protocol === 'https:' || parsed.protocol === 'wss:';
  let path = parsed.pathname.replace(/\/+$/, '');
  if (path.endsWith(STREAM_PATH)) path = path.slice(0, -STREAM_PATH.length);
  const host = parsed.host;
  return {
    httpUrl: `${secure ? 'https' : 'http'}://${host}${path}`,
    wsUrl: `${secure ? 'wss' : 'ws'}://${host}${path}${STREAM_PATH}`,
    metricsUrl: `${secure ? 'wss' : 'ws'}://${host}${path}${METRICS_PATH}`,
  };
}

export interface HttpRequestOptions {
  /** Default GET, or POST when there is a body. */
  method?: string | undefined;
  /** Sent as JSON. */
  body?: unknown;
  /** ms; default: the client's requestTimeout. */
  timeout?: number | undefined;
  signal?: AbortSignal | undefined;
}

export class RustyDBClient {
  readonly httpUrl: string;
  readonly wsUrl: string;
  readonly connection: Connection;
  readonly auth: AuthManager;
  readonly #metricsUrl: string;
  readonly #connectionOptions: Partial<ConnectionOptions>;
  readonly #fetch: FetchLike | undefined;
  #graphqlSocket: GraphQLSocket | undefined;
  #metricsConnection: Connection | undefined;

  /** Starts connecting at once; requests made before the connection is open wait in the queue. */
  constructor(options: ClientOptions = {}) {
    const { httpUrl, wsUrl, metricsUrl } = resolveUrls(options.url);
    this.httpUrl = httpUrl;
    this.wsUrl = wsUrl;
    this.#metricsUrl = metricsUrl;
    this.#fetch = options.fetch;
    this.auth = new AuthManager(
      httpUrl,
      {
        token: options.token,
        username: options.username,
        password: options.password,
        refreshToken: options.refreshToken,
        refreshMargin: options.refreshMargin,
      },
      options.requestTimeout ?? 30_000,
      options.fetch,
    );
    const { url: _url, fetch: _fetch, token: _t, username: _u, password: _p, ...rest } = options;
    const { refreshToken: _r, refreshMargin: _m, ...connectionOptions } = rest;
    this.#connectionOptions = connectionOptions;
    this.connection = new Connection(wsUrl, this.auth, connectionOptions);
  }

  get state(): ConnectionState {
    return this.connection.state;
  }

  get session(): SessionInfo | undefined {
    return this.connection.session;
  }

  on<K extends keyof ConnectionEvents>(event: K, listener: (value: ConnectionEvents[K]) => void): () => void {
    return this.connection.on(event, listener);
  }

  /** Resolves once connected and authenticated; rejects if the client gives up first. */
  ready(): Promise<SessionInfo> {
    return this.connection.ready();
  }

  /**
   * Runs one statement; resolves with the whole result. Rows are objects keyed by column name, typed
   * `R` (`db.query<Item>(…)`); with `{ rowMode: 'array' }` they are arrays in column order.
   */
  query<R extends object = ObjectRow>(
    sql: string,
    params?: readonly SqlValue[],
    options?: QueryOptions & ObjectRowsOption,
  ): Promise<QueryResult<R>>;
  query<R extends readonly unknown[] = ArrayRow>(
    sql: string,
    params: readonly SqlValue[] | undefined,
    options: QueryOptions & ArrayRowsOption,
  ): Promise<QueryResult<R>>;
  query(sql: string, params?: readonly SqlValue[], options?: QueryOptions): Promise<QueryResult<unknown>> {
    return runQuery(this.connection, sql, params, options);
  }

  /** Runs one statement and hands its result over in chunks: `for await (const chunk of …)`. */
  stream<R extends object = ObjectRow>(
    sql: string,
    params?: readonly SqlValue[],
    options?: StreamOptions & ObjectRowsOption,
  ): QueryStream<R>;
  stream<R extends readonly unknown[] = ArrayRow>(
    sql: string,
    params: readonly SqlValue[] | undefined,
    options: StreamOptions & ArrayRowsOption,
  ): QueryStream<R>;
  stream(sql: string, params?: readonly SqlValue[], options?: StreamOptions): QueryStream<unknown> {
    return new QueryStream(this.connection, sql, params, options);
  }

  /** Runs several statements in one message (optionally in one transaction). */
  batch<R extends object = ObjectRow>(
    statements: readonly BatchStatement[],
    options?: BatchOptions & ObjectRowsOption,
  ): Promise<BatchItemResult<R>[]>;
  batch<R extends readonly unknown[] = ArrayRow>(
    statements: readonly BatchStatement[],
    options: BatchOptions & ArrayRowsOption,
  ): Promise<BatchItemResult<R>[]>;
  batch(statements: readonly BatchStatement[], options?: BatchOptions): Promise<BatchItemResult<unknown>[]> {
    return runBatch(this.connection, statements, options);
  }

  /** Row changes of a table, typed `R`, resumed across reconnects without gap or duplicate. */
  subscribe<R extends object = Row>(
    table: string,
    options?: TableSubscribeOptions & ObjectRowsOption,
  ): TableSubscription<R>;
  subscribe<R extends readonly unknown[] = ArrayRow>(
    table: string,
    options: TableSubscribeOptions & ArrayRowsOption,
  ): TableSubscription<R>;
  /** A live query: its whole result, then how it changes; rows typed `R`. */
  subscribe<R extends object = Row>(options: LiveQueryOptions & ObjectRowsOption): LiveQuerySubscription<R>;
  subscribe<R extends readonly unknown[] = ArrayRow>(
    options: LiveQueryOptions & ArrayRowsOption,
  ): LiveQuerySubscription<R>;
  subscribe(
    target: string | LiveQueryOptions,
    options?: TableSubscribeOptions,
  ): TableSubscription<unknown> | LiveQuerySubscription<unknown> {
    if (typeof target === 'string') return new TableSubscription(this.connection, target, options);
    return new LiveQuerySubscription(this.connection, target);
  }

  /** A MongoDB-like change stream over a document collection, typed `D`, resumed across reconnects. */
  watch<D extends object = Document>(collection: string, options?: WatchOptions): ChangeStream<D> {
    return new ChangeStream<D>(this.connection, collection, options);
  }

  /**
   * Live server metrics from `ws /api/v1/metrics/stream` (needs MONITOR). The metrics endpoint gets a
   * connection of its own, opened with the first call and sharing this client's token.
   */
  metrics(options?: MetricsOptions): MetricsSubscription {
    // A closed client opens nothing new: the subscription fails with the client's closing error.
    let connection = this.connection;
    if (connection.state !== 'closed') {
      this.#metricsConnection ??= new Connection(this.#metricsUrl, this.auth, this.#connectionOptions);
      this.#metricsConnection.open();
      connection = this.#metricsConnection;
    }
    return new MetricsSubscription(connection, options);
  }

  /**
   * Calls the HTTP API (`/api/v1/…`) with this client's token: administration, documents, `auth/me`.
   * Resolves with the envelope's `data`; a refusal throws RustyDBError with the server's code.
   */
  async request<T = unknown>(path: string, options: HttpRequestOptions = {}): Promise<T> {
    const token = this.auth.enabled ? await this.auth.token() : undefined;
    return httpJson<T>(this.httpUrl, path, {
      method: options.method,
      body: options.body,
      token,
      timeoutMs: options.timeout ?? (this.connection.requestTimeout || 30_000),
      fetch: this.#fetch,
      signal: options.signal,
    });
  }

  /** The tables and collections this client's user may read, with their columns (`GET /api/v1/schema`). */
  async schema(options: Omit<HttpRequestOptions, 'method' | 'body'> = {}): Promise<DatabaseSchema> {
    return schemaFromPayload(await this.request<SchemaPayload>(SCHEMA_PATH, options));
  }

  /**
   * Signs out: closes this client, then revokes its token on the server (`POST /api/v1/auth/logout`;
   * with `all`, every token of the user), so the token cannot be used again.
   */
  async logout(options: { all?: boolean } = {}): Promise<void> {
    const token = this.auth.current?.token;
    await this.close();
    if (!token) return;
    await httpJson(this.httpUrl, '/api/v1/auth/logout', {
      method: 'POST',
      ...(options.all ? { body: { all: true } } : {}),
      token,
      timeoutMs: this.connection.requestTimeout || 30_000,
      fetch: this.#fetch,
    });
  }

  /**
   * A GraphQL query or mutation over `POST /graphql` with this client's token. GraphQL errors come
   * back in the result's `errors`; a transport failure throws.
   */
  async graphql<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    options: { operationName?: string; timeout?: number; signal?: AbortSignal } = {},
  ): Promise<GraphQLResult<T>> {
    const token = this.auth.enabled ? await this.auth.token() : undefined;
    return graphqlHttp<T>(
      this.httpUrl,
      { query, variables, operationName: options.operationName },
      {
        token,
        timeoutMs: options.timeout ?? (this.connection.requestTimeout || 30_000),
        fetch: this.#fetch,
        ...(options.signal ? { signal: options.signal } : {}),
      },
    );
  }

  /**
   * A GraphQL subscription (or any operation) over `/graphql/ws` (graphql-ws protocol): each result
   * is one value of the iterator; leaving the loop completes the operation on the server. Every
   * subscription of this client shares one socket, opened with the first.
   */
  graphqlSubscribe<T = Record<string, unknown>>(
    query: string,
    variables?: Record<string, unknown>,
    operationName?: string,
  ): AsyncIterableIterator<GraphQLResult<T>> {
    this.#graphqlSocket ??= new GraphQLSocket(
      `${this.httpUrl.replace(/^http/, 'ws')}${GRAPHQL_WS_PATH}`,
      this.auth,
      this.connection.options,
      this.#connectionOptions.WebSocket,
    );
    return this.#graphqlSocket.subscribe<T>({ query, variables, operationName });
  }

  /**
   * Closes the connection (code 1000). Every subscription and stream ends (its loop finishes);
   * requests still waiting for an answer fail with CLIENT_CLOSED. `open()` connects again.
   */
  async close(): Promise<void> {
    this.#graphqlSocket?.close();
    this.#graphqlSocket = undefined;
    this.auth.close();
    await Promise.all([this.connection.close(), this.#metricsConnection?.close()]);
  }

  /** Opens a closed client again (after close(), or after it gave up). Does nothing otherwise. */
  open(): void {
    if (this.connection.state !== 'closed') return;
    this.auth.reopen();
    this.connection.open();
    // The metrics connection is opened again with the next metrics() call.
  }
}

/** Creates a client and waits until it is connected and authenticated. */
export async function connect(options: ClientOptions = {}): Promise<RustyDBClient> {
  const client = new RustyDBClient(options);
  try {
    await client.ready();
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}
