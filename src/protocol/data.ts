/**
 * Plain-data types that cross threads: what the session engine reports and the chat API
 * receives, whether they share a thread (Node) or talk over comlink and BroadcastChannel
 * (a tab and its hub). Nothing here holds a function or a class instance, except
 * {@link Logger}, which the tab hands to the leader-tab host in its own page.
 */

/** State of the socket a chat uses, as `NET_STATE_CHANGE` reports it. */
export type NetState = 'connected' | 'connecting' | 'disconnected';

/** Plain-data form of an error: what crosses thread boundaries (comlink, BroadcastChannel). */
export interface ErrorData {
  code: number;
  message: string;
  data?: Record<string, unknown>;
}

/** A C2C text message to send. */
export interface OutgoingText {
  /**
   * Client-generated id (1..64 characters, e.g. from `newClientMsgId()`); the server's
   * idempotency key: sending the same id again never creates a second message.
   */
  clientMsgId: string;
  /** Recipient userID. */
  to: string;
  text: string;
}

/** What a login (or a take-over of a session) yields. */
export interface LoginResult {
  instId: number;
  userID: string;
  /** Server clock at the reply, ms since epoch. */
  serverTime: number;
  /** UserSig expiry, ms since epoch; 0 when unknown (an instance taken over by `resume`). */
  expireAt: number;
}

/** Leveled logger; `console` fits. */
export interface Logger {
  debug(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

/** A conversation call of a chat, as it crosses to the engine (worker, leader hub or Node). */
export type ConversationCall =
  | { op: 'list' }
  | { op: 'history'; peer: string; before?: string }
  | { op: 'read'; peer: string }
  | { op: 'delete'; peer: string };

/**
 * The conversations of a user as the engine's shared cache holds them (after any change):
 * every cached conversation, most recent first, the unread total over them, and the peers
 * whose read receipt rose with this change.
 */
export interface ConversationsUpdate {
  conversations: import('./conversation-frames.js').WireConversation[];
  total: number;
  peerRead?: Array<{ peer: string; peerReadSeq: number; messageID: string }>;
}
