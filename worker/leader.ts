/**
 * Leader-tab fallback for browsers without SharedWorker (older Chrome for Android, Samsung
 * Internet, old WebViews), or when `transport: 'leader'` is forced. This code runs in tabs:
 * each tab that uses the leader transport loads `tabchat-worker.js` with a `<script>`
 * element (the tab's hub connection does it), so the common SharedWorker path keeps a small tab
 * script and only these browsers pay for it.
 *
 * - Election: every such tab queues on the Web Lock `tabchat:leader:<build>`; the holder is
 *   the leader. It starts the hub runtime in the page (worker/runtime.ts): the session
 *   engine, the socket, the tab registry, the event channel and the life lock
 *   `tabchat:worker:<epoch>`, exactly as in the SharedWorker.
 * - Commands: followers send them on the BroadcastChannel `tabchat:rpc:<build>`; the leader
 *   answers on the same channel, addressed by tab id. The leader's own chats call its hub
 *   directly. Events use the same envelope channel as the worker.
 * - Handover: when the leader dies its life lock is released; followers see it exactly like
 *   a dead worker (they reject pending calls with 9008 and register again), while the next
 *   tab in the lock queue becomes leader, starts a runtime and adopts the dead run's
 *   instances (orphans of the old leader tab are released, live tabs resume theirs).
 *
 * Web Locks are required: without them two tabs could both lead and kick each other.
 */
import { CODE } from '../src/protocol/codes.js';
import { ChatError, asChatError } from '../src/core/errors.js';
import type { Logger } from '../src/protocol/data.js';
import {
  LEADER_LOCK,
  RPC_CHANNEL,
  WORKER_NAME,
  webLocks,
  workerLockName,
  type HubApi,
  type HubLink,
  type RpcMessage,
  type RpcMethod,
} from '../src/protocol/hub-protocol.js';
import { PendingMap } from '../src/core/pending.js';
import { createRuntime } from './runtime.js';

/** Upper bound of one follower command on the channel (the caller's own timeout is shorter). */
const RPC_TIMEOUT_MS = 30_000;

type Role =
  | { name: 'idle' }
  | { name: 'follower' }
  | { name: 'starting'; started: Promise<HubApi> }
  | { name: 'leader'; api: HubApi; epoch: string }
  | { name: 'failed'; error: ChatError };

/** The page's part in the leader election (one per page; the lock is per build). */
export class LeaderElection {
  private role: Role = { name: 'idle' };
  private channel: BroadcastChannel | null = null;
  /** Requests sent to the leader, by request id. */
  private readonly pending = new PendingMap<string, unknown>();
  /** Called on every leader announcement, and when this tab becomes leader. */
  private readonly waiters = new Set<() => void>();
  /** Epoch of the last leader that announced itself. */
  private announced: string | null = null;
  private nextId = 1;

  constructor(
    private readonly tabId: string,
    private readonly log: Logger,
  ) {}

  /**
   * A link to the current leader's hub (this tab's own hub when it leads). Joins the
   * election on first use. Waits until a leader is known; the caller bounds the wait.
   * @param deadEpochs - leaders known dead; their late announcements are ignored
   */
  async link(deadEpochs: ReadonlySet<string>): Promise<HubLink> {
    this.join();
    for (;;) {
      const role = this.role;
      if (role.name === 'failed') throw role.error;
      if (role.name === 'leader') return this.localLink(role.api);
      if (role.name === 'starting') return this.localLink(await role.started);
      if (this.announced && !deadEpochs.has(this.announced)) return this.remoteLink(this.announced);
      await new Promise<void>((resolve) => {
        const waiter = () => {
          this.waiters.delete(waiter);
          resolve();
        };
        this.waiters.add(waiter);
        this.post({ kind: 'who' });
      });
    }
  }

  private join(): void {
    if (this.role.name !== 'idle') return;
    const manager = webLocks();
    if (!manager) {
      this.role = {
        name: 'failed',
        error: new ChatError(CODE.TRANSPORT_UNAVAILABLE, 'the leader-tab fallback needs Web Locks (a secure context: https or localhost)'),
      };
      return;
    }
    this.role = { name: 'follower' };
    this.listen();
    manager.request(LEADER_LOCK, () => this.lead()).catch((err: unknown) => {
      this.role = { name: 'failed', error: new ChatError(CODE.WORKER_GONE, `leader election failed: ${asChatError(err).message}`) };
      this.wake();
    });
  }

  /** Holding the leader lock: start the hub here. Returns only when leading is impossible. */
  private async lead(): Promise<void> {
    const started = (async () => {
      const runtime = createRuntime(`leader:${WORKER_NAME}`, '[tabchat-leader]');
      await runtime.ready;
      return runtime;
    })();
    const startedApi = started.then((runtime) => runtime.api());
    startedApi.catch(() => {}); // reported below; link() callers see it through the role
    this.role = { name: 'starting', started: startedApi };
    this.wake();
    let runtime;
    try {
      runtime = await started;
    } catch (err) {
      // Give the lock to the next tab: maybe it can start one.
      const error = asChatError(err);
      this.log.error(`cannot lead: ${error.message}`);
      this.role = { name: 'failed', error };
      this.wake();
      return;
    }
    const api = runtime.api();
    this.role = { name: 'leader', api, epoch: runtime.epoch };
    this.announced = runtime.epoch;
    this.post({ kind: 'leader', epoch: runtime.epoch });
    this.wake();
    this.log.info(`this tab leads (epoch ${runtime.epoch})`);
    // Lead until the page dies; the browser then releases the lock for the next tab.
    await new Promise<never>(() => {});
  }

  private listen(): void {
    if (this.channel) return;
    this.channel = new BroadcastChannel(RPC_CHANNEL);
    this.channel.onmessage = (event: MessageEvent) => this.channelOnMessage(event.data as RpcMessage);
  }

  private post(message: RpcMessage): void {
    this.channel?.postMessage(message);
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private channelOnMessage(message: RpcMessage): void {
    if (typeof message !== 'object' || message === null) return;
    const role = this.role;
    switch (message.kind) {
      case 'who':
        if (role.name === 'leader') this.post({ kind: 'leader', epoch: role.epoch });
        return;
      case 'leader':
        this.announced = message.epoch;
        this.wake();
        return;
      case 'req':
        // Only requests meant for this run: a follower that has not yet noticed the death of
        // the previous leader still addresses it, and an answer from here would cross its
        // take-over (a resync register answered by the new hub starts a second take-over
        // of the same sessions; a send would be refused as not logged in). Ignored, the
        // request is rejected 9008 when the follower sees that leader's lock released, and
        // asked again of this one.
        if (role.name === 'leader' && message.epoch === role.epoch) void this.serve(role, message);
        return;
      case 'res':
        if (message.to === this.tabId) this.pending.take(message.id)?.resolve(message.value);
        return;
    }
  }

  private async serve(role: { api: HubApi; epoch: string }, req: { id: string; from: string; method: RpcMethod; args: unknown[] }): Promise<void> {
    const method = role.api[req.method] as ((...args: unknown[]) => Promise<unknown>) | undefined;
    if (typeof method !== 'function' || !Array.isArray(req.args)) return;
    const value = await method(...req.args);
    this.post({ kind: 'res', id: req.id, to: req.from, epoch: role.epoch, value });
  }

  private localLink(api: HubApi): HubLink {
    return { api, failed: new Promise<never>(() => {}), close: () => {} };
  }

  /** Commands to the leader over the channel; `failed` rejects when the leader's life lock is released. */
  private remoteLink(epoch: string): HubLink {
    const requests = new Set<string>();
    const watch = new AbortController();
    const failed = new Promise<never>((_, reject) => {
      // join() found Web Locks, or there would be no leader to link to.
      webLocks()
        ?.request(workerLockName(epoch), { mode: 'shared', signal: watch.signal }, () => {
          reject(new ChatError(CODE.WORKER_GONE, `the leader tab (epoch ${epoch}) went away`));
        })
        .catch(() => {}); // aborted by close()
    });
    failed.catch(() => {}); // only raced by the caller
    const send = (method: RpcMethod, args: unknown[], timeoutMs = RPC_TIMEOUT_MS): Promise<unknown> => {
      const id = `${this.tabId}:${this.nextId++}`;
      const answer = this.pending.wait(id, timeoutMs, `the leader tab did not answer ${method} within ${timeoutMs} ms`);
      const done = () => requests.delete(id);
      answer.then(done, done);
      requests.add(id);
      this.post({ kind: 'req', id, from: this.tabId, epoch, method, args });
      return answer;
    };
    const api: HubApi = {
      register: (req) => send('register', [req]) as ReturnType<HubApi['register']>,
      login: (tabId, spec, creds) => send('login', [tabId, spec, creds]) as ReturnType<HubApi['login']>,
      // A send may wait for the server as long as the tab's send timeout allows.
      sendText: (tabId, chatId, message, timeoutMs) =>
        send('sendText', [tabId, chatId, message, timeoutMs], Math.max(RPC_TIMEOUT_MS, timeoutMs + RPC_TIMEOUT_MS)) as ReturnType<HubApi['sendText']>,
      logout: (tabId, chatId, allTabs) => send('logout', [tabId, chatId, allTabs]) as ReturnType<HubApi['logout']>,
      forget: (tabId, chatId) => send('forget', [tabId, chatId]) as ReturnType<HubApi['forget']>,
      bye: (tabId) => send('bye', [tabId]) as ReturnType<HubApi['bye']>,
      getState: () => send('getState', []) as ReturnType<HubApi['getState']>,
    };
    const close = () => {
      watch.abort();
      const error = new ChatError(CODE.WORKER_GONE, 'the leader tab went away');
      for (const id of [...requests]) this.pending.take(id)?.reject(error);
      requests.clear();
    };
    return { api, failed, close };
  }
}
