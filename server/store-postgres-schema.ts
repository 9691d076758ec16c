/**
 * The Postgres store's schema: migrations (table `tabchat_schema` holds the version) and the
 * functions a send runs in the database (`tabchat_send`, `tabchat_send_batch`,
 * `tabchat_make_room`, `tabchat_remove_expired`). Used by store-postgres.ts at open.
 */
import { POSTGRES_CONVERSATIONS_MIGRATION } from './store-postgres-conversations.js';
import type pg from 'pg';
import { MAX_EVICTIONS_PER_SEND } from './store.js';

/** Schema version this code writes (`tabchat_schema.version`). */
export const POSTGRES_SCHEMA_VERSION = 4;

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
  // 3: batched sends and acks (one statement, one transaction, one commit per batch of sends of a
  // node): every counter row of the batch is created and locked first, in (app, user_id)
  // order — the order tabchat_send locks in — so batches and single sends of any number
  // of nodes never deadlock and each mailbox's seqs stay gap-free; then each message, in
  // the batch's order, is checked (idempotency, quota) and stored as tabchat_send does.
  `
  CREATE FUNCTION tabchat_send_batch(p_id text[], p_app bigint[], p_from text[], p_to text[], p_cmid text[], p_text text[], p_time bigint[],
                                     p_max_entries bigint, p_max_bytes bigint)
  RETURNS TABLE (o_idx integer, o_id text, o_app bigint, o_from text, o_to text, o_cmid text, o_text text, o_time bigint,
                 o_from_seq bigint, o_to_seq bigint, o_created boolean, o_full boolean)
  LANGUAGE plpgsql AS $fn$
  DECLARE
    i integer;
    m tabchat_messages%ROWTYPE;
    s_from bigint;
    s_to bigint;
    n_bytes bigint;
  BEGIN
    INSERT INTO tabchat_users (sdk_app_id, user_id)
      SELECT DISTINCT k.a, k.u FROM unnest(p_app || p_app, p_from || p_to) AS k(a, u) ORDER BY k.a, k.u
      ON CONFLICT DO NOTHING;
    PERFORM 1 FROM tabchat_users u
      WHERE (u.sdk_app_id, u.user_id) IN (SELECT k.a, k.u FROM unnest(p_app || p_app, p_from || p_to) AS k(a, u))
      ORDER BY u.sdk_app_id, u.user_id FOR UPDATE;
    FOR i IN 1 .. coalesce(array_length(p_id, 1), 0) LOOP
      SELECT * INTO m FROM tabchat_messages x WHERE x.sdk_app_id = p_app[i] AND x.from_user = p_from[i] AND x.client_msg_id = p_cmid[i];
      IF FOUND THEN
        RETURN QUERY SELECT i, m.id, m.sdk_app_id, m.from_user, m.to_user, m.client_msg_id, m.text, m.time, m.from_seq, m.to_seq, false, false;
        CONTINUE;
      END IF;
      n_bytes := octet_length(p_text[i]);
      IF NOT tabchat_make_room(p_app[i], p_to[i], n_bytes, p_max_entries, p_max_bytes) THEN
        RETURN QUERY SELECT i, p_id[i], p_app[i], p_from[i], p_to[i], p_cmid[i], ''::text, p_time[i], 0::bigint, 0::bigint, false, true;
        CONTINUE;
      END IF;
      IF p_to[i] <> p_from[i] THEN
        PERFORM tabchat_make_room(p_app[i], p_from[i], n_bytes, p_max_entries, p_max_bytes);
      END IF;
      UPDATE tabchat_users u SET head = u.head + 1, entries = u.entries + 1, bytes = u.bytes + n_bytes
        WHERE u.sdk_app_id = p_app[i] AND u.user_id = p_from[i] RETURNING u.head INTO s_from;
      IF p_to[i] = p_from[i] THEN
        s_to := s_from;
      ELSE
        UPDATE tabchat_users u SET head = u.head + 1, entries = u.entries + 1, bytes = u.bytes + n_bytes
          WHERE u.sdk_app_id = p_app[i] AND u.user_id = p_to[i] RETURNING u.head INTO s_to;
      END IF;
      INSERT INTO tabchat_messages (id, sdk_app_id, from_user, to_user, client_msg_id, text, time, from_seq, to_seq, text_bytes)
        VALUES (p_id[i], p_app[i], p_from[i], p_to[i], p_cmid[i], p_text[i], p_time[i], s_from, s_to, n_bytes);
      IF p_to[i] = p_from[i] THEN
        INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow) VALUES (p_app[i], p_from[i], s_from, p_id[i], 'out');
      ELSE
        INSERT INTO tabchat_mailbox (sdk_app_id, user_id, seq, message_id, flow)
          VALUES (p_app[i], p_from[i], s_from, p_id[i], 'out'), (p_app[i], p_to[i], s_to, p_id[i], 'in');
      END IF;
      RETURN QUERY SELECT i, p_id[i], p_app[i], p_from[i], p_to[i], p_cmid[i], p_text[i], p_time[i], s_from, s_to, true, false;
    END LOOP;
  END
  $fn$;
  -- Batched acks (one statement per batch): the rows are locked in the same order, then
  -- each user's acked position becomes max(old, min(highest seq of the batch, head)); each
  -- ack answers min(its seq, head) (0 for a user without a mailbox: LEAST ignores NULL,
  -- hence the CASE), as a single ack does.
  CREATE FUNCTION tabchat_ack_batch(p_app bigint[], p_user text[], p_seq bigint[])
  RETURNS TABLE (o_idx integer, o_recorded bigint)
  LANGUAGE plpgsql AS $fn$
  BEGIN
    PERFORM 1 FROM tabchat_users u
      WHERE (u.sdk_app_id, u.user_id) IN (SELECT k.a, k.u FROM unnest(p_app, p_user) AS k(a, u))
      ORDER BY u.sdk_app_id, u.user_id FOR UPDATE;
    UPDATE tabchat_users u SET acked = GREATEST(u.acked, LEAST(g.s, u.head))
      FROM (SELECT k.a, k.u, max(k.s) AS s FROM unnest(p_app, p_user, p_seq) AS k(a, u, s) GROUP BY k.a, k.u) g
      WHERE u.sdk_app_id = g.a AND u.user_id = g.u;
    RETURN QUERY SELECT k.i::integer, (CASE WHEN u.head IS NULL THEN 0 ELSE LEAST(k.s, u.head) END)::bigint
      FROM unnest(p_app, p_user, p_seq) WITH ORDINALITY AS k(a, u, s, i)
      LEFT JOIN tabchat_users u ON u.sdk_app_id = k.a AND u.user_id = k.u
      ORDER BY k.i;
  END
  $fn$;
  `,
  // 4: conversations and read markers (store-postgres-conversations.ts).
  POSTGRES_CONVERSATIONS_MIGRATION,
];


/** Create or upgrade the schema; one node at a time (advisory lock), in one transaction. */
export async function migrate(pool: pg.Pool): Promise<void> {
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
