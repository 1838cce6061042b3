/**
 * Where GraphQL is served and how its WebSocket protocol closes: kept apart from the endpoints
 * themselves so that the server can route to them without loading graphql-js (see lazy-graphql.ts).
 */
import type { Close } from '../ws/websocket-gateway.ts';

export const GRAPHQL_PATH = '/graphql';
export const GRAPHQL_WS_PATH = '/graphql/ws';
/** graphql-ws close code for a refused or expired token. */
export const FORBIDDEN = 4403;
/** graphql-ws's close for a connection that sent no (accepted) connection_init in time. */
export const INIT_TIMEOUT_CLOSE: Close = [4408, 'Connection initialisation timeout'];
