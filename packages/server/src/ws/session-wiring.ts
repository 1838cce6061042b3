/** Connects an open `ws` socket to a text-message session: the part every session endpoint shares. */
import type { WebSocket } from 'ws';
import { describeError, type Logger } from '../core/logger.ts';

export interface TextSession {
  handleText(text: string): void;
  close(): void;
  /** Starts the session, with the token from the URL when the client gave one. */
  open(urlToken: string | undefined): Promise<void>;
}

/** Binary frames close with 1003; a session that fails to start closes with 1011. */
export function wireSession(
  ws: WebSocket,
  session: TextSession,
  urlToken: string | undefined,
  logger: Logger,
): void {
  ws.on('message', (data, isBinary) => {
    // A socket being closed (idle, shutdown, overflow) takes no new requests.
    if (ws.readyState !== ws.OPEN) return;
    if (isBinary) {
      ws.close(1003, 'binary frames are not supported; send JSON text');
      return;
    }
    session.handleText(data.toString());
  });
  ws.on('close', () => session.close());
  session.open(urlToken).catch((err) => {
    logger.error('session failed to open', describeError(err));
    ws.close(1011, 'internal error');
  });
}
