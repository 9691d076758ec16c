/**
 * The page's link to its hub: one {@link HubConnection} per worker URL and transport in a
 * page, shared by the {@link WorkerBackend}s of its chats.
 *
 * - Transports: a SharedWorker (commands over comlink), or, without SharedWorker, the leader
 *   tab elected with Web Locks (commands over BroadcastChannel; the code is in the worker
 *   bundle, worker/leader.ts, loaded on demand so the common path stays small).
 * - The comlink root proxy is kept referenced for the page's life (an automatic release by
 *   GC would close the tab's port: comlink #692). Every call has a timeout (2801) and is
 *   rejected with 9008 when the hub is detected dead (comlink never rejects by itself: #601).
 * - Events arrive on a BroadcastChannel in sequenced envelopes, handed to every chat of the
 *   page (each applies those addressed to it); a snapshot is pulled on register, on a
 *   sequence gap, on a new hub epoch and on `pageshow` from the bfcache. Messages come the
 *   same way (`messages` envelopes, in order with kicks); a snapshot pulled after a gap
 *   carries the message envelopes the tab missed, from the hub's per-instance buffer.
 * - Liveness: the tab holds its tab lock for its life (src/browser/tab-lock.ts; the hub
 *   waits on it); the tab waits on the hub's life lock, and when it is released it starts a
 *   new hub and re-registers its logged-in chats with their instId + token, which the hub
 *   resumes silently (no kick, no SDK_NOT_READY).
 */
import * as Comlink from 'comlink';
import { CODE } from '../protocol/codes.js';
import type { Logger } from '../protocol/data.js';
import {
  BUILD,
  HUB_VERSION,
  LEADER_HOST_GLOBAL,
  WORKER_NAME,
  isEnvelope,
  tabEventsChannel,
  webLocks,
  type ChatResume,
  type ChatSpec,
  type Envelope,
  type HubApi,
  type HubHello,
  type HubLink,
  type LeaderHostFactory,
  type RegisterRequest,
  type Reply,
  type Snapshot,
  type WorkerState,
} from '../protocol/hub-protocol.js';
import { ChatError, asChatError, fromErrorData } from '../core/errors.js';
import { PendingMap } from '../core/pending.js';
import { TAB_ID, holdTabLock, reclaimTabLock } from './tab-lock.js';
import { COMMAND_TIMEOUT_MS, TAKEOVER_ATTEMPTS, WorkerBackend } from './worker-backend.js';

/** Timeout of `register` (it may resume several instances, each bounded by the engine's 10 s). */
export const REGISTER_TIMEOUT_MS = 15_000;

/** One snapshot pull in progress. */
interface Sync {
  envelopes: Envelope[];
}

/** How the page reaches its hub: a SharedWorker, or the leader tab (worker/leader.ts). */
export type Transport = 'shared-worker' | 'leader';

/** Connection state of one tab to one hub. */
type HubState =
  | { name: 'idle' }
  /** `posted`: the api once the register is on its way (commands may follow it at once); `attempt`: once it is answered and applied. */
  | { name: 'connecting'; attempt: Promise<HubApi>; posted: Promise<HubApi> }
  | { name: 'connected'; api: HubApi; link: HubLink; epoch: string }
  | { name: 'failed'; error: ChatError };

/**
 * The leader-tab fallback lives in the worker bundle (worker/leader.ts): load it into this
 * page once, and check it comes from the same build.
 */
let leaderHost: Promise<LeaderHostFactory> | null = null;

function loadLeaderHost(workerUrl: string): Promise<LeaderHostFactory> {
  leaderHost ??= new Promise<LeaderHostFactory>((resolve, reject) => {
    const script = document.createElement('script');
    script.src = workerUrl;
    script.async = true;
    script.onload = () => {
      const factory = (globalThis as Record<string, unknown>)[LEADER_HOST_GLOBAL] as LeaderHostFactory | undefined;
      if (!factory) {
        reject(new ChatError(CODE.WORKER_GONE, `${workerUrl} did not provide the tabchat hub`));
      } else if (factory.build !== BUILD || factory.hubVersion !== HUB_VERSION) {
        reject(new ChatError(
          CODE.WORKER_VERSION_MISMATCH,
          `tabchat.js build ${BUILD} cannot use worker build ${factory.build}; reload the page`,
          { tabBuild: BUILD, workerBuild: factory.build },
        ));
      } else {
        resolve(factory);
      }
    };
    script.onerror = () => reject(new ChatError(CODE.WORKER_GONE, `the tabchat hub script ${workerUrl} could not be loaded`));
    (document.head ?? document.documentElement).appendChild(script);
  });
  const loading = leaderHost;
  loading.catch(() => { if (leaderHost === loading) leaderHost = null; });
  return loading;
}

/** Take-over attempts that fail because the new hub went away too are retried this long. */
const TAKEOVER_WINDOW_MS = 8_000;

/** The page's link to one hub (one per worker URL and transport). */
export class HubConnection {
  #state: HubState = { name: 'idle' };
  /** Last envelope sequence number applied, and the epoch it belongs to (null before the first snapshot). */
  #lastSeq = 0;
  #lastEpoch: string | null = null;
  /** While a snapshot is being pulled, envelopes wait in it (they may be newer than the snapshot). */
  #sync: Sync | null = null;
  /** Epochs of workers this tab saw die; their late envelopes are ignored. */
  readonly #deadEpochs = new Set<string>();
  /** Calls waiting for the hub's answer (commands, and the start and register of a link), by call id. */
  readonly #calls = new PendingMap<number, unknown>();
  #nextCall = 1;
  readonly #backends = new Set<WorkerBackend>();
  #channel: BroadcastChannel | null = null;
  #nextChat = 1;
  /**
   * Every comlink root proxy this page created, kept referenced for the page's life: a
   * proxy collected by GC sends RELEASE, which closes the tab's connection (comlink #692).
   */
  readonly #proxies: Array<Comlink.Remote<HubApi>> = [];

  readonly #log: Logger;

  constructor(
    readonly workerUrl: string,
    readonly transport: Transport,
    log: Logger,
  ) {
    this.#log = log;
    if (typeof addEventListener === 'function') {
      addEventListener('pagehide', (event) => this.#pageOnHide(event as PageTransitionEvent));
      addEventListener('pageshow', (event) => this.#pageOnShow(event as PageTransitionEvent));
    }
  }

  /**
   * A new backend for one chat instance.
   * @param sendTimeoutMs - how long a send waits for the server before rejecting 9022
   */
  createBackend(server: string, sdkAppId: number, tabs: ChatSpec['tabs'], sendTimeoutMs: number): WorkerBackend {
    const spec: ChatSpec = { chatId: `${TAB_ID}/${this.#nextChat++}`, server, sdkAppId, tabs };
    const backend = new WorkerBackend(this, spec, this.#log, sendTimeoutMs);
    this.#backends.add(backend);
    return backend;
  }

  /** @internal called by a destroyed backend */
  dropBackend(backend: WorkerBackend): void {
    this.#backends.delete(backend);
  }

  /**
   * Start attaching this page to the hub now (SharedWorker connect or leader election, tab
   * lock, `register`), so that the first command finds it attached. Fire-and-forget: a
   * failure is not reported here; the first command that needs the connection surfaces it
   * (a build mismatch, 9012, is kept; anything else is tried again by that command). Opens no
   * socket to the chat server: the hub's engine connects on the first login.
   */
  attach(): void {
    this.#connect().catch(() => {});
  }

  /** The worker's diagnostic state (connects if needed). */
  getWorkerState(): Promise<WorkerState> {
    return this.call('getState', COMMAND_TIMEOUT_MS, async (api) => ({ ok: true, value: await api.getState() }));
  }

  /**
   * Run one command with a timeout; connects (or reconnects) first. Rejects with the
   * worker's coded error, 2801 on timeout, 9008 when the worker dies meanwhile, 9012 on a
   * build mismatch.
   */
  call<T>(name: string, timeoutMs: number, invoke: (api: HubApi) => Promise<Reply<T>>): Promise<T> {
    // Posted right behind the register of an attach in progress, not after its answer (the
    // hub handles its port's messages in order); the command fails if the register does.
    const attempt = this.#connect();
    const state = this.#state;
    const api = state.name === 'connecting' ? state.posted : attempt;
    const answer = api
      .then((hub) => Promise.all([invoke(hub), attempt]))
      .then(([reply]) => (reply.ok ? reply.value : Promise.reject(fromErrorData(reply.error))));
    return this.#bounded(answer, name, timeoutMs, () => {
      // Without Web Locks a silent worker is the only sign of its death: start a new one.
      const state = this.#state;
      if (!webLocks() && state.name === 'connected') this.#workerOnGone(state.epoch, `no answer to ${name} within ${timeoutMs} ms`);
    });
  }

  /**
   * `promise`, or 2801 after `timeoutMs` (then `expired` runs), or 9008 when the hub is
   * detected dead meanwhile.
   */
  #bounded<T>(promise: Promise<T>, what: string, timeoutMs: number, expired?: () => void): Promise<T> {
    const id = this.#nextCall++;
    const answer = this.#calls.wait(id, timeoutMs, `the tabchat worker did not answer ${what} within ${timeoutMs} ms`, expired);
    this.#calls.follow(id, promise);
    return answer as Promise<T>;
  }

  // ------------------------------------------------------------------ connection

  #connect(): Promise<HubApi> {
    const state = this.#state;
    switch (state.name) {
      case 'connected':
        return Promise.resolve(state.api);
      case 'connecting':
        return state.attempt;
      case 'failed':
        return Promise.reject(state.error);
      case 'idle': {
        let post!: (api: HubApi) => void;
        const posting = new Promise<HubApi>((resolve) => { post = resolve; });
        const attempt = this.#open(post);
        const early = Promise.race([posting, attempt]);
        early.catch(() => {}); // a failed attach is reported by the command that needs it
        this.#state = { name: 'connecting', attempt, posted: early };
        attempt.catch((err: unknown) => {
          if (this.#state.name === 'connecting' && this.#state.attempt === attempt) {
            const error = asChatError(err);
            // A build mismatch does not heal by retrying; anything else may.
            this.#state = error.code === CODE.WORKER_VERSION_MISMATCH ? { name: 'failed', error } : { name: 'idle' };
          }
        });
        return attempt;
      }
    }
  }

  /**
   * Start (or join) the hub, register, apply the snapshot, watch the hub's life lock. The
   * tab lock is asked for first but not waited for before the register (the hub waits for
   * the request to show, worker/runtime.ts): only before the attach counts as done.
   * @param posted - called with the api once the register is posted, unless it offers
   *   sessions to take over (then commands wait for its answer)
   */
  async #open(posted: (api: HubApi) => void): Promise<HubApi> {
    const locked = holdTabLock();
    locked.catch(() => {}); // awaited with the register below
    this.#listen();
    const sync = this.#beginSync();
    let link: HubLink;
    try {
      link = await this.#bounded(this.#openLink(), 'start', REGISTER_TIMEOUT_MS);
    } catch (err) {
      this.#endSync(sync);
      throw err;
    }
    const api = link.api;
    // The hub posts this tab's envelopes on the link's own port where it has one.
    link.events?.((data) => this.#channelOnMessage(data));
    const offered = this.#resumeList();
    const register = Promise.race([api.register(this.#registerRequest(offered)), link.failed]);
    // A take-over (sessions offered) must be done before the commands of those sessions run.
    if (offered.length === 0) void (link.sameBuild ?? Promise.resolve()).then(() => posted(api));
    let snapshot: Snapshot;
    try {
      const [reply] = await this.#bounded(Promise.all([register, locked]), 'register', REGISTER_TIMEOUT_MS);
      if (!reply.ok) throw fromErrorData(reply.error);
      snapshot = reply.value;
    } catch (err) {
      this.#endSync(sync);
      link.close();
      throw err;
    }
    const connected: HubState = { name: 'connected', api, link, epoch: snapshot.epoch };
    this.#state = connected;
    this.#watchWorker(snapshot.epoch, snapshot.workerLock);
    link.gone?.((why) => this.#workerOnGone(snapshot.epoch, why));
    // A leader's hub that stops answering: its chats show `connecting` (and hear 9009) until it answers again.
    link.watch?.((stall) => {
      if (this.#state !== connected) return;
      if (!stall) this.#resync('hub back');
      else for (const backend of this.#backends) backend.workerDown(stall);
    });
    this.#endSync(sync, snapshot, offered);
    this.#log.debug(`connected to hub ${snapshot.epoch}`);
    return api;
  }

  #openLink(): Promise<HubLink> {
    if (this.transport === 'leader') {
      return loadLeaderHost(this.workerUrl).then((host) => host.link(TAB_ID, this.#deadEpochs, this.#log));
    }
    let worker: SharedWorker;
    try {
      worker = new SharedWorker(this.workerUrl, { name: WORKER_NAME });
    } catch (err) {
      return Promise.reject(new ChatError(CODE.WORKER_GONE, `cannot start the tabchat worker ${this.workerUrl}: ${asChatError(err).message}`));
    }
    const proxy = Comlink.wrap<HubApi>(worker.port);
    this.#proxies.push(proxy);
    const failed = new Promise<never>((_, reject) => {
      worker.addEventListener('error', () =>
        reject(new ChatError(CODE.WORKER_GONE, `the tabchat worker ${this.workerUrl} could not be started (script failed to load or threw)`)));
    });
    failed.catch(() => {}); // only raced by open(); a later error event must not go unhandled
    // Every HubApi method already returns a Promise, so the remote has the same signatures.
    const events = (listener: (data: unknown) => void) => {
      worker.port.addEventListener('message', (event: MessageEvent) => listener(event.data));
      worker.port.start();
    };
    // A worker of another build (a cached old script under this build's name) sends another
    // hello, or none: then commands wait for the register's answer (9012).
    const sameBuild = new Promise<void>((resolve) => {
      events((data) => {
        const hello = data as HubHello | null;
        if (hello?.type === 'tabchat-hello' && hello.build === BUILD && hello.hubVersion === HUB_VERSION) resolve();
      });
    });
    return Promise.resolve({ api: proxy as unknown as HubApi, failed, close: () => worker.port.close(), events, sameBuild });
  }

  #listen(): void {
    if (this.#channel) return;
    this.#channel = new BroadcastChannel(tabEventsChannel(TAB_ID));
    this.#channel.onmessage = (event: MessageEvent) => this.#channelOnMessage(event.data);
  }

  /** Wait on the worker's life lock: granted means the worker is dead. */
  #watchWorker(epoch: string, lockName: string): void {
    const manager = webLocks();
    if (!manager) return;
    manager.request(lockName, { mode: 'shared' }, () => this.#workerOnGone(epoch, 'its life lock was released'))
      .catch((err: unknown) => this.#log.warn('cannot watch the worker lock:', asChatError(err).message));
  }

  #workerOnGone(epoch: string, why: string): void {
    const state = this.#state;
    if (state.name !== 'connected' || state.epoch !== epoch) return;
    this.#deadEpochs.add(epoch);
    this.#state = { name: 'idle' };
    this.#sync = null;
    state.link.close();
    this.#log.info(`tabchat hub ${epoch} went away (${why})`);
    const error = new ChatError(CODE.WORKER_GONE, `the tabchat worker went away (${why})`);
    for (const call of this.#calls.takeAll()) call.reject(error);
    const sessions = [...this.#backends].filter((b) => b.hasSession());
    for (const backend of this.#backends) backend.workerDown();
    if (sessions.length > 0) void this.#takeOver(sessions);
  }

  /** Offer the sessions to a new hub, within the server's resume window; a few attempts. */
  async #takeOver(sessions: WorkerBackend[]): Promise<void> {
    let last: ChatError | null = null;
    const deadline = Date.now() + TAKEOVER_WINDOW_MS;
    for (let attempt = 1, counted = 0; counted < TAKEOVER_ATTEMPTS; attempt++) {
      try {
        await this.#connect();
        return;
      } catch (err) {
        last = asChatError(err);
        this.#log.warn(`take-over attempt ${attempt} failed: ${last.code} ${last.message}`);
        if (last.code === CODE.WORKER_VERSION_MISMATCH) break;
        // The new hub went away too (tabs closing one after another on the leader path: each
        // leader dies during the take-over): not a failure of the take-over itself, so try
        // the next one, within the time the server keeps the instances for a resume.
        if (last.code === CODE.WORKER_GONE && Date.now() < deadline) continue;
        counted++;
      }
    }
    if (!last) return;
    this.#log.error(`could not restore the sessions in a new tabchat hub: ${last.code} ${last.message}`);
    for (const backend of sessions) backend.applyLost({ code: last.code, message: last.message, data: last.data });
  }

  /** Ask the worker again (new epoch, gap in the sequence): register is idempotent. */
  #resync(why: string): void {
    const state = this.#state;
    if (state.name !== 'connected' || this.#sync) return;
    this.#log.debug(`resync: ${why}`);
    const sync = this.#beginSync();
    const epoch = state.epoch;
    const offered = this.#resumeList();
    this.#bounded(state.api.register(this.#registerRequest(offered)), 'register', REGISTER_TIMEOUT_MS)
      .then((reply) => {
        if (!reply.ok) throw fromErrorData(reply.error);
        const now = this.#state;
        if (now.name !== 'connected' || now.epoch !== epoch || this.#sync !== sync) return;
        if (reply.value.epoch !== epoch) {
          // Same port, new worker run (Safari re-runs a worker on its old ports).
          this.#state = { ...now, epoch: reply.value.epoch };
          this.#deadEpochs.add(epoch);
          this.#watchWorker(reply.value.epoch, reply.value.workerLock);
        }
        this.#endSync(sync, reply.value, offered);
      })
      .catch((err: unknown) => {
        this.#endSync(sync);
        // A hub that went away meanwhile is not a failure: its replacement gets a register.
        const now = this.#state;
        if (now.name === 'connected' && now.epoch === epoch) this.#log.warn('resync failed:', asChatError(err).message);
      });
  }

  /** `after`: where this tab's envelope stream stopped, so the snapshot brings the messages it missed. */
  #registerRequest(resume: ChatResume[]): RegisterRequest {
    const req: RegisterRequest = { tabId: TAB_ID, build: BUILD, hubVersion: HUB_VERSION, resume };
    if (this.#lastEpoch !== null) req.after = { epoch: this.#lastEpoch, seq: this.#lastSeq };
    return req;
  }

  #resumeList(): ChatResume[] {
    const list: ChatResume[] = [];
    for (const backend of this.#backends) {
      const resume = backend.resumeSpec();
      if (resume) list.push(resume);
    }
    return list;
  }

  #beginSync(): Sync {
    const sync: Sync = { envelopes: [] };
    this.#sync = sync;
    return sync;
  }

  /**
   * End a snapshot pull (a no-op when a newer one replaced it): apply the snapshot if there
   * is one, then the envelopes that arrived meanwhile (those it already reflects are dropped
   * by their sequence number).
   * @param offered - the sessions this tab offered for take-over in the register that answered
   */
  #endSync(sync: Sync, snapshot?: Snapshot, offered: ChatResume[] = []): void {
    if (this.#sync !== sync) return;
    this.#sync = null;
    if (!snapshot) return;
    this.#lastSeq = snapshot.seq;
    this.#lastEpoch = snapshot.epoch;
    // What the tab missed comes before the state it led to (messages before a kick).
    for (const envelope of snapshot.messages) for (const backend of this.#backends) backend.applyEnvelope(envelope);
    for (const key of snapshot.gaps) for (const backend of this.#backends) backend.applyGap(key);
    const offeredIds = new Set(offered.map((resume) => resume.chatId));
    for (const backend of this.#backends) {
      const chatId = backend.spec.chatId;
      backend.applySnapshot(snapshot.chats[chatId], snapshot.servers[backend.spec.server], offeredIds.has(chatId));
    }
    for (const envelope of sync.envelopes) this.#channelOnMessage(envelope);
  }

  // ------------------------------------------------------------------ events

  #channelOnMessage(data: unknown): void {
    if (!isEnvelope(data)) return;
    if (this.#sync) {
      this.#sync.envelopes.push(data);
      return;
    }
    const state = this.#state;
    if (state.name !== 'connected' || this.#deadEpochs.has(data.workerEpoch)) return;
    if (data.workerEpoch !== state.epoch) {
      this.#resync(`envelope from worker epoch ${data.workerEpoch}`);
      return;
    }
    if (data.seq <= this.#lastSeq) return; // already reflected in the snapshot
    // The hub posts each tab only what concerns it: `prev` is the one before, for this tab.
    if (data.prev > this.#lastSeq) {
      this.#resync(`sequence gap ${this.#lastSeq} → ${data.prev} (envelope ${data.seq})`);
      return;
    }
    this.#lastSeq = data.seq;
    for (const backend of this.#backends) backend.applyEnvelope(data);
  }

  #pageOnHide(event: PageTransitionEvent): void {
    const state = this.#state;
    if (event.persisted || state.name !== 'connected') return;
    // Best effort: the tab lock release tells the worker anyway, this only speeds it up.
    state.api.bye(TAB_ID).catch(() => {});
  }

  #pageOnShow(event: PageTransitionEvent): void {
    if (!event.persisted || this.#state.name !== 'connected') return;
    reclaimTabLock()
      .then(() => this.#resync('back from the bfcache'))
      .catch((err: unknown) => this.#log.warn('pageshow resync failed:', asChatError(err).message));
  }
}
