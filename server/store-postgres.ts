/**
 * PostgreSQL {@link MessageStore} on `pg` 8: the store every node of a cluster shares
 * (config `store: "postgres://…"`). Same contract as the sqlite store:
 *
 * - Per-user seqs without gaps across nodes: each mailbox has a counter row
 *   (`tabchat_users.head`); a send locks the sender's and the recipient's rows (in a fixed
 *   order, so A→B and B→A never deadlock), bumps them and inserts the message and its two
 *   mailbox entries in ONE transaction (the `tabchat_send` function: one round trip).
 * - Batched sends: the sends of a node that arrive together (one event-loop turn, and
 *   those that gather while the previous batch commits) go to the database as ONE
 *   statement (`tabchat_send_batch`: one round trip, one transaction, one commit), in call
 *   order. It creates and locks every counter row of the batch first, in the order
 *   `tabchat_send` locks in, so batches of any number of nodes never deadlock and seqs stay
 *   gap-free. When the batch statement fails for another reason than an unreachable
 *   database, its sends are run again one by one (`tabchat_send`), so a bad message fails
 *   alone. One batch in flight per node keeps a node's sends in call order. Acks are
 *   batched the same way (`tabchat_ack_batch`), in their own statement.
 * - Idempotency: `UNIQUE (sdk_app_id, from_user, client_msg_id)`; the duplicate check runs
 *   after the sender's row is locked, so two nodes racing with the same clientMsgId store
 *   it once and both answer with the same message.
 * - The schema is created or migrated at start under an advisory lock (N nodes may start at
 *   once); a database written by a newer tabchat is refused. Tables are prefixed `tabchat_`.
 * - Unreachable database (refused, dropped, timed out): {@link StoreUnavailableError}, which
 *   the client sees as 9031; nothing is acknowledged that was not committed.
 */
import { PostgresConversations } from './store-postgres-conversations.js';
import pg from 'pg';
import { redactUrl } from './log.js';
import {
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
import { migrate } from './store-postgres-schema.js';

export { POSTGRES_SCHEMA_VERSION } from './store-postgres-schema.js';

/** Connecting may take this long before the call fails (9031). */
const CONNECT_TIMEOUT_MS = 3_000;
/** A query that has not answered after this long fails (9031; a retry settles the outcome). */
const QUERY_TIMEOUT_MS = 5_000;
/** Connections per node. */
const POOL_SIZE = 10;
/** Most sends in one batch statement. */
const MAX_BATCH = 512;

type SendOutcome = { message: StoredMessage; created: boolean };

interface QueuedAck {
  sdkAppId: number;
  userID: string;
  seq: number;
  resolve(recorded: number): void;
  reject(error: unknown): void;
}

interface QueuedSend {
  input: NewMessage;
  resolve(outcome: SendOutcome): void;
  reject(error: unknown): void;
}

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
  /** Batches stored, sends in them, batches run again one by one. */
  readonly stats = { batches: 0, writes: 0, retried: 0 };
  /** Conversations and read markers (store-postgres-conversations.ts). */
  readonly conversations: PostgresConversations;
  private closed = false;
  private queued: QueuedSend[] = [];
  private scheduled = false;
  private inFlight = false;
  private drained: (() => void) | undefined;
  private acks: QueuedAck[] = [];
  private acksScheduled = false;
  private acksInFlight = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly quota: MailboxQuota,
    /** One transaction per send (the previous design): the benchmark's baseline only. */
    private readonly unbatched = false,
  ) {
    this.conversations = new PostgresConversations((text, values) => this.query(text, values));
  }

  /**
   * Connect, create or migrate the schema, and return the store. Fails (with the password
   * hidden) when the database cannot be reached or was written by a newer tabchat.
   */
  static async open(url: string, quota: MailboxQuota = NO_QUOTA, unbatched = false): Promise<PostgresStore> {
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
    return new PostgresStore(pool, quota, unbatched);
  }

  /** Queued for the next batch (one statement); resolves once that batch committed. */
  send(input: NewMessage): Promise<SendOutcome> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.unbatched) return this.sendOne(input);
    return new Promise((resolve, reject) => {
      this.queued.push({ input, resolve, reject });
      if (this.queued.length >= MAX_BATCH) void this.flush();
      else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          void this.flush();
        });
      }
    });
  }

  /** Send the queued sends as one batch unless one is in flight (its end sends the next). */
  private async flush(): Promise<void> {
    if (this.inFlight || this.queued.length === 0) return;
    const batch = this.queued.splice(0, MAX_BATCH);
    this.inFlight = true;
    try {
      let outcomes: Array<SendOutcome | Error>;
      try {
        outcomes = await this.sendBatch(batch.map((q) => q.input));
      } catch (err) {
        if (err instanceof StoreUnavailableError || err instanceof StoreClosedError) throw err;
        // Something in the batch failed (a constraint…): one by one, so it fails alone.
        this.stats.retried++;
        outcomes = [];
        for (const q of batch) outcomes.push(await this.sendOne(q.input).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
      }
      this.stats.batches++;
      this.stats.writes += batch.length;
      outcomes.forEach((o, i) => (o instanceof Error ? batch[i]!.reject(o) : batch[i]!.resolve(o)));
    } catch (err) {
      for (const q of batch) q.reject(err);
    } finally {
      this.inFlight = false;
      if (this.queued.length > 0) void this.flush();
      else if (!this.acksInFlight && this.acks.length === 0) this.drained?.();
    }
  }

  private async sendBatch(inputs: readonly NewMessage[]): Promise<Array<SendOutcome | Error>> {
    const rows = await this.query<SendRow & { o_idx: number }>('SELECT * FROM tabchat_send_batch($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      inputs.map((m) => m.id),
      inputs.map((m) => m.sdkAppId),
      inputs.map((m) => m.from),
      inputs.map((m) => m.to),
      inputs.map((m) => m.clientMsgId),
      inputs.map((m) => m.text),
      inputs.map((m) => m.time),
      this.quota.maxMessages,
      this.quota.maxBytes,
    ]);
    const out: Array<SendOutcome | Error> = inputs.map(() => new Error('tabchat_send_batch answered no row for this message'));
    for (const r of rows) out[r.o_idx - 1] = r.o_full ? new MailboxFullError(inputs[r.o_idx - 1]!.to) : toOutcome(r);
    return out;
  }

  private async sendOne(input: NewMessage): Promise<SendOutcome> {
    const rows = await this.query<SendRow>('SELECT * FROM tabchat_send($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
      input.id, input.sdkAppId, input.from, input.to, input.clientMsgId, input.text, input.time, this.quota.maxMessages, this.quota.maxBytes,
    ]);
    const r = rows[0]!;
    if (r.o_full) throw new MailboxFullError(input.to);
    return toOutcome(r);
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

  /** Queued for the next ack batch (one statement, see tabchat_ack_batch); resolves with the recorded seq. */
  ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.unbatched) return this.ackOne(sdkAppId, userID, seq);
    return new Promise((resolve, reject) => {
      this.acks.push({ sdkAppId, userID, seq, resolve, reject });
      if (this.acks.length >= MAX_BATCH) void this.flushAcks();
      else if (!this.acksScheduled) {
        this.acksScheduled = true;
        setImmediate(() => {
          this.acksScheduled = false;
          void this.flushAcks();
        });
      }
    });
  }

  private async flushAcks(): Promise<void> {
    if (this.acksInFlight || this.acks.length === 0) return;
    const batch = this.acks.splice(0, MAX_BATCH);
    this.acksInFlight = true;
    try {
      let recorded: Array<number | Error>;
      try {
        const rows = await this.query<{ o_idx: number; o_recorded: number }>('SELECT * FROM tabchat_ack_batch($1, $2, $3)', [
          batch.map((a) => a.sdkAppId),
          batch.map((a) => a.userID),
          batch.map((a) => a.seq),
        ]);
        recorded = batch.map(() => 0);
        for (const r of rows) recorded[r.o_idx - 1] = r.o_recorded;
      } catch (err) {
        if (err instanceof StoreUnavailableError || err instanceof StoreClosedError) throw err;
        recorded = [];
        for (const a of batch) recorded.push(await this.ackOne(a.sdkAppId, a.userID, a.seq).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
      }
      recorded.forEach((r, i) => (r instanceof Error ? batch[i]!.reject(r) : batch[i]!.resolve(r)));
    } catch (err) {
      for (const a of batch) a.reject(err);
    } finally {
      this.acksInFlight = false;
      if (this.acks.length > 0) void this.flushAcks();
      else if (!this.inFlight && this.queued.length === 0) this.drained?.();
    }
  }

  private async ackOne(sdkAppId: number, userID: string, seq: number): Promise<number> {
    const rows = await this.query<{ recorded: number }>(
      `UPDATE tabchat_users SET acked = GREATEST(acked, LEAST($1::bigint, head)) WHERE sdk_app_id = $2 AND user_id = $3
       RETURNING LEAST($1::bigint, head) AS recorded`,
      [seq, sdkAppId, userID],
    );
    return rows[0]?.recorded ?? 0;
  }

  /** Stores the sends still queued (they resolve), then closes the pool. */
  async close(): Promise<void> {
    if (this.closed) return;
    if (this.inFlight || this.queued.length > 0 || this.acksInFlight || this.acks.length > 0) {
      const drained = new Promise<void>((resolve) => (this.drained = resolve));
      void this.flush();
      void this.flushAcks();
      await drained;
    }
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

function toOutcome(r: SendRow): SendOutcome {
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
