/**
 * GraphQL test helpers: requests over HTTP, a real graphql-ws client (the `graphql-ws` package's
 * createClient on the `ws` WebSocket), a raw protocol socket, and subscriptions whose events are queued
 * and taken with bounded waits.
 */
import assert from 'node:assert/strict';
import { createClient, type Client } from 'graphql-ws';
import type { FormattedExecutionResult as ExecutionResult } from 'graphql';
import WebSocket from 'ws';
import type { TestServer } from '../helpers/test-server.ts';
import { TestClient } from '../helpers/ws-client.ts';

export const GRAPHQL_WS = '/graphql/ws';

export interface GqlResponse {
  status: number;
  body: {
    data?: Record<string, unknown> | null;
    errors?: { message: string; extensions?: Record<string, unknown> }[];
  };
}

/** POST /graphql with the admin token (or `token`; null for none). */
export async function gql(
  ts: TestServer,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): Promise<GqlResponse> {
  const res = await ts.http('/graphql', {
    body: { query, ...(variables ? { variables } : {}) },
    token: token === undefined ? ts.token : token,
  });
  return res as GqlResponse;
}

/** The data of a request that must succeed. */
export async function gqlData<T = Record<string, unknown>>(
  ts: TestServer,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): Promise<T> {
  const res = await gql(ts, query, variables, token);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.equal(res.body.errors, undefined, JSON.stringify(res.body.errors));
  return res.body.data as T;
}

/** The first error's code of a request that must fail. */
export async function gqlErrorCode(
  ts: TestServer,
  query: string,
  variables?: Record<string, unknown>,
  token?: string | null,
): Promise<string> {
  const res = await gql(ts, query, variables, token);
  assert.ok(
    res.body.errors && res.body.errors.length > 0,
    `expected errors, got ${JSON.stringify(res.body)}`,
  );
  return String(res.body.errors[0]!.extensions?.code);
}

export interface WsClientOptions {
  /** connection_init payload; default: the token as `authorization: Bearer …`. */
  connectionParams?: Record<string, unknown>;
  onClosed?: (event: { code: number; reason: string }) => void;
}

/** A graphql-ws client (the real library) on the `ws` package's WebSocket; no retries, eager connect. */
export function wsClient(ts: TestServer, token: string | undefined, options: WsClientOptions = {}): Client {
  const clients = openClients;
  const client = createClient({
    url: `${ts.server.wsUrl}${GRAPHQL_WS}`,
    webSocketImpl: WebSocket,
    connectionParams: options.connectionParams ?? (token ? { authorization: `Bearer ${token}` } : {}),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: () => {
      // Reported through the subscription sinks and `closed` events the tests wait on.
    },
    on: {
      closed: (event) => {
        const e = event as { code: number; reason: string };
        options.onClosed?.({ code: e.code, reason: String(e.reason) });
      },
    },
  });
  clients.add(client);
  return client;
}

const openClients = new Set<Client>();

/** Disposes every graphql-ws client the helpers made. */
export async function disposeClients(): Promise<void> {
  const all = [...openClients];
  openClients.clear();
  await Promise.all(all.map((c) => c.dispose()));
}

/** One operation's results, queued; `next()` takes them in order with a bounded wait. */
export class Events<T = Record<string, unknown>> {
  readonly #queue: ExecutionResult<T>[] = [];
  #waiter: ((r: ExecutionResult<T>) => void) | undefined;
  readonly done: Promise<{ error?: unknown }>;
  readonly #dispose: () => void;
  finished = false;

  constructor(client: Client, query: string, variables?: Record<string, unknown>) {
    let settle!: (r: { error?: unknown }) => void;
    this.done = new Promise((resolve) => (settle = resolve));
    this.#dispose = client.subscribe<T, Record<string, unknown>>(
      { query, ...(variables ? { variables } : {}) },
      {
        next: (value) => {
          if (this.#waiter) {
            const waiter = this.#waiter;
            this.#waiter = undefined;
            waiter(value);
          } else this.#queue.push(value);
        },
        error: (error) => {
          this.finished = true;
          settle({ error });
        },
        complete: () => {
          this.finished = true;
          settle({});
        },
      },
    );
  }

  /** The next result; fails the test after `timeoutMs` or if the operation ended first. */
  async next(timeoutMs = 3000): Promise<ExecutionResult<T>> {
    const queued = this.#queue.shift();
    if (queued) return queued;
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        new Promise<ExecutionResult<T>>((resolve) => (this.#waiter = resolve)),
        this.done.then((d) => {
          throw new Error(`operation ended before the next result: ${describeError(d.error)}`);
        }),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no result within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      this.#waiter = undefined;
    }
  }

  /** The data of the next result, which must have no errors. */
  async data(timeoutMs = 3000): Promise<T> {
    const result = await this.next(timeoutMs);
    assert.equal(result.errors, undefined, JSON.stringify(result.errors));
    return result.data as T;
  }

  /** Waits for the operation to end (complete or error), bounded. */
  async ended(timeoutMs = 3000): Promise<{ error?: unknown }> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        this.done,
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`operation did not end within ${timeoutMs} ms`)),
            timeoutMs,
          );
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Results queued and not taken. */
  get pending(): number {
    return this.#queue.length;
  }

  dispose(): void {
    this.#dispose();
  }
}

export function describeError(error: unknown): string {
  if (Array.isArray(error)) return JSON.stringify(error);
  if (error && typeof error === 'object' && 'code' in error) {
    const e = error as { code: number; reason?: string };
    return `close ${e.code} ${e.reason ?? ''}`;
  }
  return error instanceof Error ? error.message : JSON.stringify(error);
}

/** The extensions.code of the errors a subscription ended with (graphql-ws `error` message). */
export function errorCode(error: unknown): string | undefined {
  if (Array.isArray(error)) return (error[0] as { extensions?: { code?: string } })?.extensions?.code;
  return undefined;
}

/** Runs a query or mutation over graphql-ws and returns its single result. */
export async function wsRequest<T = Record<string, unknown>>(
  client: Client,
  query: string,
  variables?: Record<string, unknown>,
): Promise<ExecutionResult<T>> {
  const events = new Events<T>(client, query, variables);
  const result = await events.next(5000);
  await events.ended(5000);
  return result;
}

/**
 * Waits (bounded) until the hub lists `count` subscriptions on `target` created at or after
 * `createdAfter` (ms since the epoch), none of them behind the change log: a write made after this
 * reaches every one of them. (A fixed sleep did not: under load a subscription could attach after the
 * write, and miss it.)
 */
export async function attached(
  ts: TestServer,
  target: string,
  count: number,
  createdAfter = 0,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await ts.http('/api/v1/subscriptions');
    const listed = (
      res.body as { data: { subscriptions: { target: string; lag: number; created_at: string }[] } }
    ).data.subscriptions.filter((s) => s.target === target && Date.parse(s.created_at) >= createdAfter);
    if (listed.length === count && listed.every((s) => s.lag === 0)) return;
    if (Date.now() > deadline) {
      assert.fail(
        `expected ${count} subscriptions on ${target}, attached and current: ${JSON.stringify(listed)}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A raw socket speaking graphql-transport-ws, for protocol-level checks. */
export function rawSocket(
  ts: TestServer,
  protocol: string | string[] = 'graphql-transport-ws',
  options: WebSocket.ClientOptions = {},
): Promise<TestClient> {
  return TestClient.adopt(new WebSocket(`${ts.server.wsUrl}${GRAPHQL_WS}`, protocol, options));
}

/** A raw graphql-transport-ws socket whose connection_init (with `token`) the server acknowledged. */
export async function acknowledgedSocket(
  ts: TestServer,
  token: string,
  options: WebSocket.ClientOptions = {},
): Promise<TestClient> {
  const socket = await rawSocket(ts, 'graphql-transport-ws', options);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
  assert.equal((await socket.next()).type, 'connection_ack');
  return socket;
}
