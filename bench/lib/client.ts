/**
 * The client side of the benchmarks: log in over HTTP, open `/api/v1/stream`, authenticate, run
 * statements. Deliberately small: the benchmarks that measure something handle the socket themselves.
 */
import WebSocket from 'ws';
import { ADMIN_PASSWORD, ADMIN_USER } from './rusty-server.ts';

/** How long any single request of the set-up code may take before the bench gives up. */
const REQUEST_TIMEOUT_MS = 120_000;
const CONNECT_TIMEOUT_MS = 10_000;

export interface SocketOptions {
  /**
   * Offer permessage-deflate. `ws` clients and browsers offer it by default, and the server accepts it
   * for messages over 1 KiB; off by default here so that the figures measure the server, not zlib.
   */
  compression?: boolean;
}

/** Opens a WebSocket and resolves once it is open. */
export function openSocket(url: string, options: SocketOptions = {}): Promise<WebSocket> {
  const ws = new WebSocket(url, {
    perMessageDeflate: options.compression ?? false,
    // The client's UTF-8 check costs the client CPU it shares with the server on a 2-core machine.
    skipUTF8Validation: true,
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`${url}: not open after ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    ws.once('open', () => {
      clearTimeout(timer);
      resolve(ws);
    });
    // Kept for the socket's life: without an 'error' listener a reset socket would crash the bench;
    // the operation waiting on it fails through its own 'close' handling instead.
    ws.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

export async function login(httpUrl: string): Promise<string> {
  const response = await fetch(`${httpUrl}/api/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: ADMIN_USER, password: ADMIN_PASSWORD }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const body = (await response.json()) as { success: boolean; data?: { token: string } };
  if (!body.success || !body.data) throw new Error(`login failed: ${JSON.stringify(body)}`);
  return body.data.token;
}

/** The parts of a server message the bench looks at. */
export interface ServerReply {
  type: string;
  id?: string;
  payload: {
    status?: string;
    message?: string;
    code?: string;
    columns?: string[];
    rows?: unknown[][];
    has_more?: boolean;
    rows_affected?: number;
  };
}

export interface QueryResult {
  columns: string[];
  rows: unknown[][];
  rowsAffected: number;
}

let nextId = 0;

/** Waits for messages on `ws` until `done` returns true for one; rejects on close or timeout. */
export function collect(
  ws: WebSocket,
  done: (data: Buffer) => boolean,
  timeoutMs = REQUEST_TIMEOUT_MS,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      ws.off('message', onMessage);
      ws.off('close', onClose);
      if (err) reject(err);
      else resolve();
    };
    const onMessage = (raw: WebSocket.RawData): void => {
      // Text frames arrive as one Buffer with the default binaryType.
      const data = raw as Buffer;
      try {
        if (done(data)) finish();
      } catch (err) {
        finish(err as Error);
      }
    };
    const onClose = (code: number): void => finish(new Error(`socket closed (${code}) during a request`));
    const timer = setTimeout(() => finish(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    ws.on('message', onMessage);
    ws.on('close', onClose);
  });
}

/** An authenticated `/api/v1/stream` connection. */
export class StreamConnection {
  readonly ws: WebSocket;

  private constructor(ws: WebSocket) {
    this.ws = ws;
  }

  static async open(
    streamUrl: string,
    token: string,
    options: SocketOptions = {},
  ): Promise<StreamConnection> {
    const ws = await openSocket(streamUrl, options);
    const connection = new StreamConnection(ws);
    const reply = await connection.request({ type: 'auth', payload: { token } });
    if (reply.type !== 'auth_success') throw new Error(`auth failed: ${JSON.stringify(reply)}`);
    return connection;
  }

  /** Sends one message and resolves with the first reply carrying its id. */
  async request(message: { type: string; payload?: unknown }, timeoutMs?: number): Promise<ServerReply> {
    const id = `bench-${++nextId}`;
    let reply: ServerReply | undefined;
    const replied = collect(
      this.ws,
      (data) => {
        const parsed = JSON.parse(data.toString()) as ServerReply;
        if (parsed.id !== id) return false;
        reply = parsed;
        return true;
      },
      timeoutMs,
    );
    this.ws.send(JSON.stringify({ ...message, id }));
    await replied;
    return reply!;
  }

  /** Runs a statement and gathers every chunk of its result; throws the server's error, if any. */
  async query(sql: string, params: unknown[] = [], timeoutMs?: number): Promise<QueryResult> {
    const id = `bench-${++nextId}`;
    const result: QueryResult = { columns: [], rows: [], rowsAffected: 0 };
    const finished = collect(
      this.ws,
      (data) => {
        const reply = JSON.parse(data.toString()) as ServerReply;
        if (reply.id !== id) return false;
        if (reply.type !== 'data') {
          throw new Error(`query failed: ${reply.payload.code}: ${reply.payload.message} (${sql})`);
        }
        result.columns = reply.payload.columns ?? [];
        for (const row of reply.payload.rows ?? []) result.rows.push(row);
        if (reply.payload.has_more) return false;
        result.rowsAffected = reply.payload.rows_affected ?? result.rows.length;
        return true;
      },
      timeoutMs,
    );
    this.ws.send(JSON.stringify({ type: 'query', id, payload: { sql, params } }));
    await finished;
    return result;
  }

  close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return Promise.resolve();
    return new Promise((resolve) => {
      this.ws.once('close', () => resolve());
      this.ws.close(1000);
      // A server busy with a query may not answer the close handshake at once.
      setTimeout(() => this.ws.terminate(), 2000).unref();
    });
  }
}
