/**
 * SQLite {@link MessageStore} on better-sqlite3 12 (the line that supports Node 20).
 *
 * - A writer thread: the file is opened and every statement runs on a worker_threads
 *   thread (store-sqlite-writer.ts), so a commit (and its fsync) never blocks the event
 *   loop. This class, on the main thread, gathers writes into batches and talks to it.
 * - One writer: the file is opened with `locking_mode=EXCLUSIVE`, so a second server on the
 *   same file fails at start instead of interleaving seqs.
 * - WAL journal, `synchronous=FULL`: a message acknowledged to its sender survives a process
 *   crash and a power loss.
 * - Group commit: sends AND acks are queued and committed together, in call order, in ONE
 *   IMMEDIATE transaction (one fsync) per batch, without per-send savepoints. A batch is
 *   posted at the end of the event-loop turn its first write arrived in (or `maxWaitMs`
 *   later), or as soon as it holds `maxMessages` writes; while one batch is being
 *   committed the next one gathers, so under load batches grow with the commit time. A
 *   send resolves only after its batch committed: nothing is acknowledged before it is on
 *   disk. A write that fails on its own (a constraint, a full mailbox) makes the thread roll
 *   the batch back and run it again with one savepoint per write, so that write is rejected
 *   alone and seqs keep no gaps; when the transaction as a whole fails (BEGIN, COMMIT, disk
 *   full, I/O error), every write of the batch is rejected and none is stored.
 * - Reads go to the same thread, in order after the batches posted before them.
 * - Prepared statements only; the schema is created or migrated at open
 *   (store-sqlite-schema.ts, `PRAGMA user_version`).
 */
import { Worker } from 'node:worker_threads';
import {
  DEFAULT_STORE_BATCH,
  MailboxFullError,
  NO_QUOTA,
  StoreClosedError,
  StoreUnavailableError,
  type MailboxPage,
  type MailboxQuota,
  type MessageStore,
  type NewMessage,
  type StoreBatchOptions,
} from './store.js';
import type { ConversationStore } from './conversation-store.js';
import type { BatchItem, ItemResult, SendOutcome, SqliteWriter, WireError, WriterReply, WriterRequest, WriterStart } from './store-sqlite-writer.js';

export { SQLITE_SCHEMA_VERSION } from './store-sqlite-schema.js';

/** A write waiting for its batch to commit. */
interface Queued {
  item: BatchItem;
  resolve(value: SendOutcome | number): void;
  reject(error: unknown): void;
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/** Batches posted to the thread and not answered yet: one commits while the next is queued there. */
const MAX_BATCHES_IN_FLIGHT = 2;

/** Counters of the group commit (bench and metrics read them). */
export interface SqliteBatchStats {
  /** Batches committed. */
  batches: number;
  /** Writes (sends + acks) in them. */
  writes: number;
  /** Batches that took the savepoint path (a write failed by itself). */
  retried: number;
}

/** The writer thread's entry: the compiled .js next to this file, or the .ts source through tsx. */
function spawnWriter(start: WriterStart): Worker {
  const here = import.meta.url;
  if (!here.endsWith('.ts')) return new Worker(new URL('./store-sqlite-writer.js', here), { workerData: start });
  // Sources run through tsx: register it in the thread too (a loader registered in code is
  // not inherited by worker threads), then load the .ts entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./store-sqlite-writer.ts', here).href;
  const boot = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(boot, { eval: true, workerData: start });
}

function fromWire(error: WireError): Error {
  if (error.name === 'MailboxFullError' && error.userID !== undefined) return new MailboxFullError(error.userID);
  const err = new Error(error.message);
  err.name = error.name;
  if (error.code !== undefined) Object.assign(err, { code: error.code });
  return err;
}

export class SqliteStore implements MessageStore {
  readonly kind = 'sqlite';
  readonly stats: SqliteBatchStats = { batches: 0, writes: 0, retried: 0 };
  /** Conversations (store-sqlite-conversations.ts), run by the writer thread in order with the batches. */
  readonly conversations: ConversationStore = conversationsOf((method, args) => this.call({ op: 'conv', method, args }));
  private closed = false;
  /** Why the thread stopped by itself (every call then fails with it). */
  private dead: Error | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Writes of the batch being gathered, in call order. */
  private queued: Queued[] = [];
  private inFlight = 0;
  /** Cancels the scheduled post of {@link queued} (an immediate, or a `maxWaitMs` timer). */
  private cancelFlush: (() => void) | undefined;
  /** Resolves when nothing is queued or in flight (close waits for it). */
  private drained: (() => void) | undefined;

  private constructor(
    private readonly worker: Worker | null,
    private readonly batch: StoreBatchOptions,
    /** `storeBatch.baseline`: the previous design, run on the main thread (benchmark baseline only). */
    private readonly inline: { writer: SqliteWriter; handle: (w: SqliteWriter, req: WriterRequest) => { ok: unknown; slow?: boolean } } | null = null,
  ) {
    if (!worker) return;
    worker.on('message', (reply: WriterReply) => this.onReply(reply));
    worker.on('error', (err) => this.fail(new StoreUnavailableError(`the sqlite writer thread failed: ${err.message}`)));
    worker.on('exit', (code) => {
      if (!this.closed || this.pending.size > 0) this.fail(new StoreUnavailableError(`the sqlite writer thread exited (code ${code})`));
    });
    worker.unref(); // referenced only while a call waits for it (see call)
  }

  /**
   * Start the writer thread, which opens (creating the file and its folder if needed) and
   * migrates. Fails when another process holds the file, or when the file was written by
   * a newer tabchat.
   * @param path - file path; `:memory:` gives a private in-memory database (tests)
   */
  static async open(path: string, batch: StoreBatchOptions = DEFAULT_STORE_BATCH, quota: MailboxQuota = NO_QUOTA): Promise<SqliteStore> {
    if (path.length === 0) throw new Error('store "sqlite:" needs a file path, e.g. "sqlite:./tabchat.db"');
    if (batch.baseline) {
      // The previous design: statements on the event loop, a savepoint per send, one transaction per ack.
      const [{ SqliteWriter, handle }, { openSqliteFile }] = await Promise.all([import('./store-sqlite-writer.js'), import('./store-sqlite-schema.js')]);
      return new SqliteStore(null, batch, { writer: new SqliteWriter(openSqliteFile(path), quota), handle });
    }
    const worker = spawnWriter({ tabchatSqliteWriter: true, path, quota: { ...quota } });
    const first = await new Promise<WriterReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`cannot open the sqlite store ${path}: the writer thread exited (code ${code})`)));
    });
    if ('failed' in first) {
      await worker.terminate();
      throw new Error(first.failed);
    }
    return new SqliteStore(worker, batch);
  }

  /** Queued for the next group commit; resolves once that commit is on disk. */
  send(input: NewMessage): Promise<SendOutcome> {
    return this.write({ kind: 'send', input }) as Promise<SendOutcome>;
  }

  /** Queued with the sends: one commit stores both. */
  async ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    if (this.inline) return (await this.call({ op: 'ack', sdkAppId, userID, seq })) as number;
    return (await this.write({ kind: 'ack', sdkAppId, userID, seq })) as number;
  }

  read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes = Infinity): Promise<MailboxPage> {
    return this.call({ op: 'read', sdkAppId, userID, afterSeq, limit, maxBytes }) as Promise<MailboxPage>;
  }

  async head(sdkAppId: number, userID: string): Promise<number> {
    return ((await this.call({ op: 'user', sdkAppId, userID })) as { head: number }).head;
  }

  async acked(sdkAppId: number, userID: string): Promise<number> {
    return ((await this.call({ op: 'user', sdkAppId, userID })) as { acked: number }).acked;
  }

  removeExpired(before: number, max: number): Promise<number> {
    return this.call({ op: 'removeExpired', before, max }) as Promise<number>;
  }

  /** Commits the writes still queued (they resolve), then closes the file and ends the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.dead) return;
    this.flush();
    if (this.queued.length > 0 || this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    if (this.dead) return;
    await this.post({ id: this.nextId++, op: 'close' }).catch(() => undefined);
    await this.worker?.terminate();
  }

  private write(item: BatchItem): Promise<SendOutcome | number> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.dead) return Promise.reject(this.dead);
    return new Promise((resolve, reject) => {
      this.queued.push({ item, resolve, reject });
      if (this.queued.length >= this.batch.maxMessages) this.flush();
      else if (this.cancelFlush === undefined) this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.batch.maxWaitMs > 0) {
      const timer = setTimeout(() => this.flush(), this.batch.maxWaitMs);
      this.cancelFlush = () => clearTimeout(timer);
    } else {
      const immediate = setImmediate(() => this.flush());
      this.cancelFlush = () => clearImmediate(immediate);
    }
  }

  /** Post the queued writes as batches of at most `maxMessages`, while fewer than {@link MAX_BATCHES_IN_FLIGHT} are in flight. */
  private flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    while (this.queued.length > 0 && this.inFlight < MAX_BATCHES_IN_FLIGHT && !this.dead) {
      const batch = this.queued.splice(0, this.batch.maxMessages);
      this.inFlight++;
      this.post({ id: this.nextId++, op: 'batch', items: batch.map((q) => q.item), ...(this.inline ? { savepoints: true } : {}) }).then(
        (results) => {
          (results as ItemResult[]).forEach((r, i) => ('error' in r ? batch[i]!.reject(fromWire(r.error)) : batch[i]!.resolve(r.ok)));
          this.stats.batches++;
          this.stats.writes += batch.length;
        },
        (error) => {
          for (const q of batch) q.reject(error);
        },
      ).finally(() => {
        this.inFlight--;
        // Writes that gathered during this commit go at once: they have waited a commit already.
        if (this.queued.length > 0) this.flush();
        else if (this.inFlight === 0) this.drained?.();
      });
    }
  }

  private call(req: DistributiveOmit<WriterRequest, 'id'>): Promise<unknown> {
    if (this.closed) return Promise.reject(new StoreClosedError());
    if (this.dead) return Promise.reject(this.dead);
    return this.post({ ...req, id: this.nextId++ } as WriterRequest);
  }

  private post(req: WriterRequest): Promise<unknown> {
    const inline = this.inline;
    if (inline) {
      try {
        return Promise.resolve(inline.handle(inline.writer, req).ok);
      } catch (err) {
        return Promise.reject(err);
      }
    }
    const worker = this.worker!;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) worker.ref();
      this.pending.set(req.id, { resolve, reject });
      worker.postMessage(req);
    });
  }

  private onReply(reply: WriterReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker?.unref();
    if ('error' in reply) pending.reject(fromWire(reply.error));
    else if ('ok' in reply) {
      if (reply.slow) this.stats.retried++;
      pending.resolve(reply.ok);
    }
  }

  /** The thread is gone: every waiting and later call fails. */
  private fail(error: Error): void {
    if (this.dead) return;
    this.dead = error;
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const q of this.queued.splice(0)) q.reject(error);
    this.drained?.();
  }
}

/** A {@link ConversationStore} whose every method is one request to the writer thread. */
function conversationsOf(call: (method: keyof ConversationStore, args: unknown[]) => Promise<unknown>): ConversationStore {
  const via =
    <K extends keyof ConversationStore>(method: K) =>
    (...args: Parameters<ConversationStore[K]>) =>
      call(method, args) as ReturnType<ConversationStore[K]>;
  return {
    list: via('list'),
    get: via('get'),
    total: via('total'),
    history: via('history'),
    locate: via('locate'),
    markRead: via('markRead'),
    setPeerRead: via('setPeerRead'),
    remove: via('remove'),
  };
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
