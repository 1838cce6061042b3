/** Adapts a flow-controlled `ws` WebSocket to the transport interface the sessions use. */
import type { WebSocket } from 'ws';
import type { SessionSocket } from '../core/stream-session.ts';
import type { Admission } from './connection-admission.ts';
import type { FlowControlledWebSocket } from './flow-controlled-socket.ts';

export function adaptSocket(socket: WebSocket, admission?: Admission): SessionSocket {
  // The gateway creates every socket as a FlowControlledWebSocket.
  const ws = socket as FlowControlledWebSocket;
  return {
    send(text) {
      if (ws.readyState === ws.OPEN) ws.send(text);
    },
    congested: () => ws.congested(),
    bufferedAmount: () => ws.bufferedAmount,
    maxBuffered: ws.maxBuffered,
    fits: (bytes) => ws.fits(bytes),
    room: (bytes) => ws.room(bytes),
    drained: () => ws.drained(),
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
    authenticated() {
      admission?.authenticated();
    },
  };
}
