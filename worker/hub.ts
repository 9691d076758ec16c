/**
 * The hub: the part of the SharedWorker that knows tabs, chats and server instances. It hosts
 * one session engine per chat server URL (so ONE WebSocket per browser profile whatever the
 * number of tabs), maps each tab's chats onto server instances, and announces what happens
 * to them in sequenced envelopes. It does not know how it is hosted: worker/runtime.ts gives
 * it the engine factory, the event channel and the Web Locks (see {@link HubHost}). Beside
 * it: its engines (worker/hub-engines.ts), its message buffer (worker/message-buffer.ts) and
 * the orphans of dead runs it has in charge (worker/orphan-adoption.ts).
 *
 * Tab modes (`TabChat.create({tabs})`):
 * - `separate`: every chat is its own server instance (the reference a1/a2/a3 semantics).
 * - `shared`: chats of one user on one server and app share ONE instance. Joining never
 *   logs in again; leaving releases the instance only when its last chat leaves; a kick of
 *   the instance reaches every chat attached to it.
 *
 * Messages: every instance reports its mailbox to the hub in order (own sends included,
 * `reportOwn`), and the hub posts them in `messages` envelopes addressed to the instance key,
 * on the same sequenced channel as kicks, so a tab sees messages and kicks in the order they
 * happened. Each instance keeps its recent envelopes in a bounded buffer: a tab that saw a
 * gap in the sequence pulls what it missed with its resync (`register` with `after`).
 * Sends go through the engine's durable outbox (worker/outbox.ts); when a tab goes away
 * without logging out, its queued messages stay there for the user's next instance.
 *
 * One writer per piece of state: the server owns instances, this hub owns the socket and the
 * chat ↔ instance map, each tab owns its API state (and its resume credentials, so a new
 * worker can be rebuilt from the tabs at any moment).
 */
import { CODE } from '../src/protocol/codes.js';
import type { ConversationCall, ErrorData, OutgoingText } from '../src/protocol/data.js';
import type { KickType, WireMessage } from '../src/protocol/frames.js';
import {
  BUILD,
  HUB_VERSION,
  instanceKey,
  serverKey,
  type ChatPhase,
  type ChatResume,
  type ChatSnapshot,
  type ChatSpec,
  type Envelope,
  type LoginReply,
  type MessagesEnvelope,
  type RegisterRequest,
  type Reply,
  type Snapshot,
  type WorkerState,
} from '../src/protocol/hub-protocol.js';
import { fullJitterBackoff } from '../src/core/defaults.js';
import { ChatError, toErrorData } from '../src/core/errors.js';
import type { InstanceEvents, LoginParams, SessionHandle } from '../src/core/types.js';
import { HubEngines, type HubEngine } from './hub-engines.js';

const SERVER_KEY_PREFIX = serverKey('');
import { MessageBuffers } from './message-buffer.js';
import { OrphanAdoption, type OrphanHost } from './orphan-adoption.js';
import type { StoredInstance, StoredRun } from './storage.js';

export type { HubEngine } from './hub-engines.js';

/** The environment the hub runs in. */
export interface HubHost extends OrphanHost {
  /** Random id of this run. */
  epoch: string;
  /** Name of the lock this host holds for its life (tabs wait on it). */
  workerLock: string;
  /** Worker name, for diagnostics. */
  name: string;
  createEngine(server: string): HubEngine;
  /** Post an envelope to one tab (on its own channel: no other tab receives it). */
  deliver(tabId: string, envelope: Envelope): void;
  /** The tab is gone: close what {@link deliver} opened for it. */
  forgetTab(tabId: string): void;
  /** WebSockets open now / ever opened. */
  socketStats(): { open: number; opened: number };
  /** Record the live instances durably (for the next run, should this one die). */
  persist(instances: StoredInstance[]): void;
}

interface TabRecord {
  tabId: string;
  chats: Set<string>;
  /** `seq` of the last envelope posted to this tab (the next one's `prev`). */
  lastSent: number;
  stopWatching: () => void;
}

interface ChatRecord {
  spec: ChatSpec;
  tabId: string;
  phase: ChatPhase;
  /** Bumped by every login/logout/forget, so a late login result can tell it is stale. */
  generation: number;
  /** Instance the chat is (or was last) attached to. */
  key: string | null;
  kickType?: KickType;
  error?: ErrorData;
  /** Settles when the take-over in progress (phase `loggingIn` after a register) has an outcome. */
  takeOver?: Promise<void>;
}

type InstanceStatus = 'pending' | 'live' | 'ended';

/** A server instance as the hub holds it: the chats attached to it (one, or several in `shared` mode), its session handle. */
interface HubInstance {
  key: string;
  server: string;
  params: LoginParams;
  status: InstanceStatus;
  /** Set when the login (or resume) answers; the one source of the current instId and resume token (a re-login changes both). */
  handle: SessionHandle | null;
  expireAt: number;
  members: Set<string>;
  /** Settles when a pending instance becomes live or fails. */
  settled: Promise<void>;
  /** The instId a pending take-over resumes. */
  resumingInstId: number | null;
}

/** Longest send timeout a tab may ask for (ms). */
const MAX_SEND_TIMEOUT_MS = 24 * 3_600_000;

const ok = <T>(value: T): Reply<T> => ({ ok: true, value });
const fail = (err: unknown): Reply<never> => ({ ok: false, error: toErrorData(err) });

/**
 * How long a take-over (a new hub resuming a tab's session) keeps trying while the server is
 * unreachable; below the tab's register timeout (15 s), so the tab still gets its answer.
 */
const TAKEOVER_NETWORK_RETRY_MS = 10_000;
/** Delay before the next try of such a take-over: the engine's jittered backoff, 250 ms … 2 s. */
const TAKEOVER_BACKOFF = fullJitterBackoff({ minMs: 250, maxMs: 2_000 });

export class Hub {
  private seq = 0;
  private readonly tabs = new Map<string, TabRecord>();
  private readonly chats = new Map<string, ChatRecord>();
  private readonly instances = new Map<string, HubInstance>();
  private readonly engines: HubEngines;
  private readonly orphans: OrphanAdoption;
  /** Recent `messages` envelopes per instance key, for tabs that missed some (see {@link register}). */
  private readonly buffers = new MessageBuffers((key) => this.instances.has(key));

  constructor(private readonly host: HubHost) {
    this.engines = new HubEngines(
      (server) => host.createEngine(server),
      (server, state) => this.send({ type: 'net', target: serverKey(server), state }),
    );
    this.orphans = new OrphanAdoption(host, (instId) => this.isClaimed(instId));
  }

  /**
   * Take charge of the instances of a dead worker run: each one is released on the server
   * as soon as all its tabs are gone, unless a tab takes it over first (register).
   */
  adoptOrphans(run: StoredRun): void {
    this.orphans.adopt(run);
  }

  // ------------------------------------------------------------------ commands

  /** A tab says hello (again): check the build, take over its logged-in chats, answer a snapshot. */
  async register(req: RegisterRequest): Promise<Reply<Snapshot>> {
    if (req.build !== BUILD || req.hubVersion !== HUB_VERSION) {
      return fail(new ChatError(
        CODE.WORKER_VERSION_MISMATCH,
        `tabchat.js build ${req.build} (hub v${req.hubVersion}) cannot use worker build ${BUILD} (hub v${HUB_VERSION}); reload the page`,
        { tabBuild: req.build, workerBuild: BUILD },
      ));
    }
    const tab = this.ensureTab(req.tabId);
    // These instances are claimed by a live tab: they are not orphans of a dead run.
    for (const chat of req.resume) this.orphans.claim(chat.instId);
    await Promise.all(req.resume.map((chat) => this.takeOver(tab, chat)));
    return ok(this.snapshotFor(req.tabId, req.after));
  }

  async login(tabId: string, spec: ChatSpec, creds: { userID: string; userSig: string }): Promise<Reply<LoginReply>> {
    const tab = this.ensureTab(tabId);
    const chat = this.ensureChat(tab, spec);
    if (chat.phase === 'loggingIn') return fail(new ChatError(CODE.REPEAT_LOGIN));
    if (chat.phase === 'ready' && chat.key) {
      const inst = this.instances.get(chat.key);
      if (inst?.status === 'live') return ok(this.loginReply(inst, chat));
    }
    const generation = ++chat.generation;
    chat.phase = 'loggingIn';
    chat.key = instanceKey(spec, creds.userID);
    delete chat.kickType;
    delete chat.error;
    const params: LoginParams = { sdkAppId: spec.sdkAppId, userID: creds.userID, userSig: creds.userSig, platform: 'Web' };
    try {
      const inst = await this.acquire(spec, chat.key, params, null);
      if (!this.isCurrent(chat, generation)) {
        // Logged out, forgotten or the tab died while the login was in flight.
        await this.release(inst, spec.chatId);
        throw new ChatError(CODE.DESTROYED, 'the chat was logged out or destroyed while logging in');
      }
      inst.members.add(spec.chatId);
      chat.phase = 'ready';
      this.persist();
      return ok(this.loginReply(inst, chat));
    } catch (err) {
      if (this.isCurrent(chat, generation)) {
        chat.phase = 'idle';
        chat.key = null;
      }
      return fail(err);
    }
  }

  /** A conversation call as the chat's instance, served by its engine's shared cache (src/core/conversations.ts). */
  async conversation(tabId: string, chatId: string, call: ConversationCall): Promise<Reply<unknown>> {
    const chat = this.chats.get(chatId);
    const inst = chat && chat.tabId === tabId && chat.phase === 'ready' && chat.key ? this.instances.get(chat.key) : undefined;
    const engine = inst ? this.engines.find(inst.server) : undefined;
    if (!inst || inst.status !== 'live' || !inst.handle || !engine) return fail(new ChatError(CODE.USER_NOT_LOGGED_IN, 'this chat is not logged in in the tabchat worker'));
    try {
      return ok(await engine.conversation(inst.handle, call));
    } catch (err) {
      return fail(err);
    }
  }

  async sendText(tabId: string, chatId: string, message: OutgoingText, timeoutMs: number): Promise<Reply<WireMessage>> {
    const chat = this.chats.get(chatId);
    const inst = chat && chat.tabId === tabId && chat.phase === 'ready' && chat.key ? this.instances.get(chat.key) : undefined;
    const engine = inst ? this.engines.find(inst.server) : undefined;
    if (!inst || inst.status !== 'live' || !inst.handle || !engine) {
      return fail(new ChatError(CODE.USER_NOT_LOGGED_IN, 'this chat is not logged in in the tabchat worker'));
    }
    if (typeof message !== 'object' || message === null) return fail(new ChatError(CODE.INVALID_PARAMETER, 'sendText needs a message'));
    const options = typeof timeoutMs === 'number' && timeoutMs > 0 ? { timeoutMs: Math.min(timeoutMs, MAX_SEND_TIMEOUT_MS) } : {};
    try {
      return ok(await engine.send(inst.handle, { clientMsgId: message.clientMsgId, to: message.to, text: message.text }, options));
    } catch (err) {
      return fail(err);
    }
  }

  /**
   * Log a chat out. `allTabs` (`logout({allTabs: true})`): first end every other live
   * instance of the same user, server and SDKAppID (in `shared` mode the one they share,
   * in `separate` mode each tab's own), then this chat's.
   */
  async logout(tabId: string, chatId: string, allTabs = false): Promise<Reply<null>> {
    const chat = this.chats.get(chatId);
    if (!chat || chat.tabId !== tabId) return ok(null);
    const inst = allTabs && chat.key ? this.instances.get(chat.key) : undefined;
    const others = inst
      ? [...this.instances.values()].filter(
          (other) => other.status === 'live' && other.server === inst.server && other.params.sdkAppId === inst.params.sdkAppId && other.params.userID === inst.params.userID,
        )
      : [];
    // Every other chat first: the caller's own logout below may release the last member.
    await Promise.all(others.map((other) => this.logOutForAll(other, chatId)));
    await this.detach(chat);
    return ok(null);
  }

  async forget(tabId: string, chatId: string): Promise<Reply<null>> {
    const chat = this.chats.get(chatId);
    if (!chat || chat.tabId !== tabId) return ok(null);
    this.chats.delete(chatId);
    this.tabs.get(tabId)?.chats.delete(chatId);
    await this.detach(chat);
    return ok(null);
  }

  /** The tab is gone (its lock was released, or it said bye on pagehide). */
  async tabGone(tabId: string): Promise<void> {
    const tab = this.tabs.get(tabId);
    if (!tab) return;
    this.tabs.delete(tabId);
    tab.stopWatching();
    this.host.forgetTab(tabId);
    this.host.log.info(`tab ${tabId} gone; releasing ${tab.chats.size} chat(s)`);
    const chats = [...tab.chats].map((id) => this.chats.get(id)).filter((c): c is ChatRecord => c !== undefined);
    for (const chat of chats) this.chats.delete(chat.spec.chatId);
    // Nobody asked for these logouts: what the tab queued stays in the outbox.
    await Promise.all(chats.map((chat) => this.detach(chat, true)));
    if (this.tabs.size === 0) this.closeEngines('last tab left');
  }

  /** Whether the tab is known (registered or logged in, not gone). */
  knowsTab(tabId: string): boolean {
    return this.tabs.has(tabId);
  }

  /** The host's network came back (`online`) or went away (`offline`): tell every engine. */
  networkChanged(online: boolean): void {
    this.host.log.info(`network ${online ? 'online' : 'offline'}`);
    this.engines.setOnline(online);
  }

  getState(): WorkerState {
    const stats = this.host.socketStats();
    const chats: WorkerState['chats'] = {};
    for (const [id, chat] of this.chats) chats[id] = { ...this.chatSnapshot(chat), tabId: chat.tabId };
    return {
      name: this.host.name,
      build: BUILD,
      epoch: this.host.epoch,
      sockets: stats.open,
      socketsOpened: stats.opened,
      tabs: [...this.tabs.keys()],
      instances: [...this.instances.values()]
        .filter((inst) => inst.status === 'live')
        .map((inst) => ({ key: inst.key, userID: inst.params.userID, instId: inst.handle?.instId ?? 0, members: [...inst.members], server: inst.server })),
      chats,
      seq: this.seq,
    };
  }

  // ------------------------------------------------------------------ tabs and chats

  private ensureTab(tabId: string): TabRecord {
    let tab = this.tabs.get(tabId);
    if (!tab) {
      const record: TabRecord = { tabId, chats: new Set(), lastSent: 0, stopWatching: () => {} };
      this.tabs.set(tabId, record);
      record.stopWatching = this.host.watchTab(tabId, () => void this.tabGone(tabId), true);
      tab = record;
    }
    return tab;
  }

  private ensureChat(tab: TabRecord, spec: ChatSpec): ChatRecord {
    let chat = this.chats.get(spec.chatId);
    if (!chat) {
      chat = { spec, tabId: tab.tabId, phase: 'idle', generation: 0, key: null };
      this.chats.set(spec.chatId, chat);
      tab.chats.add(spec.chatId);
    }
    return chat;
  }

  private isCurrent(chat: ChatRecord, generation: number): boolean {
    return chat.generation === generation && this.chats.get(chat.spec.chatId) === chat && this.tabs.has(chat.tabId);
  }

  /**
   * Take over a chat the tab believes is logged in (worker restart): silent resume. A chat
   * offered again while its take-over is still in progress (a second register of the tab
   * crossed the first) waits for that take-over's outcome, so the snapshot never shows it
   * half done (`loggingIn`, which the tab would read as "not taken over").
   */
  private async takeOver(tab: TabRecord, resume: ChatResume): Promise<void> {
    const spec: ChatSpec = { chatId: resume.chatId, server: resume.server, sdkAppId: resume.sdkAppId, tabs: resume.tabs };
    const chat = this.ensureChat(tab, spec);
    if (chat.phase === 'loggingIn' && chat.takeOver) return chat.takeOver;
    if (chat.phase !== 'idle') return; // already known to this worker
    const running = this.resumeChat(chat, spec, resume);
    chat.takeOver = running;
    try {
      await running;
    } finally {
      if (chat.takeOver === running) delete chat.takeOver;
    }
  }

  private async resumeChat(chat: ChatRecord, spec: ChatSpec, resume: ChatResume): Promise<void> {
    const generation = ++chat.generation;
    chat.phase = 'loggingIn';
    chat.key = instanceKey(spec, resume.userID);
    const params: LoginParams = { sdkAppId: spec.sdkAppId, userID: resume.userID, userSig: resume.userSig, platform: 'Web' };
    try {
      const saved = { instId: resume.instId, token: resume.token, lastSeq: typeof resume.lastSeq === 'number' ? resume.lastSeq : null };
      // The old hub may have died while the server was unreachable (a leader tab closed during
      // an outage): keep trying for a while, as a live instance would ride out a network drop.
      const until = Date.now() + TAKEOVER_NETWORK_RETRY_MS;
      let inst: HubInstance;
      for (let attempt = 0; ; attempt++) {
        try {
          inst = await this.acquire(spec, chat.key, params, saved);
          break;
        } catch (err) {
          const code = toErrorData(err).code;
          const network = code === CODE.NETWORK_ERROR || code === CODE.NETWORK_TIMEOUT;
          const wait = TAKEOVER_BACKOFF(attempt);
          if (!network || Date.now() + wait >= until || !this.isCurrent(chat, generation)) throw err;
          this.host.log.info(`take-over of chat ${spec.chatId} waits for the server (${code}); again in ${Math.round(wait)} ms`);
          await new Promise((resolve) => setTimeout(resolve, wait));
          if (!this.isCurrent(chat, generation)) throw err;
        }
      }
      if (!this.isCurrent(chat, generation)) {
        await this.release(inst, spec.chatId);
        return;
      }
      inst.members.add(spec.chatId);
      chat.phase = 'ready';
      this.persist();
    } catch (err) {
      if (!this.isCurrent(chat, generation)) return;
      const error = toErrorData(err);
      const kickType = error.data?.kickType;
      if (typeof kickType === 'string') {
        chat.phase = 'kicked';
        chat.kickType = kickType as KickType;
      } else {
        chat.phase = 'lost';
        chat.error = error;
      }
      this.host.log.warn(`could not take over chat ${spec.chatId} (instance ${resume.instId}): ${error.code} ${error.message}`);
    }
  }

  /**
   * Leave the chat's instance (logout semantics); the chat itself stays known unless forgotten.
   * @param keepQueued - the tab went away: its instance's queued messages stay in the outbox
   */
  private async detach(chat: ChatRecord, keepQueued = false): Promise<void> {
    chat.generation++;
    const key = chat.key;
    chat.phase = 'idle';
    chat.key = null;
    delete chat.kickType;
    delete chat.error;
    if (!key) return;
    const inst = this.instances.get(key);
    if (inst && inst.status === 'live') await this.release(inst, chat.spec.chatId, keepQueued);
  }

  // ------------------------------------------------------------------ instances

  /**
   * The live instance for `key`: joins an existing one in shared mode, else logs in (or
   * resumes, when `resume` is given). Concurrent logins of one shared key wait for the first.
   */
  private async acquire(
    spec: ChatSpec,
    key: string,
    params: LoginParams,
    resume: { instId: number; token: string; lastSeq: number | null } | null,
  ): Promise<HubInstance> {
    for (;;) {
      const existing = this.instances.get(key);
      if (!existing || existing.status === 'ended') break;
      if (existing.status === 'live') {
        // Shared mode: keep the freshest UserSig for a later re-login.
        if (params.userSig !== existing.params.userSig) existing.params = { ...existing.params, userSig: params.userSig };
        return existing;
      }
      await existing.settled;
    }
    let settle!: () => void;
    const inst: HubInstance = {
      key,
      server: spec.server,
      params,
      status: 'pending',
      handle: null,
      expireAt: 0,
      members: new Set(),
      settled: new Promise<void>((resolve) => { settle = resolve; }),
      resumingInstId: resume ? resume.instId : null,
    };
    this.instances.set(key, inst);
    const events: InstanceEvents = {
      onKicked: (type) => this.instanceEnded(inst, { type: 'kicked', kickType: type }),
      onLost: (error) => this.instanceEnded(inst, { type: 'lost', error }),
      onRestored: () => this.instanceRestored(inst),
      onMessages: (messages) => this.instanceMessages(inst, messages),
      onConversations: (update) => this.send({ type: 'conversations', target: inst.key, update }),
      reportOwn: true,
    };
    const engine = this.engines.ensure(spec.server);
    try {
      const { handle, result } = resume
        ? await engine.resume(params, resume, events)
        : await engine.login(params, events);
      inst.handle = handle;
      inst.expireAt = result.expireAt;
      inst.resumingInstId = null;
      if (inst.status === 'pending') inst.status = 'live';
      return inst;
    } catch (err) {
      inst.status = 'ended';
      if (this.instances.get(key) === inst) this.instances.delete(key);
      throw err;
    } finally {
      settle();
    }
  }

  /** A chat leaves an instance; the last one out logs it out on the server (see {@link detach} for `keepQueued`). */
  private async release(inst: HubInstance, chatId: string, keepQueued = false): Promise<void> {
    inst.members.delete(chatId);
    if (inst.members.size > 0 || inst.status !== 'live') {
      if (inst.status === 'live') this.persist();
      return;
    }
    inst.status = 'ended';
    if (this.instances.get(inst.key) === inst) this.instances.delete(inst.key);
    this.persist();
    this.buffers.expire(inst.key);
    const engine = this.engines.find(inst.server);
    if (engine && inst.handle) await engine.logout(inst.handle, { keepQueued });
  }

  /**
   * `logout({allTabs: true})` of `byChat`: the chats attached to `inst` other than `byChat`
   * are logged out (phase `loggedOut`, envelope `loggedOut`); the instance itself ends here
   * unless `byChat` is one of its members (its own detach releases it).
   */
  private async logOutForAll(inst: HubInstance, byChat: string): Promise<void> {
    let others = 0;
    const tabIds = new Set<string>();
    for (const chatId of inst.members) {
      if (chatId === byChat) continue;
      const chat = this.chats.get(chatId);
      if (!chat || chat.key !== inst.key) continue;
      chat.generation++;
      chat.phase = 'loggedOut';
      chat.key = null;
      inst.members.delete(chatId);
      tabIds.add(chat.tabId);
      others++;
    }
    if (others > 0) this.send({ type: 'loggedOut', target: inst.key }, tabIds);
    if (inst.members.size === 0) await this.release(inst, byChat);
    else this.persist();
  }

  private instanceEnded(inst: HubInstance, why: { type: 'kicked'; kickType: KickType } | { type: 'lost'; error: ErrorData }): void {
    const wasLive = inst.status === 'live';
    inst.status = 'ended';
    if (this.instances.get(inst.key) === inst) this.instances.delete(inst.key);
    this.buffers.expire(inst.key);
    if (!wasLive) return; // a pending login/resume reports through its own promise
    for (const chatId of inst.members) {
      const chat = this.chats.get(chatId);
      if (!chat || chat.key !== inst.key || chat.phase !== 'ready') continue;
      chat.phase = why.type;
      if (why.type === 'kicked') chat.kickType = why.kickType;
      else chat.error = why.error;
    }
    inst.members.clear();
    // The tabs first (they wait for their KICKED_OUT), the durable record and the log after.
    if (why.type === 'kicked') this.send({ type: 'kicked', target: inst.key, kickType: why.kickType });
    else this.send({ type: 'lost', target: inst.key, error: why.error });
    this.persist();
    this.host.log.info(`instance ${inst.key} ended: ${why.type === 'kicked' ? why.kickType : `${why.error.code} ${why.error.message}`}`);
  }

  private instanceRestored(inst: HubInstance): void {
    if (!inst.handle || inst.status !== 'live') return;
    this.persist();
    this.send({ type: 'restored', target: inst.key, instId: inst.handle.instId, token: inst.handle.token });
  }

  /** The engine reported messages of the instance: post them to its chats, keep them for resyncs. */
  private instanceMessages(inst: HubInstance, messages: WireMessage[]): void {
    if (inst.status === 'ended' || this.instances.get(inst.key) !== inst) return;
    const position = inst.handle?.lastSeq ?? messages[messages.length - 1]?.seq ?? 0;
    this.buffers.add(this.send({ type: 'messages', target: inst.key, messages, position }) as MessagesEnvelope);
  }

  private loginReply(inst: HubInstance, chat: ChatRecord): LoginReply {
    const engine = this.engines.find(inst.server);
    return {
      instId: inst.handle?.instId ?? 0,
      token: inst.handle?.token ?? '',
      userID: inst.params.userID,
      serverTime: engine ? engine.getServerTime() : Date.now(),
      expireAt: inst.expireAt,
      seq: this.seq,
      epoch: this.host.epoch,
      generation: chat.generation,
      net: engine ? engine.netState : 'disconnected',
    };
  }

  // ------------------------------------------------------------------ engines and events

  private closeEngines(why: string): void {
    if (this.engines.size === 0) return;
    this.host.log.info(`closing ${this.engines.size} connection(s): ${why}`);
    this.engines.closeAll();
    this.instances.clear();
    this.buffers.expireAll();
    this.persist();
  }

  /** Whether this run holds (or is taking over) the server instance `instId`. */
  private isClaimed(instId: number): boolean {
    for (const inst of this.instances.values()) {
      if (inst.status === 'ended') continue;
      if (inst.handle?.instId === instId || inst.resumingInstId === instId) return true;
    }
    return false;
  }

  private persist(): void {
    const list: StoredInstance[] = [];
    for (const inst of this.instances.values()) {
      if (inst.status !== 'live' || !inst.handle) continue;
      const tabIds = new Set<string>();
      for (const chatId of inst.members) {
        const tabId = this.chats.get(chatId)?.tabId;
        if (tabId) tabIds.add(tabId);
      }
      list.push({
        key: inst.key,
        server: inst.server,
        sdkAppId: inst.params.sdkAppId,
        userID: inst.params.userID,
        instId: inst.handle.instId,
        token: inst.handle.token,
        tabIds: [...tabIds],
      });
    }
    this.host.persist(list);
  }

  /**
   * Number an event and post it to the tabs it concerns, each on its own channel with the
   * `seq` of the previous envelope that tab got (`prev`), so a tab tells a gap from the
   * envelopes meant for other tabs. The cost per event does not grow with the tab count.
   * @param tabIds - default: the tabs with a chat on the target (an instance key: attached
   *   to it or logging in to it; a server key: any chat of that server)
   */
  private send(event: DistributiveOmit<Envelope, 'v' | 'workerEpoch' | 'seq' | 'prev'>, tabIds?: Iterable<string>): Envelope {
    const envelope = { ...event, v: HUB_VERSION, workerEpoch: this.host.epoch, seq: ++this.seq, prev: 0 } as Envelope;
    for (const tabId of tabIds ?? this.tabsOf(envelope.target)) {
      const tab = this.tabs.get(tabId);
      if (!tab) continue;
      this.host.deliver(tabId, { ...envelope, prev: tab.lastSent });
      tab.lastSent = envelope.seq;
    }
    return envelope;
  }

  private tabsOf(target: string): Set<string> {
    const server = target.startsWith(SERVER_KEY_PREFIX) ? target.slice(SERVER_KEY_PREFIX.length) : null;
    const out = new Set<string>();
    for (const chat of this.chats.values()) {
      if (server === null ? chat.key === target : chat.spec.server === server) out.add(chat.tabId);
    }
    return out;
  }

  private chatSnapshot(chat: ChatRecord): ChatSnapshot {
    const snap: ChatSnapshot = { phase: chat.phase, generation: chat.generation };
    if (chat.phase === 'ready' && chat.key) {
      const inst = this.instances.get(chat.key);
      if (inst?.handle) {
        snap.userID = inst.params.userID;
        snap.instId = inst.handle.instId;
        snap.token = inst.handle.token;
      }
    }
    if (chat.kickType) snap.kickType = chat.kickType;
    if (chat.error) snap.error = chat.error;
    return snap;
  }

  /**
   * @param after - the last envelope the tab applied: add the `messages` envelopes after it
   *   for the instances of its chats (all of this epoch's when it names another epoch)
   */
  private snapshotFor(tabId: string, after?: { epoch: string; seq: number }): Snapshot {
    const tab = this.tabs.get(tabId);
    const chats: Record<string, ChatSnapshot> = {};
    const keys = new Set<string>();
    for (const id of tab?.chats ?? []) {
      const chat = this.chats.get(id);
      if (!chat) continue;
      chats[id] = this.chatSnapshot(chat);
      if (chat.key) keys.add(chat.key);
    }
    // What the tab missed since `after` (all of this run's when `after` names another run).
    const { messages, gaps } = after
      ? this.buffers.since(keys, after.epoch === this.host.epoch && typeof after.seq === 'number' ? after.seq : 0)
      : { messages: [], gaps: [] };
    const servers = this.engines.states();
    return { epoch: this.host.epoch, build: BUILD, seq: this.seq, workerLock: this.host.workerLock, chats, servers, messages, gaps };
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
