/**
 * Leader-tab fallback for browsers without SharedWorker (older Chrome for Android, Samsung
 * Internet, old WebViews), or when `transport: 'leader'` is forced: the page side. This
 * code runs in tabs: each tab that uses the leader transport loads `tabchat-worker.js` with
 * a `<script>` element (the tab's hub connection does it), so the common SharedWorker path
 * keeps a small tab script and only these browsers pay for it.
 *
 * - Election: every such tab that can run queues on the Web Lock `tabchat:leader:<build>`;
 *   the holder is the leader. It starts a dedicated worker from the same script
 *   (worker/leader-host.ts), which runs the hub (socket, tab registry, outbox, events, life
 *   lock `tabchat:worker:<epoch>`) and answers the followers itself. The leader page's own
 *   chats talk to that worker with comlink, like a tab to the SharedWorker.
 * - Who holds the lock: the page, not its worker. The election is about pages (which tab
 *   can run, which is visible: page facts, and a page's lock shows its client id in
 *   `navigator.locks.query()`), only the elected page pays for a worker, and the worker dies
 *   with its page anyway (close, crash), releasing its life lock together with the page's
 *   leader lock. A page paused in a debugger or a dialog keeps its locks, and its worker
 *   keeps serving: nothing needs to move.
 * - Leadership follows the tabs that run: the leader hands over (terminates its worker, so
 *   the sockets close without logging out, and lets the lock go) on `freeze`, on `pagehide`
 *   into the bfcache, and on `visibilitychange` to hidden when a visible tab waits to lead;
 *   on `pagehide` of a page that unloads it lets the lock go and leaves the worker to the
 *   browser (it handles the page's goodbye first). A frozen or cached page also leaves the
 *   queue, and joins it again on `resume` / `pageshow`. A hidden tab granted the lock while
 *   a visible tab waits passes it on. Every visible candidate holds the shared lock
 *   `tabchat:visible:<build>` to be found.
 * - Handover, voluntary or not, is the dead-worker path: followers see the old run's life
 *   lock released, reject pending calls with 9008 and register with the next leader, which
 *   resumes their sessions with the tokens they offer (same InstId, no kick, no
 *   SDK_NOT_READY) and releases the instances nobody claims (orphans of the old run). A page
 *   that comes back from a freeze does the same as a follower: ready without a new login.
 * - Followers talk to the leader's hub over the BroadcastChannel `tabchat:rpc:<build>`
 *   (worker/leader-link.ts), which also notices a hub that stops answering (9009).
 *
 * Web Locks are required: without them two tabs could both lead and kick each other.
 */
import * as Comlink from 'comlink';
import { CODE } from '../src/protocol/codes.js';
import { ChatError, asChatError } from '../src/core/errors.js';
import type { Logger } from '../src/protocol/data.js';
import {
  BUILD,
  LEADER_LOCK,
  RPC_CHANNEL,
  RPC_HUB_CHANNEL,
  postOnce,
  rpcTabChannel,
  VISIBLE_LOCK,
  WORKER_NAME,
  webLocks,
  workerLockName,
  type HubApi,
  type HubLink,
  type RpcMessage,
} from '../src/protocol/hub-protocol.js';
import type { LeaderWorkerMessage } from './leader-host.js';
import { RemoteLink } from './leader-link.js';

/** How long joining the election may wait for the copy of this script (then the worker loads it from its URL). */
const COPY_TIMEOUT_MS = 5_000;
/** While no leader is known, `who` is asked again this often (the caller bounds the whole wait). */
const WHO_RETRY_MS = 500;

/** One leader run of this page: its dedicated worker and the comlink proxy of its own chats. */
interface Run {
  /** Undefined until one could be constructed. */
  worker: Worker | undefined;
  /** Kept referenced for the run's life: a proxy collected by GC would release the worker's port (comlink #692). */
  api: HubApi;
  /** The page's end of that port: the hub also posts the envelopes of this page's chats on it. */
  port: MessagePort | undefined;
  /** The worker's epoch once its hub serves; rejects if the worker cannot start, or the run stopped first. */
  started: Promise<string>;
  /**
   * End the run: terminate the worker (unless `terminate` is false: the page unloads and the
   * browser ends it, after it has handled what the page said last) and end the leader lock's
   * callback (the lock goes to the next tab in the queue).
   */
  stop(terminate?: boolean): void;
  /** Told once this page has ended the run (after {@link LeaderElection} left the role). */
  readonly goneListeners: Set<(why: string) => void>;
}

type Role =
  | { name: 'idle' }
  /** Queued for the leader lock; `abort` withdraws the request. */
  | { name: 'candidate'; abort: AbortController }
  | { name: 'leading'; run: Run }
  /** Frozen or in the bfcache: not queued until the page runs again. */
  | { name: 'suspended' }
  | { name: 'failed'; error: ChatError };

/** The page's part in the leader election (one per page; the lock is per build). */
export class LeaderElection {
  private role: Role = { name: 'idle' };
  private locks: LockManager | null = null;
  private channel: BroadcastChannel | null = null;
  /** Called on every leader announcement and role change. */
  private readonly waiters = new Set<() => void>();
  /** Epoch of the last leader that announced itself. */
  private announced: string | null = null;
  /** Follower links of this page, which get the answers addressed to it. */
  private readonly links = new Set<RemoteLink>();
  /** A `blob:` URL of this script's text, fetched on joining (null until then, or if that failed). */
  private copy: string | null = null;
  /** Settles when {@link copy} is known. */
  private copied: Promise<void> = Promise.resolve();
  /** Ends the hold of {@link VISIBLE_LOCK} (null while not held). */
  private visibleRelease: (() => void) | null = null;
  private nextId = 1;

  /**
   * @param url - URL of `tabchat-worker.js` (this script), which the leader starts as its dedicated worker
   */
  constructor(
    private readonly tabId: string,
    private readonly log: Logger,
    private readonly url: string,
  ) {}

  /**
   * A link to the current leader's hub (this tab's own worker when it leads). Joins the
   * election on first use. Waits until a leader is known; the caller bounds the wait.
   * @param deadEpochs - leaders known dead; their late announcements are ignored
   */
  async link(deadEpochs: ReadonlySet<string>): Promise<HubLink> {
    this.join();
    for (;;) {
      const role = this.role;
      if (role.name === 'failed') throw role.error;
      if (role.name === 'leading') {
        let epoch: string;
        try {
          epoch = await role.run.started;
        } catch (err) {
          if (this.role === role) throw err;
          continue; // the run stopped before it served (handover): find the next leader
        }
        if (this.role === role && !deadEpochs.has(epoch)) return this.localLink(role.run);
      } else if (this.announced && !deadEpochs.has(this.announced)) {
        return this.remoteLink(this.announced);
      }
      await new Promise<void>((resolve) => {
        // Ask again now and then: an announcement can be missed (posted while this page was
        // frozen, or before this page listened), and a leader answers `who` at once.
        const retry = setTimeout(() => waiter(), WHO_RETRY_MS);
        const waiter = () => {
          clearTimeout(retry);
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
    const locks = webLocks();
    if (!locks) {
      this.role = {
        name: 'failed',
        error: new ChatError(CODE.TRANSPORT_UNAVAILABLE, 'the leader-tab fallback needs Web Locks (a secure context: https or localhost)'),
      };
      return;
    }
    this.locks = locks;
    this.channel = new BroadcastChannel(RPC_CHANNEL);
    this.channel.onmessage = (event: MessageEvent) => this.channelOnMessage(event.data as RpcMessage);
    // Answers for this tab only (the hub posts them on this tab's own channel).
    const answers = new BroadcastChannel(rpcTabChannel(this.tabId));
    answers.onmessage = (event: MessageEvent) => this.channelOnMessage(event.data as RpcMessage);
    // Page Lifecycle: a frozen page neither leads nor waits to lead.
    document.addEventListener('freeze', () => this.suspend('the page is frozen'));
    document.addEventListener('resume', () => this.unsuspend());
    addEventListener('pagehide', (event) => {
      if ((event as PageTransitionEvent).persisted) this.suspend('the page enters the bfcache');
      else this.suspend('the page unloads', true);
    });
    addEventListener('pageshow', (event) => { if ((event as PageTransitionEvent).persisted) this.unsuspend(); });
    document.addEventListener('visibilitychange', () => this.visibilityChanged());
    addEventListener('online', () => this.forwardNetwork(true));
    addEventListener('offline', () => this.forwardNetwork(false));
    if (document.visibilityState !== 'hidden') this.holdVisible();
    this.copied = this.keepCopy();
    this.queue();
  }

  /**
   * Keep this script's text in memory (it was just loaded: normally a cache hit), to start a
   * worker from it even if its server is down by then. Bounded: the election waits for it.
   */
  private async keepCopy(): Promise<void> {
    if (!this.url) return;
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), COPY_TIMEOUT_MS);
    try {
      const response = await fetch(this.url, { signal: abort.signal });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.copy = URL.createObjectURL(new Blob([await response.text()], { type: 'text/javascript' }));
    } catch (err) {
      this.log.warn(`cannot keep a copy of ${this.url}; the leader worker will load it again:`, asChatError(err).message);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Queue for the leader lock (at the back of the queue). */
  private queue(): void {
    const locks = this.locks;
    if (!locks) return;
    const abort = new AbortController();
    this.role = { name: 'candidate', abort };
    locks.request(LEADER_LOCK, { signal: abort.signal }, () => this.lead(abort)).catch((err: unknown) => {
      if (abort.signal.aborted) return; // withdrawn: the page froze or left
      this.role = { name: 'failed', error: new ChatError(CODE.WORKER_GONE, `leader election failed: ${asChatError(err).message}`) };
      this.notify();
    });
  }

  private isCandidate(abort: AbortController): boolean {
    return this.role.name === 'candidate' && this.role.abort === abort;
  }

  /**
   * Holding the leader lock: start the hub's worker, and hold the lock until this page hands
   * over (the returned promise settles) or dies (the browser releases it).
   */
  private async lead(abort: AbortController): Promise<void> {
    if (!this.isCandidate(abort)) return; // suspended meanwhile: give the lock back
    if (document.visibilityState === 'hidden' && (await this.visibleTabWaits())) {
      if (!this.isCandidate(abort)) return;
      this.log.info('a visible tab waits to lead: passing the leader lock on');
      this.queue();
      return;
    }
    await this.copied;
    if (!this.isCandidate(abort)) return;
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    const run = this.startRun(release);
    const role: Role = { name: 'leading', run };
    this.role = role;
    this.notify();
    try {
      const epoch = await run.started;
      if (this.role !== role) return;
      this.announced = epoch;
      this.log.info(`this tab leads (epoch ${epoch})`);
      this.watchRun(role, epoch);
      this.notify();
    } catch (err) {
      if (this.role !== role) return; // stopped before it served: the lock is released already
      // Give the lock to the next tab: maybe it can start one.
      const error = asChatError(err);
      this.log.error(`cannot lead: ${error.message}`);
      run.stop();
      this.role = { name: 'failed', error };
      this.notify();
      return;
    }
    await held;
  }

  /**
   * Start the hub's dedicated worker from this very script: from the copy kept in memory
   * (see {@link join}; the web server may be down when a tab must lead, e.g. when the leader
   * closes during an outage of a chat server that also serves the script), else, or if that
   * copy cannot run (a Content-Security-Policy without `blob:` workers), from its URL.
   */
  private startRun(release: () => void): Run {
    let fail!: (error: ChatError) => void;
    let resolveStarted!: (epoch: string) => void;
    const started = new Promise<string>((resolve, reject) => {
      resolveStarted = resolve;
      fail = reject;
    });
    started.catch(() => {}); // reported by lead() and link()
    const run: Run = {
      worker: undefined,
      api: {} as HubApi,
      port: undefined,
      started,
      goneListeners: new Set(),
      stop: (terminate = true) => {
        if (terminate) run.worker?.terminate();
        fail(new ChatError(CODE.WORKER_GONE, 'the leader tab handed over before its hub served'));
        release();
      },
    };
    const sources = [this.copy, this.url].filter((source): source is string => !!source);
    const attempt = (index: number): void => {
      const source = sources[index];
      const next = (why: string) => {
        if (index + 1 < sources.length) attempt(index + 1);
        else fail(new ChatError(CODE.WORKER_GONE, `the tabchat leader worker ${this.url || '(unknown URL: tabchat-worker.js was not loaded with a <script> element)'} ${why}`));
      };
      if (!source) return next('has no script');
      let worker: Worker;
      try {
        worker = new Worker(source, { name: `leader:${WORKER_NAME}` });
      } catch (err) {
        return next(`could not be started: ${asChatError(err).message}`);
      }
      run.worker = worker;
      worker.addEventListener('message', (event: MessageEvent) => {
        const message = event.data as LeaderWorkerMessage | null;
        if (message?.type !== 'ready') return;
        if (message.build === BUILD) resolveStarted(message.epoch);
        else fail(new ChatError(CODE.WORKER_VERSION_MISMATCH, `tabchat build ${BUILD} cannot lead with worker build ${message.build}; reload the page`));
      });
      worker.addEventListener('error', () => {
        worker.terminate();
        next('could not be started (script failed to load or threw)');
      });
      const { port1, port2 } = new MessageChannel();
      worker.postMessage({ type: 'port' } satisfies LeaderWorkerMessage, [port2]);
      // Every HubApi method already returns a Promise, so the remote has the same signatures.
      run.api = Comlink.wrap<HubApi>(port1) as unknown as HubApi;
      run.port = port1;
    };
    attempt(0);
    return run;
  }

  /** While this run leads, its worker's life lock released means the worker died: lead again with a new one. */
  private watchRun(role: Role & { name: 'leading' }, epoch: string): void {
    this.locks
      ?.request(workerLockName(epoch), { mode: 'shared' }, () => {
        if (this.role === role) this.stepDown('its hub worker died', false);
      })
      .catch((err: unknown) => this.log.warn('cannot watch the leader worker:', asChatError(err).message));
  }

  /**
   * Hand the leadership over: the worker ends (its sockets close without logging out, its
   * life lock goes, and the next leader takes every session over), the lock goes to the next
   * tab in the queue. Then queue again at the back, unless `suspend` (frozen, leaving).
   * @param terminate - false when the page unloads (see {@link Run.stop})
   */
  private stepDown(why: string, suspend: boolean, terminate = true): void {
    const role = this.role;
    if (role.name !== 'leading') return;
    this.log.info(`handing the leadership over: ${why}`);
    role.run.stop(terminate);
    if (suspend) this.role = { name: 'suspended' };
    else this.queue();
    this.notify();
    // The page's own chats leave the ended hub now (the role is no longer this run's, so they
    // look for the next leader), not when its life lock's release reaches the page. Not when
    // the page unloads: its worker still handles what the page says last (`bye`).
    if (terminate) for (const listener of [...role.run.goneListeners]) listener(`this tab handed the leadership over: ${why}`);
    role.run.goneListeners.clear();
  }

  /**
   * The page is frozen, enters the bfcache or unloads: stop leading, leave the queue. A page
   * that unloads lets the lock go at once but leaves its worker to the browser, which ends
   * it with the page: meanwhile it handles the page's goodbye (`bye`: its own chats logged
   * out at once, on the socket it has).
   */
  private suspend(why: string, unloads = false): void {
    const role = this.role;
    if (role.name === 'leading') {
      this.stepDown(why, true, !unloads);
    } else if (role.name === 'candidate') {
      role.abort.abort();
      this.role = { name: 'suspended' };
    }
  }

  /** The page runs again (`resume`, `pageshow` from the bfcache): queue again. */
  private unsuspend(): void {
    if (this.role.name !== 'suspended') return;
    this.queue();
    // What the leader announced while this page was frozen may not have reached it.
    if (this.waiters.size > 0) this.post({ kind: 'who' });
  }

  private visibilityChanged(): void {
    if (document.visibilityState !== 'hidden') {
      this.holdVisible();
      return;
    }
    this.visibleRelease?.();
    this.visibleRelease = null;
    const role = this.role;
    if (role.name !== 'leading') return;
    void this.visibleTabWaits().then((waits) => {
      if (waits && this.role === role && document.visibilityState === 'hidden') this.stepDown('the page is hidden and a visible tab can lead', false);
    });
  }

  /** Hold {@link VISIBLE_LOCK} (shared) while the page is visible. */
  private holdVisible(): void {
    if (this.visibleRelease || !this.locks) return;
    let release!: () => void;
    const held = new Promise<void>((resolve) => { release = resolve; });
    this.visibleRelease = release;
    this.locks.request(VISIBLE_LOCK, { mode: 'shared' }, () => held).catch(() => {});
  }

  /**
   * Whether another tab waits for the leader lock while visible (called while this page
   * holds the leader lock: its client id is the holder's).
   */
  private async visibleTabWaits(): Promise<boolean> {
    let state: LockManagerSnapshot;
    try {
      state = await this.locks!.query();
    } catch (err) {
      this.log.warn('cannot look for a visible tab:', asChatError(err).message);
      return false; // then this tab simply leads
    }
    const held = state.held ?? [];
    const self = held.find((lock) => lock.name === LEADER_LOCK)?.clientId;
    const visible = new Set(held.filter((lock) => lock.name === VISIBLE_LOCK).map((lock) => lock.clientId));
    return (state.pending ?? []).some((lock) => lock.name === LEADER_LOCK && lock.clientId !== self && visible.has(lock.clientId));
  }

  private forwardNetwork(online: boolean): void {
    if (this.role.name === 'leading') this.role.run.worker?.postMessage({ type: 'network', online } satisfies LeaderWorkerMessage);
  }

  private post(message: RpcMessage): void {
    this.channel?.postMessage(message);
  }

  private notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  private channelOnMessage(message: RpcMessage): void {
    if (typeof message !== 'object' || message === null) return;
    switch (message.kind) {
      case 'leader':
        this.announced = message.epoch;
        this.notify();
        return;
      case 'res':
      case 'pong':
        if (message.to === this.tabId) for (const link of this.links) link.receive(message);
        return;
      default:
        return; // `who`, `req`, `ping`: for the leader's worker
    }
  }

  /** This page leads: its chats talk to its own worker. `failed` rejects if the worker cannot start. */
  private localLink(run: Run): HubLink {
    const failed = run.started.then(() => new Promise<never>(() => {}));
    failed.catch(() => {}); // only raced by the caller
    const events = (listener: (data: unknown) => void) => {
      run.port?.addEventListener('message', (event: MessageEvent) => listener(event.data));
      run.port?.start();
    };
    const gone = (listener: (why: string) => void) => run.goneListeners.add(listener);
    return { api: run.api, failed, close: () => {}, events, gone };
  }

  private remoteLink(epoch: string): HubLink {
    const link = new RemoteLink({
      tabId: this.tabId,
      epoch,
      // Commands go to the hubs only, on a channel no other tab listens to.
      post: (message) => postOnce(RPC_HUB_CHANNEL, message),
      locks: this.locks,
      nextId: () => `${this.tabId}:${this.nextId++}`,
      onClose: (closed) => this.links.delete(closed),
    });
    this.links.add(link);
    return link;
  }
}
