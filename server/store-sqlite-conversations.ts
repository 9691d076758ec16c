/**
 * Conversations of the sqlite store (conversation-store.ts): the `conversations` table,
 * kept by a trigger on `mailbox` inserts (so in the send's own savepoint), and the
 * indexed reads of a conversation's history. Schema version 3 of the sqlite file (store-sqlite-schema.ts).
 */
import type Database from 'better-sqlite3';
import type { ConversationRow, ConversationSqlRow, ConversationStore, HistoryPage, ReadOutcome } from './conversation-store.js';
import type { MailboxEntry } from './store.js';
import { toMessage, type EntryRow, type MessageRow } from './store-rows.js';

/**
 * Migration 3 (after quota and retention): conversations with their markers, the trigger
 * that keeps them, and the indexes of a conversation's history. Existing history is
 * counted as read (the unread count starts at the migration).
 */
export const SQLITE_CONVERSATIONS_MIGRATION = `
  CREATE TABLE conversations (
    sdk_app_id    INTEGER NOT NULL,
    user_id       TEXT    NOT NULL,
    peer          TEXT    NOT NULL,
    last_seq      INTEGER NOT NULL,
    last_time     INTEGER NOT NULL,
    unread        INTEGER NOT NULL DEFAULT 0 CHECK (unread >= 0),
    read_seq      INTEGER NOT NULL DEFAULT 0,
    peer_read_seq INTEGER NOT NULL DEFAULT 0,
    cleared_seq   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (sdk_app_id, user_id, peer)
  ) WITHOUT ROWID;
  CREATE INDEX conversations_by_activity ON conversations (sdk_app_id, user_id, last_seq);
  CREATE INDEX messages_by_pair ON messages (sdk_app_id, from_user, to_user, from_seq);
  CREATE INDEX messages_by_pair_in ON messages (sdk_app_id, to_user, from_user, to_seq);
  INSERT INTO conversations (sdk_app_id, user_id, peer, last_seq, last_time, read_seq)
    SELECT b.sdk_app_id, b.user_id, CASE b.flow WHEN 'in' THEN m.from_user ELSE m.to_user END AS peer, max(b.seq), max(m.time), max(b.seq)
    FROM mailbox b JOIN messages m ON m.id = b.message_id
    GROUP BY b.sdk_app_id, b.user_id, peer;
  CREATE TRIGGER mailbox_conversation AFTER INSERT ON mailbox BEGIN
    INSERT INTO conversations (sdk_app_id, user_id, peer, last_seq, last_time, unread)
      SELECT NEW.sdk_app_id, NEW.user_id, CASE NEW.flow WHEN 'in' THEN m.from_user ELSE m.to_user END, NEW.seq, m.time,
             CASE NEW.flow WHEN 'in' THEN 1 ELSE 0 END
      FROM messages m WHERE m.id = NEW.message_id
      ON CONFLICT (sdk_app_id, user_id, peer) DO UPDATE SET
        last_seq = excluded.last_seq, last_time = excluded.last_time, unread = unread + excluded.unread;
  END;
`;

const CONV_COLUMNS = 'peer, unread, read_seq, last_seq, peer_read_seq, cleared_seq';

export class SqliteConversations implements ConversationStore {
  private readonly stmt;
  private readonly readTx: (sdkAppId: number, userID: string, peer: string) => ReadOutcome | null;

  constructor(
    db: Database.Database,
    private readonly check: () => void,
  ) {
    this.stmt = {
      list: db.prepare<[number, string, number], ConversationSqlRow>(
        `SELECT ${CONV_COLUMNS} FROM conversations WHERE sdk_app_id = ? AND user_id = ? AND last_seq > cleared_seq
         ORDER BY last_seq DESC LIMIT ?`,
      ),
      total: db.prepare<[number, string], { total: number }>(
        'SELECT coalesce(sum(unread), 0) AS total FROM conversations WHERE sdk_app_id = ? AND user_id = ?',
      ),
      get: db.prepare<[number, string, string], ConversationSqlRow>(
        `SELECT ${CONV_COLUMNS} FROM conversations WHERE sdk_app_id = ? AND user_id = ? AND peer = ?`,
      ),
      entry: db.prepare<[number, string, number], EntryRow>(
        `SELECT b.seq AS seq, b.flow AS flow, m.* FROM mailbox b JOIN messages m ON m.id = b.message_id
         WHERE b.sdk_app_id = ? AND b.user_id = ? AND b.seq = ?`,
      ),
      // The two halves of a conversation, each through its own index, newest first; an entry
      // the quota removed from this mailbox is skipped by the join.
      sent: db.prepare<[number, string, string, number, number, number], EntryRow>(
        `SELECT m.from_seq AS seq, 'out' AS flow, m.* FROM messages m
         JOIN mailbox b ON b.sdk_app_id = m.sdk_app_id AND b.user_id = m.from_user AND b.seq = m.from_seq
         WHERE m.sdk_app_id = ? AND m.from_user = ? AND m.to_user = ? AND m.from_seq < ? AND m.from_seq > ?
         ORDER BY m.from_seq DESC LIMIT ?`,
      ),
      received: db.prepare<[number, string, string, number, number, number], EntryRow>(
        `SELECT m.to_seq AS seq, 'in' AS flow, m.* FROM messages m
         JOIN mailbox b ON b.sdk_app_id = m.sdk_app_id AND b.user_id = m.to_user AND b.seq = m.to_seq
         WHERE m.sdk_app_id = ? AND m.to_user = ? AND m.from_user = ? AND m.from_user <> m.to_user AND m.to_seq < ? AND m.to_seq > ?
         ORDER BY m.to_seq DESC LIMIT ?`,
      ),
      locate: db.prepare<[string], MessageRow>('SELECT * FROM messages WHERE id = ?'),
      hasEntry: db.prepare<[number, string, number], { seq: number }>('SELECT seq FROM mailbox WHERE sdk_app_id = ? AND user_id = ? AND seq = ?'),
      read: db.prepare<[number, string, string]>(
        'UPDATE conversations SET unread = 0, read_seq = last_seq WHERE sdk_app_id = ? AND user_id = ? AND peer = ?',
      ),
      peerRead: db.prepare<[number, number, string, string, number]>(
        'UPDATE conversations SET peer_read_seq = ? WHERE sdk_app_id = ? AND user_id = ? AND peer = ? AND peer_read_seq < ?',
      ),
      remove: db.prepare<[number, string, string]>(
        'UPDATE conversations SET unread = 0, read_seq = last_seq, cleared_seq = last_seq WHERE sdk_app_id = ? AND user_id = ? AND peer = ? AND last_seq > cleared_seq',
      ),
    };
    this.readTx = db.transaction((sdkAppId: number, userID: string, peer: string): ReadOutcome | null => {
      const before = this.stmt.get.get(sdkAppId, userID, peer);
      if (!before || before.last_seq <= before.cleared_seq) return null;
      const changed = before.unread > 0 || before.read_seq < before.last_seq;
      if (changed) this.stmt.read.run(sdkAppId, userID, peer);
      const [lastIn] = this.stmt.received.all(sdkAppId, userID, peer, before.last_seq + 1, 0, 1);
      return { row: this.row(sdkAppId, userID, this.stmt.get.get(sdkAppId, userID, peer)!), changed, lastIn: lastIn ? toMessage(lastIn) : null };
    });
  }

  private row(sdkAppId: number, userID: string, r: ConversationSqlRow): ConversationRow {
    const last = this.stmt.entry.get(sdkAppId, userID, r.last_seq);
    return {
      peer: r.peer,
      unread: r.unread,
      readSeq: r.read_seq,
      lastSeq: r.last_seq,
      peerReadSeq: r.peer_read_seq,
      clearedSeq: r.cleared_seq,
      last: last ? { seq: last.seq, flow: last.flow, message: toMessage(last) } : null,
    };
  }

  async list(sdkAppId: number, userID: string, limit: number): Promise<{ conversations: ConversationRow[]; total: number }> {
    this.check();
    const conversations = this.stmt.list.all(sdkAppId, userID, limit).map((r) => this.row(sdkAppId, userID, r));
    return { conversations, total: this.stmt.total.get(sdkAppId, userID)?.total ?? 0 };
  }

  async get(sdkAppId: number, userID: string, peer: string): Promise<ConversationRow | null> {
    this.check();
    const r = this.stmt.get.get(sdkAppId, userID, peer);
    return r && r.last_seq > r.cleared_seq ? this.row(sdkAppId, userID, r) : null;
  }

  async total(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.stmt.total.get(sdkAppId, userID)?.total ?? 0;
  }

  async history(sdkAppId: number, userID: string, peer: string, beforeSeq: number | null, limit: number): Promise<HistoryPage> {
    this.check();
    const conv = this.stmt.get.get(sdkAppId, userID, peer);
    if (!conv) return { entries: [], more: false };
    const before = beforeSeq ?? Number.MAX_SAFE_INTEGER;
    const rows = [
      ...this.stmt.sent.all(sdkAppId, userID, peer, before, conv.cleared_seq, limit + 1),
      ...(peer === userID ? [] : this.stmt.received.all(sdkAppId, userID, peer, before, conv.cleared_seq, limit + 1)),
    ].sort((a, b) => b.seq - a.seq);
    const entries: MailboxEntry[] = rows.slice(0, limit).map((row) => ({ seq: row.seq, flow: row.flow, message: toMessage(row) }));
    return { entries: entries.reverse(), more: rows.length > limit };
  }

  async locate(sdkAppId: number, userID: string, messageId: string): Promise<{ seq: number; peer: string } | null> {
    this.check();
    const m = this.stmt.locate.get(messageId);
    if (!m || m.sdk_app_id !== sdkAppId) return null;
    const seq = m.from_user === userID ? m.from_seq : m.to_user === userID ? m.to_seq : 0;
    if (seq === 0 || !this.stmt.hasEntry.get(sdkAppId, userID, seq)) return null;
    return { seq, peer: m.from_user === userID ? m.to_user : m.from_user };
  }

  async markRead(sdkAppId: number, userID: string, peer: string): Promise<ReadOutcome | null> {
    this.check();
    return this.readTx(sdkAppId, userID, peer);
  }

  async setPeerRead(sdkAppId: number, userID: string, peer: string, seq: number): Promise<ConversationRow | null> {
    this.check();
    if (this.stmt.peerRead.run(seq, sdkAppId, userID, peer, seq).changes === 0) return null;
    return this.row(sdkAppId, userID, this.stmt.get.get(sdkAppId, userID, peer)!);
  }

  async remove(sdkAppId: number, userID: string, peer: string): Promise<boolean> {
    this.check();
    return this.stmt.remove.run(sdkAppId, userID, peer).changes > 0;
  }
}
