/**
 * Entry of `dist/tabchat-worker.js` (a classic script). Two hosts run it:
 *
 * - A SharedWorker (the normal case): one hub for every tab of this browser profile that runs
 *   the same build. Commands arrive over comlink, one `expose` per connecting port; events
 *   leave on the BroadcastChannel; see worker/runtime.ts for locks and diagnostics.
 * - Tabs, in browsers without SharedWorker: each tab using the leader transport loads this
 *   script with a `<script>` element and gets its hub link from the factory this file
 *   leaves on `globalThis`; the tab that wins the election runs the hub (worker/leader.ts).
 */
import * as Comlink from 'comlink';
import {
  BUILD,
  HUB_VERSION,
  LEADER_HOST_GLOBAL,
  WORKER_NAME,
  type LeaderHostFactory,
} from '../src/protocol/hub-protocol.js';
import { LeaderElection } from './leader.js';
import { createRuntime } from './runtime.js';

/** The bits of SharedWorkerGlobalScope we use (the DOM lib does not type worker scopes). */
interface SharedWorkerScope {
  name: string;
  onconnect: ((event: MessageEvent) => void) | null;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  addEventListener(type: 'unhandledrejection', listener: (event: PromiseRejectionEvent) => void): void;
}

const SharedWorkerScopeCtor = (globalThis as { SharedWorkerGlobalScope?: new () => unknown }).SharedWorkerGlobalScope;

if (typeof SharedWorkerScopeCtor === 'function' && globalThis instanceof SharedWorkerScopeCtor) {
  const scope = globalThis as unknown as SharedWorkerScope;
  const runtime = createRuntime(scope.name || WORKER_NAME, '[tabchat-worker]');
  scope.addEventListener('error', (event) => runtime.log.error('uncaught error:', event.error ?? event.message));
  scope.addEventListener('unhandledrejection', (event) => runtime.log.error('unhandled rejection:', event.reason));
  scope.onconnect = (event: MessageEvent) => {
    const port = event.ports[0];
    if (port) Comlink.expose(runtime.api(), port);
  };
} else if (typeof window !== 'undefined') {
  let election: LeaderElection | null = null;
  const factory: LeaderHostFactory = {
    build: BUILD,
    hubVersion: HUB_VERSION,
    link: (tabId, deadEpochs, log) => {
      election ??= new LeaderElection(tabId, log);
      return election.link(deadEpochs);
    },
  };
  (globalThis as Record<string, unknown>)[LEADER_HOST_GLOBAL] = factory;
}
