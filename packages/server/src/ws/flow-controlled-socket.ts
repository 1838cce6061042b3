/**
 * The one place that decides how much may wait to be sent on a WebSocket, whatever the endpoint: the
 * gateway's `ws` servers create every socket as a FlowControlledWebSocket.
 *
 * - Frames sent in one tick leave in one system call: the TCP socket is corked on the first send of a
 *   tick and uncorked when the tick's work is done, so a fan-out that sends a socket several messages
 *   costs it one `writev`, not one per frame. The sockets corked in a tick are uncorked by one
 *   `nextTick` callback for all of them (not one per socket: a change fanned out to 10,000 sockets).
 * - Messages that go to many sockets (a change, to every subscriber) can be handed over already framed
 *   (`sendFramed`): the bytes are written to the TCP socket as they are, with no per-socket framing by
 *   `ws`. A socket that negotiated permessage-deflate gets such a message through `ws` when it is large
 *   enough to be compressed, or while `ws` is still compressing an earlier one (order is kept).
 * - While HIGH_WATER_MARK bytes or more wait (or an answer waits for room), the client's next messages are
 *   held unread and the TCP socket is paused: a client that stops reading stops being read, and the
 *   kernel's buffers push back on it (TCP backpressure). Held messages are handled, in order, once the
 *   client has caught up.
 * - Messages still unread when the connection closes (held, or left in the paused TCP socket's buffer)
 *   are dropped: their answers could not be sent.
 * - Nothing is queued past `maxBuffered` bytes: a message that would take the queue past it is dropped
 *   and the socket handed to `onOverflow` (the gateway closes it with 4013). Producers that can wait ask
 *   for `room()` first; producers of pushed data keep below it on their own (slow-consumer limits).
 */
import type { Duplex } from 'node:stream';
import { WebSocket } from 'ws';

/** Unsent bytes from which producers wait and the client's messages are no longer read. */
export const HIGH_WATER_MARK = 1024 * 1024;
/** Answers that may wait for room on one socket; one more means the client is not reading at all. */
export const MAX_WAITING_ANSWERS = 32;

export interface FlowLimits {
  /** Bytes that may wait to be sent at most (websocket_max_send_buffer). */
  maxBuffered: number;
  /** Called once when a message would have taken the queue past `maxBuffered`. */
  onOverflow: (socket: FlowControlledWebSocket) => void;
}

type Listener = Parameters<WebSocket['on']>[1];

interface Waiter {
  /** True once the waiter may go on. */
  ready: () => boolean;
  resolve: () => void;
}

/** Bytes `data` occupies once encoded, and a cheap upper bound of it for strings. */
function upperBound(data: unknown): number {
  if (typeof data === 'string') return data.length * 3;
  return (data as { byteLength?: number }).byteLength ?? 0;
}

function exactSize(data: unknown): number {
  return typeof data === 'string' ? Buffer.byteLength(data) : upperBound(data);
}

/** The TCP socket's property naming the WebSocket it carries (for the listeners every socket shares). */
const SOCKET_OWNER = Symbol('rustydb.flowControlledWebSocket');

/** The sockets corked during this tick; one nextTick callback uncorks them all. */
let corkedThisTick: FlowControlledWebSocket[] = [];

function uncorkAll(): void {
  const sockets = corkedThisTick;
  corkedThisTick = [];
  for (const socket of sockets) socket.uncorkTick();
}

/** What `ws` keeps of a socket's sender and extensions (ws 8's internals: not in its typings). */
interface WsInternals {
  _sender: { _state: number; _queue: unknown[] } | undefined;
  _extensions: Record<string, { _threshold: number } | undefined>;
}

/** ws's Sender state when it is neither compressing nor reading a Blob (sender.js DEFAULT). */
const SENDER_IDLE = 0;

/**
 * A final, unmasked WebSocket text frame (what a server sends) of `head`'s bytes followed by `tail`'s
 * UTF-8, built in one buffer: the frame header (2, 4 or 10 bytes), then the payload.
 */
export function textFrame(head: Buffer, tail: string): Buffer {
  const tailBytes = Buffer.byteLength(tail);
  const length = head.length + tailBytes;
  const offset = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(offset + length);
  frame[0] = 0x81; // FIN, opcode 1 (text)
  if (offset === 2) frame[1] = length;
  else if (offset === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  head.copy(frame, offset);
  frame.write(tail, offset + head.length);
  return frame;
}

/** Where a frame built by `textFrame` has its payload. */
function payloadOffset(frame: Buffer): number {
  const length = frame[1]! & 0x7f;
  return length < 126 ? 2 : length === 126 ? 4 : 10;
}

export class FlowControlledWebSocket extends WebSocket {
  #raw: Duplex | undefined;
  #limits: FlowLimits | undefined;
  #endpoint = '';
  /**
   * What the endpoint serving the socket keeps with it (its session), so that the endpoint's listeners
   * can be functions every socket shares rather than closures made per connection.
   */
  served: unknown = undefined;
  #corked = false;
  #overflowed = false;
  /** 'message' events held while the client is behind, in arrival order. */
  #held: unknown[][] = [];
  #holding = false;
  readonly #waiters: Waiter[] = [];
  #answersWaiting = 0;

  /**
   * Applies the limits (one object for every socket); called by the gateway as it accepts the socket,
   * with the TCP socket the upgrade came on (the one `ws` writes to).
   */
  control(raw: Duplex, limits: FlowLimits, endpoint: string): void {
    this.#raw = raw;
    this.#limits = limits;
    this.#endpoint = endpoint;
    // Listeners shared by every socket (a closure each would cost every connection ~150 bytes).
    (raw as Duplex & { [SOCKET_OWNER]?: FlowControlledWebSocket })[SOCKET_OWNER] = this;
    raw.on('drain', FlowControlledWebSocket.#onRawDrain);
    this.on('close', FlowControlledWebSocket.#onClose);
  }

  static #onRawDrain(this: Duplex & { [SOCKET_OWNER]?: FlowControlledWebSocket }): void {
    const owner = this[SOCKET_OWNER];
    if (owner) owner.#wake();
  }

  static #onClose(this: WebSocket): void {
    const socket = this as FlowControlledWebSocket;
    socket.#held = [];
    socket.#wake();
  }

  /** The endpoint the socket was opened on (as the gateway counts it). */
  get endpoint(): string {
    return this.#endpoint;
  }

  /** The client's address, as the TCP socket has it. */
  get remoteAddress(): string {
    return (this.#raw as { remoteAddress?: string } | undefined)?.remoteAddress ?? '';
  }

  get maxBuffered(): number {
    return this.#limits?.maxBuffered ?? Infinity;
  }

  /** True while producers should wait and the client's messages are not read. */
  congested(): boolean {
    return this.bufferedAmount >= HIGH_WATER_MARK || this.#answersWaiting > 0;
  }

  /** Whether `bytes` more can be queued now without passing `maxBuffered`. */
  fits(bytes: number): boolean {
    return this.bufferedAmount + bytes <= this.maxBuffered;
  }

  /** Resolves once fewer than HIGH_WATER_MARK bytes wait (or the socket is closed). */
  drained(): Promise<void> {
    return this.#until(() => this.bufferedAmount < HIGH_WATER_MARK);
  }

  /**
   * Resolves once `bytes` more fit under `maxBuffered` (or the socket is closed). While it waits, the
   * client's messages are held. Past MAX_WAITING_ANSWERS waiting answers the socket overflows instead.
   */
  async room(bytes: number): Promise<void> {
    if (this.fits(bytes) || this.readyState !== WebSocket.OPEN) return;
    if (this.#answersWaiting >= MAX_WAITING_ANSWERS) {
      this.#overflow();
      return;
    }
    this.#answersWaiting++;
    try {
      await this.#until(() => this.fits(bytes));
    } finally {
      this.#answersWaiting--;
      // Held messages may have been waiting for this answer only.
      queueMicrotask(() => this.#wake());
    }
  }

  // One implementation for both of ws's overloads: send(data, cb?) and send(data, options, cb?).
  override send(data: unknown, options?: unknown, cb?: unknown): void {
    const callback = (typeof options === 'function' ? options : cb) as
      ((err?: Error | null) => void) | undefined;
    const sendOptions = typeof options === 'function' ? {} : (options ?? {});
    if (this.readyState !== WebSocket.OPEN || !this.#limits) {
      super.send(data as string, sendOptions, callback);
      return;
    }
    const buffered = this.bufferedAmount;
    const bound = upperBound(data);
    if (
      buffered + bound > this.#limits.maxBuffered &&
      buffered + exactSize(data) > this.#limits.maxBuffered
    ) {
      this.#overflow();
      callback?.(new Error('send buffer limit exceeded'));
      return;
    }
    this.#cork();
    super.send(data as string, sendOptions, this.#writeCallback(buffered + bound, callback));
  }

  /**
   * Sends a text message already framed by `textFrame`: its bytes go to the TCP socket as they are,
   * within the same limits as `send`. Only the frame is built per socket; `ws` is used only where it must
   * frame the message itself (compression, or earlier messages still being compressed).
   */
  sendFramed(frame: Buffer): void {
    const raw = this.#raw;
    if (!raw || this.readyState !== WebSocket.OPEN || !this.#limits) return;
    const internals = this as unknown as WsInternals;
    const sender = internals._sender;
    const deflate = internals._extensions['permessage-deflate'];
    const offset = payloadOffset(frame);
    if (
      !sender ||
      sender._state !== SENDER_IDLE ||
      sender._queue.length > 0 ||
      (deflate !== undefined && frame.length - offset >= deflate._threshold)
    ) {
      this.send(frame.subarray(offset), { binary: false });
      return;
    }
    const buffered = this.bufferedAmount;
    if (buffered + frame.length > this.#limits.maxBuffered) {
      this.#overflow();
      return;
    }
    // The first message of a tick is written at once (one system call, nothing buffered: a fan-out
    // sends each socket one); what follows it in the same tick is corked and leaves together.
    const corked = this.#corked;
    raw.write(frame, this.#writeCallback(buffered + frame.length, undefined));
    if (!corked) this.#cork();
  }

  /**
   * A write callback costs a little per frame: it is only needed where someone may wait for this frame
   * to leave (a producer or a held message waiting for the queue to shrink).
   */
  #writeCallback(
    bufferedAfter: number,
    callback: ((err?: Error | null) => void) | undefined,
  ): ((err?: Error | null) => void) | undefined {
    if (bufferedAfter < HIGH_WATER_MARK && this.#waiters.length === 0) return callback;
    return (err?: Error | null): void => {
      callback?.(err);
      this.#wake();
    };
  }

  // Holds the client's messages while it is behind; see the module comment.
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // When the connection of a client that was not being read drops, `ws` parses what the paused TCP
    // socket still buffered (tens of KB of requests) and emits it as the socket closes. None of those
    // requests could be answered; run, they cost the server their whole work at once (hundreds of
    // reads of large rows). They are dropped, as the held ones are.
    if (event === 'message' && this.#limits && this.readyState !== WebSocket.OPEN) return false;
    if (event === 'message' && this.#limits && (this.#held.length > 0 || this.congested())) {
      this.#held.push(args);
      this.#holdReading();
      return true;
    }
    // Pongs to a flood of pings queue up like any answer: stop reading pings too while behind.
    if (event === 'ping' && this.#limits && this.congested()) this.#holdReading();
    return super.emit(event, ...(args as Parameters<Listener>));
  }

  /** Ends the tick's cork: everything sent during the tick goes to the kernel in one write. */
  uncorkTick(): void {
    this.#corked = false;
    this.#raw?.uncork();
  }

  #cork(): void {
    if (this.#corked || !this.#raw) return;
    this.#corked = true;
    this.#raw.cork();
    if (corkedThisTick.push(this) === 1) process.nextTick(uncorkAll);
  }

  #holdReading(): void {
    if (this.#holding) return;
    this.#holding = true;
    this.pause();
    void this.#until(() => !this.congested()).then(() => this.#release());
  }

  /** The client caught up: handles the held messages in order, stopping again if they fill the queue. */
  #release(): void {
    this.#holding = false;
    if (this.readyState !== WebSocket.OPEN) {
      this.#held = [];
      return;
    }
    while (this.#held.length > 0) {
      if (this.congested()) {
        this.#holdReading();
        return;
      }
      super.emit('message', ...(this.#held.shift() as Parameters<Listener>));
    }
    this.resume();
  }

  #overflow(): void {
    if (this.#overflowed) return;
    this.#overflowed = true;
    this.#limits?.onOverflow(this);
  }

  #until(ready: () => boolean): Promise<void> {
    if (ready() || this.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ ready, resolve }));
  }

  /** Runs as frames reach the kernel, on the TCP socket's drain and on close: lets waiters go on. */
  #wake(): void {
    if (this.#waiters.length === 0) return;
    const open = this.readyState === WebSocket.OPEN;
    for (let i = 0; i < this.#waiters.length;) {
      const waiter = this.#waiters[i]!;
      if (open && !waiter.ready()) {
        i++;
        continue;
      }
      this.#waiters.splice(i, 1);
      waiter.resolve();
    }
  }
}
