/**
 * The message store: where C2C messages live and the one place that assigns sequence
 * numbers. Every user has a mailbox (per app); each message gets one entry in the
 * recipient's mailbox (flow `in`) and one in the sender's (flow `out`), each with the next
 * seq of that mailbox, so seqs are 1, 2, 3 … per user without gaps.
 *
 * This file is the contract only (the interface and the types every store shares). Three
 * implementations behind {@link MessageStore}: `memory` (store-memory.ts), `sqlite:PATH`
 * (store-sqlite.ts, better-sqlite3) and `postgres://…` (store-postgres.ts, pg; shared by
 * every node of a cluster); store-open.ts picks one from config `store`. The embedded ones
 * store in call order: `memory` synchronously inside each call, `sqlite` in group commits
 * (several sends, one transaction). See docs/protocol.md "Messages", docs/operations.md and
 * docs/scaling.md.
 */
import type { MessageFlow } from '../src/protocol/frames.js';
import type { ConversationStore } from './conversation-store.js';

/** A message as stored, with its seq in both mailboxes. */
export interface StoredMessage {
  /** Server-assigned id (unique). */
  id: string;
  sdkAppId: number;
  from: string;
  to: string;
  /** The sender's idempotency key: (sdkAppId, from, clientMsgId) is unique. */
  clientMsgId: string;
  text: string;
  /** Server time of storage, ms since epoch. */
  time: number;
  /** Seq in the sender's mailbox. */
  fromSeq: number;
  /** Seq in the recipient's mailbox (equals `fromSeq` for a message to oneself: one entry). */
  toSeq: number;
}

/** One mailbox entry: the message and its seq/flow in that mailbox. */
export interface MailboxEntry {
  seq: number;
  flow: MessageFlow;
  message: StoredMessage;
}

/** What {@link MessageStore.send} stores: a message before its seqs are assigned (`id` is used if it is new). */
export type NewMessage = Omit<StoredMessage, 'fromSeq' | 'toSeq'>;

/** One page of a mailbox, see {@link MessageStore.read}. */
export interface MailboxPage {
  entries: MailboxEntry[];
  more: boolean;
  /** Highest seq in the mailbox when the page was read (0 when empty). */
  head: number;
}

export interface MessageStore {
  /** `memory`, `sqlite` or `postgres`. */
  readonly kind: string;
  /** Conversations, history pages and read markers of the same data (conversation-store.ts). */
  readonly conversations: ConversationStore;
  /**
   * Store a message and assign its seqs, atomically; or, when (sdkAppId, from, clientMsgId)
   * was stored before, return that message unchanged with `created: false` (idempotent send).
   * A message to oneself takes ONE entry (flow `out`) in that mailbox.
   */
  send(message: NewMessage): Promise<{ message: StoredMessage; created: boolean }>;
  /**
   * Mailbox entries with seq > `afterSeq`, ascending, at most `limit`, whether more follow,
   * and the mailbox head, all from one snapshot (one round trip on a networked store): a
   * client compares `head` with its position to tell a gap from a reset mailbox. With
   * `maxBytes`, the page stops before the entry that would take its text (UTF-8) past it
   * (it always holds one entry when one follows), and the store reads no more than that:
   * entries removed by retention or quota are skipped (seqs may jump).
   */
  read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes?: number): Promise<MailboxPage>;
  /** Highest seq in the user's mailbox (0 when empty). */
  head(sdkAppId: number, userID: string): Promise<number>;
  /** Highest seq acknowledged by any instance of the user (0 when none). */
  acked(sdkAppId: number, userID: string): Promise<number>;
  /**
   * Record an acknowledgement: the user's acked position becomes max(old, min(seq, head)).
   * Resolves with the (clamped) seq recorded for this ack.
   */
  ack(sdkAppId: number, userID: string, seq: number): Promise<number>;
  /**
   * Retention: delete up to `max` messages stored before `before` (ms since epoch), with
   * their mailbox entries, oldest first, through an index on the time. Resolves with how
   * many were deleted (fewer than `max`: nothing older is left).
   */
  removeExpired(before: number, max: number): Promise<number>;
  /** Flush and release (the sqlite file lock). Calls after close reject. */
  close(): Promise<void>;
}

/**
 * Per-mailbox quota (config `mailbox`): a mailbox that would pass `maxMessages` entries or
 * `maxBytes` of text first drops its oldest entries that the user acknowledged; a message
 * whose recipient's mailbox still has no room is refused ({@link MailboxFullError}). Entries
 * nobody acknowledged are only ever removed by retention.
 */
export interface MailboxQuota {
  maxMessages: number;
  maxBytes: number;
}

/** Unlimited: what stores opened without a quota use. */
export const NO_QUOTA: Readonly<MailboxQuota> = { maxMessages: Number.MAX_SAFE_INTEGER, maxBytes: Number.MAX_SAFE_INTEGER };

/** Entries one send may drop to make room (acknowledged ones, oldest first). */
export const MAX_EVICTIONS_PER_SEND = 64;

/** The recipient's mailbox has no room for the message (9040): nothing was stored. */
export class MailboxFullError extends Error {
  override name = 'MailboxFullError';
  constructor(readonly userID: string) {
    super(`the mailbox of ${userID} is full (unacknowledged messages at its quota); nothing was stored`);
  }
}

/** Thrown by a store used after close(). */
export class StoreClosedError extends Error {
  override name = 'StoreClosedError';
  constructor() {
    super('the message store is closed');
  }
}

/**
 * Thrown by a networked store that cannot reach its database (connection refused or lost,
 * timeout): nothing was written, or the outcome is unknown and a retry with the same
 * (sender, clientMsgId) settles it. The client gets 9031.
 */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
}

/** Group commit bounds of the sqlite store (config `storeBatch`; docs/operations.md). */
export interface StoreBatchOptions {
  /** Most sends committed in one transaction. */
  maxMessages: number;
  /**
   * How long the first send of a batch waits for others before the commit, in ms; 0 =
   * until the end of the current event-loop turn (no timer).
   */
  maxWaitMs: number;
  /**
   * The previous design, kept only as the benchmark's same-run baseline (never for
   * production): `sqlite:` commits on the event loop with a savepoint per send and one
   * transaction per ack; a `postgres://` store runs one transaction per send.
   */
  baseline?: boolean;
}

/** 256 sends per transaction at most; committed at the end of the event-loop turn. */
export const DEFAULT_STORE_BATCH: Readonly<StoreBatchOptions> = { maxMessages: 256, maxWaitMs: 0 };
