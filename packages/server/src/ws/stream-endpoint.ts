/** `ws /api/v1/stream`: SQL over WebSocket. A thin adapter between `ws` and StreamSession. */
import { StreamSession, type SessionDeps } from '../core/stream-session.ts';
import { describeError } from '../core/logger.ts';
import type { EndpointHandler } from './websocket-gateway.ts';
import { adaptSocket } from './socket-adapter.ts';

export const STREAM_PATH = '/api/v1/stream';

export function streamEndpoint(deps: SessionDeps): EndpointHandler {
  return (ws, _request, url) => {
    const session = new StreamSession(adaptSocket(ws), deps);
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        ws.close(1003, 'binary frames are not supported; send JSON text');
        return;
      }
      session.handleText(data.toString());
    });
    ws.on('close', () => session.close());
    session.open(url.searchParams.get('token') ?? undefined).catch((err) => {
      deps.logger.error('session failed to open', describeError(err));
      ws.close(1011, 'internal error');
    });
  };
}
