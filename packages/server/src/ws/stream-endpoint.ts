/** `ws /api/v1/stream`: SQL over WebSocket. A thin adapter between `ws` and StreamSession. */
import { StreamSession, type SessionDeps } from '../core/stream-session.ts';
import { envelope, errorPayload } from '../core/envelope.ts';
import type { CheckedNow } from '../auth/authenticator.ts';
import type { EndpointHandler } from './websocket-gateway.ts';
import { wireSession } from './session-wiring.ts';
import { adaptSocket } from './socket-adapter.ts';
import { jsonParameter, numberParameter, streamFromUrl } from './url-stream.ts';

export const STREAM_PATH = '/api/v1/stream';

export const URL_TOKEN_DISABLED =
  'tokens in the URL are disabled on this server (allow_url_token is off); send an auth message instead';

export function streamEndpoint(deps: SessionDeps): EndpointHandler<CheckedNow> {
  return sessionEndpoint(deps, STREAM_PATH);
}

/** A resume token's `_data`, as the query string carries it. */
const resumeToken = (value: string): unknown => ({ _data: value });

/** The `watch` a collection's endpoint starts with: the payload's fields, as query parameters. */
const WATCH_PARAMETERS = {
  resumeAfter: resumeToken,
  startAfter: resumeToken,
  startAtOperationTime: numberParameter,
  fullDocument: (value: string) => value,
  pipeline: jsonParameter,
};

/**
 * A WebSocket endpoint served by a StreamSession: `/api/v1/stream`, and each collection's watch
 * endpoint (where `collectionOf` names the collection from the URL). A token in the URL is checked
 * ahead (see EndpointHandler): the connects that arrive together read their users' rows and their
 * tokens' revocations in a run of SQLite steps, each its own, in the tick that answers it; the
 * session acts on (and audits) its outcome as on its own check's.
 */
export function sessionEndpoint(
  deps: SessionDeps,
  endpoint: string,
  collectionOf?: (pathname: string) => string,
): EndpointHandler<CheckedNow> {
  // The socket is its own Admission, and the session its transport: the session reports authentication to it.
  const serve: EndpointHandler<CheckedNow> = (ws, request, target, _admission, checked) => {
    const urlToken = target.param('token') ?? undefined;
    const remoteAddress = request.socket.remoteAddress ?? '';
    if (urlToken !== undefined && !deps.config.allow_url_token) {
      deps.audit?.record({
        event: 'auth.failure',
        ip: remoteAddress,
        endpoint,
        details: { code: 'AUTH_FAILED', reason: 'token in URL refused' },
      });
      ws.send(envelope('auth_error', errorPayload('AUTH_FAILED', URL_TOKEN_DISABLED)));
      ws.close(1008, 'token in URL not allowed');
      return;
    }
    const collection = collectionOf?.(target.pathname);
    const startWith =
      collection === undefined ? undefined : streamFromUrl(target.url, 'watch', collection, WATCH_PARAMETERS);
    const session = new StreamSession(adaptSocket(ws), deps, {
      endpoint,
      remoteAddress,
      ...(collection !== undefined ? { collection } : {}),
      ...(startWith !== undefined ? { startWith } : {}),
    });
    wireSession(ws, session, urlToken, deps.logger, checked);
  };
  serve.ahead = (_request, target) => {
    const urlToken = target.param('token');
    if (urlToken === null || !deps.config.allow_url_token || !deps.config.require_authentication) {
      return undefined;
    }
    return deps.authenticator.checkNow(urlToken);
  };
  return serve;
}
