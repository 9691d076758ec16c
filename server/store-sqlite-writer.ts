/**
 * The sqlite store's writer thread (worker_threads): it alone opens the file and runs every
 * statement, so a commit's fsync (`synchronous=FULL`) never blocks the server's event loop.
 * store-sqlite.ts, on the main thread, gathers sends and acks into batches and posts them
 * here; this file is both the thread's entry and the statements it runs.
 *
 * A batch is ONE `BEGIN IMMEDIATE … COMMIT` (one fsync) and runs without savepoints. When
 * one of its items fails on its own (a constraint, a full mailbox), the transaction is
 * rolled back and the batch is run again with one SAVEPOINT per item, so that item fails
 * alone and the others are stored without seq gaps. When the transaction as a whole fails
 * (BEGIN, COMMIT, or an error after which SQLite rolled everything back: disk full, I/O
 * error), every item of the batch fails and nothing is stored.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import type { MessageFlow } from '../src/protocol/frames.js';
import { utf8ByteLength } from '../src/protocol/frames.js';
import { MAX_EVICTIONS_PER_SEND, MailboxFullError, type MailboxPage, type MailboxQuota, type NewMessage, type StoredMessage } from './store.js';
import { toMessage, type EntryRow, type MessageRow } from './store-rows.js';
import { openSqliteFile } from './store-sqlite-schema.js';
import { SqliteConversations } from './store-sqlite-conversations.js';
import type { ConversationStore } from './conversation-store.js';

/** What the main thread passes to the thread at start (`workerData`). */
export interface WriterStart {
  tabchatSqliteWriter: true;
  path: string;
  quota: MailboxQuota;
}

/** One write of a batch. */
export type BatchItem =
  | { kind: 'send'; input: NewMessage }
  | { kind: 'ack'; sdkAppId: number; userID: string; seq: number };

export type SendOutcome = { message: StoredMessage; created: boolean };

/** An error as it crosses the thread boundary (rebuilt by store-sqlite.ts). */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  /** MailboxFullError: whose mailbox. */
  userID?: string;
}

/** The outcome of one batch item: its value, or its own error (that item alone failed). */
export type ItemResult = { ok: SendOutcome | number } | { error: WireError };

/** Requests, main thread → writer. Each gets one {@link WriterReply} with the same id. */
export type WriterRequest =
  | { id: number; op: 'batch'; items: BatchItem[]; savepoints?: boolean }
  | { id: number; op: 'ack'; sdkAppId: number; userID: string; seq: number }
  | { id: number; op: 'read'; sdkAppId: number; userID: string; afterSeq: number; limit: number; maxBytes: number }
  | { id: number; op: 'user'; sdkAppId: number; userID: string }
  | { id: number; op: 'removeExpired'; before: number; max: number }
  | { id: number; op: 'conv'; method: keyof ConversationStore; args: unknown[] }
  | { id: number; op: 'close' };

/** Replies and the start notice, writer → main thread. */
export type WriterReply =
  | { id: number; ok: unknown; slow?: boolean }
  | { id: number; error: WireError }
  | { id: 0; ready: true }
  | { id: 0; failed: string };

export function toWireError(err: unknown): WireError {
  if (err instanceof MailboxFullError) return { name: err.name, message: err.message, userID: err.userID };
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return { name: err.name, message: err.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(err) };
}

/** Thrown inside the fast transaction when one item failed by itself: roll back, redo with savepoints. */
class ItemFailed extends Error {}

/** The database and its prepared statements; every method is synchronous (this thread only). */
export class SqliteWriter {
  private readonly stmt;
  private readonly fastTx: (items: readonly BatchItem[]) => ItemResult[];
  private readonly safeTx: (items: readonly BatchItem[]) => ItemResult[];
  private readonly expireTx: (before: number, max: number) => number;

  /** Conversations (conversation-store.ts): its statements run here too, in order with the batches. */
  readonly conversations: SqliteConversations;

  constructor(private readonly db: Database.Database, quota: MailboxQuota) {
    this.conversations = new SqliteConversations(db, () => undefined);
    const stmt = (this.stmt = {
      byClientId: db.prepare<[number, string, string], MessageRow>(
        'SELECT * FROM messages WHERE sdk_app_id = ? AND from_user = ? AND client_msg_id = ?',
      ),
      nextSeq: db.prepare<[number, string, number], { head: number }>(
        `INSERT INTO users (sdk_app_id, user_id, head, entries, bytes) VALUES (?, ?, 1, 1, ?)
         ON CONFLICT (sdk_app_id, user_id) DO UPDATE SET head = head + 1, entries = entries + 1, bytes = bytes + excluded.bytes
         RETURNING head`,
      ),
      insertMessage: db.prepare<[string, number, string, string, string, string, number, number, number, number]>(
        `INSERT INTO messages (id, sdk_app_id, from_user, to_user, client_msg_id, text, time, from_seq, to_seq, text_bytes)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      quota: db.prepare<[number, string], { entries: number; bytes: number; acked: number }>(
        'SELECT entries, bytes, acked FROM users WHERE sdk_app_id = ? AND user_id = ?',
      ),
      oldestAcked: db.prepare<[number, string, number, number], { seq: number; message_id: string; text_bytes: number }>(
        `SELECT b.seq AS seq, b.message_id AS message_id, m.text_bytes AS text_bytes FROM mailbox b JOIN messages m ON m.id = b.message_id
         WHERE b.sdk_app_id = ? AND b.user_id = ? AND b.seq <= ? ORDER BY b.seq LIMIT ?`,
      ),
      deleteEntry: db.prepare<[number, string, number]>('DELETE FROM mailbox WHERE sdk_app_id = ? AND user_id = ? AND seq = ?'),
      shrink: db.prepare<[number, number, number, string]>(
        'UPDATE users SET entries = entries - ?, bytes = bytes - ? WHERE sdk_app_id = ? AND user_id = ?',
      ),
      deleteOrphan: db.prepare<[string, string]>(
        'DELETE FROM messages WHERE id = ? AND NOT EXISTS (SELECT 1 FROM mailbox WHERE message_id = ?)',
      ),
      expired: db.prepare<[number, number], MessageRow & { text_bytes: number }>(
        'SELECT * FROM messages WHERE time < ? ORDER BY time LIMIT ?',
      ),
      deleteMessage: db.prepare<[string]>('DELETE FROM messages WHERE id = ?'),
      insertEntry: db.prepare<[number, string, number, string, MessageFlow]>(
        'INSERT INTO mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (?, ?, ?, ?, ?)',
      ),
      page: db.prepare<[number, string, number, number], EntryRow & { text_bytes: number }>(
        `SELECT b.seq AS seq, b.flow AS flow, m.* FROM mailbox b JOIN messages m ON m.id = b.message_id
         WHERE b.sdk_app_id = ? AND b.user_id = ? AND b.seq > ? ORDER BY b.seq LIMIT ?`,
      ),
      user: db.prepare<[number, string], { head: number; acked: number }>(
        'SELECT head, acked FROM users WHERE sdk_app_id = ? AND user_id = ?',
      ),
      ack: db.prepare<[number, number, string, number], { recorded: number }>(
        `UPDATE users SET acked = max(acked, min(?, head)) WHERE sdk_app_id = ? AND user_id = ?
         RETURNING min(?, head) AS recorded`,
      ),
    });
    /** Drop the mailbox's oldest acknowledged entries until `bytes` more fit (store.ts MailboxQuota); false if they still do not. */
    const makeRoom = (sdkAppId: number, userID: string, bytes: number): boolean => {
      const box = stmt.quota.get(sdkAppId, userID);
      if (!box) return 1 <= quota.maxMessages && bytes <= quota.maxBytes;
      const fits = () => box.entries + 1 <= quota.maxMessages && box.bytes + bytes <= quota.maxBytes;
      if (fits()) return true;
      let entries = 0;
      let freed = 0;
      for (const old of stmt.oldestAcked.all(sdkAppId, userID, box.acked, MAX_EVICTIONS_PER_SEND)) {
        stmt.deleteEntry.run(sdkAppId, userID, old.seq);
        stmt.deleteOrphan.run(old.message_id, old.message_id);
        entries++;
        freed += old.text_bytes;
        box.entries--;
        box.bytes -= old.text_bytes;
        if (fits()) break;
      }
      if (entries > 0) stmt.shrink.run(entries, freed, sdkAppId, userID);
      return fits();
    };
    const send = (input: NewMessage): SendOutcome => {
      const existing = stmt.byClientId.get(input.sdkAppId, input.from, input.clientMsgId);
      if (existing) return { message: toMessage(existing), created: false };
      const bytes = utf8ByteLength(input.text);
      const self = input.from === input.to;
      if (!makeRoom(input.sdkAppId, input.to, bytes)) throw new MailboxFullError(input.to);
      if (!self) makeRoom(input.sdkAppId, input.from, bytes); // the sender's own mailbox is never refused
      const fromSeq = stmt.nextSeq.get(input.sdkAppId, input.from, bytes)!.head;
      const toSeq = self ? fromSeq : stmt.nextSeq.get(input.sdkAppId, input.to, bytes)!.head;
      stmt.insertMessage.run(input.id, input.sdkAppId, input.from, input.to, input.clientMsgId, input.text, input.time, fromSeq, toSeq, bytes);
      stmt.insertEntry.run(input.sdkAppId, input.from, fromSeq, input.id, 'out');
      if (!self) stmt.insertEntry.run(input.sdkAppId, input.to, toSeq, input.id, 'in');
      return { message: { ...input, fromSeq, toSeq }, created: true };
    };
    const apply = (item: BatchItem): SendOutcome | number =>
      item.kind === 'send' ? send(item.input) : (stmt.ack.get(item.seq, item.sdkAppId, item.userID, item.seq)?.recorded ?? 0);

    // Fast path: no savepoint; the first item that fails rolls the whole transaction back.
    const fast = db.transaction((items: readonly BatchItem[]): ItemResult[] =>
      items.map((item) => {
        try {
          return { ok: apply(item) };
        } catch (error) {
          throw new ItemFailed('an item of the batch failed', { cause: error });
        }
      }),
    );
    this.fastTx = (items) => fast.immediate(items);
    // Slow path: each item in its own savepoint (a nested better-sqlite3 transaction).
    const one = db.transaction(apply);
    const safe = db.transaction((items: readonly BatchItem[]): ItemResult[] =>
      items.map((item) => {
        try {
          return { ok: one(item) };
        } catch (error) {
          // SQLite rolled the whole transaction back (disk full, I/O error…): the batch fails as one.
          if (!db.inTransaction) throw error;
          return { error: toWireError(error) };
        }
      }),
    );
    this.safeTx = (items) => safe.immediate(items);
    const expire = db.transaction((before: number, max: number): number => {
      const rows = stmt.expired.all(before, max);
      for (const row of rows) {
        const self = row.from_user === row.to_user;
        for (const [user, seq] of self ? ([[row.from_user, row.from_seq]] as const) : ([[row.from_user, row.from_seq], [row.to_user, row.to_seq]] as const)) {
          if (stmt.deleteEntry.run(row.sdk_app_id, user, seq).changes > 0) stmt.shrink.run(1, row.text_bytes, row.sdk_app_id, user);
        }
        stmt.deleteMessage.run(row.id);
      }
      return rows.length;
    });
    this.expireTx = (before, max) => expire.immediate(before, max);
  }

  /**
   * Store a batch in one transaction; each item's outcome in order. `slow` tells that the
   * savepoint path ran (an item failed by itself). Throws when the batch fails as a whole.
   */
  batch(items: readonly BatchItem[], savepoints = false): { results: ItemResult[]; slow: boolean } {
    if (savepoints) return { results: this.safeTx(items), slow: false };
    try {
      return { results: this.fastTx(items), slow: false };
    } catch (error) {
      if (!(error instanceof ItemFailed)) throw error;
    }
    return { results: this.safeTx(items), slow: true };
  }

  read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes: number): MailboxPage {
    // One snapshot: this thread runs one statement at a time, so no write lands between the
    // two reads. Rows are stepped one at a time and the loop stops at the byte budget: at
    // most one row beyond the page is read, never `limit` big rows that would then be trimmed.
    const entries: MailboxPage['entries'] = [];
    let more = false;
    let bytes = 0;
    for (const row of this.stmt.page.iterate(sdkAppId, userID, afterSeq, limit + 1)) {
      if (entries.length === limit || (entries.length > 0 && bytes + row.text_bytes > maxBytes)) {
        more = true;
        break;
      }
      bytes += row.text_bytes;
      entries.push({ seq: row.seq, flow: row.flow, message: toMessage(row) });
    }
    const head = this.stmt.user.get(sdkAppId, userID)?.head ?? 0;
    return { entries, more, head };
  }

  /** One ack in its own transaction (the baseline's way). */
  ack(sdkAppId: number, userID: string, seq: number): number {
    return this.stmt.ack.get(seq, sdkAppId, userID, seq)?.recorded ?? 0;
  }

  user(sdkAppId: number, userID: string): { head: number; acked: number } {
    return this.stmt.user.get(sdkAppId, userID) ?? { head: 0, acked: 0 };
  }

  removeExpired(before: number, max: number): number {
    return this.expireTx(before, max);
  }

  close(): void {
    this.db.close();
  }
}

/** Run one request (on this thread, or inline on the main thread for the baseline). */
export function handle(writer: SqliteWriter, req: WriterRequest): { ok: unknown; slow?: boolean } {
  switch (req.op) {
    case 'batch': {
      const { results, slow } = writer.batch(req.items, req.savepoints);
      return { ok: results, slow };
    }
    case 'ack':
      return { ok: writer.ack(req.sdkAppId, req.userID, req.seq) };
    case 'read':
      return { ok: writer.read(req.sdkAppId, req.userID, req.afterSeq, req.limit, req.maxBytes) };
    case 'user':
      return { ok: writer.user(req.sdkAppId, req.userID) };
    case 'removeExpired':
      return { ok: writer.removeExpired(req.before, req.max) };
    case 'conv': {
      // The methods are async in their contract but synchronous here: their statements run now, in order.
      const method = writer.conversations[req.method] as (...args: unknown[]) => Promise<unknown>;
      return { ok: method.apply(writer.conversations, req.args) };
    }
    case 'close':
      writer.close();
      return { ok: null };
  }
}

// The thread's entry: open the file, say so, then answer requests one at a time, in order.
const start = workerData as WriterStart | undefined;
if (parentPort && start?.tabchatSqliteWriter === true) {
  const port = parentPort;
  let writer: SqliteWriter | undefined;
  try {
    writer = new SqliteWriter(openSqliteFile(start.path), start.quota);
    port.postMessage({ id: 0, ready: true } satisfies WriterReply);
  } catch (err) {
    port.postMessage({ id: 0, failed: err instanceof Error ? err.message : String(err) } satisfies WriterReply);
  }
  if (writer) {
    const w = writer;
    port.on('message', (req: WriterRequest) => {
      let reply: WriterReply;
      try {
        const result = handle(w, req);
        if (result.ok instanceof Promise) {
          // A conversation call: its statements already ran; post its value when it settles.
          result.ok.then(
            (ok) => port.postMessage({ id: req.id, ok } satisfies WriterReply),
            (err) => port.postMessage({ id: req.id, error: toWireError(err) } satisfies WriterReply),
          );
          return;
        }
        reply = { id: req.id, ...result };
      } catch (err) {
        reply = { id: req.id, error: toWireError(err) };
      }
      port.postMessage(reply);
      if (req.op === 'close') port.close();
    });
  }
}
