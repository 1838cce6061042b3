/** Connects an open `ws` socket to a text-message session: the part every session endpoint shares. */
import type { RawData, WebSocket } from 'ws';
import { describeError, type Logger } from '../core/logger.ts';
import type { CheckedNow } from '../auth/authenticator.ts';
import type { FlowControlledWebSocket } from './flow-controlled-socket.ts';

export interface TextSession {
  handleText(text: string): void;
  close(): void;
  /**
   * Starts the session, with the token from the URL when the client gave one (and that token's check,
   * when the gateway did it ahead in this tick).
   */
  open(urlToken: string | undefined, checked?: CheckedNow): Promise<void>;
}

// Listeners every socket shares (`ws` calls them with the socket as `this`; the session is kept on the
// socket): two closures per connection cost it ~150 bytes.
function onMessage(this: WebSocket, data: RawData, isBinary: boolean): void {
  // A socket being closed (idle, shutdown, overflow) takes no new requests.
  if (this.readyState !== this.OPEN) return;
  if (isBinary) {
    this.close(1003, 'binary frames are not supported; send JSON text');
    return;
  }
  ((this as FlowControlledWebSocket).served as TextSession).handleText(data.toString());
}

function onClose(this: WebSocket): void {
  ((this as FlowControlledWebSocket).served as TextSession).close();
}

/** Binary frames close with 1003; a session that fails to start closes with 1011. */
export function wireSession(
  ws: WebSocket,
  session: TextSession,
  urlToken: string | undefined,
  logger: Logger,
  checked?: CheckedNow,
): void {
  // The gateway creates every socket as a FlowControlledWebSocket.
  (ws as FlowControlledWebSocket).served = session;
  ws.on('message', onMessage);
  ws.on('close', onClose);
  session.open(urlToken, checked).catch((err) => {
    logger.error('session failed to open', describeError(err));
    ws.close(1011, 'internal error');
  });
}
