/** The transport the sessions use, for a socket of the gateway's. */
import type { WebSocket } from 'ws';
import type { SessionSocket } from '../core/stream-session.ts';
import type { FlowControlledWebSocket } from './flow-controlled-socket.ts';

/**
 * The socket itself: a FlowControlledWebSocket implements the sessions' transport interface. (An
 * adapter object per connection between the two cost every idle connection 32-40 bytes, and every
 * message sent a call more.)
 */
export function adaptSocket(socket: WebSocket): SessionSocket {
  // The gateway creates every socket as a FlowControlledWebSocket.
  return socket as FlowControlledWebSocket;
}
