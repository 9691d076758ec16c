/**
 * PostgreSQL {@link MessageStore} on `pg` 8: the store every node of a cluster shares
 * (config `store: "postgres://…"`). Same contract as the sqlite store:
 *
 * - Per-user seqs without gaps across nodes: each mailbox has a counter row
 *   (`tabchat_users.head`); a send locks the sender's and the recipient's rows (in a fixed
 *   order, so A→B and B→A never deadlock), bumps them and inserts the message and its two
 *   mailbox entries in ONE transaction (the `tabchat_send` function: one round trip).
 * - Idempotency: `UNIQUE (sdk_app_id, from_user, client_msg_id)`; the duplicate check runs
 *   after the sender's row is locked, so two nodes racing with the same clientMsgId store
 *   it once and both answer with the same message.
 * - The schema is created or migrated at start under an advisory lock (N nodes may start at
 *   once); a database written by a newer tabchat is refused. Tables are prefixed `tabchat_`.
 * - Unreachable database (refused, dropped, timed out): {@link StoreUnavailableError}, which
 *   the client sees as 9031; nothing is acknowledged that was not committed.
 */
import pg from 'pg';
import { redactUrl } from './log.js';
import {
  MAX_EVICTIONS_PER_SEND,
  MailboxFullError,
  NO_QUOTA,
  StoreClosedError,
  StoreUnavailableError,
  type MailboxPage,
  type MailboxQuota,
  type MessageStore,
  type NewMessage,
  type StoredMessage,
} from './store.js';
import { toMessage, type EntryRow } from './store-rows.js';
import { POSTGRES_CONVERSATIONS_MIGRATION, PostgresConversations } from './store-postgres-conversations.js';

/** Schema version this code writes (`tabchat_schema.version`). */
export const POSTGRES_SCHEMA_VERSION = 3;

/** Migrations: index i brings a database from version i to i + 1. */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE tabchat_users (
    sdk_app_id bigint NOT NULL,
    user_id    text   NOT NULL,
    head       bigint NOT NULL DEFAULT 0,
    acked      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (sdk_app_id, user_id)
  );
  CREATE TABLE tabchat_messages (
    id            text   NOT NULL PRIMARY KEY,
    sdk_app_id    bigint NOT NULL,
    from_user     text   NOT NULL,
    to_user       text   NOT NULL,
    client_msg_id text   NOT NULL,
    text          text   NOT NULL,
    time          bigint NOT NULL,
    from_seq      bigint NOT NULL,
    to_seq        bigint NOT NULL,
    UNIQUE (sdk_app_id, from_user, client_msg_id)
  );
  CREATE TABLE tabchat_mailbox (
    sdk_app_id bigint NOT NULL,
    user_id    text   NOT NULL,
    seq        bigint NOT NULL,
    message_id text   NOT NULL REFERENCES tabchat_messages (id),
    flow       text   NOT NULL CHECK (flow IN ('in', 'out')),
    PRIMARY KEY (sdk_app_id, user_id, seq)
  );
  CREATE FUNCTION tabchat_send(p_id text, p_app bigint, p_from text, p_to text, p_cmid text, p_text text, p_time bigint)
  RETURNS TABLE (o_id text, o_app bigint, o_from text, o_to text, o_cmid text, o_text text, o_time bigint,
                 o_from_seq bigint, o_to_seq bigint, o_created boolean)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    m tabchat_messages%ROWTYPE;
    s_from bigint;
    s_to bigint;
  BEGIN
    -- Counter rows exist and are locked in user_id order: concurrent A->B and B->A never deadlock.
    IF p_from <= p_to THEN
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_from) ON CONFLICT DO NOTHING;
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_to) ON CONFLICT DO NOTHING;
    ELSE
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_to) ON CONFLICT DO NOTHING;
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_from) ON CONFLICT DO NOTHING;
    END IF;
    PERFORM 1 FROM tabchat_users u WHERE u.sdk_app_id = p_app AND u.user_id IN (p_from, p_to) ORDER BY u.user_id FOR UPDATE;
    -- After the sender's lock: a racing send of the same clientMsgId has committed or not started.
    SELECT * INTO m FROM tabchat_messages x WHERE x.sdk_app_id = p_app AND x.from_user = p_from AND x.client_msg_id = p_cmid;
    IF FOUND THEN
      RETURN QUERY SELECT m.id, m.sdk_app_id, m.from_user, m.to_user, m.client_msg_id, m.text, m.time, m.from_seq, m.to_seq, false;
      RETURN;
    END IF;
    UPDATE tabchat_users u SET head = u.head + 1 WHERE u.sdk_app_id = p_app AND u.user_id = p_from RETURNING u.head INTO s_from;
    IF p_to = p_from THEN
      s_to := s_from;
    ELSE
      UPDATE tabchat_users u SET head = u.head + 1 WHERE u.sdk_app_id = p_app AND u.user_id = p_to RETURNING u.head INTO s_to;
    END IF;
    INSERT INTO tabchat_messages (id, sdk_app_id, from_user, to_user, client_msg_id, text, time, from_seq, to_seq)
      VALUES (p_id, p_app, p_from, p_to, p_cmid, p_text, p_time, s_from, s_to);
    INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (p_app, p_from, s_from, p_id, 'out');
    IF p_to <> p_from THEN
      INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (p_app, p_to, s_to, p_id, 'in');
    END IF;
    RETURN QUERY SELECT p_id, p_app, p_from, p_to, p_cmid, p_text, p_time, s_from, s_to, true;
  END
  $fn$;
  `,
  // 2: quota and retention (docs/operations.md "Limits and abuse"): mailbox entry counts and
  // text bytes, each message's text bytes, indexes for old messages and a message's entries,
  // and tabchat_send with the quota (it drops the oldest acknowledged entries to make room,
  // and answers o_full when the recipient's mailbox still has none).
  `
  ALTER TABLE tabchat_users ADD COLUMN entries bigint NOT NULL DEFAULT 0;
  ALTER TABLE tabchat_users ADD COLUMN bytes bigint NOT NULL DEFAULT 0;
  ALTER TABLE tabchat_messages ADD COLUMN text_bytes bigint NOT NULL DEFAULT 0;
  UPDATE tabchat_messages SET text_bytes = octet_length(text);
  UPDATE tabchat_users u SET
    entries = (SELECT count(*) FROM tabchat_mailbox b WHERE b.sdk_app_id = u.sdk_app_id AND b.user_id = u.user_id),
    bytes = (SELECT coalesce(sum(m.text_bytes), 0) FROM tabchat_mailbox b JOIN tabchat_messages m ON m.id = b.message_id
             WHERE b.sdk_app_id = u.sdk_app_id AND b.user_id = u.user_id);
  CREATE INDEX tabchat_messages_by_time ON tabchat_messages (time);
  CREATE INDEX tabchat_mailbox_by_message ON tabchat_mailbox (message_id);
  CREATE FUNCTION tabchat_make_room(p_app bigint, p_user text, p_bytes bigint, p_max_entries bigint, p_max_bytes bigint)
  RETURNS boolean LANGUAGE plpgsql AS $fn$
  DECLARE
    e bigint;
    b bigint;
    a bigint;
    dropped bigint := 0;
    freed bigint := 0;
    r record;
  BEGIN
    SELECT u.entries, u.bytes, u.acked INTO e, b, a FROM tabchat_users u WHERE u.sdk_app_id = p_app AND u.user_id = p_user;
    IF e + 1 <= p_max_entries AND b + p_bytes <= p_max_bytes THEN RETURN true; END IF;
    FOR r IN SELECT x.seq, x.message_id, m.text_bytes FROM tabchat_mailbox x JOIN tabchat_messages m ON m.id = x.message_id
             WHERE x.sdk_app_id = p_app AND x.user_id = p_user AND x.seq <= a ORDER BY x.seq LIMIT ${MAX_EVICTIONS_PER_SEND} LOOP
      DELETE FROM tabchat_mailbox x WHERE x.sdk_app_id = p_app AND x.user_id = p_user AND x.seq = r.seq;
      DELETE FROM tabchat_messages m WHERE m.id = r.message_id AND NOT EXISTS (SELECT 1 FROM tabchat_mailbox y WHERE y.message_id = r.message_id);
      dropped := dropped + 1;
      freed := freed + r.text_bytes;
      e := e - 1;
      b := b - r.text_bytes;
      EXIT WHEN e + 1 <= p_max_entries AND b + p_bytes <= p_max_bytes;
    END LOOP;
    IF dropped > 0 THEN
      UPDATE tabchat_users u SET entries = u.entries - dropped, bytes = u.bytes - freed WHERE u.sdk_app_id = p_app AND u.user_id = p_user;
    END IF;
    RETURN e + 1 <= p_max_entries AND b + p_bytes <= p_max_bytes;
  END
  $fn$;
  DROP FUNCTION tabchat_send(text, bigint, text, text, text, text, bigint);
  CREATE FUNCTION tabchat_send(p_id text, p_app bigint, p_from text, p_to text, p_cmid text, p_text text, p_time bigint,
                               p_max_entries bigint, p_max_bytes bigint)
  RETURNS TABLE (o_id text, o_app bigint, o_from text, o_to text, o_cmid text, o_text text, o_time bigint,
                 o_from_seq bigint, o_to_seq bigint, o_created boolean, o_full boolean)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    m tabchat_messages%ROWTYPE;
    s_from bigint;
    s_to bigint;
    n_bytes bigint := octet_length(p_text);
  BEGIN
    -- Counter rows exist and are locked in user_id order: concurrent A->B and B->A never deadlock.
    IF p_from <= p_to THEN
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_from) ON CONFLICT DO NOTHING;
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_to) ON CONFLICT DO NOTHING;
    ELSE
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_to) ON CONFLICT DO NOTHING;
      INSERT INTO tabchat_users (sdk_app_id, user_id) VALUES (p_app, p_from) ON CONFLICT DO NOTHING;
    END IF;
    PERFORM 1 FROM tabchat_users u WHERE u.sdk_app_id = p_app AND u.user_id IN (p_from, p_to) ORDER BY u.user_id FOR UPDATE;
    -- After the sender's lock: a racing send of the same clientMsgId has committed or not started.
    SELECT * INTO m FROM tabchat_messages x WHERE x.sdk_app_id = p_app AND x.from_user = p_from AND x.client_msg_id = p_cmid;
    IF FOUND THEN
      RETURN QUERY SELECT m.id, m.sdk_app_id, m.from_user, m.to_user, m.client_msg_id, m.text, m.time, m.from_seq, m.to_seq, false, false;
      RETURN;
    END IF;
    IF NOT tabchat_make_room(p_app, p_to, n_bytes, p_max_entries, p_max_bytes) THEN
      RETURN QUERY SELECT p_id, p_app, p_from, p_to, p_cmid, ''::text, p_time, 0::bigint, 0::bigint, false, true;
      RETURN;
    END IF;
    IF p_to <> p_from THEN
      PERFORM tabchat_make_room(p_app, p_from, n_bytes, p_max_entries, p_max_bytes);
    END IF;
    UPDATE tabchat_users u SET head = u.head + 1, entries = u.entries + 1, bytes = u.bytes + n_bytes
      WHERE u.sdk_app_id = p_app AND u.user_id = p_from RETURNING u.head INTO s_from;
    IF p_to = p_from THEN
      s_to := s_from;
    ELSE
      UPDATE tabchat_users u SET head = u.head + 1, entries = u.entries + 1, bytes = u.bytes + n_bytes
        WHERE u.sdk_app_id = p_app AND u.user_id = p_to RETURNING u.head INTO s_to;
    END IF;
    INSERT INTO tabchat_messages (id, sdk_app_id, from_user, to_user, client_msg_id, text, time, from_seq, to_seq, text_bytes)
      VALUES (p_id, p_app, p_from, p_to, p_cmid, p_text, p_time, s_from, s_to, n_bytes);
    INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (p_app, p_from, s_from, p_id, 'out');
    IF p_to <> p_from THEN
      INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (p_app, p_to, s_to, p_id, 'in');
    END IF;
    RETURN QUERY SELECT p_id, p_app, p_from, p_to, p_cmid, p_text, p_time, s_from, s_to, true, false;
  END
  $fn$;
  CREATE FUNCTION tabchat_remove_expired(p_before bigint, p_max integer) RETURNS integer LANGUAGE plpgsql AS $fn$
  DECLARE
    r record;
    n integer := 0;
  BEGIN
    -- SKIP LOCKED: several nodes sweep at once without waiting for one another.
    FOR r IN SELECT * FROM tabchat_messages m WHERE m.time < p_before ORDER BY m.time LIMIT p_max FOR UPDATE SKIP LOCKED LOOP
      WITH gone AS (
        DELETE FROM tabchat_mailbox x WHERE x.sdk_app_id = r.sdk_app_id
          AND ((x.user_id = r.from_user AND x.seq = r.from_seq) OR (x.user_id = r.to_user AND x.seq = r.to_seq))
        RETURNING x.user_id
      )
      UPDATE tabchat_users u SET entries = u.entries - 1, bytes = u.bytes - r.text_bytes
        FROM gone WHERE u.sdk_app_id = r.sdk_app_id AND u.user_id = gone.user_id;
      DELETE FROM tabchat_messages m WHERE m.id = r.id;
      n := n + 1;
    END LOOP;
    RETURN n;
  END
  $fn$;
  `,
  // 3: conversations and read markers (store-postgres-conversations.ts).
  POSTGRES_CONVERSATIONS_MIGRATION,
];

/** Connecting may take this long before the call fails (9031). */
const CONNECT_TIMEOUT_MS = 3_000;
/** A query that has not answered after this long fails (9031; a retry settles the outcome). */
const QUERY_TIMEOUT_MS = 5_000;
/** Connections per node. */
const POOL_SIZE = 10;

interface SendRow {
  o_id: string;
  o_app: number;
  o_from: string;
  o_to: string;
  o_cmid: string;
  o_text: string;
  o_time: number;
  o_from_seq: number;
  o_to_seq: number;
  o_created: boolean;
  o_full: boolean;
}


/** bigint (int8) columns as JS numbers: seqs, times and app ids stay far below 2^53. */
const TYPES = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === pg.types.builtins.INT8 ? (value: string) => Number(value) : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '53300', // too_many_connections
]);

/** Whether a pg error means "the database cannot be reached" (as opposed to a bug or a constraint). */
export function isUnreachable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string' && (UNREACHABLE_CODES.has(code) || code.startsWith('08'))) return true;
  return /connection terminated|timeout exceeded when trying to connect|query read timeout|connection timeout|connection error|not queryable|Connection closed/i.test(err.message);
}

export class PostgresStore implements MessageStore {
  readonly kind = 'postgres';
  readonly conversations: PostgresConversations;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly quota: MailboxQuota,
  ) {
    this.conversations = new PostgresConversations((text, values) => this.query(text, values));
  }

  /**
   * Connect, create or migrate the schema, and return the store. Fails (with the password
   * hidden) when the database cannot be reached or was written by a newer tabchat.
   */
  static async open(url: string, quota: MailboxQuota = NO_QUOTA): Promise<PostgresStore> {
    const pool = new pg.Pool({
      connectionString: url,
      max: POOL_SIZE,
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
      query_timeout: QUERY_TIMEOUT_MS,
      idleTimeoutMillis: 30_000,
      application_name: 'tabchat',
      types: TYPES,
    });
    // Idle connections that break (database restart) are dropped by the pool; without a
    // listener the 'error' event would crash the process.
    pool.on('error', () => undefined);
    try {
      await migrate(pool);
    } catch (err) {
      await pool.end().catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      throw new Error(`message store ${redactUrl(url)} is not available: ${message.replace(url, redactUrl(url))}`);
    }
    return new PostgresStore(pool, quota);
  }

  async send(input: NewMessage): Promise<{ message: StoredMessage; created: boolean }> {
    const rows = await this.query<SendRow>('SELECT * FROM tabchat_send($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      input.id, input.sdkAppId, input.from, input.to, input.clientMsgId, input.text, input.time, this.quota.maxMessages, this.quota.maxBytes,
    ]);
    const r = rows[0]!;
    if (r.o_full) throw new MailboxFullError(input.to);
    return {
      created: r.o_created,
      message: {
        id: r.o_id,
        sdkAppId: r.o_app,
        from: r.o_from,
        to: r.o_to,
        clientMsgId: r.o_cmid,
        text: r.o_text,
        time: r.o_time,
        fromSeq: r.o_from_seq,
        toSeq: r.o_to_seq,
      },
    };
  }

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes = Number.MAX_SAFE_INTEGER): Promise<MailboxPage> {
    // One statement, so one snapshot and one round trip: the page and the head agree. The
    // one-row base keeps the head when the page is empty (then `seq` is null). The page is
    // cut in SQL by the running sum of `text_bytes`: the texts of entries beyond the byte
    // budget are never read (`fits` false: their message columns come back null).
    const rows = await this.query<Partial<EntryRow> & { mailbox_head: number | null; fits: boolean | null }>(
      `SELECT u.head AS mailbox_head, p.* FROM (SELECT 1) AS one
       LEFT JOIN tabchat_users u ON u.sdk_app_id = $1 AND u.user_id = $2
       LEFT JOIN LATERAL (
         SELECT c.seq AS seq, c.flow AS flow, c.fits AS fits, m.* FROM (
           SELECT b.seq, b.flow, b.message_id,
                  (row_number() OVER w = 1 OR sum(t.text_bytes) OVER w <= $5) AND row_number() OVER w <= $4 AS fits
           FROM tabchat_mailbox b JOIN tabchat_messages t ON t.id = b.message_id
           WHERE b.sdk_app_id = $1 AND b.user_id = $2 AND b.seq > $3
           WINDOW w AS (ORDER BY b.seq ROWS UNBOUNDED PRECEDING)
           ORDER BY b.seq LIMIT $4 + 1
         ) c LEFT JOIN tabchat_messages m ON c.fits AND m.id = c.message_id
       ) p ON true
       ORDER BY p.seq`,
      [sdkAppId, userID, afterSeq, limit, maxBytes],
    );
    const head = Number(rows[0]?.mailbox_head ?? 0);
    const page = rows.filter((row): row is EntryRow & { mailbox_head: number | null; fits: boolean } => row.seq !== null && row.seq !== undefined);
    const fitting = page.filter((row) => row.fits);
    return { entries: fitting.map((row) => ({ seq: row.seq, flow: row.flow, message: toMessage(row) })), more: fitting.length < page.length, head };
  }

  async removeExpired(before: number, max: number): Promise<number> {
    const rows = await this.query<{ n: number }>('SELECT tabchat_remove_expired($1, $2) AS n', [before, max]);
    return Number(rows[0]?.n ?? 0);
  }

  async head(sdkAppId: number, userID: string): Promise<number> {
    const rows = await this.query<{ head: number }>('SELECT head FROM tabchat_users WHERE sdk_app_id = $1 AND user_id = $2', [sdkAppId, userID]);
    return rows[0]?.head ?? 0;
  }

  async acked(sdkAppId: number, userID: string): Promise<number> {
    const rows = await this.query<{ acked: number }>('SELECT acked FROM tabchat_users WHERE sdk_app_id = $1 AND user_id = $2', [sdkAppId, userID]);
    return rows[0]?.acked ?? 0;
  }

  async ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    const rows = await this.query<{ recorded: number }>(
      `UPDATE tabchat_users SET acked = GREATEST(acked, LEAST($1::bigint, head)) WHERE sdk_app_id = $2 AND user_id = $3
       RETURNING LEAST($1::bigint, head) AS recorded`,
      [seq, sdkAppId, userID],
    );
    return rows[0]?.recorded ?? 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }

  private async query<R extends pg.QueryResultRow>(text: string, values: unknown[]): Promise<R[]> {
    if (this.closed) throw new StoreClosedError();
    try {
      return (await this.pool.query<R>(text, values)).rows;
    } catch (err) {
      if (this.closed) throw new StoreClosedError();
      if (isUnreachable(err)) throw new StoreUnavailableError(`postgres: ${(err as Error).message}`);
      throw err;
    }
  }
}

/** Create or upgrade the schema; one node at a time (advisory lock), in one transaction. */
async function migrate(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT pg_advisory_xact_lock(hashtext('tabchat-schema'))");
    await client.query('CREATE TABLE IF NOT EXISTS tabchat_schema (version integer NOT NULL)');
    const found = await client.query<{ version: number }>('SELECT version FROM tabchat_schema');
    const version = found.rows[0]?.version ?? 0;
    if (version > POSTGRES_SCHEMA_VERSION) {
      throw new Error(`the database has tabchat schema version ${version}; this tabchat understands up to ${POSTGRES_SCHEMA_VERSION} (upgrade tabchat)`);
    }
    for (let v = version; v < POSTGRES_SCHEMA_VERSION; v++) await client.query(MIGRATIONS[v]!);
    if (found.rows.length === 0) await client.query('INSERT INTO tabchat_schema (version) VALUES ($1)', [POSTGRES_SCHEMA_VERSION]);
    else await client.query('UPDATE tabchat_schema SET version = $1', [POSTGRES_SCHEMA_VERSION]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    client.release();
  }
}
