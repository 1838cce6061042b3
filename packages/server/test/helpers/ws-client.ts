/**
 * A small WebSocket client for tests: every server message is parsed and queued, `next()` takes the
 * first queued (or future) message matching a predicate, `closed()` resolves with the close code and
 * reason. Every wait is bounded.
 */
import assert from 'node:assert/strict';
import WebSocket, { type ClientOptions, type RawData } from 'ws';

export interface BatchItem {
  status: 'success' | 'error';
  columns?: string[];
  rows?: unknown[][];
  rows_affected?: number;
  last_insert_id?: number;
  code?: string;
  message?: string;
}

/** The union of the payload fields the server sends; each test asserts which are present. */
export interface Payload {
  status?: string;
  code?: string;
  message?: string;
  details?: Record<string, unknown>;
  columns?: string[];
  rows?: unknown[][];
  has_more?: boolean;
  rows_affected?: number;
  last_insert_id?: number;
  results?: BatchItem[];
  cancelled?: boolean;
  user?: string;
  roles?: string[];
  expires_at?: string;
  limits?: Record<string, unknown>;
  /** Fields of other message types (subscriptions, change events); tests narrow them as they assert. */
  [field: string]: unknown;
}

export interface ServerMsg {
  type: string;
  payload: Payload;
  timestamp: string;
  id?: string;
}

export interface CloseInfo {
  code: number;
  reason: string;
}

export type ConnectOptions = ClientOptions;

/** The server's answers to a subscribe request: it took it, refused it, or cannot resume from `since`. */
const SUBSCRIBE_ANSWERS: ReadonlySet<string> = new Set(['subscribed', 'error', 'reset']);

export const ISO_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

function describe(messages: readonly ServerMsg[]): string {
  const shown = messages.slice(-5).map((m) => JSON.stringify(m).slice(0, 300));
  return shown.length > 0 ? shown.join('\n  ') : '(none)';
}

export class TestClient {
  readonly ws: WebSocket;
  /** Every message received, in order (including ones already taken by next()). */
  readonly received: ServerMsg[] = [];
  /** Raw text of every message received. */
  readonly rawTexts: string[] = [];
  /** Whether to keep `received` and `rawTexts` (turn off for huge results). */
  record = true;
  /** WebSocket ping frames received from the server. */
  pings = 0;
  #queue: ServerMsg[] = [];
  #waiters: { predicate: (m: ServerMsg) => boolean; resolve: (m: ServerMsg) => void }[] = [];
  #close: Promise<CloseInfo>;
  #closeInfo: CloseInfo | undefined;
  #idCounter = 0;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.on('message', (data: RawData, isBinary: boolean) => this.#onMessage(data, isBinary));
    ws.on('ping', () => this.pings++);
    ws.on('error', () => {
      // Errors surface as the close code (1006 and friends); tests assert on that.
    });
    this.#close = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.#closeInfo = { code, reason: reason.toString() };
        resolve(this.#closeInfo);
      });
    });
  }

  static connect(url: string, options: ConnectOptions = {}, timeoutMs = 5000): Promise<TestClient> {
    return TestClient.adopt(new WebSocket(url, { handshakeTimeout: timeoutMs, ...options }), timeoutMs);
  }

  /** Wraps a WebSocket the test created itself (still connecting) and waits until it is open. */
  static adopt(ws: WebSocket, timeoutMs = 5000): Promise<TestClient> {
    const url = ws.url;
    const client = new TestClient(ws);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`connect to ${url} timed out`));
      }, timeoutMs);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(client);
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
    });
  }

  #onMessage(data: RawData, isBinary: boolean): void {
    const text = isBinary ? `<binary ${String((data as Buffer).length)} bytes>` : data.toString();
    if (this.record) this.rawTexts.push(text);
    let message: ServerMsg;
    try {
      message = JSON.parse(text) as ServerMsg;
    } catch {
      message = { type: '<unparseable>', payload: { message: text }, timestamp: '' };
    }
    if (this.record) this.received.push(message);
    const at = this.#waiters.findIndex((w) => w.predicate(message));
    if (at !== -1) {
      const [waiter] = this.#waiters.splice(at, 1);
      waiter!.resolve(message);
    } else this.#queue.push(message);
  }

  get isOpen(): boolean {
    return this.ws.readyState === WebSocket.OPEN;
  }

  get closeInfo(): CloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Sends an object as JSON text. */
  send(message: unknown): void {
    this.ws.send(JSON.stringify(message));
  }

  sendRaw(data: string | Buffer, options: { binary?: boolean } = {}): void {
    this.ws.send(data, options);
  }

  /** A fresh request id. */
  newId(prefix = 'r'): string {
    return `${prefix}-${++this.#idCounter}`;
  }

  /** Takes the first queued or future message matching `predicate`. */
  next(predicate: (m: ServerMsg) => boolean = () => true, timeoutMs = 3000): Promise<ServerMsg> {
    const at = this.#queue.findIndex(predicate);
    if (at !== -1) return Promise.resolve(this.#queue.splice(at, 1)[0]!);
    return new Promise((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (m: ServerMsg) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i !== -1) this.#waiters.splice(i, 1);
        reject(
          new Error(
            `no matching message within ${timeoutMs} ms (socket ${this.#closeInfo ? `closed ${this.#closeInfo.code} ${this.#closeInfo.reason}` : 'open'}); last received:\n  ${describe(this.received)}`,
          ),
        );
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** The next message answering request `id`. */
  reply(id: string, timeoutMs = 3000): Promise<ServerMsg> {
    return this.next((m) => m.id === id, timeoutMs);
  }

  /** Sends `message` with a fresh id and returns the first reply to it. */
  async request(message: { type: string; payload?: unknown }, timeoutMs = 3000): Promise<ServerMsg> {
    const id = this.newId(message.type);
    this.send({ ...message, id, timestamp: new Date().toISOString() });
    return this.reply(id, timeoutMs);
  }

  /**
   * Sends a subscribe request and returns the server's answer to it: `subscribed`, or the `error` or
   * `reset` that refuses it. The changes or data that follow stay queued for next().
   */
  subscribe(id: string, payload: Record<string, unknown>, timeoutMs = 3000): Promise<ServerMsg> {
    this.send({ type: 'subscribe', id, payload });
    return this.next((m) => m.id === id && SUBSCRIBE_ANSWERS.has(m.type), timeoutMs);
  }

  /** subscribe(), asserting that the server took the subscription; returns its `subscribed`. */
  async subscribed(id: string, payload: Record<string, unknown>, timeoutMs = 3000): Promise<ServerMsg> {
    const answer = await this.subscribe(id, payload, timeoutMs);
    assert.equal(answer.type, 'subscribed', JSON.stringify(answer));
    return answer;
  }

  /**
   * The payloads of the next `n` messages of subscription `id` after its `subscribed`, each asserted to
   * be a `change`: a reset or error fails the test at once instead of running into the timeout.
   */
  async changes<T>(id: string, n: number, timeoutMs = 5000): Promise<T[]> {
    const out: T[] = [];
    while (out.length < n) {
      const m = await this.next((x) => x.id === id && x.type !== 'subscribed', timeoutMs);
      assert.equal(m.type, 'change', `expected a change of ${id}, got ${JSON.stringify(m).slice(0, 300)}`);
      out.push(m.payload as T);
    }
    return out;
  }

  /**
   * Sends a query and collects its whole answer: every `data` chunk up to has_more false, or the error.
   */
  async query(
    sql: string,
    extra: Record<string, unknown> = {},
    timeoutMs = 5000,
  ): Promise<{ chunks: ServerMsg[]; error?: ServerMsg; rows: unknown[][] }> {
    const id = this.newId('q');
    this.send({ type: 'query', id, payload: { sql, ...extra } });
    return this.collect(id, timeoutMs);
  }

  async collect(
    id: string,
    timeoutMs = 5000,
  ): Promise<{ chunks: ServerMsg[]; error?: ServerMsg; rows: unknown[][] }> {
    const deadline = Date.now() + timeoutMs;
    const chunks: ServerMsg[] = [];
    const rows: unknown[][] = [];
    for (;;) {
      const m = await this.next((x) => x.id === id, Math.max(1, deadline - Date.now()));
      if (m.type === 'error') return { chunks, error: m, rows };
      chunks.push(m);
      for (const row of m.payload.rows ?? []) rows.push(row);
      if (m.payload.has_more !== true) return { chunks, rows };
    }
  }

  /** Messages still queued (not taken by next()). */
  pending(): readonly ServerMsg[] {
    return this.#queue;
  }

  /** Resolves with the close code and reason, or rejects after `timeoutMs`. */
  closed(timeoutMs = 3000): Promise<CloseInfo> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(
              `socket not closed within ${timeoutMs} ms; last received:\n  ${describe(this.received)}`,
            ),
          ),
        timeoutMs,
      );
    });
    return Promise.race([this.#close, timeout]).finally(() => clearTimeout(timer));
  }

  close(code = 1000): void {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING)
      this.ws.close(code);
  }

  terminate(): void {
    this.ws.terminate();
  }
}
