/** Adapts a `ws` WebSocket to the transport interface the sessions use. */
import type { WebSocket } from 'ws';
import type { SessionSocket } from '../core/stream-session.ts';
import type { Admission } from './connection-admission.ts';

/** Unsent bytes above which a producer should wait before sending more. */
export const HIGH_WATER_MARK = 1024 * 1024;

export function adaptSocket(ws: WebSocket, admission?: Admission): SessionSocket {
  let waiters: (() => void)[] = [];
  // Runs as each frame is handed to the OS, and on close: wakes producers once the buffer has room.
  const wake = (): void => {
    if (waiters.length === 0) return;
    if (ws.bufferedAmount >= HIGH_WATER_MARK && ws.readyState === ws.OPEN) return;
    const ready = waiters;
    waiters = [];
    for (const resolve of ready) resolve();
  };
  ws.on('close', wake);
  return {
    send(text) {
      if (ws.readyState !== ws.OPEN) return;
      // A write callback costs a microsecond or so per frame; it is only needed on a frame that may
      // fill the buffer (a producer will wait for it). Three bytes a character bounds UTF-8.
      ws.send(text, ws.bufferedAmount + text.length * 3 >= HIGH_WATER_MARK ? wake : undefined);
    },
    congested: () => ws.bufferedAmount >= HIGH_WATER_MARK,
    bufferedAmount: () => ws.bufferedAmount,
    drained() {
      if (ws.bufferedAmount < HIGH_WATER_MARK || ws.readyState !== ws.OPEN) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    close(code, reason) {
      if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
    },
    authenticated() {
      admission?.authenticated();
    },
  };
}
