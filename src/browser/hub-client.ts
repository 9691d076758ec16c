/**
 * Tab side of the hub: one {@link HubConnection} per worker URL and transport in a page, and
 * one {@link WorkerBackend} (the {@link ChatBackend} of src/client) per chat instance.
 *
 * - Transports: a SharedWorker (commands over comlink), or, without SharedWorker, the leader
 *   tab elected with Web Locks (commands over BroadcastChannel; the code is in the worker
 *   bundle, worker/leader.ts, loaded on demand so the common path stays small).
 * - The comlink root proxy is kept referenced for the page's life (an automatic release by
 *   GC would close the tab's port: comlink #692). Every call has a timeout (2801) and is
 *   rejected with 9008 when the hub is detected dead (comlink never rejects by itself: #601).
 * - Events arrive on a BroadcastChannel in sequenced envelopes; a tab applies only those
 *   addressed to its chats, and pulls a snapshot on register, on a sequence gap, on a new
 *   hub epoch and on `pageshow` from the bfcache. Messages come the same way (`messages`
 *   envelopes, in order with kicks); a snapshot pulled after a gap carries the message
 *   envelopes the tab missed, from the hub's per-instance buffer.
 * - Sends go to the hub's durable outbox; a send interrupted by the death of the worker is
 *   asked again of the new one with the same clientMsgId (stored once whatever happens).
 * - Liveness: the tab holds `tabchat:tab:<tabId>` for its life (the hub waits on it); the
 *   tab waits on the hub's life lock, and when it is released it starts a new hub and
 *   re-registers its logged-in chats with their instId + token, which the hub resumes
 *   silently (no kick, no SDK_NOT_READY).
 */
import * as Comlink from 'comlink';
import { CODE } from '../protocol/codes.js';
import type { KickType, WireMessage } from '../protocol/frames.js';
import { ChatError, asChatError, fromErrorData } from '../core/errors.js';
import { newClientMsgId } from '../core/outbox.js';
import type { ErrorData, LoginResult, Logger, NetState, OutgoingText } from '../core/types.js';
import type { BackendEvents, ChatBackend } from '../client/backend.js';
import {
  BUILD,
  EVENTS_CHANNEL,
  HUB_VERSION,
  LEADER_HOST_GLOBAL,
  WORKER_NAME,
  instanceKey,
  isEnvelope,
  serverKey,
  tabLockName,
  type ChatResume,
  type ChatSnapshot,
  type ChatSpec,
  type Endpoint,
  type Envelope,
  type HubApi,
  type LeaderHostFactory,
  type MessagesEnvelope,
  type RegisterRequest,
  type Reply,
  type Snapshot,
  type WorkerState,
} from './hub-protocol.js';

/** Timeout of `login` (the worker's engine gives up after 10 s, including its connection wait). */
export const LOGIN_TIMEOUT_MS = 15_000;
/** Timeout of `register` (it may resume several instances, each bounded by the engine's 10 s). */
export const REGISTER_TIMEOUT_MS = 15_000;
/** Timeout of `logout`/`forget` (one server round trip, bounded by the engine's 10 s). */
export const LOGOUT_TIMEOUT_MS = 12_000;
/** Timeout of the other commands (answered by the worker alone); also the margin of `sendText` over its own timeout. */
export const COMMAND_TIMEOUT_MS = 5_000;
/** Ids (message ids and own clientMsgIds) a chat remembers to drop duplicates. */
const SEEN_LIMIT = 1_000;


function locks(): LockManager | null {
  return typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null;
}

/** This page's id: one per page load, shared by every chat and worker connection of the page. */
export const TAB_ID = newClientMsgId();

let tabLock: Promise<void> | null = null;

/**
 * Hold `tabchat:tab:<TAB_ID>` until the page dies (the lock callback's promise never settles
 * on purpose: the browser releases the lock when the page closes, navigates or crashes, and
 * that release is how the worker learns the tab is gone). Resolves once the lock is held.
 * Without Web Locks (non-secure context) liveness falls back to the `pagehide` goodbye.
 */
function holdTabLock(): Promise<void> {
  const manager = locks();
  if (!manager) return Promise.resolve();
  if (!tabLock) {
    tabLock = new Promise<void>((resolve, reject) => {
      manager.request(tabLockName(TAB_ID), () => {
        resolve();
        return new Promise<never>(() => {});
      }).catch((err: unknown) => {
        tabLock = null;
        reject(new ChatError(CODE.UNCAUGHT_ERROR, `cannot hold the tab lock: ${asChatError(err).message}`));
      });
    });
  }
  return tabLock;
}

/** After a return from the bfcache: Safari releases a cached page's locks, so take it again. */
async function reclaimTabLock(): Promise<void> {
  const manager = locks();
  if (!manager || !tabLock) return;
  const state = await manager.query();
  const name = tabLockName(TAB_ID);
  if (!(state.held ?? []).some((lock) => lock.name === name)) {
    tabLock = null;
    await holdTabLock();
  }
}

/** A pending command, rejected when the worker dies. */
type Abort = (error: ChatError) => void;

/** One snapshot pull in progress. */
interface Sync {
  envelopes: Envelope[];
}

/** How the page reaches its hub: a SharedWorker, or the leader tab (worker/leader.ts). */
export type Transport = 'shared-worker' | 'leader';

/** Connection state of one tab to one hub. */
type HubState =
  | { name: 'idle' }
  | { name: 'connecting'; attempt: Promise<HubApi> }
  | { name: 'connected'; api: HubApi; endpoint: Endpoint; epoch: string }
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
        reject(new ChatError(CODE.WORKER_GONE, `${workerUrl} loaded but did not provide the tabchat hub (is it tabchat-worker.js?)`));
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

/** How many times the sessions are offered to a new hub after the old one died. */
const TAKEOVER_ATTEMPTS = 3;
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
  readonly #pending = new Set<Abort>();
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
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const settle = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.#pending.delete(abort);
        fn();
      };
      const abort: Abort = (error) => settle(() => reject(error));
      const timer = setTimeout(() => {
        abort(new ChatError(CODE.NETWORK_TIMEOUT, `the tabchat worker did not answer ${name} within ${timeoutMs} ms`));
        // Without Web Locks a silent worker is the only sign of its death: start a new one.
        const state = this.#state;
        if (!locks() && state.name === 'connected') this.#workerOnGone(state.epoch, `no answer to ${name} within ${timeoutMs} ms`);
      }, timeoutMs);
      this.#pending.add(abort);
      this.#connect()
        .then((api) => invoke(api))
        .then(
          (reply) => settle(() => (reply.ok ? resolve(reply.value) : reject(fromErrorData(reply.error)))),
          (err: unknown) => abort(asChatError(err)),
        );
    });
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
        const attempt = this.#open();
        this.#state = { name: 'connecting', attempt };
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

  /** Start (or join) the hub, register, apply the snapshot, watch the hub's life lock. */
  async #open(): Promise<HubApi> {
    await holdTabLock();
    this.#listen();
    const sync = this.#beginSync();
    let endpoint: Endpoint;
    try {
      endpoint = await withTimeout(this.#openEndpoint(), REGISTER_TIMEOUT_MS, 'start');
    } catch (err) {
      this.#endSync(sync);
      throw err;
    }
    const api = endpoint.api;
    const offered = this.#resumeList();
    let snapshot: Snapshot;
    try {
      const reply = await withTimeout(
        Promise.race([api.register(this.#registerRequest(offered)), endpoint.failed]),
        REGISTER_TIMEOUT_MS,
        'register',
      );
      if (!reply.ok) throw fromErrorData(reply.error);
      snapshot = reply.value;
    } catch (err) {
      this.#endSync(sync);
      endpoint.close();
      throw err;
    }
    this.#state = { name: 'connected', api, endpoint, epoch: snapshot.epoch };
    this.#watchWorker(snapshot.epoch, snapshot.workerLock);
    this.#endSync(sync, snapshot, offered);
    this.#log.debug(`connected to worker epoch ${snapshot.epoch}`);
    return api;
  }

  #openEndpoint(): Promise<Endpoint> {
    if (this.transport === 'leader') {
      return loadLeaderHost(this.workerUrl).then((host) => host.endpoint(TAB_ID, this.#deadEpochs, this.#log));
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
    return Promise.resolve({ api: proxy as unknown as HubApi, failed, close: () => worker.port.close() });
  }

  #listen(): void {
    if (this.#channel) return;
    this.#channel = new BroadcastChannel(EVENTS_CHANNEL);
    this.#channel.onmessage = (event: MessageEvent) => this.#channelOnMessage(event.data);
  }

  /** Wait on the worker's life lock: granted means the worker is dead. */
  #watchWorker(epoch: string, lockName: string): void {
    const manager = locks();
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
    state.endpoint.close();
    this.#log.info(`tabchat hub ${epoch} went away (${why}); starting a new one`);
    const error = new ChatError(CODE.WORKER_GONE, `the tabchat worker went away (${why})`);
    for (const abort of [...this.#pending]) abort(error);
    const sessions = [...this.#backends].filter((b) => b.hasSession());
    for (const backend of sessions) backend.workerDown();
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
    withTimeout(state.api.register(this.#registerRequest(offered)), REGISTER_TIMEOUT_MS, 'register')
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
    if (data.seq > this.#lastSeq + 1) {
      this.#resync(`sequence gap ${this.#lastSeq} → ${data.seq}`);
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

/** The session of a logged-in chat, as its tab keeps it (enough to resume it elsewhere). */
interface Session {
  userID: string;
  userSig: string;
  key: string;
  instId: number;
  token: string;
  /** The chat's generation in the worker when this session began or was last confirmed. */
  generation: number;
  /** The login reply's envelope position: envelopes of that epoch up to it predate the session. */
  sinceEpoch: string;
  sinceSeq: number;
  /** Mailbox position of the last `messages` envelope applied (offered to a new worker). */
  position?: number;
  /** Ids of messages delivered and clientMsgIds sent by this chat, newest last (bounded). */
  seen: Set<string>;
}

/** Whether the envelope is of the session's epoch and at or before the login reply's position (the reply reflected it). */
function predates(envelope: Envelope, session: Session): boolean {
  return envelope.workerEpoch === session.sinceEpoch && envelope.seq <= session.sinceSeq;
}

/** Remember an id, forgetting the oldest beyond {@link SEEN_LIMIT}. */
function remember(seen: Set<string>, id: string): void {
  seen.delete(id);
  seen.add(id);
  if (seen.size > SEEN_LIMIT) seen.delete(seen.values().next().value as string);
}

/** {@link ChatBackend} of one chat instance, carried by the SharedWorker. */
export class WorkerBackend implements ChatBackend {
  #events: BackendEvents | null = null;
  #session: Session | null = null;
  /** Set while a login is in flight: envelopes for its instance wait here for the reply. */
  #loginWait: { key: string; envelopes: Envelope[] } | null = null;
  /** serverTime − Date.now(), ms. */
  #clockOffset = 0;
  #destroyed = false;

  readonly #hub: HubConnection;
  readonly #log: Logger;
  readonly #sendTimeoutMs: number;

  constructor(hub: HubConnection, readonly spec: ChatSpec, log: Logger, sendTimeoutMs: number) {
    this.#hub = hub;
    this.#log = log;
    this.#sendTimeoutMs = sendTimeoutMs;
  }

  setEvents(events: BackendEvents): void {
    this.#events = events;
  }

  async login(params: { userID: string; userSig: string }): Promise<LoginResult> {
    if (this.#destroyed) throw new ChatError(CODE.DESTROYED);
    const key = instanceKey(this.spec, params.userID);
    const wait = { key, envelopes: [] as Envelope[] };
    this.#loginWait = wait;
    try {
      const reply = await this.#hub.call('login', LOGIN_TIMEOUT_MS, (api) => api.login(TAB_ID, this.spec, params));
      this.#session = {
        userID: params.userID,
        userSig: params.userSig,
        key,
        instId: reply.instId,
        token: reply.token,
        generation: reply.generation,
        sinceEpoch: reply.epoch,
        sinceSeq: reply.seq,
        seen: new Set(),
      };
      this.#clockOffset = reply.serverTime - Date.now();
      // The socket may have been connected by another tab long before this login: report its
      // current state; the chat announces it if it is not what it announced last (a
      // transition only, see docs/client-api.md "Order").
      this.#events?.netState(reply.net);
      const late = wait.envelopes.filter((envelope) => envelope.seq > reply.seq);
      if (late.length > 0) {
        // After the chat has seen the login resolve (a kick between login and SDK_READY).
        setTimeout(() => { for (const envelope of late) this.applyEnvelope(envelope); }, 0);
      }
      return { instId: reply.instId, userID: reply.userID, serverTime: reply.serverTime, expireAt: reply.expireAt };
    } finally {
      if (this.#loginWait === wait) this.#loginWait = null;
    }
  }

  async logout(): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (!session) return;
    try {
      await this.#hub.call('logout', LOGOUT_TIMEOUT_MS, (api) => api.logout(TAB_ID, this.spec.chatId));
    } catch (err) {
      // Released locally; a dead or new worker does not hold the instance, the server
      // releases it when this tab's lock or the old socket goes.
      this.#log.info('logout not confirmed by the worker:', asChatError(err).message);
    }
  }

  getServerTime(): number {
    return Date.now() + this.#clockOffset;
  }

  async sendText(message: OutgoingText): Promise<WireMessage> {
    const session = this.#session;
    if (!session) throw new ChatError(CODE.USER_NOT_LOGGED_IN, 'not logged in');
    // Its echo on the messages stream (flow out) is not for this chat.
    remember(session.seen, message.clientMsgId);
    const deadline = Date.now() + this.#sendTimeoutMs;
    for (let attempt = 1; ; attempt++) {
      const remaining = Math.max(1, deadline - Date.now());
      try {
        return await this.#hub.call('sendText', remaining + COMMAND_TIMEOUT_MS, (api) => api.sendText(TAB_ID, this.spec.chatId, message, remaining));
      } catch (err) {
        const error = asChatError(err);
        // The worker died, maybe holding the message in its durable outbox. The new worker
        // took the session over; ask it again with the same clientMsgId: it waits for that
        // message (or returns it, stored), and never stores a second one.
        if (error.code !== CODE.WORKER_GONE || this.#session !== session || Date.now() >= deadline || attempt >= TAKEOVER_ATTEMPTS) throw error;
        this.#log.info(`send of ${message.clientMsgId} continues in the new tabchat worker`);
      }
    }
  }

  async destroy(): Promise<void> {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#session = null;
    try {
      await this.#hub.call('forget', LOGOUT_TIMEOUT_MS, (api) => api.forget(TAB_ID, this.spec.chatId));
    } catch (err) {
      this.#log.info('destroy not confirmed by the worker:', asChatError(err).message);
    } finally {
      this.#hub.dropBackend(this);
    }
  }

  // ------------------------------------------------------------------ from the connection

  /** @internal */
  hasSession(): boolean {
    return this.#session !== null;
  }

  /** @internal what a new worker needs to take this chat over silently */
  resumeSpec(): ChatResume | null {
    const session = this.#session;
    if (!session) return null;
    const resume: ChatResume = { ...this.spec, userID: session.userID, userSig: session.userSig, instId: session.instId, token: session.token };
    if (session.position !== undefined) resume.lastSeq = session.position;
    return resume;
  }

  /** @internal the worker died; its replacement is being started */
  workerDown(): void {
    this.#events?.netState('connecting');
  }

  /** @internal the sessions could not be restored in a new worker */
  applyLost(error: ErrorData): void {
    if (!this.#session) return;
    this.#session = null;
    this.#events?.lost(error);
  }

  /**
   * @internal
   * @param offered - whether this session was offered for take-over in the register that
   *   produced the snapshot (then a snapshot without it means the worker could not keep it)
   */
  applySnapshot(chat: ChatSnapshot | undefined, server: { net: NetState; serverTime: number } | undefined, offered: boolean): void {
    if (server) {
      this.#clockOffset = server.serverTime - Date.now();
      if (this.#session) this.#events?.netState(server.net);
    }
    const session = this.#session;
    if (!session || this.#loginWait) return;
    if (chat && chat.generation < session.generation) return; // older than this session
    switch (chat?.phase) {
      case 'ready':
        session.generation = chat.generation;
        if (chat.instId !== undefined && chat.token !== undefined) {
          session.instId = chat.instId;
          session.token = chat.token;
        }
        return;
      case 'kicked':
        this.#applyKick(chat.kickType ?? 'multipleAccount');
        return;
      case 'lost':
        this.applyLost(chat.error ?? { code: CODE.WORKER_GONE, message: 'the session was lost by the worker' });
        return;
      default:
        // The worker does not hold this session although it was offered in register.
        if (offered) {
          this.applyLost({ code: CODE.WORKER_GONE, message: `the tabchat worker could not take over the session (phase ${chat?.phase ?? 'unknown'})` });
        }
    }
  }

  /** @internal an envelope of the current worker, in sequence */
  applyEnvelope(envelope: Envelope): void {
    if (envelope.type === 'net') {
      if (envelope.target !== serverKey(this.spec.server) || !(this.#session || this.#loginWait)) return;
      // Predates the login reply, which carried the state as of its own position.
      const session = this.#session;
      if (session && predates(envelope, session)) return;
      this.#events?.netState(envelope.state);
      return;
    }
    if (this.#loginWait && this.#loginWait.key === envelope.target) {
      this.#loginWait.envelopes.push(envelope);
      return;
    }
    const session = this.#session;
    if (!session || session.key !== envelope.target) return;
    switch (envelope.type) {
      case 'kicked':
        this.#applyKick(envelope.kickType);
        return;
      case 'lost':
        this.applyLost(envelope.error);
        return;
      case 'restored':
        session.instId = envelope.instId;
        session.token = envelope.token;
        return;
      case 'messages':
        this.#applyMessages(session, envelope);
        return;
    }
  }

  /** @internal the worker's buffer could not supply every message envelope this tab missed for `key` */
  applyGap(key: string): void {
    if (this.#session?.key !== key) return;
    const message = 'messages for this instance were dropped between the tabchat worker and this tab; they are in the server mailbox';
    this.#log.warn(message);
    this.#events?.error({ code: CODE.MESSAGES_MISSED, message });
  }

  /** Deliver each message once: not those predating the session, seen already, or sent by this chat. */
  #applyMessages(session: Session, envelope: MessagesEnvelope): void {
    if (predates(envelope, session)) return;
    session.position = envelope.position;
    const fresh: WireMessage[] = [];
    for (const message of envelope.messages) {
      const own = message.clientMsgId !== undefined && session.seen.has(message.clientMsgId);
      if (own || session.seen.has(message.id)) continue;
      remember(session.seen, message.id);
      fresh.push(message);
    }
    if (fresh.length > 0) this.#events?.messages(fresh);
  }

  #applyKick(type: KickType): void {
    if (!this.#session) return;
    this.#session = null;
    this.#events?.kicked(type);
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ChatError(CODE.NETWORK_TIMEOUT, `the tabchat worker did not answer ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer));
}
