/** Node: the `ws` package. Selected through the package's `#websocket` import when not bundling for a browser. */
import WebSocket from 'ws';
import type { WebSocketConstructor, WebSocketLike } from './socket.ts';

class NodeWebSocket extends WebSocket {
  constructor(url: string, protocols?: string | string[]) {
    // Compression as the server negotiates it; messages under 1 KiB are never compressed by either side.
    super(url, protocols ?? [], {
      perMessageDeflate: { clientNoContextTakeover: true, serverNoContextTakeover: true },
    });
  }
}

export const defaultWebSocket: WebSocketConstructor | undefined = NodeWebSocket as unknown as new (
  url: string,
  protocols?: string | string[],
) => WebSocketLike;
