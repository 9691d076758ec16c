/**
 * The chat API object applications use (docs/client-api.md). Generic over its
 * {@link ChatBackend}: a direct session engine in Node, the SharedWorker or a leader tab in
 * browsers. It owns this instance's API state: logged in or not, ready or not, and why not.
 *
 * Every public method runs (1) the not-ready gate unless whitelisted (the reference SDK's
 * whitelist: docs/reference-behaviour.md), (2) a parameter check that throws
 * `Error('Params validate failed.')` synchronously, (3) the method itself.
 */
import { textMessageError, type KickType, type WireMessage } from '../protocol/frames.js';
import { CODE, clientCodeText } from '../protocol/codes.js';
import { ChatError, KICK_REASON_CODE, asChatError } from '../core/errors.js';
import { isLogLevel, type LeveledLogger } from '../core/log.js';
import { newClientMsgId } from '../core/outbox.js';
import type { ErrorData, LoginResult, NetState } from '../protocol/data.js';
import type { BackendEvents, ChatBackend } from './backend.js';
import {
  NOT_IMPLEMENTED_FACTORIES,
  NOT_IMPLEMENTED_PROMISED,
  NOT_IMPLEMENTED_VOID,
  warnIgnored,
  warnOnce,
  type NotImplementedMembers,
} from './compat.js';
import { EVENT, TYPES } from './constants.js';
import { nextTask, type CancelTask } from '../core/next-task.js';
import { Emitter, type ChatEventHandler } from './emitter.js';
import { Message } from './message.js';
import { paramsError } from './params.js';
import { ChatConversations, type Conversation, type MessageListData } from './conversations.js';

/** Every successful call resolves `{code: 0, data}`. */
export interface ChatResponse<D> {
  code: 0;
  data: D;
}

/**
 * What `login()`, `logout()`, `destroy()` and `sendMessage()` return: a Promise of
 * `{code: 0, data}`, typed `void & …` so that it is also assignable where the reference SDK's
 * typings have `Promise<void>` (`const done: Promise<void> = chat.logout()` compiles), while
 * `(await chat.logout()).code` still type-checks.
 */
export type ChatPromise<D> = Promise<void & ChatResponse<D>>;

/** `{code: 0, data}` as a {@link ChatPromise} resolves it. */
function respond<D>(data: D): void & ChatResponse<D> {
  return { code: 0, data } as void & ChatResponse<D>;
}

/** `logout()` options (tabchat only; the reference's `logout()` takes none). */
export interface LogoutOptions {
  /**
   * Log out every chat of this user (same server and SDKAppID) in every tab of this browser
   * profile, not only this one: each of them emits SDK_NOT_READY (not-ready reason 3005),
   * as this chat does. For the "Log out" button of a web app whose tabs share one login
   * (`tabs: 'shared'`); in `'separate'` mode it logs out each tab's own instance of the user.
   * In Node (one chat per engine) it is a plain `logout()`. Default false.
   */
  allTabs?: boolean;
}

/** `login()` options. */
export interface LoginOptions {
  userID: string;
  userSig: string;
}

/** `data` of a resolved `login()`. */
export interface LoginResponseData {
  actionStatus: 'OK';
  errorCode: 0;
  /** `''` on a real login; an explanation when `repeatLogin` is true. */
  errorInfo: string;
  /** Server instance id of this login (absent on a repeated login). */
  instanceID?: number;
  /** True when this instance was already logged in: nothing was sent and no SDK_READY follows. */
  repeatLogin?: true;
}

/**
 * `createTextMessage()` options: the reference SDK's. tabchat sends C2C text; the options
 * marked "kept" are set on the Message object but not delivered to the recipient (the wire
 * carries the text only), the others are accepted and ignored; either kind is warned about
 * once (docs/migration.md).
 */
export interface TextMessageOptions {
  /** Recipient userID. */
  to: string;
  /**
   * `TYPES.CONV_C2C` (`'C2C'`). Another value is accepted here and makes `sendMessage()`
   * reject 2106. (Typed `TYPES | string`: in an object literal TypeScript widens
   * `TYPES.CONV_C2C` to `TYPES`, whose numeric members no `string` accepts.)
   */
  conversationType: TYPES | string;
  payload: { text: string };
  /** Kept on the Message (`message.priority`), not delivered. A `TYPES.MSG_PRIORITY_*` value. */
  priority?: TYPES | string;
  /** Kept on the Message (`message.cloudCustomData`), not delivered. */
  cloudCustomData?: string;
  /** Ignored. */
  needReadReceipt?: boolean;
  /** Ignored. */
  receiverList?: string[];
  /** Ignored. */
  isSupportExtension?: boolean;
  /** Ignored. */
  onProgress?: Function;
  /** Ignored. */
  customModerationConfigurationID?: string;
}

/** Options of `createTextMessage()` that tabchat ignores entirely. */
const IGNORED_MESSAGE_OPTIONS = ['needReadReceipt', 'receiverList', 'isSupportExtension', 'onProgress', 'customModerationConfigurationID'];
/** Options kept on the Message object only. */
const LOCAL_MESSAGE_OPTIONS = ['priority', 'cloudCustomData'];
/** Upload plugins of the reference (tabchat sends no files): accepted by `registerPlugin()` and ignored. */
const UPLOAD_PLUGINS = ['tim-upload-plugin', 'cos-js-sdk', 'cos-wx-sdk'];

/** `data` of a resolved `sendMessage()`, and of its rejection. */
export interface SendMessageData {
  message: Message;
}

/** Payloads (`event.data`) of the events this build emits. */
export interface ChatEventMap {
  sdkStateReady: undefined;
  sdkStateNotReady: undefined;
  sdkDestroy: { SDKAppID: number };
  kickedOut: { type: KickType };
  netStateChange: { state: NetState };
  error: { code: number; message: string };
  onMessageReceived: Message[];
  onConversationListUpdated: Conversation[];
  onTotalUnreadMessageCountUpdated: number;
  onMessageReadByPeer: Array<{ ID: string; conversationID: string; sequence: number; isPeerRead: true }>;
}

/** Payload type of event `K`. */
export type EventData<K extends string> = K extends keyof ChatEventMap ? ChatEventMap[K] : unknown;

/** A handler `on`, `off` and `once` accept: typed by the event's payload, or any `Function` (as in the reference typings). */
export type AnyEventHandler<K extends string> = ChatEventHandler<EventData<K>> | Function;

/** Options of {@link Chat}. */
export interface ChatOptions {
  /** SDKAppID of the instance (the `data` of SDK_DESTROY). */
  sdkAppId: number;
  /** Logger whose level `setLogLevel()` changes. */
  logger: LeveledLogger;
  /** Called once when `destroy()` has released everything (e.g. to drop a `create()` cache entry). */
  onDestroy?: () => void;
}

/**
 * API state of one chat instance; written only by `Chat#transition`.
 * `reason` is the not-ready reason a gated call is refused with.
 */
type ApiState =
  | { name: 'loggedOut'; reason: number }
  | { name: 'loggingIn'; reason: typeof CODE.LOGGING_IN }
  /** Login resolved; SDK_READY fires on the next task (`cancelReady` stops it). */
  | { name: 'loggedIn'; reason: typeof CODE.LOGGING_IN; userID: string; cancelReady: CancelTask }
  | { name: 'ready'; userID: string }
  | { name: 'loggingOut'; reason: typeof CODE.LOGGED_OUT; userID: string; done: Promise<void> }
  | { name: 'destroyed'; reason: number };

function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

function validateHandlerArgs(eventName: unknown, handler: unknown): void {
  if (!isNonEmptyString(eventName) || typeof handler !== 'function') throw paramsError();
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** A send failure: `{code, message, data: {message}}` with the message's status `fail`, as in the reference SDK. */
function sendFailure(message: Message, code: number, text: string, data: Record<string, unknown> = {}): ChatError {
  message.status = 'fail';
  return new ChatError(code, text, { ...data, message });
}

/**
 * The members of the reference SDK's chat instance that tabchat does not implement: they
 * exist on every chat, typed as the reference declares them, and reject with 9015
 * NOT_IMPLEMENTED at run time (src/client/compat.ts).
 */
export interface Chat extends NotImplementedMembers<Message> {}

/** One chat instance. Create it with `TabChat.create()`, not with `new`. */
export class Chat {
  #state: ApiState = { name: 'loggedOut', reason: CODE.USER_NOT_LOGGED_IN };
  /** Last network state announced with NET_STATE_CHANGE. */
  #netState: NetState = 'disconnected';
  /**
   * Net states the backend reported while a login is in flight: announced when it succeeds
   * (before it resolves), dropped when it fails, so a refused login shows no
   * connecting → connected → disconnected (docs/client-api.md "NET_STATE_CHANGE").
   */
  #loginNet: NetState[] = [];
  readonly #sdkAppId: number;
  readonly #backend: ChatBackend;
  readonly #emitter: Emitter;
  readonly #log: LeveledLogger;
  readonly #onDestroy: (() => void) | undefined;
  /** Unimplemented members this chat has logged an error about (once each). */
  readonly #refusedMembers = new Set<string>();
  /** Messages that arrived between the login and SDK_READY; emitted right after SDK_READY. */
  #early: Message[] = [];
  /** Conversations, history, read state (src/client/conversations.ts). */
  readonly #conversations: ChatConversations;

  /**
   * @param backend - carries the session; this object calls `setEvents` on it
   * @param options - logger and destroy hook
   */
  constructor(backend: ChatBackend, options: ChatOptions) {
    this.#backend = backend;
    this.#sdkAppId = options.sdkAppId;
    this.#log = options.logger;
    this.#onDestroy = options.onDestroy;
    this.#emitter = new Emitter(this.#log);
    const events: BackendEvents = {
      kicked: (type) => this.#backendOnKicked(type),
      lost: (error) => this.#backendOnLost(error),
      netState: (state) => this.#backendOnNetState(state),
      messages: (list) => this.#backendOnMessages(list),
      error: (error) => this.#emitter.emit(EVENT.ERROR, { code: error.code, message: error.message }),
      loggedOut: () => this.#backendOnLoggedOut(),
      conversations: (update) => {
        if (this.#state.name !== 'loggedOut' && this.#state.name !== 'destroyed') this.#conversations.received(update);
      },
    };
    this.#conversations = new ChatConversations(backend, (name, data) => this.#emitter.emit(name, data), () => this.#state.name === 'ready');
    backend.setEvents(events);
  }

  /**
   * Log in. Resolves `{code: 0, data: {actionStatus: 'OK', errorCode: 0, errorInfo: '', instanceID}}`
   * before SDK_READY, which fires on a later macrotask (so `isReady()` is still false inside
   * `.then`). Already logged in: resolves with `data.repeatLogin === true`, no SDK_READY.
   * A login in flight: rejects 2025. Refused by the server: rejects with the server's code
   * (70001, 70009, 60020 …) and the not-ready reason becomes 3001. Settles within the
   * engine's request timeout (10 s by default).
   * @throws Error('Params validate failed.') when userID or userSig is not a non-empty string
   */
  login(options: LoginOptions): ChatPromise<LoginResponseData> {
    if (typeof options !== 'object' || options === null) throw paramsError();
    const { userID, userSig } = options;
    if (!isNonEmptyString(userID) || !isNonEmptyString(userSig)) throw paramsError();
    const state = this.#state;
    switch (state.name) {
      case 'destroyed':
        return Promise.reject(new ChatError(CODE.DESTROYED));
      case 'loggingIn':
        return Promise.reject(new ChatError(CODE.REPEAT_LOGIN));
      case 'loggingOut':
        return state.done.then(() => this.login({ userID, userSig }));
      case 'loggedIn':
      case 'ready': {
        const errorInfo = `${state.userID} is already logged in on this instance; the repeated login was ignored`;
        this.#log.warn(errorInfo);
        return Promise.resolve(respond({ actionStatus: 'OK', errorCode: 0, errorInfo, repeatLogin: true }));
      }
      case 'loggedOut':
        return this.#startLogin(userID, userSig);
    }
  }

  /**
   * Log this instance out (other instances of the account are unaffected). Emits
   * SDK_NOT_READY, then resolves `{code: 0, data: {}}`; the not-ready reason becomes 3005.
   * Rejects 2024 when not logged in (no events).
   * @param options - `{allTabs: true}`: log out this user's chats in every tab of the
   *   browser profile at once ({@link LogoutOptions})
   * @throws Error('Params validate failed.') when `options` is given and not an object
   */
  logout(options?: LogoutOptions): ChatPromise<Record<string, never>> {
    if (options !== undefined && !isRecord(options)) throw paramsError();
    const allTabs = options?.allTabs === true;
    const state = this.#state;
    if (state.name === 'loggingOut') return state.done.then(() => respond({}));
    if (state.name !== 'loggedIn' && state.name !== 'ready') {
      return Promise.reject(new ChatError(CODE.USER_NOT_LOGGED_IN));
    }
    // The backend call starts after the transition, so nothing it reports precedes it.
    const done = Promise.resolve()
      .then(() => this.#backend.logout(allTabs))
      .catch((err: unknown) => this.#log.warn('logout was not confirmed by the server:', asChatError(err).message))
      .then(() => this.#finishLogout());
    this.#transition({ name: 'loggingOut', reason: CODE.LOGGED_OUT, userID: state.userID, done });
    return done.then(() => respond({}));
  }

  /** The logged-in userID, or `''`. */
  getLoginUser(): string {
    const state = this.#state;
    return state.name === 'loggedIn' || state.name === 'ready' || state.name === 'loggingOut' ? state.userID : '';
  }

  /** True between SDK_READY and SDK_NOT_READY. */
  isReady(): boolean {
    return this.#state.name === 'ready';
  }

  /**
   * Server clock in milliseconds since epoch. Gated: before SDK_READY it returns a rejected
   * Promise (code = not-ready reason) and emits ERROR, like the reference SDK.
   */
  getServerTime(): number {
    const refused = this.#gate('getServerTime', true);
    if (refused) return refused as unknown as number;
    return this.#backend.getServerTime();
  }

  /**
   * Log out (when logged in) and release everything this instance holds: socket or worker
   * registration, listeners. Emits SDK_NOT_READY (when logged in), then SDK_DESTROY
   * `{SDKAppID}`, then settles: resolves like `logout()`; rejects 2024 when not logged in,
   * but cleans up all the same. The instance cannot log in again afterwards (9011); a later
   * `create()` with the same SDKAppID makes a new one.
   */
  destroy(): ChatPromise<Record<string, never>> {
    return this.logout().finally(() => this.#release());
  }

  /**
   * Register `handler` for `eventName`; it gets `{name, data}`. Registering the same handler
   * twice calls it twice. Exceptions in handlers are caught and logged.
   * @throws Error('Params validate failed.') on a non-string name or non-function handler
   */
  on<K extends string>(eventName: K, handler: AnyEventHandler<K>, context?: unknown): void {
    validateHandlerArgs(eventName, handler);
    this.#emitter.on(eventName, handler as ChatEventHandler<never>, context, false);
  }

  /**
   * Remove every registration of `handler` for `eventName` (only those with `context`, when
   * given). An unknown handler only logs a warning.
   * @throws Error('Params validate failed.') on a non-string name or non-function handler
   */
  off<K extends string>(eventName: K, handler: AnyEventHandler<K>, context?: unknown): void {
    validateHandlerArgs(eventName, handler);
    this.#emitter.off(eventName, handler as ChatEventHandler<never>, context);
  }

  /**
   * Like `on`, removed after the first call. Gated like the reference SDK: before
   * SDK_READY it registers nothing and returns a rejected Promise (and emits ERROR).
   * @throws Error('Params validate failed.') on a non-string name or non-function handler (when ready)
   */
  once<K extends string>(eventName: K, handler: AnyEventHandler<K>, context?: unknown): void {
    const refused = this.#gate('once', true);
    if (refused) return refused as unknown as void;
    validateHandlerArgs(eventName, handler);
    this.#emitter.on(eventName, handler as ChatEventHandler<never>, context, true);
  }

  /**
   * A C2C text message to send with `sendMessage()` (status `unSend`, `flow` `'out'`).
   * Gated like the reference SDK: before SDK_READY it returns a rejected Promise (code =
   * not-ready reason) and emits ERROR. `priority` and `cloudCustomData` are kept on the
   * message object only; the reference's other message options are ignored (each warned
   * about once).
   * @throws Error('Params validate failed.') when `to` is not a non-empty string,
   *   `conversationType` not a non-empty string, `payload.text` not a string, or
   *   `priority` / `cloudCustomData` given and not a string
   */
  createTextMessage(options: TextMessageOptions): Message {
    const refused = this.#gate('createTextMessage', true);
    if (refused) return refused as unknown as Message;
    if (!isRecord(options)) throw paramsError();
    const { to, conversationType, payload, priority, cloudCustomData } = options;
    if (!isNonEmptyString(to) || !isNonEmptyString(conversationType) || !isRecord(payload) || typeof payload.text !== 'string') {
      throw paramsError();
    }
    if ((priority !== undefined && typeof priority !== 'string') || (cloudCustomData !== undefined && typeof cloudCustomData !== 'string')) {
      throw paramsError();
    }
    warnIgnored(this.#log, 'createTextMessage', options, IGNORED_MESSAGE_OPTIONS);
    for (const name of LOCAL_MESSAGE_OPTIONS) {
      if (options[name as keyof TextMessageOptions] !== undefined) {
        warnOnce(this.#log, `createTextMessage.${name}`, `createTextMessage: ${name} is kept on the message object but not delivered by tabchat (docs/migration.md)`);
      }
    }
    const message = Message.outgoing({
      clientMsgId: newClientMsgId(),
      from: this.getLoginUser(),
      to,
      conversationType,
      text: payload.text,
      serverTime: this.#backend.getServerTime(),
    });
    if (priority !== undefined) message.priority = priority;
    if (cloudCustomData !== undefined) message.cloudCustomData = cloudCustomData;
    return message;
  }

  /**
   * Send a message made by `createTextMessage()`. Resolves `{code: 0, data: {message}}`
   * once the server has stored it (status `success`, server `ID`, `time`, `sequence`).
   * Rejects `{code, message, data: {message}}` with status `fail`: 2105 for anything but
   * such a message (no `data.message`), 2106 for a conversationType other than `'C2C'`,
   * 9021 / 9020 / 80002 for a bad recipient / empty text / text over 12 KB, 9022 when the
   * server did not acknowledge it in time — the message then STAYS QUEUED and is still
   * delivered, exactly once; calling `sendMessage(message)` again waits for that same
   * send — and 9023 when it was dropped unsent (logout, kick). While the connection is
   * down, messages wait in the outbox and go out after the reconnect.
   * Gated before SDK_READY (rejects with the not-ready reason, emits ERROR). The sending
   * instance gets no MESSAGE_RECEIVED for its own message; the user's other instances do.
   */
  sendMessage(message: Message, options?: Record<string, unknown>): ChatPromise<SendMessageData> {
    const refused = this.#gate('sendMessage');
    if (refused) return refused;
    if (isRecord(options)) warnIgnored(this.#log, 'sendMessage', options, Object.keys(options));
    if (!(message instanceof Message)) return Promise.reject(new ChatError(CODE.MSG_INSTANCE_REQUIRED));
    if (message.conversationType !== TYPES.CONV_C2C) {
      return Promise.reject(sendFailure(message, CODE.MSG_INVALID_CONV_TYPE, clientCodeText(CODE.MSG_INVALID_CONV_TYPE)));
    }
    const invalid = textMessageError(message.to, message.payload.text);
    if (invalid) return Promise.reject(sendFailure(message, invalid.code, invalid.message));
    message.isResend = message.status === 'fail';
    message.status = 'unSend';
    message.from = this.getLoginUser();
    return this.#backend.sendText({ clientMsgId: message.clientMsgId, to: message.to, text: message.payload.text }).then(
      (wire) => {
        message.markSent(wire);
        return respond({ message });
      },
      (err: unknown) => {
        const error = asChatError(err);
        throw sendFailure(message, error.code, error.message, error.data);
      },
    );
  }

  /**
   * The user's C2C conversations, most recent activity first (reference shapes), from the
   * per-browser cache: a tab opened later gets them without a server round trip. Options
   * as the reference: an array of conversationIDs, or `{type, hasUnreadCount}` filters.
   */
  getConversationList(options?: string[] | object): ChatPromise<{ conversationList: Conversation[]; isSyncCompleted: boolean }> {
    return this.#gate('getConversationList') ?? this.#conversations.list(options).then(respond);
  }

  /**
   * One page (15 messages) of a conversation's history from the server: the newest page
   * without `nextReqMessageID`, then older ones; oldest first within a page. Rejects 9043
   * (not 'C2C' + userID), 9045 (a cursor of another conversation).
   */
  getMessageList(options: { conversationID: string; nextReqMessageID?: string }): ChatPromise<MessageListData> {
    return this.#gate('getMessageList') ?? this.#conversations.messages(options).then(respond);
  }

  /** Mark the conversation read up to its newest message (every tab and device of the user). Rejects 9043, 9044. */
  setMessageRead(options: { conversationID: string }): ChatPromise<Record<string, never>> {
    return this.#gate('setMessageRead') ?? this.#conversations.read(options).then(respond);
  }

  /** Unread messages over the user's conversations, as last announced (0 before SDK_READY). */
  getTotalUnreadMessageCount(): number {
    return this.#state.name === 'ready' ? this.#conversations.total() : 0;
  }

  /** Delete a conversation (or `{conversationIDList}`): it leaves the list, with its history, until a new message. */
  deleteConversation(options: string | { conversationIDList: string[]; clearHistoryMessage?: boolean }): ChatPromise<{ conversationID: string } | { conversationIDList: string[] }> {
    return this.#gate('deleteConversation') ?? this.#conversations.remove(options).then(respond);
  }

  /**
   * Send again a message whose send failed (the reference's `resendMessage`): the same as
   * `sendMessage(message)`, which resends a failed message with `isResend` set.
   */
  resendMessage(message: Message, options?: Record<string, unknown>): ChatPromise<SendMessageData> {
    return this.sendMessage(message, options);
  }

  /**
   * Log level: 0 debug, 1 info, 2 warn (default), 3 error, 4 none. Another value is
   * ignored (with a warning), as the reference SDK ignores it.
   */
  setLogLevel(level: number): void {
    if (isLogLevel(level)) this.#log.level = level;
    else this.#log.warn(`setLogLevel(${String(level)}) ignored: the level is 0, 1, 2, 3 or 4`);
  }

  /**
   * Accepted for compatibility: tabchat sends text only, so plugins such as the reference's
   * upload plugin (`{'tim-upload-plugin': TIMUploadPlugin}`) are ignored, with one warning
   * naming them. Never throws on an object; callable before login.
   * @throws Error('Params validate failed.') when `plugins` is not an object
   */
  registerPlugin(plugins: Record<string, unknown>): void {
    if (!isRecord(plugins)) throw paramsError();
    const names = Object.keys(plugins);
    const kind = names.every((name) => UPLOAD_PLUGINS.includes(name)) ? 'upload plugins' : 'plugins';
    this.#log.warn(`registerPlugin: ${kind} ${names.join(', ')} ignored; tabchat sends text messages only (docs/migration.md)`);
  }

  static {
    // The reference members tabchat does not implement: one generic refusal for all.
    for (const name of [...NOT_IMPLEMENTED_FACTORIES, ...NOT_IMPLEMENTED_VOID, ...NOT_IMPLEMENTED_PROMISED]) {
      Object.defineProperty(Chat.prototype, name, {
        configurable: true,
        writable: true,
        value(this: Chat) {
          return this.#notImplemented(name);
        },
      });
    }
  }

  // ------------------------------------------------------------------ internals

  /**
   * The answer of every unimplemented member: a rejected Promise (9015, the member named in
   * the message), marked handled so a call whose result is not awaited (a `void` listener, a
   * message factory) does not surface as an unhandled rejection; an error logged once.
   */
  #notImplemented(name: string): Promise<never> {
    const message = `${name} is not implemented by tabchat (docs/migration.md)`;
    if (!this.#refusedMembers.has(name)) {
      this.#refusedMembers.add(name);
      this.#log.error(message);
    }
    const refused = Promise.reject(new ChatError(CODE.NOT_IMPLEMENTED, message, { member: name }));
    refused.catch(() => {});
    return refused;
  }

  /** The only writer of {@link state}. */
  #transition(next: ApiState): void {
    const old = this.#state;
    if (old.name === 'loggedIn' && next.name !== 'loggedIn') old.cancelReady();
    if (next.name !== 'loggingIn' && next.name !== 'loggedIn' && next.name !== 'ready') this.#early = [];
    if (next.name !== 'loggingIn') this.#loginNet = [];
    if (next.name === 'loggedOut' || next.name === 'destroyed' || next.name === 'loggingIn') this.#conversations?.reset();
    this.#state = next;
    this.#log.debug(`api state ${old.name} → ${next.name}`);
  }

  /**
   * Not-ready gate: null when ready, else a rejected Promise whose error has
   * the current reason as code and `"<reason text> | <api> | SDK not ready"` as message;
   * emits ERROR with the same `{code, message}`.
   * @param valueApi - the method returns a value when ready: mark the rejection handled
   */
  #gate(api: string, valueApi = false): Promise<never> | null {
    const state = this.#state;
    if (state.name === 'ready') return null;
    const code = state.reason;
    const message = `${clientCodeText(code)} | ${api} | ${clientCodeText(CODE.SDK_IS_NOT_READY)}`;
    this.#emitter.emit(EVENT.ERROR, { code, message });
    const refused = Promise.reject(new ChatError(code, message));
    // A method that normally returns a value (a Message, a number) is rarely awaited: its
    // refusal must not surface as an unhandled rejection. ERROR reported it; awaiting the
    // returned Promise still rejects.
    if (valueApi) refused.catch(() => {});
    return refused;
  }

  async #startLogin(userID: string, userSig: string): ChatPromise<LoginResponseData> {
    this.#transition({ name: 'loggingIn', reason: CODE.LOGGING_IN });
    let result: LoginResult;
    try {
      result = await this.#backend.login({ userID, userSig });
    } catch (err) {
      if (this.#state.name === 'loggingIn') this.#transition({ name: 'loggedOut', reason: CODE.LOGIN_FAILED });
      throw asChatError(err);
    }
    // The states the socket went through during the login, before it resolves.
    for (const state of this.#loginNet.splice(0)) this.#announceNet(state);
    if (this.#state.name !== 'loggingIn') {
      // Destroyed while the login was in flight.
      await this.#backend.logout();
      throw new ChatError(CODE.DESTROYED);
    }
    // SDK_READY one task later, after the caller's continuation of this promise (the
    // reference's order), on a task that a hidden tab's timer throttling does not delay.
    const cancelReady = nextTask(() => this.#becomeReady());
    this.#transition({ name: 'loggedIn', reason: CODE.LOGGING_IN, userID: result.userID, cancelReady });
    return respond<LoginResponseData>({ actionStatus: 'OK', errorCode: 0, errorInfo: '', instanceID: result.instId });
  }

  #becomeReady(): void {
    const state = this.#state;
    if (state.name !== 'loggedIn') return;
    this.#transition({ name: 'ready', userID: state.userID });
    this.#emitter.emit(EVENT.SDK_READY);
    const early = this.#early;
    this.#early = [];
    if (early.length > 0 && this.#state.name === 'ready') this.#emitter.emit(EVENT.MESSAGE_RECEIVED, early);
    if (this.#state.name === 'ready') this.#conversations.becameReady();
  }

  #finishLogout(): void {
    if (this.#state.name !== 'loggingOut') return;
    this.#transition({ name: 'loggedOut', reason: CODE.LOGGED_OUT });
    this.#emitter.emit(EVENT.SDK_NOT_READY);
  }

  async #release(): Promise<void> {
    const state = this.#state;
    if (state.name === 'destroyed') return;
    this.#transition({ name: 'destroyed', reason: state.name === 'loggedOut' ? state.reason : CODE.LOGGED_OUT });
    try {
      await this.#backend.destroy();
    } catch (err) {
      this.#log.warn('destroy: the backend did not release cleanly:', asChatError(err).message);
    }
    this.#onDestroy?.();
    this.#emitter.emit(EVENT.SDK_DESTROY, { SDKAppID: this.#sdkAppId });
    this.#emitter.removeAll();
  }

  #isLoggedIn(): boolean {
    return this.#state.name === 'loggedIn' || this.#state.name === 'ready';
  }

  #backendOnKicked(type: KickType): void {
    if (!this.#isLoggedIn()) return;
    this.#transition({ name: 'loggedOut', reason: KICK_REASON_CODE[type] });
    this.#emitter.emit(EVENT.KICKED_OUT, { type });
    this.#emitter.emit(EVENT.SDK_NOT_READY);
  }

  /** Another chat of this user logged every tab out (`logout({allTabs: true})`): like a logout. */
  #backendOnLoggedOut(): void {
    if (!this.#isLoggedIn()) return;
    this.#transition({ name: 'loggedOut', reason: CODE.LOGGED_OUT });
    this.#emitter.emit(EVENT.SDK_NOT_READY);
  }

  #backendOnLost(error: ErrorData): void {
    if (!this.#isLoggedIn()) return;
    this.#transition({ name: 'loggedOut', reason: CODE.LOGIN_FAILED });
    this.#emitter.emit(EVENT.ERROR, { code: error.code, message: error.message });
    this.#emitter.emit(EVENT.SDK_NOT_READY);
  }

  /**
   * MESSAGE_RECEIVED when ready (and while a logout is in flight: the engine has already
   * acknowledged them); held from login to SDK_READY; dropped otherwise (no backend reports
   * messages after its instance ended).
   */
  #backendOnMessages(list: WireMessage[]): void {
    const messages = list.map((wire) => Message.fromWire(wire));
    switch (this.#state.name) {
      case 'ready':
      case 'loggingOut':
        this.#emitter.emit(EVENT.MESSAGE_RECEIVED, messages);
        return;
      case 'loggingIn':
      case 'loggedIn':
        this.#early.push(...messages);
        return;
      default:
        this.#log.debug(`${messages.length} message(s) dropped: not logged in (state ${this.#state.name})`);
    }
  }

  /**
   * NET_STATE_CHANGE describes the socket of a chat's session: held while a login is in
   * flight (announced if it succeeds), announced while logged in, and after the session
   * ended only the fall to `disconnected` (docs/client-api.md "NET_STATE_CHANGE").
   */
  #backendOnNetState(state: NetState): void {
    switch (this.#state.name) {
      case 'loggingIn':
        this.#loginNet.push(state);
        return;
      case 'loggedIn':
      case 'ready':
      case 'loggingOut':
        this.#announceNet(state);
        return;
      default:
        if (state === 'disconnected') this.#announceNet(state);
    }
  }

  /** Emit NET_STATE_CHANGE for a transition (never the same state twice in a row). */
  #announceNet(state: NetState): void {
    if (state === this.#netState) return;
    this.#netState = state;
    this.#emitter.emit(EVENT.NET_STATE_CHANGE, { state });
  }
}
