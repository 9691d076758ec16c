/**
 * The session engine's link to the chat server: one socket at a time, the connection state
 * machine, the `hello` → `welcome` handshake, heartbeats, requests and their answers,
 * reconnects with backoff, the server clock, and the release of a socket nobody needs.
 * It knows nothing of instances: what a drop means for them, and whether the socket is still
 * needed, its {@link LinkOwner} decides.
 *
 * - Every request has an id, a timeout (2801) and an entry in the pending map, rejected with
 *   2800 when the socket closes.
 * - Client `ping` every `heartbeatMs`; a socket silent for `heartbeatMs + silenceMarginMs`
 *   is closed (4001).
 * - Every socket gets an increasing id; events of a replaced socket are dropped.
 */
import type { ConvFrame } from '../protocol/conversation-frames.js';
import { CLOSE, CODE, codeText } from '../protocol/codes.js';
import type { Logger, NetState } from '../protocol/data.js';
import { PROTOCOL_VERSION, encodeFrame, parseServerFrame, type ClientFrame, type KickFrame, type MsgFrame, type RequestFrame, type ResultFrame, type WelcomeFrame } from '../protocol/frames.js';
import { ChatError, asChatError } from './errors.js';
import { safely } from './log.js';
import { PendingMap } from './pending.js';
import type { SessionState, StateChange, WebSocketConstructor, WebSocketLike } from './types.js';

/** `WebSocket.OPEN` (the constant is not on every injected constructor). */
const SOCKET_OPEN = 1;
/** Close code used internally when a socket could not even be created, or the network went offline. */
const CLOSE_ABNORMAL = 1006;

type Timer = ReturnType<typeof setTimeout>;

/** One socket and what belongs to it; replaced (never reused) on reconnect. */
interface SocketRecord {
  /** Increasing; callbacks of a replaced socket see another id and drop their event. */
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

/** What the link asks of the engine that owns it. */
export interface LinkOwner {
  /** `welcome` arrived: the link is open (again). */
  opened(): void;
  /** A server push: a kick, a message or a conversation change. */
  pushed(frame: KickFrame | MsgFrame | ConvFrame): void;
  /**
   * The socket is gone and its requests were rejected (2800, `text`). The owner says what
   * follows: {@link ServerLink.reconnectLater} or {@link ServerLink.goIdle}.
   */
  dropped(code: number, reason: string, text: string): void;
  /** Whether instances or logins still need the socket. */
  inUse(): boolean;
}

export interface ServerLinkOptions {
  url: string;
  WebSocket: WebSocketConstructor;
  clientName: string;
  requestTimeoutMs: number;
  silenceMarginMs: number;
  backoff: (attempt: number) => number;
  log: Logger;
}

export function netStateOf(state: SessionState): NetState {
  if (state === 'open') return 'connected';
  if (state === 'connecting' || state === 'reconnecting') return 'connecting';
  return 'disconnected';
}

/** ws and browsers accept only 1000 and 3000–4999 in `close()`. */
function sendableCloseCode(code: number): number {
  return code === 1000 || (code >= 3000 && code <= 4999) ? code : 1000;
}

/** The engine's link to the server; see the module comment. */
export class ServerLink {
  private readonly url: string;
  private readonly log: Logger;

  /** Written only by {@link transition}. */
  private current: SessionState = 'idle';
  private live: SocketRecord | null = null;
  private nextSocketId = 1;
  private nextRequestId = 1;
  private readonly pending = new PendingMap<number, unknown>();
  /** Callers waiting for the link to open (logins), by a number of their own. */
  private readonly opening = new PendingMap<number, void>();
  private nextOpeningId = 1;
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

  constructor(
    private readonly options: ServerLinkOptions,
    private readonly owner: LinkOwner,
  ) {
    this.url = options.url;
    this.log = options.log;
  }

  get state(): SessionState {
    return this.current;
  }
  /** Open, with a socket (requests may go out). */
  get isOpen(): boolean {
    return this.current === 'open' && this.live !== null;
  }

  onStateChange(listener: (change: StateChange) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
  onNetState(listener: (state: NetState) => void): () => void {
    this.netListeners.add(listener);
    return () => this.netListeners.delete(listener);
  }

  serverTime(): number {
    return Date.now() + this.clockOffset;
  }

  /** Resolves once the link is open; opens the first socket if the link is idle. Rejects 2801 at `deadline`. */
  whenOpen(deadline: number): Promise<void> {
    if (this.current === 'open') return Promise.resolve();
    const first = this.current === 'idle';
    if (first) this.transition('connecting', { code: 0, reason: 'login' });
    const waitMs = Math.max(0, deadline - Date.now());
    // The state named is the one at the timeout too: `connecting` and `reconnecting` end only
    // by opening (resolved) or going idle (rejected).
    const opened = this.opening.wait(this.nextOpeningId++, waitMs, `no connection to ${this.url} within ${waitMs} ms (state '${this.current}')`);
    if (first) this.openSocket();
    return opened;
  }

  /** Send a request on the open connection; settles with its result, 2801 on timeout, 2800 on close. */
  request(build: (id: number) => RequestFrame, timeoutMs: number = this.options.requestTimeoutMs): Promise<unknown> {
    const live = this.live;
    if (!live || this.current !== 'open' || live.socket.readyState !== SOCKET_OPEN) {
      return Promise.reject(new ChatError(CODE.NETWORK_ERROR, `not connected (state '${this.current}')`));
    }
    const id = this.nextRequestId++;
    const frame = build(id);
    const answer = this.pending.wait(id, timeoutMs, `${frame.type} got no answer within ${timeoutMs} ms`);
    try {
      this.sendFrame(live, frame);
    } catch (err) {
      this.pending.take(id)?.reject(asChatError(err));
    }
    return answer;
  }

  /** Send a frame that expects no answer, if the link is open; returns whether it went out. */
  post(frame: ClientFrame): boolean {
    const live = this.live;
    if (live === null || this.current !== 'open' || live.socket.readyState !== SOCKET_OPEN) return false;
    this.sendFrame(live, frame);
    return true;
  }

  /** After a drop that the instances survive: `reconnecting`, and a new socket after the backoff. */
  reconnectLater(code: number, reason: string): void {
    this.transition('reconnecting', { code, reason });
    this.scheduleReconnect();
  }

  /** After a drop that leaves nothing to reconnect for: waiting logins reject with `error`; `idle`. */
  goIdle(error: ChatError, code: number, reason: string): void {
    this.rejectOpening(error);
    this.transition('idle', { code, reason });
  }

  /**
   * Close the socket once nothing needs it (no instance or login of the owner, no request).
   * Deferred to the next macrotask, so the application's handlers of the last logout or kick
   * run first (and a handler that logs in again keeps the socket).
   */
  releaseIfUnused(): void {
    if (!this.isUnused() || this.releaseTimer !== undefined) return;
    this.releaseTimer = setTimeout(() => {
      this.releaseTimer = undefined;
      if (!this.isUnused()) return;
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      if (this.live) this.closeSocket(1000, 'no instance left');
      else this.transition('idle', { code: 1000, reason: 'no instance left' });
    }, 0);
  }

  /** See `SessionEngine.setOnline`. */
  setOnline(online: boolean): void {
    if (this.current === 'closed' || online === !this.offline) return;
    this.offline = !online;
    if (!online) {
      this.log.info('the network went offline: closing the socket; waiting for online');
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      if (this.live) this.closeSocket(CLOSE_ABNORMAL, 'the network went offline');
      return;
    }
    if (this.current === 'reconnecting' && this.live === null) {
      this.log.info('the network is back online: reconnecting now');
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
      this.attempt = 0;
      this.openSocket();
    }
  }

  /** Close for good: requests and waiting logins reject with `error`; `closed`. */
  close(error: ChatError): void {
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.releaseTimer);
    this.reconnectTimer = undefined;
    this.releaseTimer = undefined;
    const live = this.live;
    this.live = null;
    this.rejectPending(error);
    this.rejectOpening(error);
    if (live) this.closeRecord(live, 1000, 'client closed');
    this.transition('closed', { code: 1000, reason: 'closed by the client' });
  }

  // ------------------------------------------------------------------ state machine

  /** The only writer of {@link current}. Returns whether the state changed. */
  private transition(next: SessionState, why: { code: number; reason: string }): boolean {
    const oldState = this.current;
    if (oldState === next) return false;
    this.current = next;
    const change: StateChange = { oldState, newState: next, code: why.code, reason: why.reason };
    this.log.debug(`state ${oldState} → ${next} (${why.code} ${why.reason})`);
    for (const listener of [...this.stateListeners]) safely(this.log, () => listener(change));
    const oldNet = netStateOf(oldState);
    const newNet = netStateOf(next);
    if (oldNet !== newNet) for (const listener of [...this.netListeners]) safely(this.log, () => listener(newNet));
    return true;
  }

  // ------------------------------------------------------------------ sockets

  private openSocket(): void {
    let socket: WebSocketLike;
    try {
      socket = new this.options.WebSocket(this.url);
    } catch (err) {
      this.handleDisconnect(CLOSE_ABNORMAL, `cannot open ${this.url}: ${asChatError(err).message}`);
      return;
    }
    const id = this.nextSocketId++;
    const live: SocketRecord = { id, socket, helloSentAt: 0, lastPingAt: 0, heartbeatMs: 0, pingTimer: undefined, watchdog: undefined };
    this.live = live;
    socket.onopen = () => this.socketOnOpen(id);
    socket.onmessage = (event) => this.socketOnMessage(id, event.data);
    socket.onclose = (event) => this.socketOnClose(id, event.code, event.reason);
    // The close event follows every error; the reason is reported there.
    socket.onerror = () => this.log.debug(`socket #${id} error`);
    this.armWatchdog(live, this.options.requestTimeoutMs, 'no welcome');
  }

  /** The current socket's record if `id` names it, else null (the event comes from a replaced socket). */
  private record(id: number): SocketRecord | null {
    return this.live !== null && this.live.id === id ? this.live : null;
  }

  private socketOnOpen(id: number): void {
    const live = this.record(id);
    if (!live) return;
    live.helloSentAt = Date.now();
    this.sendFrame(live, { type: 'hello', v: PROTOCOL_VERSION, client: this.options.clientName });
  }

  private socketOnMessage(id: number, raw: unknown): void {
    const live = this.record(id);
    if (!live) return;
    if (live.heartbeatMs > 0) this.armWatchdog(live, live.heartbeatMs + this.options.silenceMarginMs, 'no frame');
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
        this.handleWelcome(live, frame);
        break;
      case 'result':
        this.handleResult(frame);
        break;
      case 'kick':
      case 'msg':
      case 'conv':
        this.owner.pushed(frame);
        break;
      case 'pong':
        this.updateClock(frame.serverTime, live.lastPingAt);
        break;
      case 'error':
        this.log.warn(`server error ${frame.code}: ${frame.message}`);
        break;
    }
  }

  private socketOnClose(id: number, code: number, reason: string): void {
    const live = this.record(id);
    if (!live) return;
    this.live = null;
    this.stopTimers(live);
    this.handleDisconnect(code, reason);
  }

  private handleWelcome(live: SocketRecord, frame: WelcomeFrame): void {
    if (live.heartbeatMs > 0) return; // one welcome per socket
    if (frame.v !== PROTOCOL_VERSION) {
      this.closeSocket(CLOSE.PROTOCOL_VERSION, `server speaks protocol v${frame.v}, this client v${PROTOCOL_VERSION}`);
      return;
    }
    this.updateClock(frame.serverTime, live.helloSentAt);
    live.heartbeatMs = Math.max(1, frame.heartbeatMs);
    live.pingTimer = setInterval(() => this.sendPing(live), live.heartbeatMs);
    this.armWatchdog(live, live.heartbeatMs + this.options.silenceMarginMs, 'no frame');
    this.attempt = 0;
    this.transition('open', { code: 0, reason: `welcome from node ${frame.node}` });
    for (const waiting of this.opening.takeAll()) waiting.resolve();
    this.owner.opened();
  }

  /** Close the current socket on our own initiative; the replaced socket's events are dropped. */
  private closeSocket(code: number, reason: string): void {
    const live = this.live;
    if (!live) return;
    this.live = null;
    this.closeRecord(live, code, reason);
    this.handleDisconnect(code, reason);
  }

  private closeRecord(live: SocketRecord, code: number, reason: string): void {
    this.stopTimers(live);
    try {
      // Close reasons are limited to 123 bytes; the full reason goes to the state change.
      live.socket.close(sendableCloseCode(code), reason.slice(0, 60));
    } catch (err) {
      this.log.debug(`socket #${live.id} close failed:`, asChatError(err).message);
    }
  }

  private stopTimers(live: SocketRecord): void {
    clearInterval(live.pingTimer);
    clearTimeout(live.watchdog);
    live.pingTimer = undefined;
    live.watchdog = undefined;
  }

  private armWatchdog(live: SocketRecord, ms: number, what: string): void {
    clearTimeout(live.watchdog);
    live.watchdog = setTimeout(() => {
      if (this.record(live.id)) this.closeSocket(CLOSE.HEARTBEAT_TIMEOUT, `${what} from the server for ${ms} ms`);
    }, ms);
  }

  /** After the socket is gone: fail its requests, then let the owner decide (reconnect or idle). */
  private handleDisconnect(code: number, reason: string): void {
    const text = `connection closed (${code}${reason ? `: ${reason}` : ''})`;
    this.rejectPending(new ChatError(CODE.NETWORK_ERROR, text, { closeCode: code }));
    this.owner.dropped(code, reason, text);
  }

  private scheduleReconnect(): void {
    if (this.offline) {
      this.log.info('offline: the reconnect waits for the network to come back (online)');
      return;
    }
    const delay = this.options.backoff(this.attempt++);
    this.log.info(`reconnecting in ${Math.round(delay)} ms (attempt ${this.attempt})`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.current === 'reconnecting' && this.live === null) this.openSocket();
    }, delay);
  }

  private isUnused(): boolean {
    if (this.current === 'idle' || this.current === 'closed') return false;
    return !this.owner.inUse() && this.pending.size === 0;
  }

  private rejectPending(error: ChatError): void {
    for (const request of this.pending.takeAll()) request.reject(error);
  }

  private rejectOpening(error: ChatError): void {
    for (const waiting of this.opening.takeAll()) waiting.reject(error);
  }

  // ------------------------------------------------------------------ frames

  private sendFrame(live: SocketRecord, frame: ClientFrame): void {
    live.socket.send(encodeFrame(frame));
  }

  private sendPing(live: SocketRecord): void {
    if (!this.record(live.id) || live.socket.readyState !== SOCKET_OPEN) return;
    live.lastPingAt = Date.now();
    this.sendFrame(live, { type: 'ping' });
  }

  private handleResult(frame: ResultFrame): void {
    const request = this.pending.take(frame.id);
    if (!request) {
      this.log.debug(`late result for request ${frame.id} dropped`);
      return;
    }
    if (frame.ok) {
      const data = frame.data as { serverTime?: unknown } | null;
      if (typeof data?.serverTime === 'number') this.updateClock(data.serverTime, request.since);
      request.resolve(frame.data);
    } else {
      request.reject(new ChatError(frame.code, frame.message || codeText(frame.code), { ...frame.data }));
    }
  }

  private updateClock(serverTime: number, sentAt: number): void {
    const now = Date.now();
    const halfRoundTrip = sentAt > 0 ? (now - sentAt) / 2 : 0;
    this.clockOffset = Math.round(serverTime + halfRoundTrip - now);
  }
}
