/**
 * The session engine contract: one WebSocket to the chat server carrying any number of
 * login instances. The same engine runs in Node (one engine per chat instance), inside the
 * SharedWorker (one engine for all tabs of a browser profile) and in a leader tab.
 * It must not use Node-only or window-only APIs: the WebSocket constructor is injected.
 */
import type { ConversationCall, ConversationsUpdate, ErrorData, LoginResult, Logger, NetState, OutgoingText } from '../protocol/data.js';
import type { KickType, Platform, WireMessage } from '../protocol/frames.js';

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
  /**
   * Messages for this instance, in mailbox order, each exactly once: received ones (flow
   * `in`) and those another instance of the same user sent (flow `out`). Messages this
   * instance sent itself are not reported (their `send()` resolves instead). Called after
   * the engine advanced its position; the acknowledgement to the server follows.
   * Without this callback the instance neither reads nor acknowledges its mailbox, so its
   * messages wait on the server for an instance that takes them.
   */
  onMessages?(messages: WireMessage[]): void;
  /**
   * The user's conversations changed (or were loaded) in the engine's shared cache
   * (src/core/conversations.ts); also called once when the instance is placed.
   */
  onConversations?(update: ConversationsUpdate): void;
  /**
   * Also report, through {@link onMessages} and in mailbox order, the messages this
   * instance sent itself (flow `out`, with their `clientMsgId`), including those it sent
   * for an earlier instance of the user (adopted outbox entries). For hosts that carry
   * several chats on one instance (the SharedWorker): the host tells its chats apart.
   * Default false.
   */
  reportOwn?: boolean;
}

/** A message waiting in the outbox for the server's acknowledgement. Plain data (storable). */
export interface OutboxEntry {
  clientMsgId: string;
  sdkAppId: number;
  /** Sender userID. */
  from: string;
  to: string;
  text: string;
  /** When it was queued (local clock, ms since epoch); adopted entries are sent in this order. */
  queuedAt: number;
}

/**
 * Where the engine records messages between `send()` and the server's acknowledgement,
 * so a host can make them survive its own restart (the SharedWorker backs it with
 * IndexedDB). The engine writes an entry before the message first goes out, deletes it
 * when the server stored it or the send failed for good, and, when an instance of a user
 * logs in, is taken over or is restored after a reconnect, adopts that user's entries it
 * does not already hold and sends
 * them (exactly once, thanks to the server's idempotency). Use one outbox per engine
 * (i.e. per server URL). A rejected promise fails the send with 9024 (put) or is logged
 * (delete, list).
 */
export interface Outbox {
  put(entry: OutboxEntry): Promise<void>;
  delete(clientMsgId: string): Promise<void>;
  /** The entries of one user, in any order. */
  list(sdkAppId: number, userID: string): Promise<OutboxEntry[]>;
}

/** What a login (or a take-over) yields: the instance's handle and the login result. */
export interface LoginGrant {
  handle: SessionHandle;
  result: LoginResult;
}

export interface SessionHandle {
  /** Current server instance id; changes if the instance had to log in again. */
  readonly instId: number;
  /** Current resume token (secret); changes with `instId`. Lets another engine take the instance over. */
  readonly token: string;
  readonly userID: string;
  readonly sdkAppId: number;
  readonly platform: Platform;
  /**
   * Mailbox position: the highest seq this instance has processed (see docs/protocol.md
   * "Messages"); null until its first sync answered. A host that takes the instance over
   * later passes it to `resume()` so nothing is delivered twice.
   */
  readonly lastSeq: number | null;
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
  /**
   * How long a `send()` waits for the server's acknowledgement before it rejects with 9022
   * (the message stays queued and is still sent). Default 30 000 ms.
   */
  sendTimeoutMs?: number;
  /**
   * Most `send` frames per second on the connection (queued messages wait for their turn);
   * keep it below the server's `rateLimits.framesPerSecond` (default 100), which closes
   * faster connections (4003), leaving room for pings, syncs and acks. Default 80.
   */
  framesPerSecond?: number;
  /**
   * Largest frame the server accepts (its `maxPayloadBytes`); a message whose `send` frame
   * is larger fails at once with 80002 instead of getting the connection closed (1009).
   * Default 65 536.
   */
  maxFrameBytes?: number;
  /** Delay before the engine acknowledges processed messages (one `ack` per burst). Default 200 ms. */
  ackDelayMs?: number;
  /** Where queued messages are recorded. Default: a {@link MemoryOutbox} (lost with the process). */
  outbox?: Outbox;
}

export interface SessionEngineApi {
  /** Opens the socket if needed, logs the instance in. Rejects with an ErrorData-shaped ChatError. */
  login(params: LoginParams, events: InstanceEvents): Promise<LoginGrant>;
  /**
   * Take over an instance another engine held (e.g. a previous SharedWorker): a silent
   * `resume` with its instId and token, or, when the server answers 9005 (resume window
   * passed), a new login with `params.userSig`. Rejects like `login`; a kick found on resume
   * rejects with the kick's reason code (3002/3003/3004/3006) and `data.kickType`, and so
   * does a fallback login refused with 70001 (`userSigExpired`) or 70052 (`REST_API_Kick`).
   */
  resume(
    params: LoginParams,
    saved: { instId: number; token: string; lastSeq?: number | null },
    events: InstanceEvents,
  ): Promise<LoginGrant>;
  /**
   * Logs the instance out; releases it locally even when the server cannot be reached.
   * Messages still queued for it are dropped: their `send()` rejects with 9023.
   * @param options.keepQueued - keep their outbox entries instead (default false): the
   *   next instance of the user on this outbox (a login, a take-over or a restore after a
   *   reconnect) adopts and sends them. For an instance that goes away without its user
   *   asking (the SharedWorker when a tab closes).
   */
  logout(handle: SessionHandle, options?: { keepQueued?: boolean }): Promise<void>;
  /**
   * Send a C2C text message as this instance. The message goes to the outbox first, then
   * out when the connection is open (at once, or after a reconnect); resolves with the
   * stored message (flow `out`, its seq in the sender's mailbox) when the server has
   * stored it. Rejects with: the validation codes 9021 / 9020 / 80002 at once (nothing
   * queued); 9024 when the outbox could not record it; 9022 after `sendTimeoutMs`, while
   * the message STAYS QUEUED and is still sent (calling `send` again with the same
   * `clientMsgId` waits for that same message, or returns it when it was stored
   * meanwhile); 9023 when it was dropped before being stored (cancelSend, logout, kick,
   * lost session); 9011 when the engine was closed; another server code when the server
   * refused it for good.
   * @param options.timeoutMs - default `sendTimeoutMs` (30 000 ms)
   */
  send(handle: SessionHandle, message: OutgoingText, options?: { timeoutMs?: number }): Promise<WireMessage>;
  /**
   * Drop a queued message that has not gone out yet: its `send()` rejects with 9023 and
   * resolves true. False when there is no such queued message or it is already on its
   * way to the server (then it may still be stored and delivered).
   */
  /**
   * A conversation call (list, history page, read, delete) as the instance: the list is
   * served from the engine's per-user cache; the others ask the server (the newest history
   * page of a conversation is cached too). Rejects with the server's code (9043–9046, 2024…).
   */
  conversation(handle: SessionHandle, call: ConversationCall): Promise<unknown>;
  cancelSend(handle: SessionHandle, clientMsgId: string): Promise<boolean>;
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
  /**
   * Close the socket and forget all instances without telling the server (it releases them
   * after the resume window). Pending sends reject with 9011; their outbox entries are
   * kept, so a durable outbox hands them to the next engine.
   */
  close(): void;
}
