/**
 * The session engine: one WebSocket to the chat server carrying any number of login
 * instances, addressed by `instId`. See docs/protocol.md for the frames and
 * docs/client-api.md for what applications observe.
 *
 * - The socket opens lazily on the first login and closes when the last instance leaves.
 * - `hello` → `welcome` handshake; every request has an id, a timeout (2801) and an entry
 *   in the pending map, rejected with 2800 when the socket closes.
 * - Client `ping` every `heartbeatMs`; a socket silent for `heartbeatMs + silenceMarginMs`
 *   is closed (4001) and reopened.
 * - While instances exist, a lost socket is reopened with capped full-jitter backoff and
 *   every instance is resumed silently (or logged in again with its stored UserSig when
 *   the resume window has passed). Terminal close codes (4500–4999) end all instances.
 * - A kicked instance is forgotten at once and never logs itself in again.
 *
 * Portable: no Node-only or window-only API; the WebSocket constructor is injected.
 */
import { CLOSE, CODE, codeText, isTerminalClose, terminalCloseError } from '../protocol/codes.js';
import {
  PROTOCOL_VERSION,
  encodeFrame,
  isKickType,
  parseServerFrame,
  type ClientFrame,
  type KickFrame,
  type KickType,
  type LoginResultData,
  type RequestFrame,
  type ResultFrame,
  type ResumeResultData,
  type WelcomeFrame,
} from '../protocol/frames.js';
import { ChatError, KICK_REASON_CODE, asChatError, toErrorData } from './errors.js';
import { createConsoleLogger } from './log.js';
import type {
  InstanceEvents,
  LoginParams,
  LoginResult,
  Logger,
  NetState,
  SessionEngineApi,
  SessionEngineOptions,
  SessionHandle,
  SessionState,
  StateChange,
  WebSocketConstructor,
  WebSocketLike,
} from './types.js';

/** Default timeout of a request (and of a login including its connection wait), in ms. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
/** Default silence tolerated beyond the server's heartbeat interval, in ms. */
export const DEFAULT_SILENCE_MARGIN_MS = 10_000;
/** Default smallest reconnect delay, in ms. */
export const DEFAULT_BACKOFF_MIN_MS = 500;
/** Default largest reconnect delay, in ms. */
export const DEFAULT_BACKOFF_MAX_MS = 10_000;

/** `WebSocket.OPEN` (the constant is not on every injected constructor). */
const SOCKET_OPEN = 1;
/** Close code used internally when a socket could not even be created. */
const CLOSE_ABNORMAL = 1006;

/**
 * Capped full-jitter backoff: `min(max, min + random() · min(max, min · 2^attempt))`.
 * @param options.minMs - default 500
 * @param options.maxMs - default 10 000
 * @param options.random - default `Math.random`
 */
export function fullJitterBackoff(
  options: { minMs?: number; maxMs?: number; random?: () => number } = {},
): (attempt: number) => number {
  const { minMs = DEFAULT_BACKOFF_MIN_MS, maxMs = DEFAULT_BACKOFF_MAX_MS, random = Math.random } = options;
  return (attempt) => Math.min(maxMs, minMs + random() * Math.min(maxMs, minMs * 2 ** attempt));
}

type Timer = ReturnType<typeof setTimeout>;

/** One socket and what belongs to it; replaced (never reused) on reconnect. */
interface Connection {
  /** Monotonically increasing; callbacks of a replaced socket see another id and drop their event. */
  readonly id: number;
  readonly socket: WebSocketLike;
  /** When `hello` was sent (ms), for the clock offset measured on `welcome`. */
  helloSentAt: number;
  /** When the last `ping` was sent (ms), for the clock offset measured on `pong`. */
  lastPingAt: number;
  /** From `welcome`; 0 before it. */
  heartbeatMs: number;
  pingTimer: ReturnType<typeof setInterval> | undefined;
  watchdog: Timer | undefined;
}

interface PendingRequest {
  resolve(data: unknown): void;
  reject(error: ChatError): void;
  timer: Timer;
  sentAt: number;
}

interface OpenWaiter {
  resolve(): void;
  reject(error: ChatError): void;
  timer: Timer;
}

/**
 * - `attached`: live on the current connection.
 * - `detached`: its connection dropped; resumed when the next one opens.
 * - `restoring`: resume (or re-login) in flight.
 */
type InstanceState = 'attached' | 'detached' | 'restoring';

/** An instance as the engine tracks it; handed out as its {@link SessionHandle}. */
class Instance implements SessionHandle {
  instId: number;
  token: string;
  state: InstanceState = 'attached';
  readonly params: LoginParams;
  readonly events: InstanceEvents;

  constructor(instId: number, token: string, params: LoginParams, events: InstanceEvents) {
    this.instId = instId;
    this.token = token;
    this.params = params;
    this.events = events;
  }
  get userID(): string {
    return this.params.userID;
  }
  get sdkAppId(): number {
    return this.params.sdkAppId;
  }
  get platform(): LoginParams['platform'] {
    return this.params.platform;
  }
}

function netStateOf(state: SessionState): NetState {
  if (state === 'open') return 'connected';
  if (state === 'connecting' || state === 'reconnecting') return 'connecting';
  return 'disconnected';
}

function isLoginResultData(value: unknown): value is LoginResultData {
  if (typeof value !== 'object' || value === null) return false;
  const data = value as Record<string, unknown>;
  return typeof data.instId === 'number' && typeof data.token === 'string' && typeof data.userID === 'string';
}

/** ws and browsers accept only 1000 and 3000–4999 in `close()`. */
function sendableCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** The session engine; see the module comment. */
export class SessionEngine implements SessionEngineApi {
  private readonly url: string;
  private readonly WebSocketCtor: WebSocketConstructor;
  private readonly clientName: string;
  private readonly requestTimeoutMs: number;
  private readonly silenceMarginMs: number;
  private readonly backoff: (attempt: number) => number;
  private readonly log: Logger;

  /** Written only by {@link transition}. */
  private current: SessionState = 'idle';
  private conn: Connection | null = null;
  private nextConnectionId = 1;
  private nextRequestId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly waiters = new Set<OpenWaiter>();
  /** By current instId. */
  private readonly instances = new Map<number, Instance>();
  /** Logins between their call and their settlement; they keep the socket open. */
  private activeLogins = 0;
  /** Reconnect attempts since the last `welcome`. */
  private attempt = 0;
  private reconnectTimer: Timer | undefined;
  /** Pending close of an unused socket (see {@link releaseIfUnused}). */
  private releaseTimer: Timer | undefined;
  /** serverTime − localTime, in ms. */
  private clockOffset = 0;
  private readonly stateListeners = new Set<(change: StateChange) => void>();
  private readonly netListeners = new Set<(state: NetState) => void>();

  /** @param options - see {@link SessionEngineOptions} for the defaults */
  constructor(options: SessionEngineOptions) {
    this.url = options.url;
    this.WebSocketCtor = options.WebSocket;
    this.clientName = options.clientName ?? 'tabchat';
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.silenceMarginMs = options.silenceMarginMs ?? DEFAULT_SILENCE_MARGIN_MS;
    this.backoff = options.backoff ?? fullJitterBackoff();
    this.log = options.logger ?? createConsoleLogger('tabchat:engine');
  }

  get state(): SessionState {
    return this.current;
  }
  get netState(): NetState {
    return netStateOf(this.current);
  }
  get instanceCount(): number {
    return this.instances.size;
  }

  onStateChange(listener: (change: StateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
  onNetState(listener: (state: NetState) => void): () => void {
    this.netListeners.add(listener);
    return () => this.netListeners.delete(listener);
  }

  getServerTime(): number {
    return Date.now() + this.clockOffset;
  }

  async login(params: LoginParams, events: InstanceEvents): Promise<{ handle: SessionHandle; result: LoginResult }> {
    return this.acquire(params, events, (remainingMs) => this.loginRequest(params, remainingMs()));
  }

  async resume(
    params: LoginParams,
    saved: { instId: number; token: string },
    events: InstanceEvents,
  ): Promise<{ handle: SessionHandle; result: LoginResult }> {
    return this.acquire(params, events, async (remainingMs) => {
      try {
        const resumed = await this.resumeRequest(saved.instId, saved.token, remainingMs());
        return { instId: saved.instId, token: saved.token, userID: params.userID, serverTime: resumed.serverTime, expireAt: resumed.expireAt };
      } catch (err) {
        const error = asChatError(err);
        if (error.code !== CODE.RESUME_FAILED) throw error;
      }
      try {
        return await this.loginRequest(params, remainingMs());
      } catch (err) {
        throw refusalAsKick(asChatError(err));
      }
    });
  }

  async logout(handle: SessionHandle): Promise<void> {
    if (!(handle instanceof Instance) || !this.owns(handle)) return;
    this.instances.delete(handle.instId);
    try {
      // A restoring instance is logged out when its resume answers (see restore);
      // a detached one is released by the server when the resume window ends.
      if (handle.state === 'attached') await this.request((id) => ({ type: 'logout', id, instId: handle.instId }));
    } catch (err) {
      this.log.info(`logout of instance ${handle.instId} not confirmed by the server:`, asChatError(err).message);
    } finally {
      this.releaseIfUnused();
    }
  }

  close(): void {
    if (this.current === 'closed') return;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.releaseTimer);
    this.reconnectTimer = undefined;
    this.releaseTimer = undefined;
    const conn = this.conn;
    this.conn = null;
    this.instances.clear();
    const error = new ChatError(CODE.DESTROYED, 'the session engine was closed');
    this.rejectPending(error);
    this.rejectWaiters(error);
    if (conn) this.closeConnection(conn, 1000, 'client closed');
    this.transition('closed', { code: 1000, reason: 'closed by the client' });
  }

  /**
   * Common part of login and resume: wait for the connection (the whole call is bounded by
   * one request timeout), run `register` on it, and track the instance it yields.
   */
  private async acquire(
    params: LoginParams,
    events: InstanceEvents,
    register: (remainingMs: () => number) => Promise<LoginResultData>,
  ): Promise<{ handle: SessionHandle; result: LoginResult }> {
    if (this.current === 'closed') throw new ChatError(CODE.DESTROYED, 'the session engine is closed');
    const deadline = Date.now() + this.requestTimeoutMs;
    this.activeLogins++;
    try {
      await this.whenOpen(deadline);
      const data = await register(() => Math.max(1, deadline - Date.now()));
      const instance = new Instance(data.instId, data.token, params, events);
      this.instances.set(instance.instId, instance);
      return {
        handle: instance,
        result: { instId: data.instId, userID: data.userID, serverTime: data.serverTime, expireAt: data.expireAt },
      };
    } finally {
      this.activeLogins--;
      this.releaseIfUnused();
    }
  }

  // ------------------------------------------------------------------ state machine

  /** The only writer of {@link current}. Returns whether the state changed. */
  private transition(next: SessionState, why: { code: number; reason: string }): boolean {
    const oldState = this.current;
    if (oldState === next) return false;
    this.current = next;
    const change: StateChange = { oldState, newState: next, code: why.code, reason: why.reason };
    this.log.debug(`state ${oldState} → ${next} (${why.code} ${why.reason})`);
    for (const listener of [...this.stateListeners]) this.safely(() => listener(change));
    const oldNet = netStateOf(oldState);
    const newNet = netStateOf(next);
    if (oldNet !== newNet) for (const listener of [...this.netListeners]) this.safely(() => listener(newNet));
    return true;
  }

  // ------------------------------------------------------------------ connection

  private whenOpen(deadline: number): Promise<void> {
    if (this.current === 'open') return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const waitMs = Math.max(0, deadline - Date.now());
      const waiter: OpenWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new ChatError(CODE.NETWORK_TIMEOUT, `no connection to ${this.url} within ${waitMs} ms (state '${this.current}')`));
        }, waitMs),
      };
      this.waiters.add(waiter);
      if (this.current === 'idle') {
        this.transition('connecting', { code: 0, reason: 'login' });
        this.openSocket();
      }
    });
  }

  private openSocket(): void {
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketCtor(this.url);
    } catch (err) {
      this.handleDisconnect(CLOSE_ABNORMAL, `cannot open ${this.url}: ${asChatError(err).message}`);
      return;
    }
    const id = this.nextConnectionId++;
    const conn: Connection = { id, socket, helloSentAt: 0, lastPingAt: 0, heartbeatMs: 0, pingTimer: undefined, watchdog: undefined };
    this.conn = conn;
    socket.onopen = () => this.socketOnOpen(id);
    socket.onmessage = (event) => this.socketOnMessage(id, event.data);
    socket.onclose = (event) => this.socketOnClose(id, event.code, event.reason);
    // The close event follows every error; the reason is reported there.
    socket.onerror = () => this.log.debug(`socket #${id} error`);
    this.armWatchdog(conn, this.requestTimeoutMs, 'no welcome');
  }

  /** The current connection if `id` names it, else null (the event comes from a replaced socket). */
  private connection(id: number): Connection | null {
    return this.conn !== null && this.conn.id === id ? this.conn : null;
  }

  private socketOnOpen(id: number): void {
    const conn = this.connection(id);
    if (!conn) return;
    conn.helloSentAt = Date.now();
    this.send(conn, { type: 'hello', v: PROTOCOL_VERSION, client: this.clientName });
  }

  private socketOnMessage(id: number, raw: unknown): void {
    const conn = this.connection(id);
    if (!conn) return;
    if (conn.heartbeatMs > 0) this.armWatchdog(conn, conn.heartbeatMs + this.silenceMarginMs, 'no frame');
    if (typeof raw !== 'string') {
      this.log.warn('dropped a binary frame from the server');
      return;
    }
    const parsed = parseServerFrame(raw);
    if (!parsed.ok) {
      this.log.warn(`dropped a server frame: ${parsed.message}`);
      return;
    }
    const frame = parsed.frame;
    switch (frame.type) {
      case 'welcome':
        this.handleWelcome(conn, frame);
        break;
      case 'result':
        this.handleResult(frame);
        break;
      case 'kick':
        this.handleKick(frame);
        break;
      case 'pong':
        this.updateClock(frame.serverTime, conn.lastPingAt);
        break;
      case 'error':
        this.log.warn(`server error ${frame.code}: ${frame.message}`);
        break;
    }
  }

  private socketOnClose(id: number, code: number, reason: string): void {
    const conn = this.connection(id);
    if (!conn) return;
    this.conn = null;
    this.stopTimers(conn);
    this.handleDisconnect(code, reason);
  }

  private handleWelcome(conn: Connection, frame: WelcomeFrame): void {
    if (conn.heartbeatMs > 0) return; // one welcome per connection
    if (frame.v !== PROTOCOL_VERSION) {
      this.closeSocket(CLOSE.PROTOCOL_VERSION, `server speaks protocol v${frame.v}, this client v${PROTOCOL_VERSION}`);
      return;
    }
    this.updateClock(frame.serverTime, conn.helloSentAt);
    conn.heartbeatMs = Math.max(1, frame.heartbeatMs);
    conn.pingTimer = setInterval(() => this.sendPing(conn), conn.heartbeatMs);
    this.armWatchdog(conn, conn.heartbeatMs + this.silenceMarginMs, 'no frame');
    this.attempt = 0;
    this.transition('open', { code: 0, reason: `welcome from node ${frame.node}` });
    for (const waiter of [...this.waiters]) {
      clearTimeout(waiter.timer);
      waiter.resolve();
    }
    this.waiters.clear();
    for (const instance of [...this.instances.values()]) {
      if (instance.state === 'detached') void this.restore(instance);
    }
  }

  /** Close the current socket on our own initiative; the replaced socket's events are dropped. */
  private closeSocket(code: number, reason: string): void {
    const conn = this.conn;
    if (!conn) return;
    this.conn = null;
    this.closeConnection(conn, code, reason);
    this.handleDisconnect(code, reason);
  }

  private closeConnection(conn: Connection, code: number, reason: string): void {
    this.stopTimers(conn);
    try {
      // Close reasons are limited to 123 bytes; the full reason goes to the state change.
      conn.socket.close(sendableCloseCode(code), reason.slice(0, 60));
    } catch (err) {
      this.log.debug(`socket #${conn.id} close failed:`, asChatError(err).message);
    }
  }

  private stopTimers(conn: Connection): void {
    clearInterval(conn.pingTimer);
    clearTimeout(conn.watchdog);
    conn.pingTimer = undefined;
    conn.watchdog = undefined;
  }

  private armWatchdog(conn: Connection, ms: number, what: string): void {
    clearTimeout(conn.watchdog);
    conn.watchdog = setTimeout(() => {
      if (this.connection(conn.id)) this.closeSocket(CLOSE.HEARTBEAT_TIMEOUT, `${what} from the server for ${ms} ms`);
    }, ms);
  }

  /** After the socket is gone: fail requests, then reconnect, end the instances, or go idle. */
  private handleDisconnect(code: number, reason: string): void {
    const text = `connection closed (${code}${reason ? `: ${reason}` : ''})`;
    this.rejectPending(new ChatError(CODE.NETWORK_ERROR, text, { closeCode: code }));
    for (const instance of this.instances.values()) instance.state = 'detached';
    if (isTerminalClose(code)) {
      const lost = [...this.instances.values()];
      this.instances.clear();
      const error = new ChatError(terminalCloseError(code), `the server ended the connection for good: ${text}`, { closeCode: code });
      this.rejectWaiters(error);
      this.transition('idle', { code, reason });
      for (const instance of lost) this.safely(() => instance.events.onLost(toErrorData(error)));
      return;
    }
    if (this.instances.size > 0) {
      this.transition('reconnecting', { code, reason });
      this.scheduleReconnect();
      return;
    }
    this.rejectWaiters(new ChatError(CODE.NETWORK_ERROR, text, { closeCode: code }));
    this.transition('idle', { code, reason });
  }

  private scheduleReconnect(): void {
    const delay = this.backoff(this.attempt++);
    this.log.info(`reconnecting in ${Math.round(delay)} ms (attempt ${this.attempt})`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.current === 'reconnecting' && this.conn === null) this.openSocket();
    }, delay);
  }

  /**
   * Close the socket once no instance, login or request needs it. Deferred to the next
   * macrotask, so the application's handlers of the last logout or kick run first (and a
   * handler that logs in again keeps the socket).
   */
  private releaseIfUnused(): void {
    if (!this.isUnused() || this.releaseTimer !== undefined) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (!this.isUnused()) return;
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      if (this.conn) this.closeSocket(1000, 'no instance left');
      else this.transition('idle', { code: 1000, reason: 'no instance left' });
    }, 0);
  }

  private isUnused(): boolean {
    if (this.current === 'idle' || this.current === 'closed') return false;
    return this.instances.size === 0 && this.activeLogins === 0 && this.pending.size === 0;
  }

  private rejectPending(error: ChatError): void {
    const entries = [...this.pending.values()];
    this.pending.clear();
    for (const entry of entries) {
      clearTimeout(entry.timer);
      entry.reject(error);
    }
  }

  private rejectWaiters(error: ChatError): void {
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const waiter of waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  // ------------------------------------------------------------------ requests

  private send(conn: Connection, frame: ClientFrame): void {
    conn.socket.send(encodeFrame(frame));
  }

  private sendPing(conn: Connection): void {
    if (!this.connection(conn.id) || conn.socket.readyState !== SOCKET_OPEN) return;
    conn.lastPingAt = Date.now();
    this.send(conn, { type: 'ping' });
  }

  /** Send a request on the open connection; settles with its result, 2801 on timeout, 2800 on close. */
  private request(build: (id: number) => RequestFrame, timeoutMs: number = this.requestTimeoutMs): Promise<unknown> {
    const conn = this.conn;
    if (!conn || this.current !== 'open' || conn.socket.readyState !== SOCKET_OPEN) {
      return Promise.reject(new ChatError(CODE.NETWORK_ERROR, `not connected (state '${this.current}')`));
    }
    const id = this.nextRequestId++;
    const frame = build(id);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ChatError(CODE.NETWORK_TIMEOUT, `${frame.type} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer, sentAt: Date.now() });
      this.send(conn, frame);
    });
  }

  private handleResult(frame: ResultFrame): void {
    const entry = this.pending.get(frame.id);
    if (!entry) {
      this.log.debug(`late result for request ${frame.id} dropped`);
      return;
    }
    this.pending.delete(frame.id);
    clearTimeout(entry.timer);
    if (frame.ok) {
      const data = frame.data as { serverTime?: unknown } | null;
      if (typeof data?.serverTime === 'number') this.updateClock(data.serverTime, entry.sentAt);
      entry.resolve(frame.data);
    } else {
      entry.reject(new ChatError(frame.code, frame.message || codeText(frame.code), { ...frame.data }));
    }
  }

  private updateClock(serverTime: number, sentAt: number): void {
    const now = Date.now();
    const halfRoundTrip = sentAt > 0 ? (now - sentAt) / 2 : 0;
    this.clockOffset = Math.round(serverTime + halfRoundTrip - now);
  }

  // ------------------------------------------------------------------ instances

  private owns(instance: Instance): boolean {
    return this.instances.get(instance.instId) === instance;
  }

  private handleKick(frame: KickFrame): void {
    const instance = this.instances.get(frame.instId);
    if (!instance) {
      this.log.debug(`kick for unknown instance ${frame.instId} dropped`);
      return;
    }
    this.end(instance, (events) => events.onKicked(frame.reason));
  }

  /** Forget an instance for good, tell its owner, and release the socket if it was the last. */
  private end(instance: Instance, notify: (events: InstanceEvents) => void): void {
    this.instances.delete(instance.instId);
    this.log.info(`instance ${instance.instId} ended by the server`);
    this.safely(() => notify(instance.events));
    this.releaseIfUnused();
  }

  /** Silent resume after a reconnect; falls back to a re-login when the server answers 9005. */
  private async restore(instance: Instance): Promise<void> {
    instance.state = 'restoring';
    let relogin = false;
    let data: { instId: number; token: string };
    try {
      try {
        await this.resumeRequest(instance.instId, instance.token);
        data = instance;
      } catch (err) {
        if (asChatError(err).code !== CODE.RESUME_FAILED || !this.owns(instance)) throw err;
        relogin = true;
        data = await this.loginRequest(instance.params).catch((e: unknown) => Promise.reject(refusalAsKick(asChatError(e))));
      }
    } catch (err) {
      const error = asChatError(err);
      if (!this.owns(instance)) return;
      const kickType = error.data.kickType;
      if (error.code === CODE.NETWORK_ERROR) instance.state = 'detached'; // restored on the next connection
      else if (isKickType(kickType)) this.end(instance, (events) => events.onKicked(kickType));
      else this.end(instance, (events) => events.onLost(toErrorData(error)));
      return;
    }
    if (!this.owns(instance)) {
      this.logoutQuietly(data.instId); // logged out while its restore was in flight
      return;
    }
    this.instances.delete(instance.instId);
    instance.instId = data.instId;
    instance.token = data.token;
    instance.state = 'attached';
    this.instances.set(instance.instId, instance);
    this.log.info(relogin ? `instance logged in again as ${data.instId} (resume window passed)` : `instance ${data.instId} resumed`);
    this.safely(() => instance.events.onRestored?.({ instId: instance.instId, relogin }));
  }

  private async loginRequest(params: LoginParams, timeoutMs?: number): Promise<LoginResultData> {
    const data = await this.request((id) => loginFrame(id, params), timeoutMs);
    if (!isLoginResultData(data)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed login result from the server');
    return data;
  }

  /** Resolves with the server time of the reply and the instance's UserSig expiry. */
  private async resumeRequest(instId: number, token: string, timeoutMs?: number): Promise<{ serverTime: number; expireAt: number }> {
    const data = (await this.request((id) => ({ type: 'resume', id, instId, token }), timeoutMs)) as Partial<ResumeResultData>;
    return { serverTime: this.getServerTime(), expireAt: typeof data.expireAt === 'number' ? data.expireAt : 0 };
  }

  private logoutQuietly(instId: number): void {
    this.request((id) => ({ type: 'logout', id, instId }))
      .catch((err: unknown) => this.log.info(`logout of instance ${instId} not confirmed:`, asChatError(err).message))
      .finally(() => this.releaseIfUnused());
  }

  /** Run a callback of the application or a listener; its exceptions never break the engine. */
  private safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error('listener threw:', err);
    }
  }
}

/** Login refusals that mean a resumed instance was, in effect, kicked. */
const REFUSAL_KICK: Readonly<Record<number, KickType>> = {
  [CODE.USERSIG_EXPIRED]: 'userSigExpired',
  [CODE.USERSIG_REVOKED]: 'REST_API_Kick',
};

/**
 * A re-login refused with 70001 / 70052 becomes the kick it stands for (code 3004 / 3006,
 * `data.kickType`), like a resume refused by a kick; other errors are returned unchanged.
 */
function refusalAsKick(error: ChatError): ChatError {
  const kickType = REFUSAL_KICK[error.code];
  if (!kickType) return error;
  return new ChatError(KICK_REASON_CODE[kickType], error.message, { ...error.data, kickType, serverCode: error.code });
}

function loginFrame(id: number, params: LoginParams): RequestFrame {
  return { type: 'login', id, sdkAppId: params.sdkAppId, userID: params.userID, userSig: params.userSig, platform: params.platform };
}
