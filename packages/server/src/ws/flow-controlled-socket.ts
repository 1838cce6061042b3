/**
 * The one place that decides how much may wait to be sent on a WebSocket, whatever the endpoint: the
 * gateway's `ws` servers create every socket as a FlowControlledWebSocket.
 *
 * - Frames sent in one tick leave in one system call: the TCP socket is corked on the first send of a
 *   tick and uncorked when the tick's work is done, so a fan-out that sends a socket several messages
 *   costs it one `writev`, not one per frame. The sockets corked in a tick are uncorked by one
 *   `nextTick` callback for all of them (not one per socket: a change fanned out to 10,000 sockets).
 * - `sendText(parts)` is the cheap way for pushed data: the frame is built here, in one buffer, from
 *   parts the caller may share among sockets (the same event's bytes for every subscriber), and the
 *   frames are written by a shared flush — one `write` of one buffer per socket, instead of ws's
 *   framing, a cork and an end-of-tick callback per socket. The flush runs at the end of the tick, or
 *   as soon as FLUSH_BATCH sockets have frames waiting, so a fan-out's first sockets are written while
 *   the rest are still being framed. `sendShared(head, tail)` is the same for the commonest case, a
 *   subscription's message: the bytes shared by every subscriber, then its own id. The one exception
 *   to the end-of-tick flush: the first frame a socket sends while handling the last message a read
 *   brought (the answer to a lone request) is written at once (see lastOfRead).
 *   Where ws must frame the message itself (it would compress it, or its sender is busy compressing
 *   another) it goes through `send`. Either way frames leave in the order they were sent.
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
import { sinceStart } from '../core/process-clock.ts';
import type { Deadline } from '../core/deadline-queue.ts';
import type { Admission, Admitted } from './connection-admission.ts';
import type { SessionSocket } from '../core/stream-session.ts';

/** Unsent bytes from which producers wait and the client's messages are no longer read. */
export const HIGH_WATER_MARK = 1024 * 1024;
/** Answers that may wait for room on one socket; one more means the client is not reading at all. */
export const MAX_WAITING_ANSWERS = 32;

export interface FlowLimits {
  /** Bytes that may wait to be sent at most (websocket_max_send_buffer). */
  maxBuffered: number;
  /** Called once when a message would have taken the queue past `maxBuffered`. */
  onOverflow: (socket: FlowControlledWebSocket) => void;
  /** Called as the socket closes, before its 'close' listeners. */
  onClosed: (socket: FlowControlledWebSocket) => void;
  /** Called when the socket's endpoint says its client has authenticated (see `authenticated`). */
  onAuthenticated: (socket: FlowControlledWebSocket) => void;
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

/** What of ws's internals `sendText` reads to know it may frame a message itself. */
interface WsInternals {
  _sender: { _state: number; _queue: unknown[]; _firstFragment: boolean; _bufferedBytes: number };
  _socket: { _writableState: { length: number } } | null;
  _bufferedAmount: number;
  /**
   * Bytes received from the client and not yet parsed into messages, and the chunks that hold them
   * (see releaseReadChunks).
   */
  _receiver: { _bufferedBytes: number; _buffers: unknown[] };
  _extensions: Record<string, { _threshold: number; params: Record<string, unknown> } | undefined>;
}

/** Sockets with frames from `sendText` waiting for the end of the tick, and whether a flush is due. */
let flushing: FlowControlledWebSocket[] = [];
let flushScheduled = false;
/**
 * Sockets whose frames may wait for the end of the tick together. Once this many wait, they are
 * written at once: a change fanned out to 10,000 sockets in one tick then starts reaching them after
 * the first few dozen are framed, not after all of them (and not after the first slice of delivery).
 * Frames to one socket still leave in one write however many it is sent in a row.
 */
const FLUSH_BATCH = 32;

function flushAll(): void {
  flushScheduled = false;
  writeWaiting();
}

function writeWaiting(): void {
  const sockets = flushing;
  flushing = [];
  for (const socket of sockets) socket.flushFrames();
}

/**
 * The socket whose client's message is being handled, while that message is the last one its read
 * brought (no more bytes wait in ws's receiver), until it sends its first frame: that frame has no later
 * answer of the same read to share a write with, and is written at once instead of at the end of the
 * tick (the answer of a keyed query reaches the kernel before the event loop unwinds). Answers to the
 * earlier messages of a read (pipelined requests) still share one write at the end of the tick. One
 * variable for the process, not a field per socket: messages are handled one at a time.
 */
let lastOfRead: FlowControlledWebSocket | undefined;

/** Part of a text message: UTF-8 bytes, or text (written as UTF-8). */
export type TextPart = Buffer | string;

/** Text this short is measured and copied here when it is ASCII: cheaper than a call into C++. */
const SHORT_TEXT = 64;

/** The UTF-8 length of `text`. */
function utf8Length(text: string): number {
  if (text.length <= SHORT_TEXT) {
    let i = 0;
    while (i < text.length && text.charCodeAt(i) < 0x80) i++;
    if (i === text.length) return i;
  }
  return Buffer.byteLength(text);
}

/** Writes `text` as UTF-8 into `frame` at `at`; returns the bytes written. */
function writeText(frame: Buffer, text: string, at: number): number {
  if (text.length <= SHORT_TEXT) {
    let i = 0;
    for (let code; i < text.length && (code = text.charCodeAt(i)) < 0x80; i++) frame[at + i] = code;
    if (i === text.length) return i;
  }
  return frame.write(text, at);
}

/**
 * A buffer for a text frame (FIN, opcode 1, unmasked as a server's are) of `length` bytes, its header
 * written: the message goes after `frame.length - length` bytes.
 */
function newTextFrame(length: number): Buffer {
  const frame = Buffer.allocUnsafe(textHeaderLength(length) + length);
  writeTextHeader(frame, 0, length);
  return frame;
}

/** The length of a text frame's header for a message of `length` bytes. */
function textHeaderLength(length: number): number {
  return length < 126 ? 2 : length < 65536 ? 4 : 10;
}

/** Writes at `at` in `frame` the header of a text frame (FIN, opcode 1, unmasked) of `length` bytes. */
function writeTextHeader(frame: Buffer, at: number, length: number): void {
  frame[at] = 0x81;
  if (length < 126) frame[at + 1] = length;
  else if (length < 65536) {
    frame[at + 1] = 126;
    frame.writeUInt16BE(length, at + 2);
  } else {
    frame[at + 1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), at + 2);
    frame.writeUInt32BE(length >>> 0, at + 6);
  }
}

/** A text frame holding `parts`, in one buffer. */
function textFrame(parts: readonly TextPart[], length: number): Buffer {
  const frame = newTextFrame(length);
  let at = frame.length - length;
  for (const part of parts)
    at += typeof part === 'string' ? writeText(frame, part, at) : part.copy(frame, at);
  return frame;
}

/**
 * Frames of one text (a keyed query's answer) are encoded straight into a slab and cut from it in turn,
 * as Buffer.allocUnsafe cuts buffers from Node's pool: the text then goes through one call into C++
 * (its UTF-8 encoding, which also gives its length) instead of two (Buffer.byteLength, then the write).
 * The slab has the pool's size and takes only texts whose frame fits half of it, as the pool does, so a
 * frame waiting to be written keeps no more memory alive than one from the pool did.
 */
const FRAME_SLAB_SIZE = 8 * 1024;
/** Room for the longest header of such a frame (2 bytes under 126, else 4) and then some. */
const SLAB_HEADER = 4;
/** The longest text encoded into the slab: at most 3 UTF-8 bytes per UTF-16 unit, in half the slab. */
const SLAB_TEXT_MAX = Math.floor((FRAME_SLAB_SIZE / 2 - SLAB_HEADER) / 3);
let frameSlab: Buffer | undefined;
let frameSlabUsed = 0;

/** The text frame of `text` cut from the slab; undefined when the text is too long for it. */
function slabTextFrame(text: string): Buffer | undefined {
  if (text.length > SLAB_TEXT_MAX) return undefined;
  const most = text.length * 3;
  if (frameSlab === undefined || frameSlabUsed + SLAB_HEADER + most > FRAME_SLAB_SIZE) {
    frameSlab = Buffer.allocUnsafeSlow(FRAME_SLAB_SIZE);
    frameSlabUsed = 0;
  }
  const slab = frameSlab;
  const body = frameSlabUsed + SLAB_HEADER;
  const length = slab.write(text, body, most);
  const start = body - textHeaderLength(length);
  writeTextHeader(slab, start, length);
  // The next frame starts 8-byte aligned, as in Node's pool.
  frameSlabUsed = (body + length + 7) & ~7;
  return slab.subarray(start, body + length);
}

/**
 * Gives back the room of the receiver's list of chunks once every chunk has been parsed. The list grows
 * room for 17 chunks at the first one the client sends (its auth) and kept it for the connection's
 * life: ~150 bytes on every idle socket. Setting an empty array's length to 0 changes nothing `ws` sees
 * (the same array, still empty) but lets V8 free its backing store; the next read grows it again.
 */
function releaseReadChunks(receiver: WsInternals['_receiver']): void {
  const chunks = receiver._buffers;
  if (chunks.length === 0) chunks.length = 0;
}

/** #flags: the TCP socket is corked until the end of this tick (see #cork). */
const CORKED = 1;
/** #flags: the socket overflowed (onOverflow was called; it is not called again). */
const OVERFLOWED = 2;
/** #flags: the client's messages are held and the socket paused until it catches up (#holdReading). */
const HOLDING = 4;

/** What of the TCP socket's stream state `flushFrames` reads (where `destroyed` and `writableEnded` read it). */
interface WritableInternals {
  _writableState: { ending: boolean; destroyed: boolean };
}

export class FlowControlledWebSocket extends WebSocket implements Admission, Admitted, SessionSocket {
  #raw: Duplex | undefined;
  #limits: FlowLimits | undefined;
  // What every message sent reads is declared first, next to the above: a fan-out to 10,000 sockets
  // then loads fewer of each socket's cache lines.
  /** Frames from `sendText` not yet handed to the TCP socket (one, or several), and their bytes. */
  #frames: Buffer | Buffer[] | undefined;
  #framesBytes = 0;
  /** Messages shorter than this go uncompressed (permessage-deflate's threshold; Infinity without it). */
  #uncompressedBelow: number | undefined;
  /**
   * Whether ws's sender may hold messages of its own: only while it compresses one (permessage-deflate),
   * or reads a Blob, which nothing here sends. Without compression it frames and writes each message at
   * once, and is not looked at (a change fanned out to 10,000 sockets then loads one object less each).
   */
  #senderMayHold = true;
  #endpoint = '';
  /**
   * What the endpoint serving the socket keeps with it (its session), so that the endpoint's listeners
   * can be functions every socket shares rather than closures made per connection.
   */
  served: unknown = undefined;
  /**
   * What the gateway keeps about the socket, kept on it (a Map per field, keyed by socket, cost every
   * connection an entry in each): when the client was last heard from and last pinged (see
   * process-clock.ts), and the socket's place in the admission counts (see Admitted).
   */
  heardAt = 0;
  pingedAt = 0;
  admissionKey: string | undefined = undefined;
  authDeadline: Deadline<() => void> | undefined = undefined;
  /** CORKED, OVERFLOWED and HOLDING, as bits of one small integer (three fields cost 16 bytes more). */
  #flags = 0;
  /**
   * 'message' events held while the client is behind, in arrival order. This and #waiters are made
   * when first needed: two empty arrays on every idle connection cost it ~100 bytes.
   */
  #held: unknown[][] | undefined = undefined;
  #waiters: Waiter[] | undefined = undefined;
  #answersWaiting = 0;

  static {
    // Frames waiting for the tick's flush are queued bytes like any other: every check that reads
    // bufferedAmount (limits, congestion, slow consumers) sees them. ws's own count is read as ws's
    // getter reads it, inline: a fan-out reads it a few times per socket.
    Object.defineProperty(this.prototype, 'bufferedAmount', {
      configurable: true,
      get(this: FlowControlledWebSocket): number {
        const ws = this as unknown as WsInternals;
        const socket = ws._socket;
        if (!socket) return ws._bufferedAmount + this.#framesBytes;
        const held = this.#senderMayHold ? ws._sender._bufferedBytes : 0;
        return socket._writableState.length + held + this.#framesBytes;
      },
    });
  }

  /**
   * Applies the limits (one object for every socket); called by the gateway as it accepts the socket,
   * with the TCP socket the upgrade came on (the one `ws` writes to).
   */
  control(raw: Duplex, limits: FlowLimits, endpoint: string): void {
    this.#raw = raw;
    this.#limits = limits;
    this.#endpoint = endpoint;
    // The extensions are settled once the socket is open (ws negotiates them in the upgrade).
    const deflate = (this as unknown as WsInternals)._extensions['permessage-deflate'];
    this.#senderMayHold = deflate !== undefined;
    this.#uncompressedBelow = !deflate
      ? Infinity
      : deflate.params.server_no_context_takeover === true
        ? deflate._threshold
        : 0;
    // Listeners shared by every socket (a closure each would cost every connection ~150 bytes).
    (raw as Duplex & { [SOCKET_OWNER]?: FlowControlledWebSocket })[SOCKET_OWNER] = this;
    raw.on('drain', FlowControlledWebSocket.#onRawDrain);
  }

  static #onRawDrain(this: Duplex & { [SOCKET_OWNER]?: FlowControlledWebSocket }): void {
    const owner = this[SOCKET_OWNER];
    if (owner) owner.#wake();
  }

  /**
   * The socket's endpoint says its client has authenticated (or needs no authentication): the socket
   * is its own Admission, and the gateway takes it out of the unauthenticated counts.
   */
  authenticated(): void {
    this.#limits?.onAuthenticated(this);
  }

  /** As a SessionSocket: a session's message; nothing once the socket is closing. */
  sendMessage(text: string): void {
    // Through `send`, which an endpoint may have wrapped.
    if (this.readyState === WebSocket.OPEN) this.send(text);
  }

  /** As a SessionSocket: closes the socket unless it is closing already. */
  closeWith(code: number, reason: string): void {
    const state = this.readyState;
    if (state === WebSocket.OPEN || state === WebSocket.CONNECTING) this.close(code, reason);
  }

  /** As a SessionSocket: the socket sends shared messages itself (sendShared). */
  get sharedSink(): this {
    return this;
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

  /**
   * Sends a text message made of `parts` (UTF-8 bytes, which may be shared with other sockets and are
   * not changed); nothing once the socket is closing. Past `maxBuffered` the socket overflows, as with
   * `send`.
   */
  sendText(parts: readonly TextPart[]): void {
    if (this.readyState !== WebSocket.OPEN) return;
    // One text on a socket that frames every message here (no compression): encoded into its frame at once.
    if (
      parts.length === 1 &&
      !this.#senderMayHold &&
      typeof parts[0] === 'string' &&
      this.#limits &&
      this.#raw
    ) {
      const frame = slabTextFrame(parts[0]);
      if (frame !== undefined) {
        this.#queueFrame(frame);
        return;
      }
    }
    let length = 0;
    for (const part of parts) length += typeof part === 'string' ? utf8Length(part) : part.length;
    if (this.readyState !== WebSocket.OPEN || !this.#limits || !this.#raw || !this.#mayFrame(length)) {
      // Not through `this.send`: an endpoint may have wrapped that one (to count messages, say).
      const buffers = parts.map((part) => (typeof part === 'string' ? Buffer.from(part) : part));
      this.#send(buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers, length), { binary: false });
      return;
    }
    this.#queueFrame(textFrame(parts, length));
  }

  /**
   * Sends the text message `head` + `tail`: `head` the UTF-8 bytes of what many sockets are sent (one
   * change's envelope up to its subscription id, shared and not changed), `tail` this socket's own end
   * of it (the id). The same as `sendText([head, tail])`, with no array of parts to walk: a change
   * fanned out to 10,000 subscribers calls it 10,000 times in a row.
   */
  sendShared(head: Buffer, tail: string): void {
    if (this.readyState !== WebSocket.OPEN) return;
    const length = head.length + utf8Length(tail);
    if (!this.#limits || !this.#raw || !this.#mayFrame(length)) {
      this.#send(Buffer.concat([head, Buffer.from(tail)], length), { binary: false });
      return;
    }
    const frame = newTextFrame(length);
    const at = frame.length - length;
    frame.set(head, at);
    writeText(frame, tail, at + head.length);
    this.#queueFrame(frame);
  }

  /** Queues a frame for the tick's flush (see the module comment); past `maxBuffered`, overflows. */
  #queueFrame(frame: Buffer): void {
    if (this.bufferedAmount + frame.length > this.#limits!.maxBuffered) {
      this.#overflow();
      return;
    }
    const frames = this.#frames;
    if (frames === undefined && lastOfRead === this) {
      lastOfRead = undefined;
      this.#write(frame);
      return;
    }
    if (frames === undefined) {
      // The sockets framed so far leave now, before this one joins the next batch.
      if (flushing.length >= FLUSH_BATCH) writeWaiting();
      this.#frames = frame;
      flushing.push(this);
      if (!flushScheduled) {
        flushScheduled = true;
        process.nextTick(flushAll);
      }
    } else if (Array.isArray(frames)) frames.push(frame);
    else this.#frames = [frames, frame];
    this.#framesBytes += frame.length;
  }

  /** Hands the frames from `sendText` to the TCP socket, in one write. */
  flushFrames(): void {
    const frames = this.#frames;
    if (frames === undefined) return;
    const bytes = this.#framesBytes;
    this.#frames = undefined;
    this.#framesBytes = 0;
    if (this.readyState !== WebSocket.OPEN || !this.#raw) return;
    this.#write(Array.isArray(frames) ? Buffer.concat(frames, bytes) : frames);
  }

  /** Hands whole frames to the TCP socket now (nothing of this socket's may be queued before them). */
  #write(data: Buffer): void {
    const raw = this.#raw!;
    // What raw.destroyed and raw.writableEnded say, read where they read it (destroyed reads the readable
    // side's state first: one more object to load per socket of a fan-out).
    const state = (raw as unknown as WritableInternals)._writableState;
    if (state.destroyed || state.ending) return;
    // As in `send`: a callback only where someone may wait for these bytes to leave.
    const watch = this.bufferedAmount + data.length >= HIGH_WATER_MARK || this.#waiters !== undefined;
    raw.write(data, watch ? () => this.#wake() : undefined);
  }

  /**
   * Whether a text message of `length` bytes may be framed here: ws would send it as is (no compression
   * for it under permessage-deflate's negotiated threshold) and has nothing of its own queued before it.
   */
  #mayFrame(length: number): boolean {
    if (!this.#senderMayHold) return true;
    const sender = (this as unknown as WsInternals)._sender;
    if (sender._state !== 0 || sender._queue.length > 0 || !sender._firstFragment) return false;
    return length < this.#uncompressedBelow!;
  }

  override close(code?: number, data?: string | Buffer): void {
    this.flushFrames();
    super.close(code, data);
  }

  // One implementation for both of ws's overloads: send(data, cb?) and send(data, options, cb?).
  override send(data: unknown, options?: unknown, cb?: unknown): void {
    this.#send(data, options, cb);
  }

  #send(data: unknown, options?: unknown, cb?: unknown): void {
    // Frames from `sendText` waiting for the tick's flush go first.
    if (this.#frames !== undefined) this.flushFrames();
    const callback = (typeof options === 'function' ? options : cb) as ((err?: Error) => void) | undefined;
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
    // A write callback costs a little per frame: it is only needed where someone may wait for this frame
    // to leave (a producer or a held message waiting for the queue to shrink).
    const watch = buffered + bound >= HIGH_WATER_MARK || this.#waiters !== undefined;
    const done = watch
      ? (err?: Error): void => {
          callback?.(err);
          this.#wake();
        }
      : callback;
    super.send(data as string, sendOptions, done);
  }

  /**
   * Holds the client's messages while it is behind (see the module comment), and keeps what the
   * gateway needs to know of the socket's events: when its client was last heard from, and that it
   * closed. Done here rather than by listeners: each event name with listeners costs every connection
   * a slot in its listener table, and two listeners of one event an array.
   */
  override emit(event: string | symbol, ...args: unknown[]): boolean {
    // A message, the event of every request, takes a path of its own with its two arguments by name:
    // spread into EventEmitter's emit (which gathers them into an array again) they cost every request
    // a spread call.
    if (event === 'message' && args.length === 2) return this.#emitMessage(args[0], args[1]);
    return this.#emitAny(event, args);
  }

  /** Any event, with its arguments. */
  #emitAny(event: string | symbol, args: unknown[]): boolean {
    const limits = this.#limits;
    if (limits !== undefined) {
      if (event === 'message' || event === 'pong') this.heardAt = sinceStart();
      else if (event === 'close') {
        this.#held = undefined;
        this.#wake();
        limits.onClosed(this);
      }
    }
    // When the connection of a client that was not being read drops, `ws` parses what the paused TCP
    // socket still buffered (tens of KB of requests) and emits it as the socket closes. None of those
    // requests could be answered; run, they cost the server their whole work at once (hundreds of
    // reads of large rows). They are dropped, as the held ones are.
    if (event === 'message' && this.#limits && this.readyState !== WebSocket.OPEN) return false;
    if (event === 'message' && this.#limits && (this.#held !== undefined || this.congested())) {
      (this.#held ??= []).push(args);
      this.#holdReading();
      return true;
    }
    // Pongs to a flood of pings queue up like any answer: stop reading pings too while behind.
    if (event === 'ping' && this.#limits && this.congested()) this.#holdReading();
    if (event !== 'message') return super.emit(event, ...(args as Parameters<Listener>));
    const outer = lastOfRead;
    lastOfRead = (this as unknown as WsInternals)._receiver._bufferedBytes === 0 ? this : undefined;
    try {
      return super.emit(event, ...(args as Parameters<Listener>));
    } finally {
      lastOfRead = outer;
    }
  }

  /** `emit('message', data, isBinary)`: the same steps as the general path above, in the same order. */
  #emitMessage(data: unknown, isBinary: unknown): boolean {
    if (this.#limits !== undefined) {
      this.heardAt = sinceStart();
      if (this.readyState !== WebSocket.OPEN) return false;
      if (this.#held !== undefined || this.congested()) {
        (this.#held ??= []).push([data, isBinary]);
        this.#holdReading();
        return true;
      }
    }
    const outer = lastOfRead;
    const receiver = (this as unknown as WsInternals)._receiver;
    const readDone = receiver._bufferedBytes === 0;
    lastOfRead = readDone ? this : undefined;
    try {
      return super.emit('message', data, isBinary);
    } finally {
      lastOfRead = outer;
      // The last message of a read: the socket may now stay idle for a long time.
      if (readDone) releaseReadChunks(receiver);
    }
  }

  /** Ends the tick's cork: everything sent during the tick goes to the kernel in one write. */
  uncorkTick(): void {
    this.#flags &= ~CORKED;
    this.#raw?.uncork();
  }

  #cork(): void {
    if (this.#flags & CORKED || !this.#raw) return;
    this.#flags |= CORKED;
    this.#raw.cork();
    if (corkedThisTick.push(this) === 1) process.nextTick(uncorkAll);
  }

  #holdReading(): void {
    if (this.#flags & HOLDING) return;
    this.#flags |= HOLDING;
    this.pause();
    void this.#until(() => !this.congested()).then(() => this.#release());
  }

  /** The client caught up: handles the held messages in order, stopping again if they fill the queue. */
  #release(): void {
    this.#flags &= ~HOLDING;
    if (this.readyState !== WebSocket.OPEN) {
      this.#held = undefined;
      return;
    }
    const held = this.#held;
    // (A close during a message's handling drops the rest: #held is no longer this array then.)
    while (held !== undefined && this.#held === held && held.length > 0) {
      if (this.congested()) {
        this.#holdReading();
        return;
      }
      super.emit('message', ...(held.shift() as Parameters<Listener>));
    }
    if (this.#held === held) this.#held = undefined;
    this.resume();
  }

  #overflow(): void {
    if (this.#flags & OVERFLOWED) return;
    this.#flags |= OVERFLOWED;
    this.#limits?.onOverflow(this);
  }

  #until(ready: () => boolean): Promise<void> {
    if (ready() || this.readyState !== WebSocket.OPEN) return Promise.resolve();
    return new Promise((resolve) => (this.#waiters ??= []).push({ ready, resolve }));
  }

  /** Runs as frames reach the kernel, on the TCP socket's drain and on close: lets waiters go on. */
  #wake(): void {
    const waiters = this.#waiters;
    if (waiters === undefined) return;
    const open = this.readyState === WebSocket.OPEN;
    for (let i = 0; i < waiters.length;) {
      const waiter = waiters[i]!;
      if (open && !waiter.ready()) {
        i++;
        continue;
      }
      waiters.splice(i, 1);
      waiter.resolve();
    }
    if (waiters.length === 0 && this.#waiters === waiters) this.#waiters = undefined;
  }
}
