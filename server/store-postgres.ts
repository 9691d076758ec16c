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
import { StoreClosedError, StoreUnavailableError, type MailboxPage, type MessageStore, type NewMessage, type StoredMessage } from './store.js';
import { toMessage, type EntryRow } from './store-rows.js';

/** Schema version this code writes (`tabchat_schema.version`). */
export const POSTGRES_SCHEMA_VERSION = 1;

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
  private closed = false;

  private constructor(private readonly pool: pg.Pool) {}

  /**
   * Connect, create or migrate the schema, and return the store. Fails (with the password
   * hidden) when the database cannot be reached or was written by a newer tabchat.
   */
  static async open(url: string): Promise<PostgresStore> {
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
    return new PostgresStore(pool);
  }

  async send(input: NewMessage): Promise<{ message: StoredMessage; created: boolean }> {
    const rows = await this.query<SendRow>('SELECT * FROM tabchat_send($1, $2, $3, $4, $5, $6, $7)', [
      input.id, input.sdkAppId, input.from, input.to, input.clientMsgId, input.text, input.time,
    ]);
    const r = rows[0]!;
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

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number): Promise<MailboxPage> {
    // One statement, so one snapshot and one round trip: the page and the head agree. The
    // one-row base keeps the head when the page is empty (then `seq` is null).
    const rows = await this.query<Partial<EntryRow> & { mailbox_head: number | null }>(
      `SELECT u.head AS mailbox_head, p.* FROM (SELECT 1) AS one
       LEFT JOIN tabchat_users u ON u.sdk_app_id = $1 AND u.user_id = $2
       LEFT JOIN LATERAL (
         SELECT b.seq AS seq, b.flow AS flow, m.* FROM tabchat_mailbox b JOIN tabchat_messages m ON m.id = b.message_id
         WHERE b.sdk_app_id = $1 AND b.user_id = $2 AND b.seq > $3 ORDER BY b.seq LIMIT $4
       ) p ON true
       ORDER BY p.seq`,
      [sdkAppId, userID, afterSeq, limit + 1],
    );
    const head = Number(rows[0]?.mailbox_head ?? 0);
    const page = rows.filter((row): row is EntryRow & { mailbox_head: number | null } => row.seq !== null && row.seq !== undefined);
    const more = page.length > limit;
    return { entries: page.slice(0, limit).map((row) => ({ seq: row.seq, flow: row.flow, message: toMessage(row) })), more, head };
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
