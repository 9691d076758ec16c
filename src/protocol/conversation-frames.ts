/**
 * Wire frames of conversations, history and read state (C2C). Kept apart from frames.ts
 * (which re-exports the frame unions) so that the tab script, which only needs the shapes,
 * stays small. See docs/protocol.md "Conversations".
 *
 * A conversation of user U with peer P is the part of U's mailbox whose entries have P as
 * the other party; its id on the API is `'C2C' + P`. Every seq here is a seq of the
 * owner's own mailbox, except `peerReadSeq` (see {@link WireConversation}).
 */
import { CODE } from './codes.js';
import type { WireMessage } from './frames.js';

/** Bounds of the conversation frames. */
export const CONVERSATION_LIMITS = {
  /** Messages per history page of the reference SDK (`getMessageList`). */
  pageSize: 15,
  /** Largest `history.limit`. */
  maxPageSize: 100,
  /** Conversations a `convList` returns at most (the most recently active ones). */
  maxConversations: 500,
} as const;

/** One conversation as its owner sees it. */
export interface WireConversation {
  /** The other user. */
  peer: string;
  /** Received messages after `readSeq` (never negative). */
  unread: number;
  /** The owner read the conversation up to this seq of the owner's mailbox. */
  readSeq: number;
  /** Seq (owner's mailbox) of the newest message of the conversation. */
  lastSeq: number;
  /** The newest message, as the owner's mailbox holds it; null if retention removed it. */
  last: WireMessage | null;
  /**
   * The peer read the owner's messages up to this seq OF THE OWNER'S MAILBOX (the `out`
   * messages with seq <= peerReadSeq were read); 0 = none.
   */
  peerReadSeq: number;
}

/** List the user's conversations, most recent activity first. */
export interface ConvListFrame {
  type: 'convList';
  id: number;
  instId: number;
}
/** A page of one conversation's history: the newest `limit` messages with seq < `before`'s. */
export interface HistoryFrame {
  type: 'history';
  id: number;
  instId: number;
  peer: string;
  /** Message id of the oldest message of the previous page (the API's `nextReqMessageID`); absent: the newest page. */
  before?: string;
  /** 1..{@link CONVERSATION_LIMITS.maxPageSize}; default 15. */
  limit?: number;
}
/** Mark the conversation read up to its newest message. */
export interface ReadFrame {
  type: 'read';
  id: number;
  instId: number;
  peer: string;
}
/** Delete the conversation: it leaves the list and its history until a new message arrives. */
export interface ConvDeleteFrame {
  type: 'convDelete';
  id: number;
  instId: number;
  peer: string;
}
export type ConversationRequestFrame = ConvListFrame | HistoryFrame | ReadFrame | ConvDeleteFrame;

/** `data` of `convList`. */
export interface ConvListResultData {
  conversations: WireConversation[];
  /** Sum of `unread` over every conversation of the user. */
  total: number;
  /** The user's mailbox head, read just before the list: every message with seq <= head is reflected in it. */
  head: number;
}
/** `data` of `history`: messages ascending (oldest first); `more` when older ones exist. */
export interface HistoryResultData {
  messages: WireMessage[];
  more: boolean;
}
/** `data` of `read`: the conversation after the change, and whether anything changed. */
export interface ReadResultData {
  conversation: WireConversation;
  changed: boolean;
}
/** `data` of `convDelete`. */
export interface ConvDeleteResultData {
  removed: boolean;
}

/**
 * Pushed to every online instance of the user (on every node) when one of their
 * conversations changed other than by a message (read, deleted, read by the peer).
 * Messages themselves travel as `msg` pushes; a client applies both in order.
 */
export interface ConvPush {
  kind: 'conv';
  /** The conversation after the change (absent when `removed`). */
  conversation?: WireConversation;
  /** Peer of a deleted conversation. */
  removed?: string;
  /** A read receipt: id of the owner's newest message the peer read (its seq is `conversation.peerReadSeq`). */
  readMessageID?: string;
}
/** What the server pushes to a user's instances: a message or a conversation change. */
export type UserPush = WireMessage | ConvPush;

/** Whether a push is a conversation change (else a message). */
export function isConvPush(push: UserPush): push is ConvPush {
  return (push as ConvPush).kind === 'conv';
}

export interface ConvFrame {
  type: 'conv';
  instId: number;
  update: ConvPush;
}

type Obj = Record<string, unknown>;
type Refusal = { ok: false; code: number; message: string; id?: number };

function isObject(value: unknown): value is Obj {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
function isPositiveInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= Number.MAX_SAFE_INTEGER;
}

/**
 * Shape check of a conversation request (frames.ts `parseClientFrame` calls it with the
 * parsed object and its request id). `peer` is checked for being a short string here; the
 * server applies the whole userID rule (9043).
 */
export function parseConversationFrame(value: Obj, id: number | undefined): { ok: true; frame: ConversationRequestFrame } | Refusal {
  const type = value.type as ConversationRequestFrame['type'];
  const bad = (message: string, code: number = CODE.BAD_FRAME): Refusal => (id === undefined ? { ok: false, code, message } : { ok: false, code, message, id });
  if (id === undefined) return bad(`${type}.id must be a positive integer`);
  if (!isPositiveInt(value.instId)) return bad(`${type}.instId must be a positive integer`);
  const instId = value.instId;
  if (type === 'convList') return { ok: true, frame: { type, id, instId } };
  if (typeof value.peer !== 'string' || value.peer.length === 0 || value.peer.length > 128) {
    return bad(`${type}.peer must be a userID`, CODE.INVALID_CONVERSATION_ID);
  }
  const peer = value.peer;
  if (type !== 'history') return { ok: true, frame: { type, id, instId, peer } };
  const frame: HistoryFrame = { type, id, instId, peer };
  if (value.before !== undefined) {
    if (typeof value.before !== 'string' || value.before.length === 0 || value.before.length > 64) {
      return bad('history.before must be a message id', CODE.INVALID_PAGE_CURSOR);
    }
    frame.before = value.before;
  }
  if (value.limit !== undefined) {
    if (!isPositiveInt(value.limit) || value.limit > CONVERSATION_LIMITS.maxPageSize) {
      return bad(`history.limit must be an integer of 1..${CONVERSATION_LIMITS.maxPageSize}`, CODE.INVALID_PAGE_SIZE);
    }
    frame.limit = value.limit;
  }
  return { ok: true, frame };
}

/** Whether `value` looks like a {@link WireConversation} (client side). */
export function isWireConversation(value: unknown): value is WireConversation {
  return (
    isObject(value) &&
    typeof value.peer === 'string' &&
    typeof value.unread === 'number' &&
    typeof value.readSeq === 'number' &&
    typeof value.lastSeq === 'number' &&
    typeof value.peerReadSeq === 'number' &&
    (value.last === null || isObject(value.last))
  );
}

/** Whether `value` is a well-formed {@link ConvFrame} (client side). */
export function isConvFrame(value: Obj): boolean {
  const update = value.update;
  return (
    isPositiveInt(value.instId) &&
    isObject(update) &&
    update.kind === 'conv' &&
    (update.conversation === undefined || isWireConversation(update.conversation)) &&
    (update.removed === undefined || typeof update.removed === 'string')
  );
}
