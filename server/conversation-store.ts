/**
 * The conversation part of the message store (contract only): per user and peer, the
 * newest message, the unread count and the read markers, kept in the SAME transaction as
 * the mailbox entries they count (sqlite and postgres: a trigger on the mailbox table;
 * memory: the store's own insert), so a count never drifts from the entries and a resend
 * (same clientMsgId, no new entry) never counts twice. Implementations:
 * store-memory-conversations.ts, store-sqlite-conversations.ts,
 * store-postgres-conversations.ts. See docs/protocol.md "Conversations".
 *
 * Every query goes through an index: the conversation table by (app, user, peer) and by
 * (app, user, last activity); a conversation's history through the message table's
 * (app, from, to, seq) indexes; a cursor message through its primary key.
 */
import type { MailboxEntry, StoredMessage } from './store.js';

/** One conversation as stored. */
export interface ConversationRow {
  peer: string;
  /** Received messages after `readSeq` (0 after a read or a delete). */
  unread: number;
  /** Read up to this seq of the owner's mailbox. */
  readSeq: number;
  /** Seq of the newest message of the conversation in the owner's mailbox. */
  lastSeq: number;
  /** The peer read the owner's messages up to this seq of the owner's mailbox. */
  peerReadSeq: number;
  /** History at or before this seq is hidden (a delete); the conversation is listed only when `lastSeq > clearedSeq`. */
  clearedSeq: number;
  /** The newest message (null when retention or the quota removed its entry). */
  last: MailboxEntry | null;
}

/** A page of one conversation: entries ascending; `more` when older entries exist. */
export interface HistoryPage {
  entries: MailboxEntry[];
  more: boolean;
}

/** The outcome of a read: the conversation after it, whether it changed, and the newest received message it covered. */
export interface ReadOutcome {
  row: ConversationRow;
  changed: boolean;
  /** The newest message from the peer up to the read (its `fromSeq` is the peer's read receipt). */
  lastIn: StoredMessage | null;
}

export interface ConversationStore {
  /** Visible conversations, most recent activity first, at most `limit`, and the unread total over ALL of them. */
  list(sdkAppId: number, userID: string, limit: number): Promise<{ conversations: ConversationRow[]; total: number }>;
  /** The conversation with `peer`, or null (none, or deleted with nothing newer). */
  get(sdkAppId: number, userID: string, peer: string): Promise<ConversationRow | null>;
  /** Sum of `unread` over the user's conversations. */
  total(sdkAppId: number, userID: string): Promise<number>;
  /** Up to `limit` newest entries of the conversation with seq < `beforeSeq` (null: the newest) and > its cleared seq. */
  history(sdkAppId: number, userID: string, peer: string, beforeSeq: number | null, limit: number): Promise<HistoryPage>;
  /** Where message `messageId` is in the user's mailbox (seq and peer), or null when the user's mailbox has no entry of it. */
  locate(sdkAppId: number, userID: string, messageId: string): Promise<{ seq: number; peer: string } | null>;
  /** Read up to the newest message: unread 0, readSeq = lastSeq. Null when there is no visible conversation. */
  markRead(sdkAppId: number, userID: string, peer: string): Promise<ReadOutcome | null>;
  /** Raise the peer-read marker of (user, peer) to `seq`; the row when it rose, else null. */
  setPeerRead(sdkAppId: number, userID: string, peer: string, seq: number): Promise<ConversationRow | null>;
  /** Hide the conversation and its history up to its newest message; false when there was none visible. */
  remove(sdkAppId: number, userID: string, peer: string): Promise<boolean>;
}

/** Conversation columns as both SQL stores name them. */
export interface ConversationSqlRow {
  peer: string;
  unread: number;
  read_seq: number;
  last_seq: number;
  peer_read_seq: number;
  cleared_seq: number;
}
