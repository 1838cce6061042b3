/** Browsers (and runtimes with a global WebSocket): the native class. `ws` is never part of this build. */
import type { WebSocketConstructor } from './socket.ts';

export const defaultWebSocket: WebSocketConstructor | undefined = (
  globalThis as { WebSocket?: WebSocketConstructor }
).WebSocket;
