/**
 * Conversations of the postgres store (conversation-store.ts): `tabchat_conversations`,
 * kept by a trigger on `tabchat_mailbox` inserts (inside `tabchat_send`'s transaction, so
 * every node sees counts that match the entries), and the indexed history reads. Schema
 * version 4 of the postgres schema (store-postgres-schema.ts).
 */
import type pg from 'pg';
import type { ConversationRow, ConversationSqlRow, ConversationStore, HistoryPage, ReadOutcome } from './conversation-store.js';
import { toMessage, type EntryRow, type MessageRow } from './store-rows.js';

/** Migration 3 (after quota and retention). Existing history is counted as read. */
export const POSTGRES_CONVERSATIONS_MIGRATION = `
  CREATE TABLE tabchat_conversations (
    sdk_app_id    bigint NOT NULL,
    user_id       text   NOT NULL,
    peer          text   NOT NULL,
    last_seq      bigint NOT NULL,
    last_time     bigint NOT NULL,
    unread        bigint NOT NULL DEFAULT 0 CHECK (unread >= 0),
    read_seq      bigint NOT NULL DEFAULT 0,
    peer_read_seq bigint NOT NULL DEFAULT 0,
    cleared_seq   bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sdk_app_id, user_id, peer)
  );
  CREATE INDEX tabchat_conversations_by_activity ON tabchat_conversations (sdk_app_id, user_id, last_seq);
  CREATE INDEX tabchat_messages_by_pair ON tabchat_messages (sdk_app_id, from_user, to_user, from_seq);
  CREATE INDEX tabchat_messages_by_pair_in ON tabchat_messages (sdk_app_id, to_user, from_user, to_seq);
  INSERT INTO tabchat_conversations (sdk_app_id, user_id, peer, last_seq, last_time, read_seq)
    SELECT b.sdk_app_id, b.user_id, CASE b.flow WHEN 'in' THEN m.from_user ELSE m.to_user END AS peer, max(b.seq), max(m.time), max(b.seq)
    FROM tabchat_mailbox b JOIN tabchat_messages m ON m.id = b.message_id
    GROUP BY b.sdk_app_id, b.user_id, 3;
  CREATE FUNCTION tabchat_mailbox_conversation() RETURNS trigger LANGUAGE plpgsql AS $fn$
  BEGIN
    INSERT INTO tabchat_conversations AS c (sdk_app_id, user_id, peer, last_seq, last_time, unread)
      SELECT NEW.sdk_app_id, NEW.user_id, CASE NEW.flow WHEN 'in' THEN m.from_user ELSE m.to_user END, NEW.seq, m.time,
             CASE NEW.flow WHEN 'in' THEN 1 ELSE 0 END
      FROM tabchat_messages m WHERE m.id = NEW.message_id
      ON CONFLICT (sdk_app_id, user_id, peer) DO UPDATE SET
        last_seq = excluded.last_seq, last_time = excluded.last_time, unread = c.unread + excluded.unread;
    RETURN NULL;
  END
  $fn$;
  CREATE TRIGGER tabchat_mailbox_conversation AFTER INSERT ON tabchat_mailbox
    FOR EACH ROW EXECUTE FUNCTION tabchat_mailbox_conversation();
`;

const CONV_COLUMNS = 'peer, unread, read_seq, last_seq, peer_read_seq, cleared_seq';
/** The conversation row and its newest entry, in one statement. */
const WITH_LAST = `c.peer, c.unread, c.read_seq, c.last_seq, c.peer_read_seq, c.cleared_seq, b.flow AS last_flow, m.*
  FROM tabchat_conversations c
  LEFT JOIN tabchat_mailbox b ON b.sdk_app_id = c.sdk_app_id AND b.user_id = c.user_id AND b.seq = c.last_seq
  LEFT JOIN tabchat_messages m ON m.id = b.message_id`;

type JoinedRow = ConversationSqlRow & Partial<MessageRow> & { last_flow: 'in' | 'out' | null };

type Query = <R extends pg.QueryResultRow>(text: string, values: unknown[]) => Promise<R[]>;

function toRow(r: JoinedRow): ConversationRow {
  return {
    peer: r.peer,
    unread: r.unread,
    readSeq: r.read_seq,
    lastSeq: r.last_seq,
    peerReadSeq: r.peer_read_seq,
    clearedSeq: r.cleared_seq,
    last: r.last_flow ? { seq: r.last_seq, flow: r.last_flow, message: toMessage(r as MessageRow) } : null,
  };
}

/** `id` of a joined row is the message's: the conversation columns never use it. */
export class PostgresConversations implements ConversationStore {
  constructor(private readonly query: Query) {}

  async list(sdkAppId: number, userID: string, limit: number): Promise<{ conversations: ConversationRow[]; total: number }> {
    const [rows, totals] = await Promise.all([
      this.query<JoinedRow>(
        `SELECT ${WITH_LAST} WHERE c.sdk_app_id = $1 AND c.user_id = $2 AND c.last_seq > c.cleared_seq ORDER BY c.last_seq DESC LIMIT $3`,
        [sdkAppId, userID, limit],
      ),
      this.query<{ total: number }>('SELECT coalesce(sum(unread), 0)::bigint AS total FROM tabchat_conversations WHERE sdk_app_id = $1 AND user_id = $2', [sdkAppId, userID]),
    ]);
    return { conversations: rows.map(toRow), total: Number(totals[0]?.total ?? 0) };
  }

  async get(sdkAppId: number, userID: string, peer: string): Promise<ConversationRow | null> {
    const rows = await this.query<JoinedRow>(`SELECT ${WITH_LAST} WHERE c.sdk_app_id = $1 AND c.user_id = $2 AND c.peer = $3 AND c.last_seq > c.cleared_seq`, [sdkAppId, userID, peer]);
    return rows[0] ? toRow(rows[0]) : null;
  }

  async total(sdkAppId: number, userID: string): Promise<number> {
    const rows = await this.query<{ total: number }>('SELECT coalesce(sum(unread), 0)::bigint AS total FROM tabchat_conversations WHERE sdk_app_id = $1 AND user_id = $2', [sdkAppId, userID]);
    return Number(rows[0]?.total ?? 0);
  }

  async history(sdkAppId: number, userID: string, peer: string, beforeSeq: number | null, limit: number): Promise<HistoryPage> {
    // Both halves of the conversation through their indexes, newest first, in one statement.
    const rows = await this.query<EntryRow>(
      `WITH conv AS (SELECT cleared_seq FROM tabchat_conversations WHERE sdk_app_id = $1 AND user_id = $2 AND peer = $3)
       SELECT * FROM (
         (SELECT m.from_seq AS seq, 'out' AS flow, m.* FROM tabchat_messages m, conv
          WHERE m.sdk_app_id = $1 AND m.from_user = $2 AND m.to_user = $3 AND m.from_seq < $4 AND m.from_seq > conv.cleared_seq
            AND EXISTS (SELECT 1 FROM tabchat_mailbox b WHERE b.sdk_app_id = $1 AND b.user_id = $2 AND b.seq = m.from_seq)
          ORDER BY m.from_seq DESC LIMIT $5)
         UNION ALL
         (SELECT m.to_seq AS seq, 'in' AS flow, m.* FROM tabchat_messages m, conv
          WHERE m.sdk_app_id = $1 AND m.to_user = $2 AND m.from_user = $3 AND m.from_user <> m.to_user AND m.to_seq < $4 AND m.to_seq > conv.cleared_seq
            AND EXISTS (SELECT 1 FROM tabchat_mailbox b WHERE b.sdk_app_id = $1 AND b.user_id = $2 AND b.seq = m.to_seq)
          ORDER BY m.to_seq DESC LIMIT $5)
       ) x ORDER BY seq DESC LIMIT $5`,
      [sdkAppId, userID, peer, beforeSeq ?? Number.MAX_SAFE_INTEGER, limit + 1],
    );
    const entries = rows.slice(0, limit).map((row) => ({ seq: Number(row.seq), flow: row.flow, message: toMessage(row) }));
    return { entries: entries.reverse(), more: rows.length > limit };
  }

  async locate(sdkAppId: number, userID: string, messageId: string): Promise<{ seq: number; peer: string } | null> {
    const rows = await this.query<MessageRow & { has_entry: boolean }>(
      `SELECT m.*, EXISTS (SELECT 1 FROM tabchat_mailbox b WHERE b.sdk_app_id = m.sdk_app_id AND b.user_id = $3
                  AND b.seq = CASE WHEN m.from_user = $3 THEN m.from_seq ELSE m.to_seq END) AS has_entry
       FROM tabchat_messages m WHERE m.id = $1 AND m.sdk_app_id = $2 AND (m.from_user = $3 OR m.to_user = $3)`,
      [messageId, sdkAppId, userID],
    );
    const m = rows[0];
    if (!m || !m.has_entry) return null;
    return m.from_user === userID ? { seq: m.from_seq, peer: m.to_user } : { seq: m.to_seq, peer: m.from_user };
  }

  async markRead(sdkAppId: number, userID: string, peer: string): Promise<ReadOutcome | null> {
    // One statement: the old row (locked), the update, the newest received message.
    const rows = await this.query<{ changed: boolean; last_in: string | null }>(
      `WITH old AS (
         SELECT unread, read_seq, last_seq FROM tabchat_conversations
         WHERE sdk_app_id = $1 AND user_id = $2 AND peer = $3 AND last_seq > cleared_seq FOR UPDATE
       ), upd AS (
         UPDATE tabchat_conversations c SET unread = 0, read_seq = c.last_seq FROM old
         WHERE c.sdk_app_id = $1 AND c.user_id = $2 AND c.peer = $3 AND (old.unread > 0 OR old.read_seq < old.last_seq)
         RETURNING c.last_seq
       )
       SELECT (SELECT count(*) FROM upd) > 0 AS changed,
              (SELECT m.id FROM tabchat_messages m WHERE m.sdk_app_id = $1 AND m.to_user = $2 AND m.from_user = $3 AND m.from_user <> m.to_user
                 AND m.to_seq <= old.last_seq ORDER BY m.to_seq DESC LIMIT 1) AS last_in
       FROM old`,
      [sdkAppId, userID, peer],
    );
    const r = rows[0];
    if (!r) return null;
    const row = await this.get(sdkAppId, userID, peer);
    if (!row) return null;
    let lastIn = null;
    if (r.last_in) {
      const m = await this.query<MessageRow>('SELECT * FROM tabchat_messages WHERE id = $1', [r.last_in]);
      lastIn = m[0] ? toMessage(m[0]) : null;
    }
    return { row, changed: r.changed, lastIn };
  }

  async setPeerRead(sdkAppId: number, userID: string, peer: string, seq: number): Promise<ConversationRow | null> {
    const rows = await this.query<{ peer: string }>(
      `UPDATE tabchat_conversations SET peer_read_seq = $1 WHERE sdk_app_id = $2 AND user_id = $3 AND peer = $4 AND peer_read_seq < $1 RETURNING ${CONV_COLUMNS}`,
      [seq, sdkAppId, userID, peer],
    );
    if (rows.length === 0) return null;
    return this.get(sdkAppId, userID, peer);
  }

  async remove(sdkAppId: number, userID: string, peer: string): Promise<boolean> {
    const rows = await this.query<{ peer: string }>(
      `UPDATE tabchat_conversations SET unread = 0, read_seq = last_seq, cleared_seq = last_seq
       WHERE sdk_app_id = $1 AND user_id = $2 AND peer = $3 AND last_seq > cleared_seq RETURNING peer`,
      [sdkAppId, userID, peer],
    );
    return rows.length > 0;
  }
}
