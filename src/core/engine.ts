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
 * - Messages (docs/protocol.md "Messages"): `send()` records the message in the outbox,
 *   sends it when the connection is open (paced to `framesPerSecond`) and re-sends it
 *   after a reconnect until the server acknowledges it; the server's idempotency on
 *   `clientMsgId` makes that exactly once. Each instance tracks its mailbox position
 *   (`lastSeq`): a pushed message with seq <= lastSeq is dropped, seq = lastSeq + 1 is
 *   delivered, a larger seq means a gap and triggers `sync` from lastSeq; `sync` also runs
 *   after every login, resume and re-login. Processed positions are acknowledged (`ack`).
 *
 * Portable: no Node-only or window-only API; the WebSocket constructor is injected.
 */
import { CLOSE, CODE, codeText, isTerminalClose, terminalCloseError } from '../protocol/codes.js';
import {
  LIMITS,
  PROTOCOL_VERSION,
  encodeFrame,
  isKickType,
  isSyncResultData,
  isWireMessage,
  parseServerFrame,
  textMessageError,
  utf8ByteLength,
  type ClientFrame,
  type KickFrame,
  type KickType,
  type LoginResultData,
  type MsgFrame,
  type RequestFrame,
  type ResultFrame,
  type ResumeResultData,
  type WelcomeFrame,
  type WireMessage,
} from '../protocol/frames.js';
import { ChatError, KICK_REASON_CODE, asChatError, toErrorData } from './errors.js';
import { createConsoleLogger } from './log.js';
import { MemoryOutbox } from './outbox.js';
import type {
  InstanceEvents,
  LoginParams,
  LoginResult,
  Logger,
  NetState,
  Outbox,
  OutboxEntry,
  OutgoingText,
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
/** Default time a `send()` waits for the server's acknowledgement (the message stays queued after), in ms. */
export const DEFAULT_SEND_TIMEOUT_MS = 30_000;
/** Default pace of `send` frames per second; below the server's default limit of 100 frames per second. */
export const DEFAULT_FRAMES_PER_SECOND = 80;
/** Default largest frame the server accepts (its `maxPayloadBytes` default), in bytes. */
export const DEFAULT_MAX_FRAME_BYTES = 65_536;
/** Default delay before processed messages are acknowledged, in ms. */
export const DEFAULT_ACK_DELAY_MS = 200;

/** Messages asked for per `sync` page. */
const SYNC_PAGE_SIZE = 200;
/** Pushed messages held per instance while a gap is being filled; beyond this they are dropped (the sync brings them). */
const MAX_BUFFERED = 10_000;
/** Delay before a send refused with a retryable code goes out again, in ms. */
const SEND_RETRY_DELAY_MS = 1_000;
/** Close code of a frame over the server's maxPayload. */
const CLOSE_MESSAGE_TOO_BIG = 1009;
/**
 * Send failures that are worth another try (on the next connection, or after a delay);
 * any other code fails the send for good. 2024/9004: the server does not see the instance
 * on this connection yet (a restore is under way). 9030/9031: the cluster engine or the
 * store is down for a while; the same clientMsgId is sent again until the send timeout.
 */
const RETRYABLE_SEND_CODES: ReadonlySet<number> = new Set([
  CODE.NETWORK_ERROR,
  CODE.NETWORK_TIMEOUT,
  CODE.USER_NOT_LOGGED_IN,
  CODE.UNKNOWN_INSTANCE,
  CODE.HELLO_REQUIRED,
  CODE.FRAME_RATE_LIMITED,
  CODE.SERVER_SHUTTING_DOWN,
  CODE.SERVER_INTERNAL,
  CODE.ENGINE_UNAVAILABLE,
  CODE.STORE_UNAVAILABLE,
]);

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

interface SendWaiter {
  resolve(message: WireMessage): void;
  reject(error: ChatError): void;
  timer: Timer;
}

/** A message in an instance's send queue (its outbox entry, plus who waits for it). */
interface QueuedSend {
  readonly entry: OutboxEntry;
  readonly waiters: Set<SendWaiter>;
  /** A `send` request for it is on the current connection. */
  inFlight: boolean;
  /** Size of its `send` frame in bytes (the suspect when the server closes with 1009). */
  readonly frameBytes: number;
  /** Its place in the queue: sends go out in ascending order. */
  readonly order: number;
}

/**
 * An instance's send queue: by clientMsgId in queue order, plus a min-heap (by `order`) of
 * the sends waiting for transmission, so queueing, finding, settling and picking the next
 * send to transmit cost O(1) or O(log n) however long the queue is — not a scan per send.
 * The heap may hold stale items (settled, or on their way); they are dropped when they
 * surface.
 */
class SendQueue {
  private readonly items = new Map<string, QueuedSend>();
  private readonly waiting: QueuedSend[] = [];
  private lastOrder = 0;
  private firstOrder = 0;

  get size(): number {
    return this.items.size;
  }
  get(clientMsgId: string): QueuedSend | undefined {
    return this.items.get(clientMsgId);
  }
  /** Whether `item` is (still) in this queue. */
  holds(item: QueuedSend): boolean {
    return this.items.get(item.entry.clientMsgId) === item;
  }
  /** Queued sends in queue order. */
  values(): QueuedSend[] {
    return [...this.items.values()].sort((a, b) => a.order - b.order);
  }
  /** A new send at the end of the queue, waiting for transmission. */
  append(entry: OutboxEntry, frameBytes: number): QueuedSend {
    const item: QueuedSend = { entry, waiters: new Set(), inFlight: false, frameBytes, order: ++this.lastOrder };
    this.items.set(entry.clientMsgId, item);
    this.push(item);
    return item;
  }
  /** New sends at the front of the queue (in this order), waiting for transmission. */
  prepend(entries: Array<{ entry: OutboxEntry; frameBytes: number }>): void {
    this.firstOrder -= entries.length;
    entries.forEach(({ entry, frameBytes }, i) => {
      const item: QueuedSend = { entry, waiters: new Set(), inFlight: false, frameBytes, order: this.firstOrder + i };
      this.items.set(entry.clientMsgId, item);
      this.push(item);
    });
  }
  remove(item: QueuedSend): boolean {
    if (!this.holds(item)) return false;
    this.items.delete(item.entry.clientMsgId);
    return true;
  }
  /** A send of this queue came back (its request failed): it waits for transmission again, in its place. */
  requeue(item: QueuedSend): void {
    if (this.holds(item) && !item.inFlight) this.push(item);
  }
  /** The first send waiting for transmission (left in place). */
  peek(): QueuedSend | undefined {
    for (let top = this.waiting[0]; top !== undefined; top = this.waiting[0]) {
      if (this.holds(top) && !top.inFlight) return top;
      this.pop();
    }
    return undefined;
  }
  /** Take the first send waiting for transmission (after {@link peek} found it). */
  take(): void {
    this.pop();
  }

  private push(item: QueuedSend): void {
    const heap = this.waiting;
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.order <= item.order) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): void {
    const heap = this.waiting;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const child = left + 1 < heap.length && heap[left + 1]!.order < heap[left]!.order ? left + 1 : left;
      if (heap[child]!.order >= last.order) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}

/** An instance as the engine tracks it; handed out as its {@link SessionHandle}. */
class Instance implements SessionHandle {
  instId: number;
  token: string;
  state: InstanceState = 'attached';
  readonly params: LoginParams;
  readonly events: InstanceEvents;
  /** Mailbox position: highest seq processed; null until the first sync answered. */
  lastSeq: number | null = null;
  /** Highest seq acknowledged to the server on the current server-side instance. */
  ackedSeq = 0;
  /** A sync loop is running. */
  syncing = false;
  /** Something beyond lastSeq was seen while syncing: sync once more after this loop. */
  resyncWanted = false;
  /** Failed syncs in a row (for the retry backoff). */
  syncFailures = 0;
  syncRetryTimer: Timer | undefined;
  ackTimer: Timer | undefined;
  /** Messages sent by this instance, oldest first, until the server acknowledges them. */
  readonly queue = new SendQueue();
  /**
   * This instance's own acknowledged sends beyond lastSeq: seq → the stored message (never
   * reported as received, unless the host asked for them with `reportOwn`).
   */
  readonly own = new Map<number, WireMessage>();
  /** Pushed messages beyond lastSeq + 1, or that came while a sync ran: applied in order once the gap is filled. */
  readonly buffered = new Map<number, WireMessage>();

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
  private readonly sendTimeoutMs: number;
  private readonly framesPerSecond: number;
  private readonly maxFrameBytes: number;
  private readonly ackDelayMs: number;
  private readonly outbox: Outbox;
  /** Token bucket pacing message frames. */
  private tokens: number;
  private tokensAt = Date.now();
  /** Pending {@link flush} (waiting for a token, or a retry delay). */
  private flushTimer: Timer | undefined;

  /** Written only by {@link transition}. */
  private current: SessionState = 'idle';
  private conn: Connection | null = null;
  private nextConnectionId = 1;
  private nextRequestId = 1;
  private readonly pending = new Map<number, PendingRequest>();
  private readonly waiters = new Set<OpenWaiter>();
  /** By current instId. */
  private readonly instances = new Map<number, Instance>();
  /**
   * Instances whose server id was given to another of our instances (a restarted server
   * numbers its instances again): they wait under a negative key until their own restore
   * logs them in again. Instance → its key in {@link instances}.
   */
  private readonly displaced = new Map<Instance, number>();
  private displacedSeq = 0;
  /** Logins between their call and their settlement; they keep the socket open. */
  private activeLogins = 0;
  /** Reconnect attempts since the last `welcome`. */
  private attempt = 0;
  /** The host said the network is gone (browser `offline`): no reconnect until `online`. */
  private offline = false;
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
    this.sendTimeoutMs = options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS;
    this.framesPerSecond = Math.max(1, options.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND);
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    this.ackDelayMs = options.ackDelayMs ?? DEFAULT_ACK_DELAY_MS;
    this.outbox = options.outbox ?? new MemoryOutbox();
    this.tokens = this.framesPerSecond;
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
    return this.acquire(params, events, null, (remainingMs) => this.loginRequest(params, remainingMs()));
  }

  async resume(
    params: LoginParams,
    saved: { instId: number; token: string; lastSeq?: number | null },
    events: InstanceEvents,
  ): Promise<{ handle: SessionHandle; result: LoginResult }> {
    return this.acquire(params, events, saved.lastSeq ?? null, async (remainingMs) => {
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

  async logout(handle: SessionHandle, options: { keepQueued?: boolean } = {}): Promise<void> {
    if (!(handle instanceof Instance) || !this.owns(handle)) return;
    // The position goes to the server first, so the user's next login starts after it.
    this.ackNow(handle);
    this.unplace(handle);
    const keep = options.keepQueued === true;
    const why = keep ? 'logged out before the server stored the message; it stays in the outbox for the next instance of the user' : 'logged out before the server stored the message';
    this.dropMessageState(handle, new ChatError(CODE.MSG_CANCELLED, why, { cause: CODE.LOGGED_OUT }), !keep);
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

  /**
   * The host's view of the network (browser `online` / `offline` events). Offline: close
   * the socket now (instances stay, as on any drop: NET_STATE_CHANGE `connecting`) and do not
   * try again until online. Online: if a reconnect is waiting, connect now, without backoff.
   * Logins started while offline still try the network (the event may be wrong).
   */
  setOnline(online: boolean): void {
    if (this.current === 'closed' || online === !this.offline) return;
    this.offline = !online;
    if (!online) {
      this.log.info('the network went offline: closing the socket; waiting for online');
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      if (this.conn) this.closeSocket(CLOSE_ABNORMAL, 'the network went offline');
      return;
    }
    if (this.current === 'reconnecting' && this.conn === null) {
      this.log.info('the network is back online: reconnecting now');
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.attempt = 0;
      this.openSocket();
    }
  }

  close(): void {
    if (this.current === 'closed') return;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.releaseTimer);
    this.reconnectTimer = undefined;
    this.releaseTimer = undefined;
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const conn = this.conn;
    this.conn = null;
    const error = new ChatError(CODE.DESTROYED, 'the session engine was closed');
    // Outbox entries stay: a durable outbox hands them to the next engine.
    for (const instance of this.instances.values()) this.dropMessageState(instance, error, false);
    this.instances.clear();
    this.displaced.clear();
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
    lastSeq: number | null,
    register: (remainingMs: () => number) => Promise<LoginResultData>,
  ): Promise<{ handle: SessionHandle; result: LoginResult }> {
    if (this.current === 'closed') throw new ChatError(CODE.DESTROYED, 'the session engine is closed');
    const deadline = Date.now() + this.requestTimeoutMs;
    this.activeLogins++;
    try {
      await this.whenOpen(deadline);
      const data = await register(() => Math.max(1, deadline - Date.now()));
      const instance = new Instance(data.instId, data.token, params, events);
      instance.lastSeq = lastSeq;
      this.place(instance);
      // After the caller has the handle: catch up on the mailbox, adopt the user's outbox.
      setTimeout(() => {
        if (!this.owns(instance)) return;
        this.startSync(instance);
        void this.adoptOutbox(instance);
      }, 0);
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
    this.sendFrame(conn, { type: 'hello', v: PROTOCOL_VERSION, client: this.clientName });
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
      case 'msg':
        this.handleMsg(frame);
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
    if (code === CLOSE_MESSAGE_TOO_BIG) this.dropOversizedSend();
    this.rejectPending(new ChatError(CODE.NETWORK_ERROR, text, { closeCode: code }));
    for (const instance of this.instances.values()) instance.state = 'detached';
    if (isTerminalClose(code)) {
      const lost = [...this.instances.values()];
      this.instances.clear();
      this.displaced.clear();
      const error = new ChatError(terminalCloseError(code), `the server ended the connection for good: ${text}`, { closeCode: code });
      this.rejectWaiters(error);
      this.transition('idle', { code, reason });
      for (const instance of lost) {
        this.dropMessageState(instance, new ChatError(CODE.MSG_CANCELLED, `the session was lost before the server stored the message: ${text}`, { cause: error.code }));
        this.safely(() => instance.events.onLost(toErrorData(error)));
      }
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
    if (this.offline) {
      this.log.info('offline: the reconnect waits for the network to come back (online)');
      return;
    }
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

  private sendFrame(conn: Connection, frame: ClientFrame): void {
    conn.socket.send(encodeFrame(frame));
  }

  private sendPing(conn: Connection): void {
    if (!this.connection(conn.id) || conn.socket.readyState !== SOCKET_OPEN) return;
    conn.lastPingAt = Date.now();
    this.sendFrame(conn, { type: 'ping' });
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
      this.sendFrame(conn, frame);
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
    return this.instances.get(this.displaced.get(instance) ?? instance.instId) === instance;
  }

  /** Register `instance` under its server id; a stale holder of that id is displaced. */
  private place(instance: Instance): void {
    const holder = this.instances.get(instance.instId);
    if (holder && holder !== instance) {
      const key = -++this.displacedSeq;
      this.displaced.set(holder, key);
      this.instances.set(key, holder);
      this.log.info(`instance id ${instance.instId} was given again by the server (restarted?); the older instance logs in again on its own`);
    }
    this.unplace(instance);
    this.instances.set(instance.instId, instance);
  }

  private unplace(instance: Instance): void {
    if (!this.owns(instance)) return;
    this.instances.delete(this.displaced.get(instance) ?? instance.instId);
    this.displaced.delete(instance);
  }

  private handleKick(frame: KickFrame): void {
    const instance = this.instances.get(frame.instId);
    if (!instance) {
      this.log.debug(`kick for unknown instance ${frame.instId} dropped`);
      return;
    }
    this.end(instance, (events) => events.onKicked(frame.reason), `kicked (${frame.reason})`);
  }

  /** Forget an instance for good, tell its owner, and release the socket if it was the last. */
  private end(instance: Instance, notify: (events: InstanceEvents) => void, why = 'the session ended'): void {
    this.unplace(instance);
    this.dropMessageState(instance, new ChatError(CODE.MSG_CANCELLED, `${why} before the server stored the message`));
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
      else if (isKickType(kickType)) this.end(instance, (events) => events.onKicked(kickType), `kicked (${kickType})`);
      else this.end(instance, (events) => events.onLost(toErrorData(error)), `the session was lost (${error.code})`);
      return;
    }
    if (!this.owns(instance)) {
      this.logoutQuietly(data.instId); // logged out while its restore was in flight
      return;
    }
    this.unplace(instance);
    instance.instId = data.instId;
    instance.token = data.token;
    instance.state = 'attached';
    // A new server-side instance knows nothing of our acknowledgements.
    if (relogin) instance.ackedSeq = 0;
    this.place(instance);
    this.log.info(relogin ? `instance logged in again as ${data.instId} (resume window passed)` : `instance ${data.instId} resumed`);
    this.safely(() => instance.events.onRestored?.({ instId: instance.instId, relogin }));
    if (!this.owns(instance)) return;
    // Catch up on what arrived while we were away, and send what waited (including what an
    // instance of the user that left meanwhile kept in the outbox).
    this.startSync(instance);
    this.flush();
    void this.adoptOutbox(instance);
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

  // ------------------------------------------------------------------ messages

  async send(handle: SessionHandle, message: OutgoingText, options: { timeoutMs?: number } = {}): Promise<WireMessage> {
    if (this.current === 'closed') throw new ChatError(CODE.DESTROYED, 'the session engine is closed');
    if (!(handle instanceof Instance) || !this.owns(handle)) throw new ChatError(CODE.USER_NOT_LOGGED_IN, 'this instance is not logged in');
    const clientMsgId: unknown = message.clientMsgId;
    if (typeof clientMsgId !== 'string' || clientMsgId.length === 0 || clientMsgId.length > LIMITS.maxClientMsgIdLength) {
      throw new ChatError(CODE.INVALID_PARAMETER, `clientMsgId must be a string of 1..${LIMITS.maxClientMsgIdLength} characters`);
    }
    const refused = textMessageError(message.to, message.text);
    if (refused) throw new ChatError(refused.code, refused.message);
    const instance = handle;
    const timeoutMs = options.timeoutMs ?? this.sendTimeoutMs;
    return new Promise<WireMessage>((resolve, reject) => {
      let item: QueuedSend | null = null;
      let timedOut = false;
      const waiter: SendWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          timedOut = true;
          item?.waiters.delete(waiter);
          reject(
            new ChatError(CODE.MSG_SEND_TIMEOUT, `message ${clientMsgId} not acknowledged within ${timeoutMs} ms; it stays queued and is sent when the connection allows`, {
              clientMsgId,
            }),
          );
        }, timeoutMs),
      };
      this.enqueue(instance, { clientMsgId, to: message.to, text: message.text }).then(
        (queued) => {
          if (timedOut) return;
          item = queued;
          queued.waiters.add(waiter);
          this.flush();
        },
        (err: unknown) => {
          clearTimeout(waiter.timer);
          reject(asChatError(err));
        },
      );
    });
  }

  async cancelSend(handle: SessionHandle, clientMsgId: string): Promise<boolean> {
    if (!(handle instanceof Instance)) return false;
    const item = handle.queue.get(clientMsgId);
    if (!item || item.inFlight) return false;
    this.failSend(handle, item, new ChatError(CODE.MSG_CANCELLED, `message ${clientMsgId} was cancelled before it was sent`));
    return true;
  }

  /** The queued send of this clientMsgId (an existing one, or a new one recorded in the outbox first). */
  private async enqueue(instance: Instance, message: OutgoingText): Promise<QueuedSend> {
    const find = () => instance.queue.get(message.clientMsgId);
    const existing = find();
    if (existing) return existing;
    const frameBytes = sendFrameBytes(message);
    if (frameBytes > this.maxFrameBytes) {
      throw new ChatError(CODE.MSG_TOO_LONG, `the message's frame would be ${frameBytes} bytes; the server accepts frames of ${this.maxFrameBytes} bytes`);
    }
    const entry: OutboxEntry = { ...message, sdkAppId: instance.sdkAppId, from: instance.userID, queuedAt: Date.now() };
    try {
      await this.outbox.put(entry);
    } catch (err) {
      throw new ChatError(CODE.OUTBOX_ERROR, `${codeText(CODE.OUTBOX_ERROR)}: ${asChatError(err).message}`);
    }
    if (!this.owns(instance)) {
      this.outboxDelete(entry.clientMsgId);
      throw new ChatError(CODE.MSG_CANCELLED, 'the session ended before the message was queued');
    }
    const again = find(); // the same id sent twice while the outbox wrote
    if (again) return again;
    return instance.queue.append(entry, frameBytes);
  }

  /** Send every queued message that is not on its way, paced by the frame budget. */
  private flush(): void {
    if (this.current !== 'open' || this.conn === null) return;
    for (const instance of this.instances.values()) {
      if (instance.state !== 'attached') continue;
      for (let item = instance.queue.peek(); item !== undefined; item = instance.queue.peek()) {
        if (!this.takeToken()) {
          this.scheduleFlush(Math.ceil(1000 / this.framesPerSecond));
          return;
        }
        instance.queue.take();
        this.transmit(instance, item);
      }
    }
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, delayMs);
  }

  /** Token bucket of {@link framesPerSecond} (burst: one second's worth). */
  private takeToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.framesPerSecond, this.tokens + ((now - this.tokensAt) / 1000) * this.framesPerSecond);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private transmit(instance: Instance, item: QueuedSend): void {
    item.inFlight = true;
    const { entry } = item;
    const instId = instance.instId;
    this.request((id) => ({ type: 'send', id, instId, clientMsgId: entry.clientMsgId, to: entry.to, text: entry.text }))
      .then((data) => {
        const message = (data as { message?: unknown } | null)?.message;
        if (!isWireMessage(message)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed send result from the server');
        item.inFlight = false;
        if (instance.queue.holds(item)) this.completeSend(instance, item, message);
        else if (!this.isQueued(entry.clientMsgId)) this.outboxDelete(entry.clientMsgId); // stored after its instance left
        if (this.owns(instance)) this.noteOwn(instance, message);
      })
      .catch((err: unknown) => this.sendFailed(instance, item, asChatError(err)));
  }

  private sendFailed(instance: Instance, item: QueuedSend, error: ChatError): void {
    item.inFlight = false;
    if (!instance.queue.holds(item) || !this.owns(instance)) return;
    if (RETRYABLE_SEND_CODES.has(error.code)) {
      instance.queue.requeue(item);
      // A closed socket: sent again once the instance is restored on the next connection.
      if (error.code !== CODE.NETWORK_ERROR || this.current === 'open') this.scheduleFlush(SEND_RETRY_DELAY_MS);
      this.log.debug(`send of ${item.entry.clientMsgId} will be retried: ${error.code} ${error.message}`);
      return;
    }
    this.failSend(instance, item, error);
  }

  /** The server stored the message: settle its waiters and forget it. */
  private completeSend(instance: Instance, item: QueuedSend, message: WireMessage): void {
    this.removeQueued(instance, item, true);
    for (const waiter of item.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
    item.waiters.clear();
  }

  /** The message will not be sent: reject its waiters; delete its outbox entry unless `keepEntry`. */
  private failSend(instance: Instance, item: QueuedSend, error: ChatError, keepEntry = false): void {
    this.removeQueued(instance, item, !keepEntry);
    const failure = item.inFlight ? new ChatError(error.code, `${error.message} (it was already on its way and may have been stored)`, { ...error.data, inFlight: true }) : error;
    for (const waiter of item.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(failure);
    }
    item.waiters.clear();
  }

  private removeQueued(instance: Instance, item: QueuedSend, deleteEntry: boolean): void {
    instance.queue.remove(item);
    if (deleteEntry) this.outboxDelete(item.entry.clientMsgId);
  }

  private outboxDelete(clientMsgId: string): void {
    this.outbox.delete(clientMsgId).catch((err: unknown) => this.log.warn(`outbox: could not delete ${clientMsgId}:`, asChatError(err).message));
  }

  /** The instance is gone (or the engine closes): fail its queue, stop its timers, forget its position. */
  private dropMessageState(instance: Instance, error: ChatError, deleteEntries = true): void {
    clearTimeout(instance.syncRetryTimer);
    clearTimeout(instance.ackTimer);
    instance.syncRetryTimer = undefined;
    instance.ackTimer = undefined;
    for (const item of instance.queue.values()) this.failSend(instance, item, error, !deleteEntries);
    instance.own.clear();
    instance.buffered.clear();
  }

  /**
   * The server closed with 1009: a frame was over its `maxPayloadBytes`. The culprit is the
   * largest send on its way; fail it with 80002 rather than re-sending it after every
   * reconnect.
   */
  private dropOversizedSend(): void {
    let worst: { instance: Instance; item: QueuedSend } | null = null;
    for (const instance of this.instances.values()) {
      for (const item of instance.queue.values()) {
        if (item.inFlight && (worst === null || item.frameBytes > worst.item.frameBytes)) worst = { instance, item };
      }
    }
    if (worst === null) return;
    const { instance, item } = worst;
    item.inFlight = false;
    this.log.warn(`the server refused a frame as too big (1009); failing message ${item.entry.clientMsgId} (${item.frameBytes} bytes)`);
    this.failSend(instance, item, new ChatError(CODE.MSG_TOO_LONG, `the server closed the connection on a ${item.frameBytes}-byte frame (1009): the message is too big for it`));
  }

  /** Whether a queue of this engine holds the message. */
  private isQueued(clientMsgId: string): boolean {
    for (const instance of this.instances.values()) {
      if (instance.queue.get(clientMsgId) !== undefined) return true;
    }
    return false;
  }

  /**
   * Queue the user's outbox entries no queue of this engine holds (left by an earlier engine,
   * or by an instance of the user that logged out with `keepQueued`), oldest first.
   */
  private async adoptOutbox(instance: Instance): Promise<void> {
    let entries: OutboxEntry[];
    try {
      entries = await this.outbox.list(instance.sdkAppId, instance.userID);
    } catch (err) {
      this.log.warn(`outbox: could not list the queued messages of ${instance.userID}:`, asChatError(err).message);
      return;
    }
    if (!this.owns(instance) || entries.length === 0) return;
    const adopted: Array<{ entry: OutboxEntry; frameBytes: number }> = [];
    for (const entry of [...entries].sort((a, b) => a.queuedAt - b.queuedAt)) {
      if (this.isQueued(entry.clientMsgId)) continue;
      const frameBytes = sendFrameBytes(entry);
      if (textMessageError(entry.to, entry.text) || frameBytes > this.maxFrameBytes) {
        this.log.warn(`outbox: dropping unsendable entry ${entry.clientMsgId}`);
        this.outboxDelete(entry.clientMsgId);
        continue;
      }
      adopted.push({ entry, frameBytes });
    }
    if (adopted.length === 0) return;
    instance.queue.prepend(adopted);
    this.log.info(`outbox: sending ${adopted.length} message(s) of ${instance.userID} queued by an earlier session`);
    this.flush();
  }

  private handleMsg(frame: MsgFrame): void {
    const instance = this.instances.get(frame.instId);
    if (!instance) {
      this.log.debug(`message for unknown instance ${frame.instId} dropped`);
      return;
    }
    if (!instance.events.onMessages) return; // nobody takes messages: they wait on the server
    const message = frame.message;
    const last = instance.lastSeq;
    if (last !== null && message.seq <= last) return; // already processed
    if (last !== null && !instance.syncing && message.seq === last + 1 && instance.buffered.size === 0) {
      this.apply(instance, [message]);
      return;
    }
    // A gap, or a sync is filling one: hold it, applied in order when the gap is filled.
    if (instance.buffered.size < MAX_BUFFERED) instance.buffered.set(message.seq, message);
    if (!instance.syncing) this.startSync(instance);
  }

  /** Read the mailbox from the instance's position until it is caught up (one loop at a time). */
  private startSync(instance: Instance): void {
    clearTimeout(instance.syncRetryTimer);
    instance.syncRetryTimer = undefined;
    if (instance.syncing) {
      instance.resyncWanted = true;
      return;
    }
    if (instance.state !== 'attached' || this.current !== 'open') return; // runs again when restored
    if (!instance.events.onMessages) return; // nobody takes messages: never read nor acknowledge them
    instance.syncing = true;
    instance.resyncWanted = false;
    void this.syncLoop(instance);
  }

  private async syncLoop(instance: Instance): Promise<void> {
    try {
      for (;;) {
        const after = instance.lastSeq;
        const instId = instance.instId;
        const data = await this.request((id) =>
          after === null ? { type: 'sync', id, instId, limit: SYNC_PAGE_SIZE } : { type: 'sync', id, instId, afterSeq: after, limit: SYNC_PAGE_SIZE },
        );
        if (!isSyncResultData(data)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed sync result from the server');
        if (!this.owns(instance)) return;
        if (data.afterSeq > data.head) {
          this.log.warn(`the server's mailbox of ${instance.userID} ends at seq ${data.head}, before our position ${data.afterSeq} (its store was reset): reading it from the start`);
          instance.lastSeq = 0;
          instance.ackedSeq = 0;
          instance.own.clear();
          instance.buffered.clear();
          continue;
        }
        if (instance.lastSeq === null) instance.lastSeq = data.afterSeq;
        this.apply(instance, data.messages);
        if (data.more && data.messages.length > 0) continue;
        // Pushes and own sends that came during the sync, if they continue without a gap.
        this.applyBuffered(instance);
        if (instance.resyncWanted || instance.buffered.size > 0 || this.ownGap(instance)) {
          instance.resyncWanted = false;
          continue;
        }
        break;
      }
      instance.syncFailures = 0;
      this.scheduleAck(instance);
    } catch (err) {
      const error = asChatError(err);
      // A closed socket: the restore on the next connection syncs again.
      if (this.owns(instance) && error.code !== CODE.NETWORK_ERROR) {
        const delay = this.backoff(instance.syncFailures++);
        this.log.warn(`sync of instance ${instance.instId} failed (${error.code} ${error.message}); retrying in ${Math.round(delay)} ms`);
        instance.syncRetryTimer = setTimeout(() => {
          instance.syncRetryTimer = undefined;
          if (this.owns(instance)) this.startSync(instance);
        }, delay);
      }
    } finally {
      instance.syncing = false;
    }
  }

  /** Own sends known beyond lastSeq + 1 mean messages in between were missed. */
  private ownGap(instance: Instance): boolean {
    const last = instance.lastSeq ?? 0;
    for (const seq of instance.own.keys()) if (seq > last + 1) return true;
    return false;
  }

  /** Apply held pushes that continue from lastSeq; drop those at or below it. */
  private applyBuffered(instance: Instance): void {
    if (instance.buffered.size === 0) return;
    const ready: WireMessage[] = [];
    let next = (instance.lastSeq ?? 0) + 1;
    for (;;) {
      const own = instance.own.get(next);
      const message = instance.buffered.get(next);
      if (message) ready.push(message);
      else if (own === undefined) break;
      next++;
    }
    if (ready.length > 0) this.apply(instance, ready);
    const last = instance.lastSeq ?? 0;
    for (const seq of instance.buffered.keys()) if (seq <= last) instance.buffered.delete(seq);
  }

  /**
   * Advance the position over consecutive messages (each seq = lastSeq + 1; own sends fill
   * their own seqs), report the ones that are not this instance's own, and schedule the ack.
   */
  private apply(instance: Instance, messages: WireMessage[]): void {
    const fresh: WireMessage[] = [];
    const ownOut = instance.events.reportOwn === true ? fresh : undefined;
    for (const message of messages) {
      this.advanceOverOwn(instance, ownOut);
      const last = instance.lastSeq ?? 0;
      if (message.seq <= last) continue;
      if (message.seq !== last + 1) this.log.warn(`mailbox of instance ${instance.instId} jumps from seq ${last} to ${message.seq}`);
      instance.lastSeq = message.seq;
      if (!this.isOwn(instance, message) || ownOut) fresh.push(message);
    }
    this.advanceOverOwn(instance, ownOut);
    if (fresh.length > 0) this.safely(() => instance.events.onMessages?.(fresh));
    this.scheduleAck(instance);
  }

  /** Whether a mailbox message is one this instance sent (settling its queued send if it was still waiting). */
  private isOwn(instance: Instance, message: WireMessage): boolean {
    const own = instance.own.get(message.seq);
    if (own !== undefined) {
      instance.own.delete(message.seq);
      if (own.id === message.id) return true;
    }
    if (message.flow !== 'out' || message.clientMsgId === undefined) return false;
    const item = instance.queue.get(message.clientMsgId);
    if (!item) return false;
    // Stored, but its answer was lost with a connection: the sync settles it.
    this.completeSend(instance, item, message);
    return true;
  }

  /** Own sends fill their seqs: move the position over them (collecting them in `report`, when given). */
  private advanceOverOwn(instance: Instance, report?: WireMessage[]): void {
    if (instance.lastSeq === null || instance.own.size === 0) return;
    for (let own = instance.own.get(instance.lastSeq + 1); own !== undefined; own = instance.own.get(instance.lastSeq + 1)) {
      instance.own.delete(own.seq);
      instance.lastSeq = own.seq;
      report?.push(own);
    }
    for (const seq of instance.own.keys()) if (seq <= instance.lastSeq) instance.own.delete(seq);
  }

  /** The server stored a message this instance sent: its seq in our mailbox is known and never reported. */
  private noteOwn(instance: Instance, message: WireMessage): void {
    if (!instance.events.onMessages) return; // this instance does not track its mailbox
    const last = instance.lastSeq;
    if (last !== null && message.seq <= last) return;
    instance.own.set(message.seq, message);
    if (last === null || instance.syncing) return; // the running sync accounts for it
    if (message.seq === last + 1) {
      this.apply(instance, []); // moves over it (and reports it with `reportOwn`)
      this.applyBuffered(instance);
      return;
    }
    this.startSync(instance); // messages between lastSeq and this seq did not reach us
  }

  /** Acknowledge the position after `ackDelayMs` (one ack per burst). */
  private scheduleAck(instance: Instance): void {
    if (instance.ackTimer !== undefined || (instance.lastSeq ?? 0) <= instance.ackedSeq) return;
    instance.ackTimer = setTimeout(() => {
      instance.ackTimer = undefined;
      if (this.owns(instance)) this.ackNow(instance);
    }, this.ackDelayMs);
  }

  /** Send the position now if it moved since the last ack (not attached: acknowledged after the restore's sync). */
  private ackNow(instance: Instance): void {
    clearTimeout(instance.ackTimer);
    instance.ackTimer = undefined;
    const seq = instance.lastSeq ?? 0;
    const conn = this.conn;
    if (seq <= instance.ackedSeq) return;
    if (instance.state !== 'attached' || conn === null || this.current !== 'open' || conn.socket.readyState !== SOCKET_OPEN) return;
    this.sendFrame(conn, { type: 'ack', instId: instance.instId, seq });
    instance.ackedSeq = seq;
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

/** UTF-8 size of the `send` frame of a message (with the largest id and instId), as the server's maxPayload counts it. */
function sendFrameBytes(message: { clientMsgId: string; to: string; text: string }): number {
  const frame: ClientFrame = {
    type: 'send',
    id: LIMITS.maxRequestId,
    instId: Number.MAX_SAFE_INTEGER,
    clientMsgId: message.clientMsgId,
    to: message.to,
    text: message.text,
  };
  return utf8ByteLength(encodeFrame(frame));
}

function loginFrame(id: number, params: LoginParams): RequestFrame {
  return { type: 'login', id, sdkAppId: params.sdkAppId, userID: params.userID, userSig: params.userSig, platform: params.platform };
}
