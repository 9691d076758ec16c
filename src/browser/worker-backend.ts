/**
 * The {@link ChatBackend} of one chat in a browser page: its session lives in the page's
 * hub (the SharedWorker, or the leader tab), reached through a narrow {@link HubCalls}
 * interface (the page's HubConnection). It keeps what the tab owns of the session (userID,
 * UserSig, instId, token, mailbox position), so a new hub can take it over, and applies the
 * hub's envelopes addressed to it: kicks, losses, restores, messages (each once) and the
 * state of the socket.
 */
import { CODE } from '../protocol/codes.js';
import type { ConversationCall, ErrorData, LoginResult, Logger, NetState, OutgoingText } from '../protocol/data.js';
import type { KickType, WireMessage } from '../protocol/frames.js';
import {
  instanceKey,
  serverKey,
  type ChatResume,
  type ChatSnapshot,
  type ChatSpec,
  type Envelope,
  type HubApi,
  type MessagesEnvelope,
  type Reply,
} from '../protocol/hub-protocol.js';
import { ChatError, asChatError } from '../core/errors.js';
import { nextTask } from '../core/next-task.js';
import type { BackendEvents, ChatBackend } from '../client/backend.js';
import { TAB_ID } from './tab-lock.js';

/** Timeout of `login` (the worker's engine gives up after 10 s, including its connection wait). */
export const LOGIN_TIMEOUT_MS = 15_000;
/** Timeout of `logout`/`forget` (one server round trip, bounded by the engine's 10 s). */
export const LOGOUT_TIMEOUT_MS = 12_000;
/** Timeout of the other commands (answered by the worker alone); also the margin of `sendText` over its own timeout. */
export const COMMAND_TIMEOUT_MS = 5_000;
/** How many new hubs are tried after the old one died: for the take-over of the sessions, and for a send it interrupted. */
export const TAKEOVER_ATTEMPTS = 3;
/** Ids (message ids and own clientMsgIds) a chat remembers to drop duplicates. */
const SEEN_LIMIT = 1_000;

/** What a backend needs of its page's hub connection. */
export interface HubCalls {
  /**
   * Run one command with a timeout (connecting first if needed). Rejects with the hub's
   * coded error, 2801 on timeout, 9008 when the hub dies meanwhile, 9012 on a build mismatch.
   */
  call<T>(name: string, timeoutMs: number, invoke: (api: HubApi) => Promise<Reply<T>>): Promise<T>;
  /** The backend is destroyed: stop handing it envelopes. */
  dropBackend(backend: WorkerBackend): void;
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

/** {@link ChatBackend} of one chat instance, carried by the page's hub. */
export class WorkerBackend implements ChatBackend {
  #events: BackendEvents | null = null;
  #session: Session | null = null;
  /** Set while a login is in flight: envelopes for its instance wait here for the reply. */
  #loginWait: { key: string; envelopes: Envelope[] } | null = null;
  /** serverTime − Date.now(), ms. */
  #clockOffset = 0;
  /** The socket state last reported to the chat (the chat starts from `disconnected`). */
  #net: NetState = 'disconnected';
  #destroyed = false;

  readonly #hub: HubCalls;
  readonly #log: Logger;
  readonly #sendTimeoutMs: number;

  constructor(hub: HubCalls, readonly spec: ChatSpec, log: Logger, sendTimeoutMs: number) {
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
      this.#reportNet(reply.net);
      const late = wait.envelopes.filter((envelope) => envelope.seq > reply.seq);
      if (late.length > 0) {
        // After the chat has seen the login resolve (a kick between login and SDK_READY), on a
        // task a hidden tab does not throttle (src/core/next-task.ts).
        nextTask(() => { for (const envelope of late) this.applyEnvelope(envelope); });
      }
      return reply; // a LoginResult with more fields; the chat reads instId and userID
    } finally {
      if (this.#loginWait === wait) this.#loginWait = null;
    }
  }

  async logout(allTabs = false): Promise<void> {
    const session = this.#session;
    this.#session = null;
    if (!session) return;
    try {
      await this.#hub.call('logout', LOGOUT_TIMEOUT_MS, (api) => api.logout(TAB_ID, this.spec.chatId, allTabs));
    } catch (err) {
      // Released locally; a dead or new worker does not hold the instance, the server
      // releases it when this tab's lock or the old socket goes.
      this.#log.info('logout not confirmed by the worker:', asChatError(err).message);
    }
  }

  getServerTime(): number {
    return Date.now() + this.#clockOffset;
  }

  conversation(call: ConversationCall): Promise<unknown> {
    if (!this.#session) return Promise.reject(new ChatError(CODE.USER_NOT_LOGGED_IN, 'not logged in'));
    return this.#hub.call('conversation', COMMAND_TIMEOUT_MS, (api) => api.conversation(TAB_ID, this.spec.chatId, call));
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

  /**
   * @internal the worker died with its socket: a session waits for the take-over by its
   * replacement (`connecting`); a chat without one no longer has a socket to show. With
   * `stall`: the leader's hub does not answer (9009); the same, and a session hears why.
   */
  workerDown(stall?: ErrorData): void {
    if (this.#followsNet()) this.#reportNet(this.#session ? 'connecting' : 'disconnected');
    if (stall && this.#session) this.#events?.error(stall);
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
    if (server) this.#clockOffset = server.serverTime - Date.now();
    // No entry: the hub has no engine for this server, hence no socket.
    if (this.#followsNet()) this.#reportNet(server?.net ?? 'disconnected');
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
      case 'loggedOut':
        this.#applyLoggedOut();
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
      if (envelope.target !== serverKey(this.spec.server) || !this.#followsNet()) return;
      // Predates the login reply, which carried the state as of its own position.
      const session = this.#session;
      if (session && predates(envelope, session)) return;
      this.#reportNet(envelope.state);
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
      case 'loggedOut':
        this.#applyLoggedOut();
        return;
      case 'restored':
        session.instId = envelope.instId;
        session.token = envelope.token;
        return;
      case 'messages':
        this.#applyMessages(session, envelope);
        return;
      case 'conversations':
        this.#events?.conversations(envelope.update);
        return;
    }
  }

  /** @internal the worker's buffer could not supply every message envelope this tab missed for `key` */
  applyGap(key: string): void {
    if (this.#session?.key !== key) return;
    const message = 'this tab missed messages of this instance; they are in the server mailbox';
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

  /** Another chat of the user logged every tab out. */
  #applyLoggedOut(): void {
    if (!this.#session) return;
    this.#session = null;
    this.#events?.loggedOut();
  }

  #applyKick(type: KickType): void {
    if (!this.#session) return;
    this.#session = null;
    this.#events?.kicked(type);
  }

  /**
   * Whether the chat follows the socket's state: while it logs in or is logged in, and after
   * its session ended (logout, kick, loss) until it has reported `disconnected`, so the state
   * it shows never stays `connected` after the socket closed. A chat that is logged out and
   * shows `disconnected` ignores what other tabs do with the socket.
   */
  #followsNet(): boolean {
    return this.#session !== null || this.#loginWait !== null || this.#net !== 'disconnected';
  }

  #reportNet(state: NetState): void {
    this.#net = state;
    this.#events?.netState(state);
  }
}
