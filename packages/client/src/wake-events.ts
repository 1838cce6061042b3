/**
 * The browser's hints that a connection is worth trying right now: the `online` event (the network is
 * back) and the page becoming visible again (a laptop waking, a tab brought forward, where timers were
 * throttled and the socket may have died unnoticed). Outside a browser there are none.
 */

export type WakeReason = 'online' | 'visible';

interface EventTargetLike {
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}

interface DocumentLike extends EventTargetLike {
  visibilityState?: string;
}

/** Calls `onWake` on every such hint; returns the function that stops listening. */
export function listenForWake(onWake: (reason: WakeReason) => void): () => void {
  const target = globalThis as EventTargetLike & { document?: DocumentLike };
  const doc = target.document;
  if (typeof target.addEventListener !== 'function') return () => {};
  const online = (): void => onWake('online');
  const visibility = (): void => {
    if (doc?.visibilityState === 'visible') onWake('visible');
  };
  target.addEventListener('online', online);
  doc?.addEventListener?.('visibilitychange', visibility);
  return () => {
    target.removeEventListener?.('online', online);
    doc?.removeEventListener?.('visibilitychange', visibility);
  };
}
