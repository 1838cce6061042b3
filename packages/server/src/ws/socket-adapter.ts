/** Adapts a flow-controlled `ws` WebSocket to the transport interface the sessions use. */
import type { WebSocket } from 'ws';
import type { SessionSocket } from '../core/stream-session.ts';
import type { FlowControlledWebSocket, TextPart } from './flow-controlled-socket.ts';

/**
 * One small object per connection with its methods on the prototype: an object literal of arrow
 * functions cost a closure per method per connection, most of the adapter's memory on idle sockets.
 */
class SocketAdapter implements SessionSocket {
  readonly #ws: FlowControlledWebSocket;

  constructor(ws: FlowControlledWebSocket) {
    this.#ws = ws;
  }

  get maxBuffered(): number {
    return this.#ws.maxBuffered;
  }

  send(text: string): void {
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN) ws.send(text);
  }

  /** The socket itself: it sends shared messages (FlowControlledWebSocket.sendShared). */
  get sharedSink(): FlowControlledWebSocket {
    return this.#ws;
  }

  sendText(parts: readonly TextPart[]): void {
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN) ws.sendText(parts);
  }

  congested(): boolean {
    return this.#ws.congested();
  }

  bufferedAmount(): number {
    return this.#ws.bufferedAmount;
  }

  fits(bytes: number): boolean {
    return this.#ws.fits(bytes);
  }

  room(bytes: number): Promise<void> {
    return this.#ws.room(bytes);
  }

  drained(): Promise<void> {
    return this.#ws.drained();
  }

  close(code: number, reason: string): void {
    const ws = this.#ws;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  }

  /** The socket is its own Admission (see the gateway's #admit). */
  authenticated(): void {
    this.#ws.authenticated();
  }
}

export function adaptSocket(socket: WebSocket): SessionSocket {
  // The gateway creates every socket as a FlowControlledWebSocket.
  return new SocketAdapter(socket as FlowControlledWebSocket);
}
