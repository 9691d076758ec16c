/**
 * The session engine contract: one WebSocket to the chat server carrying any number of
 * login instances. The same engine runs in Node (one engine per chat instance), inside the
 * SharedWorker (one engine for all tabs of a browser profile) and in a leader tab.
 * It must not use Node-only or window-only APIs: the WebSocket constructor is injected.
 */
import type { KickType, Platform } from '../protocol/frames.js';

export type NetState = 'connected' | 'connecting' | 'disconnected';

/**
 * States of the engine's one connection (house style: one explicit state machine).
 * - `idle`: no socket and no instance (initial, and after the last instance left).
 * - `connecting`: first socket of a session is opening or waiting for `welcome`.
 * - `open`: `welcome` received; requests flow.
 * - `reconnecting`: the socket dropped while instances exist; waiting for the backoff
 *   timer or for the next socket's `welcome`.
 * - `closed`: {@link SessionEngineApi.close} was called. Terminal.
 */
export type SessionState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed';

/** What every state change reports. `code`/`reason` say why (a close code, an error code). */
export interface StateChange {
  oldState: SessionState;
  newState: SessionState;
  code: number;
  reason: string;
}

/** Plain-data form of an error: what crosses thread boundaries (comlink, BroadcastChannel). */
export interface ErrorData {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

/**
 * A handler slot that accepts both the DOM `WebSocket` and the `ws` package: their event
 * classes differ, and a method-shaped type is checked bivariantly, so both fit.
 */
type SocketHandler<E> = { handle(ev: E): void }['handle'];

/** Minimal WebSocket surface the engine needs (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: SocketHandler<unknown> | null;
  onmessage: SocketHandler<{ data: unknown }> | null;
  onclose: SocketHandler<{ code: number; reason: string }> | null;
  onerror: SocketHandler<unknown> | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** Leveled logger; `console` fits. */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

export interface LoginParams {
  sdkAppId: number;
  userID: string;
  userSig: string;
  platform: Platform;
}

/** Callbacks for one instance. All are terminal except onRestored. */
export interface InstanceEvents {
  /** The server kicked this instance (also when a resume finds it was kicked meanwhile). */
  onKicked(type: KickType): void;
  /** The instance could not be restored after a reconnect, for a reason that is not a kick. */
  onLost(error: ErrorData): void;
  /** The instance is back after a reconnect: a silent resume, or a re-login (new instId). */
  onRestored?(info: { instId: number; relogin: boolean }): void;
}

export interface LoginResult {
  instId: number;
  userID: string;
  /** Server clock at the reply, ms since epoch. */
  serverTime: number;
  /** UserSig expiry, ms since epoch; 0 when unknown (an instance taken over by `resume`). */
  expireAt: number;
}

export interface SessionHandle {
  /** Current server instance id; changes if the instance had to log in again. */
  readonly instId: number;
  /** Current resume token (secret); changes with `instId`. Lets another engine take the instance over. */
  readonly token: string;
  readonly userID: string;
  readonly sdkAppId: number;
  readonly platform: Platform;
}

/** Options of the session engine (`new SessionEngine(options)`). */
export interface SessionEngineOptions {
  /** WebSocket URL of the chat server, e.g. `ws://127.0.0.1:8080/ws`. Required. */
  url: string;
  /** WebSocket constructor: the global one in browsers and workers, `ws` in Node. Required. */
  WebSocket: WebSocketConstructor;
  /** Name sent in `hello`, for server logs. Default `'tabchat'`. */
  clientName?: string;
  /** Timeout of each request, and of a login including its connection wait. Default 10 000 ms (code 2801). */
  requestTimeoutMs?: number;
  /**
   * Silence tolerated beyond the server's `heartbeatMs` before the socket is closed (4001)
   * and reopened. Default 10 000 ms.
   */
  silenceMarginMs?: number;
  /** Delay before reconnect attempt `attempt` (0-based). Default {@link fullJitterBackoff} 500 ms … 10 s. */
  backoff?: (attempt: number) => number;
  /** Where the engine logs. Default: `console` at level warn. */
  logger?: Logger;
}

export interface SessionEngineApi {
  /** Opens the socket if needed, logs the instance in. Rejects with an ErrorData-shaped ChatError. */
  login(params: LoginParams, events: InstanceEvents): Promise<{ handle: SessionHandle; result: LoginResult }>;
  /**
   * Take over an instance another engine held (e.g. a previous SharedWorker): a silent
   * `resume` with its instId and token, or, when the server answers 9005 (resume window
   * passed), a new login with `params.userSig`. Rejects like `login`; a kick found on resume
   * rejects with the kick's reason code (3002/3003/3004/3006) and `data.kickType`, and so
   * does a fallback login refused with 70001 (`userSigExpired`) or 70052 (`REST_API_Kick`).
   */
  resume(
    params: LoginParams,
    saved: { instId: number; token: string },
    events: InstanceEvents,
  ): Promise<{ handle: SessionHandle; result: LoginResult }>;
  /** Logs the instance out; releases it locally even when the server cannot be reached. */
  logout(handle: SessionHandle): Promise<void>;
  /** Server clock in ms, from the offset measured on the last reply. */
  getServerTime(): number;
  /** Current connection state. */
  readonly state: SessionState;
  /** Every change of {@link state}; returns the unsubscribe function. */
  onStateChange(listener: (change: StateChange) => void): () => void;
  /** Network state derived from {@link state}: `open` → connected, `connecting`/`reconnecting` → connecting, else disconnected. */
  readonly netState: NetState;
  /** Changes of {@link netState} only (never the same value twice in a row); returns the unsubscribe function. */
  onNetState(listener: (state: NetState) => void): () => void;
  readonly instanceCount: number;
  /** Close the socket and forget all instances without telling the server (it releases them after the resume window). */
  close(): void;
}
