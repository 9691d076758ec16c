/**
 * Browser `online` / `offline` events for the hub's host (the SharedWorker's global, or the
 * leader tab's window): `offline` closes the sockets and makes them wait; `online` reconnects
 * at once instead of after the backoff (SessionEngine.setOnline). Chromium fired neither event
 * in a SharedWorker in our measurements (its `navigator.onLine` did change), so there the
 * reconnect backoff and the heartbeat remain what detects a dead network.
 */

/** What the host's global must offer (a Window, a WorkerGlobalScope, or any EventTarget in tests). */
export interface NetworkEventSource {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

/** Call `onChange(false)` on `offline`, `onChange(true)` on `online`; returns the unsubscribe function. */
export function watchNetwork(source: NetworkEventSource, onChange: (online: boolean) => void): () => void {
  const offline = () => onChange(false);
  const online = () => onChange(true);
  source.addEventListener('offline', offline);
  source.addEventListener('online', online);
  return () => {
    source.removeEventListener('offline', offline);
    source.removeEventListener('online', online);
  };
}
