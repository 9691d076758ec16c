/**
 * SQLite {@link MessageStore} on better-sqlite3 12 (the line that supports Node 20).
 *
 * - One writer: the file is opened with `locking_mode=EXCLUSIVE`, so a second server on the
 *   same file fails at start instead of interleaving seqs.
 * - WAL journal, `synchronous=FULL`: a message acknowledged to its sender survives a process
 *   crash and a power loss.
 * - Group commit: sends are queued and committed together, in call order, in ONE
 *   IMMEDIATE transaction (one fsync) per batch, each send inside its own SAVEPOINT (seqs,
 *   message, two mailbox entries), so seqs never have gaps. A batch is committed at the end
 *   of the event-loop turn its first send arrived in (or `maxWaitMs` later), or as soon as
 *   it holds `maxMessages` sends. A send resolves only after its batch committed: nothing
 *   is acknowledged before it is on disk. A send whose own statements fail is rolled back
 *   to its savepoint and rejected alone; when the transaction as a whole fails (BEGIN,
 *   COMMIT, or an error after which SQLite rolled everything back: disk full, I/O error),
 *   every send of the batch is rejected and none is stored.
 * - Prepared statements only.
 * - The schema is created or migrated at open (`PRAGMA user_version`).
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { MessageFlow } from '../src/protocol/frames.js';
import { utf8ByteLength } from '../src/protocol/frames.js';
import {
  DEFAULT_STORE_BATCH,
  MAX_EVICTIONS_PER_SEND,
  MailboxFullError,
  NO_QUOTA,
  StoreClosedError,
  type MailboxPage,
  type MailboxQuota,
  type MessageStore,
  type NewMessage,
  type StoreBatchOptions,
  type StoredMessage,
} from './store.js';
import { toMessage, type EntryRow, type MessageRow } from './store-rows.js';
import { SQLITE_CONVERSATIONS_MIGRATION, SqliteConversations } from './store-sqlite-conversations.js';

/** Schema version this code writes; `PRAGMA user_version` of an up-to-date file. */
export const SQLITE_SCHEMA_VERSION = 3;

/** Migrations: index i brings a file from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    sdk_app_id INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    head       INTEGER NOT NULL DEFAULT 0,
    acked      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sdk_app_id, user_id)
  ) WITHOUT ROWID;
  CREATE TABLE messages (
    id            TEXT    NOT NULL PRIMARY KEY,
    sdk_app_id    INTEGER NOT NULL,
    from_user     TEXT    NOT NULL,
    to_user       TEXT    NOT NULL,
    client_msg_id TEXT    NOT NULL,
    text          TEXT    NOT NULL,
    time          INTEGER NOT NULL,
    from_seq      INTEGER NOT NULL,
    to_seq        INTEGER NOT NULL,
    UNIQUE (sdk_app_id, from_user, client_msg_id)
  );
  CREATE TABLE mailbox (
    sdk_app_id INTEGER NOT NULL,
    user_id    TEXT    NOT NULL,
    seq        INTEGER NOT NULL,
    message_id TEXT    NOT NULL REFERENCES messages (id),
    flow       TEXT    NOT NULL CHECK (flow IN ('in', 'out')),
    PRIMARY KEY (sdk_app_id, user_id, seq)
  ) WITHOUT ROWID;
  `,
  // 2: quota and retention (docs/operations.md "Limits and abuse"): each mailbox's entry
  // count and text bytes, each message's text bytes, and the indexes that find old
  // messages and a message's entries without scanning.
  `
  ALTER TABLE users ADD COLUMN entries INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE users ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE messages ADD COLUMN text_bytes INTEGER NOT NULL DEFAULT 0;
  UPDATE messages SET text_bytes = length(CAST(text AS BLOB));
  UPDATE users SET
    entries = (SELECT count(*) FROM mailbox b WHERE b.sdk_app_id = users.sdk_app_id AND b.user_id = users.user_id),
    bytes = (SELECT coalesce(sum(m.text_bytes), 0) FROM mailbox b JOIN messages m ON m.id = b.message_id
             WHERE b.sdk_app_id = users.sdk_app_id AND b.user_id = users.user_id);
  CREATE INDEX messages_by_time ON messages (time);
  CREATE INDEX mailbox_by_message ON mailbox (message_id);
  `,
  // 3: conversations and read markers (store-sqlite-conversations.ts).
  SQLITE_CONVERSATIONS_MIGRATION,
];

type SendOutcome = { message: StoredMessage; created: boolean };

/** A send waiting for its batch to commit. */
interface QueuedSend {
  input: NewMessage;
  resolve(outcome: SendOutcome): void;
  reject(error: unknown): void;
}

export class SqliteStore implements MessageStore {
  readonly kind = 'sqlite';
  readonly conversations: SqliteConversations;
  private closed = false;
  /** Commits a batch in one transaction: each send's outcome, or its error (that send was rolled back alone). */
  private readonly batchTx: (batch: readonly QueuedSend[]) => Array<SendOutcome | { error: unknown }>;
  private readonly stmt;
  /** Sends of the batch being gathered, in call order. */
  private queued: QueuedSend[] = [];
  /** Cancels the scheduled commit of {@link queued} (an immediate, or a `maxWaitMs` timer). */
  private cancelCommit: (() => void) | undefined;

  /** Deletes up to N expired messages (and their entries) in one transaction; resolves how many. */
  private readonly expireTx: (before: number, max: number) => number;

  private constructor(
    private readonly db: Database.Database,
    private readonly batch: StoreBatchOptions,
    quota: MailboxQuota,
  ) {
    this.conversations = new SqliteConversations(db, () => this.check());
    this.stmt = {
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
    };
    const stmt = this.stmt;
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
    // Nested in batchTx, so better-sqlite3 runs it as a SAVEPOINT.
    const sendTx = db.transaction((input: NewMessage): SendOutcome => {
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
    });
    const batchTx = db.transaction((batch: readonly QueuedSend[]) =>
      batch.map((queued) => {
        try {
          return sendTx(queued.input);
        } catch (error) {
          // SQLite rolled the whole transaction back (disk full, I/O error…): the batch fails as one.
          if (!db.inTransaction) throw error;
          return { error };
        }
      }),
    );
    this.batchTx = (batch) => batchTx.immediate(batch);
    const expireTx = db.transaction((before: number, max: number): number => {
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
    this.expireTx = (before, max) => expireTx.immediate(before, max);
  }


  /**
   * Open (creating the file and its folder if needed) and migrate. Fails when another
   * process holds the file, or when the file was written by a newer tabchat.
   * @param path - file path; `:memory:` gives a private in-memory database (tests)
   */
  static open(path: string, batch: StoreBatchOptions = DEFAULT_STORE_BATCH, quota: MailboxQuota = NO_QUOTA): SqliteStore {
    if (path.length === 0) throw new Error('store "sqlite:" needs a file path, e.g. "sqlite:./tabchat.db"');
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    const db = new Database(path, { timeout: 2000 });
    try {
      db.pragma('locking_mode = EXCLUSIVE');
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      const version = db.pragma('user_version', { simple: true }) as number;
      if (version > SQLITE_SCHEMA_VERSION) {
        throw new Error(`${path} has schema version ${version}; this tabchat understands up to ${SQLITE_SCHEMA_VERSION} (upgrade tabchat)`);
      }
      // Takes the exclusive lock now, so a file held by another server fails here.
      db.transaction(() => {
        for (let v = version; v < SQLITE_SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
        db.pragma(`user_version = ${SQLITE_SCHEMA_VERSION}`);
      }).immediate();
    } catch (err) {
      db.close();
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`cannot open the sqlite store ${path}: ${/locked|busy/i.test(message) ? 'the file is in use by another process (one server per file)' : message}`);
    }
    return new SqliteStore(db, batch, quota);
  }

  /** Queued for the next group commit; resolves once that commit is on disk. */
  send(input: NewMessage): Promise<SendOutcome> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    return new Promise<SendOutcome>((resolve, reject) => {
      this.queued.push({ input, resolve, reject });
      if (this.queued.length >= this.batch.maxMessages) this.commit();
      else if (this.cancelCommit === undefined) this.scheduleCommit();
    });
  }

  private scheduleCommit(): void {
    if (this.batch.maxWaitMs > 0) {
      const timer = setTimeout(() => this.commit(), this.batch.maxWaitMs);
      this.cancelCommit = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => this.commit());
      this.cancelCommit = () => clearImmediate(immediate);
    }
  }

  /** Commit the queued sends in one transaction, then settle each of them. */
  private commit(): void {
    this.cancelCommit?.();
    this.cancelCommit = undefined;
    const batch = this.queued;
    this.queued = [];
    if (batch.length === 0) return;
    let outcomes;
    try {
      outcomes = this.batchTx(batch);
    } catch (error) {
      for (const queued of batch) queued.reject(error);
      return;
    }
    outcomes.forEach((outcome, i) => ('error' in outcome ? batch[i]!.reject(outcome.error) : batch[i]!.resolve(outcome)));
  }

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes = Infinity): Promise<MailboxPage> {
    this.check();
    // One snapshot: better-sqlite3 is synchronous, so no write lands between the two reads.
    // Rows are stepped one at a time and the loop stops at the byte budget: at most one row
    // beyond the page is read, never `limit` big rows that would then be trimmed.
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

  async removeExpired(before: number, max: number): Promise<number> {
    this.check();
    return this.expireTx(before, max);
  }

  async head(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.stmt.user.get(sdkAppId, userID)?.head ?? 0;
  }

  async acked(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.stmt.user.get(sdkAppId, userID)?.acked ?? 0;
  }

  async ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    this.check();
    return this.stmt.ack.get(seq, sdkAppId, userID, seq)?.recorded ?? 0;
  }

  /** Commits the sends still queued (they resolve), then closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.commit();
    this.db.close();
  }

  private check(): void {
    if (this.closed) throw new StoreClosedError();
  }
}
