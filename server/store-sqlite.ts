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
import { StoreClosedError, DEFAULT_STORE_BATCH, type StoreBatchOptions, type MailboxPage, type MessageStore, type NewMessage, type StoredMessage } from './store.js';
import { toMessage, type EntryRow, type MessageRow } from './store-rows.js';

/** Schema version this code writes; `PRAGMA user_version` of an up-to-date file. */
export const SQLITE_SCHEMA_VERSION = 1;

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
  private closed = false;
  /** Commits a batch in one transaction: each send's outcome, or its error (that send was rolled back alone). */
  private readonly batchTx: (batch: readonly QueuedSend[]) => Array<SendOutcome | { error: unknown }>;
  private readonly stmt;
  /** Sends of the batch being gathered, in call order. */
  private queued: QueuedSend[] = [];
  /** Cancels the scheduled commit of {@link queued} (an immediate, or a `maxWaitMs` timer). */
  private cancelCommit: (() => void) | undefined;

  private constructor(
    private readonly db: Database.Database,
    private readonly batch: StoreBatchOptions,
  ) {
    this.stmt = {
      byClientId: db.prepare<[number, string, string], MessageRow>(
        'SELECT * FROM messages WHERE sdk_app_id = ? AND from_user = ? AND client_msg_id = ?',
      ),
      nextSeq: db.prepare<[number, string], { head: number }>(
        `INSERT INTO users (sdk_app_id, user_id, head) VALUES (?, ?, 1)
         ON CONFLICT (sdk_app_id, user_id) DO UPDATE SET head = head + 1 RETURNING head`,
      ),
      insertMessage: db.prepare<[string, number, string, string, string, string, number, number, number]>(
        `INSERT INTO messages (id, sdk_app_id, from_user, to_user, client_msg_id, text, time, from_seq, to_seq)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertEntry: db.prepare<[number, string, number, string, MessageFlow]>(
        'INSERT INTO mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (?, ?, ?, ?, ?)',
      ),
      page: db.prepare<[number, string, number, number], EntryRow>(
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
    // Nested in batchTx, so better-sqlite3 runs it as a SAVEPOINT.
    const sendTx = db.transaction((input: NewMessage): SendOutcome => {
      const existing = stmt.byClientId.get(input.sdkAppId, input.from, input.clientMsgId);
      if (existing) return { message: toMessage(existing), created: false };
      const fromSeq = stmt.nextSeq.get(input.sdkAppId, input.from)!.head;
      const self = input.from === input.to;
      const toSeq = self ? fromSeq : stmt.nextSeq.get(input.sdkAppId, input.to)!.head;
      stmt.insertMessage.run(input.id, input.sdkAppId, input.from, input.to, input.clientMsgId, input.text, input.time, fromSeq, toSeq);
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
  }

  /**
   * Open (creating the file and its folder if needed) and migrate. Fails when another
   * process holds the file, or when the file was written by a newer tabchat.
   * @param path - file path; `:memory:` gives a private in-memory database (tests)
   */
  static open(path: string, batch: StoreBatchOptions = DEFAULT_STORE_BATCH): SqliteStore {
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
    return new SqliteStore(db, batch);
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

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number): Promise<MailboxPage> {
    this.check();
    // One snapshot: better-sqlite3 is synchronous, so no write lands between the two reads.
    const rows = this.stmt.page.all(sdkAppId, userID, afterSeq, limit + 1);
    const head = this.stmt.user.get(sdkAppId, userID)?.head ?? 0;
    const more = rows.length > limit;
    const entries = rows.slice(0, limit).map((row) => ({ seq: row.seq, flow: row.flow, message: toMessage(row) }));
    return { entries, more, head };
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
