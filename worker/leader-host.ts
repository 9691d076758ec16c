/**
 * The leader tab's hub, in a dedicated worker the elected tab starts from the same
 * `tabchat-worker.js` (worker/leader.ts starts it; worker/index.ts detects this host). It
 * runs the same runtime as the SharedWorker (worker/runtime.ts: engines and socket, tab
 * registry, outbox in IndexedDB, Web Locks, event channel) and answers the followers' RPC on
 * the BroadcastChannel itself, so the leader page's main thread is on no follower's path: a
 * dialog, a long task or a debugger pause in that page delays nothing for the other tabs.
 *
 * - The leader page's own chats reach the hub with comlink over a MessagePort the page
 *   sends in its first message, exactly as a tab talks to the SharedWorker.
 * - Followers: `who` → `leader` (announced once the hub holds its life lock), `req` → `res`
 *   for this run's epoch only (a request meant for a dead leader stays unanswered; see
 *   worker/leader.ts), `ping` → `pong` at once (how followers tell a stalled hub from a slow
 *   command, worker/leader-link.ts).
 * - The page forwards its `online` / `offline` events (a dedicated worker may not get them
 *   from the browser); they reach the runtime as events on this worker's global.
 * - The worker dies with its page (close, crash), or when the page terminates it to hand
 *   the leadership over (freeze, pagehide, hidden while a visible tab waits): its life lock
 *   is released, the sockets close without logging out, and the next leader resumes every
 *   live tab's session.
 */
import * as Comlink from 'comlink';
import {
  BUILD,
  RPC_CHANNEL,
  RPC_HUB_CHANNEL,
  WORKER_NAME,
  postOnce,
  rpcTabChannel,
  type HubApi,
  type RpcMessage,
} from '../src/protocol/hub-protocol.js';
import { createRuntime } from './runtime.js';

/** Messages between the leader page and its dedicated worker (`postMessage` on the Worker). */
export type LeaderWorkerMessage =
  /** Page → worker, with a MessagePort: the comlink endpoint of the page's own chats. */
  | { type: 'port' }
  /** Page → worker: the page's `online` / `offline` event. */
  | { type: 'network'; online: boolean }
  /** Worker → page: the hub holds its life lock and serves; `build` lets the page check the script it started. */
  | { type: 'ready'; epoch: string; build: string };

/** The bits of DedicatedWorkerGlobalScope used here (the DOM lib does not type worker scopes). */
export interface DedicatedWorkerScope {
  onmessage: ((event: MessageEvent) => void) | null;
  postMessage(message: LeaderWorkerMessage): void;
  dispatchEvent(event: Event): boolean;
  addEventListener(type: 'error', listener: (event: ErrorEvent) => void): void;
  addEventListener(type: 'unhandledrejection', listener: (event: PromiseRejectionEvent) => void): void;
}

/** Run the leader's hub in this dedicated worker. */
export function hostLeader(scope: DedicatedWorkerScope): void {
  const runtime = createRuntime(`leader:${WORKER_NAME}`, '[tabchat-leader]');
  scope.addEventListener('error', (event) => runtime.log.error('uncaught error:', event.error ?? event.message));
  scope.addEventListener('unhandledrejection', (event) => runtime.log.error('unhandled rejection:', event.reason));
  const api = runtime.api();
  const epoch = runtime.epoch;

  scope.onmessage = (event: MessageEvent) => {
    const message = event.data as LeaderWorkerMessage | null;
    if (message?.type === 'port' && event.ports[0]) Comlink.expose(runtime.api(event.ports[0]), event.ports[0]);
    else if (message?.type === 'network') scope.dispatchEvent(new Event(message.online ? 'online' : 'offline'));
  };

  const channel = new BroadcastChannel(RPC_CHANNEL);
  /** The followers' commands: only hubs listen here (answers go on each follower's own channel). */
  const commands = new BroadcastChannel(RPC_HUB_CHANNEL);
  let serving = false;
  const post = (message: RpcMessage) => channel.postMessage(message);
  const answer = (message: RpcMessage & { to: string }) => postOnce(rpcTabChannel(message.to), message);
  const serve = async (req: { id: string; from: string; method: keyof HubApi; args: unknown[] }) => {
    const method = api[req.method] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof method !== 'function' || !Array.isArray(req.args)) return;
    const value = await method(...req.args);
    answer({ kind: 'res', id: req.id, to: req.from, epoch, value });
  };
  channel.onmessage = (event: MessageEvent) => {
    const message = event.data as RpcMessage | null;
    if (serving && typeof message === 'object' && message?.kind === 'who') post({ kind: 'leader', epoch });
  };
  commands.onmessage = (event: MessageEvent) => {
    const message = event.data as RpcMessage | null;
    if (typeof message !== 'object' || message === null) return;
    switch (message.kind) {
      case 'req':
        // Only requests meant for this run: a follower that has not yet noticed the death of
        // the previous leader still addresses it, and an answer from here would cross its
        // take-over (a resync register answered by the new hub starts a second take-over
        // of the same sessions; a send would be refused as not logged in). Ignored, the
        // request is rejected 9008 when the follower sees that leader's lock released, and
        // asked again of this one.
        if (message.epoch === epoch) void serve(message);
        return;
      case 'ping':
        if (message.epoch === epoch) answer({ kind: 'pong', id: message.id, to: message.from, epoch });
        return;
      default:
        return;
    }
  };

  void runtime.ready.then(() => {
    serving = true;
    scope.postMessage({ type: 'ready', epoch, build: BUILD });
    post({ kind: 'leader', epoch });
    runtime.log.info(`leader hub serving (epoch ${epoch})`);
  });
}
