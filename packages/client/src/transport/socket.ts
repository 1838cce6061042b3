/**
 * The smallest WebSocket surface the SDK needs: the browser's WebSocket and the `ws` package both
 * provide it. Declared here so that the SDK compiles without the DOM library and without `ws` types.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly bufferedAmount: number;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** `ws` only: stop reading from the network (backpressure). Browsers have no equivalent. */
  pause?: () => void;
  resume?: () => void;
  /** `ws` only: drop the connection at once, without a close handshake. */
  terminate?: () => void;
}

/** `protocols`: the subprotocols to offer (graphql-ws needs `graphql-transport-ws`). */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

export const OPEN = 1;
