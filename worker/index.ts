/**
 * Entry of `dist/tabchat-worker.js` (a classic script). It detects its host:
 *
 * - A SharedWorker (the normal case): one hub for every tab of this browser profile that runs
 *   the same build. Commands arrive over comlink, one `expose` per connecting port; events
 *   leave on the BroadcastChannel; see worker/runtime.ts for locks and diagnostics.
 * - A dedicated worker: the hub of the leader tab, in browsers without SharedWorker
 *   (worker/leader-host.ts); the elected tab starts it from this same script.
 * - A page: each tab using the leader transport loads this script with a `<script>` element
 *   and gets its hub link from the factory this file leaves on `globalThis`; it takes part
 *   in the election and, when elected, starts the dedicated worker (worker/leader.ts).
 */
import * as Comlink from 'comlink';
import {
  BUILD,
  HUB_VERSION,
  LEADER_HOST_GLOBAL,
  WORKER_NAME,
  type HubHello,
  type LeaderHostFactory,
} from '../src/protocol/hub-protocol.js';
import { LeaderElection } from './leader.js';
import { hostLeader, type DedicatedWorkerScope } from './leader-host.js';
import { createRuntime } from './runtime.js';

/** The bits of SharedWorkerGlobalScope we use (the DOM lib does not type worker scopes). */
interface SharedWorkerScope {
  name: string;
  onconnect: ((event: MessageEvent) => void) | null;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  addEventListener(type: 'unhandledrejection', listener: (event: PromiseRejectionEvent) => void): void;
}

/** Whether this script runs in the global scope named `scope` (`SharedWorkerGlobalScope`, …). */
function runsIn(scope: string): boolean {
  const ctor = (globalThis as Record<string, unknown>)[scope];
  return typeof ctor === 'function' && globalThis instanceof ctor;
}

if (runsIn('SharedWorkerGlobalScope')) {
  const scope = globalThis as unknown as SharedWorkerScope;
  const runtime = createRuntime(scope.name || WORKER_NAME, '[tabchat-worker]');
  scope.addEventListener('error', (event) => runtime.log.error('uncaught error:', event.error ?? event.message));
  scope.addEventListener('unhandledrejection', (event) => runtime.log.error('unhandled rejection:', event.reason));
  scope.onconnect = (event: MessageEvent) => {
    const port = event.ports[0];
    if (!port) return;
    Comlink.expose(runtime.api(port), port);
    // Tells the tab this hub's build before any answer: it may post commands behind its register.
    port.postMessage({ type: 'tabchat-hello', build: BUILD, hubVersion: HUB_VERSION } satisfies HubHello);
  };
} else if (runsIn('DedicatedWorkerGlobalScope')) {
  hostLeader(globalThis as unknown as DedicatedWorkerScope);
} else if (typeof window !== 'undefined') {
  // This script's own URL: the leader starts it again as its dedicated worker.
  const url = (document.currentScript as HTMLScriptElement | null)?.src ?? '';
  let election: LeaderElection | null = null;
  const factory: LeaderHostFactory = {
    build: BUILD,
    hubVersion: HUB_VERSION,
    link: (tabId, deadEpochs, log) => {
      election ??= new LeaderElection(tabId, log, url);
      return election.link(deadEpochs);
    },
  };
  (globalThis as Record<string, unknown>)[LEADER_HOST_GLOBAL] = factory;
}
