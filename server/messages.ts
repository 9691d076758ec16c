/**
 * C2C text messages on the server: validate, store (the sender's ack waits for it), push to
 * every online instance of the recipient and to the sender's other instances, serve `sync`
 * pages and record `ack`s. See docs/protocol.md "Messages".
 */
import { randomFillSync } from 'node:crypto';
import { CODE, codeText } from '../src/protocol/codes.js';
import {
  LIMITS,
  USERID_RULE,
  isUserID,
  textMessageError,
  type MessageFlow,
  type SyncResultData,
  type WireMessage,
} from '../src/protocol/frames.js';
import type { InstanceEngine } from './engine.js';
import type { Logger } from './log.js';
import type { Metrics } from './metrics.js';
import { userKey, type Instance } from './registry.js';
import type { MailboxConfig } from './config.js';
import { MailboxFullError, StoreClosedError, StoreUnavailableError, type MessageStore, type StoredMessage } from './store.js';

/** Messages one retention step deletes (one transaction); the sweep yields between steps. */
const RETENTION_BATCH = 500;
/** How often the retention sweep runs at most (and at least every tenth of the retention). */
const RETENTION_EVERY_MS = 60_000;

/** A sync page stops growing past this many bytes of text (it always holds at least one message). */
export const SYNC_PAGE_BYTES = 256 * 1024;

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));
/** Random bytes for ids, refilled 4 KiB at a time (as `randomUUID` buffers its own). */
const randomPool = new Uint8Array(4096);
let randomAt = randomPool.length;
let idMs = 0;
let idCounter = 0;

/**
 * A new message id: a UUID version 7 (RFC 9562) — 48-bit ms timestamp, a 12-bit counter
 * within the millisecond (RFC 9562 §6.2 method 1), 62 random bits — so the ids one process
 * hands out only increase. Stores index messages by id: increasing ids land on the last
 * page of that index instead of a random one (fewer pages written per sqlite commit).
 */
export function newMessageId(now: number = Date.now()): string {
  if (now > idMs) {
    idMs = now;
    idCounter = 0;
  } else if (++idCounter > 0xfff) {
    idMs++; // 4,096 ids in one ms (or the clock went back): borrow from the next ms
    idCounter = 0;
  }
  if (randomAt + 8 > randomPool.length) {
    randomFillSync(randomPool);
    randomAt = 0;
  }
  const r = randomPool.subarray(randomAt, (randomAt += 8));
  const ms = idMs.toString(16).padStart(12, '0');
  const tail = HEX[r[2]!]! + HEX[r[3]!]! + HEX[r[4]!]! + HEX[r[5]!]! + HEX[r[6]!]! + HEX[r[7]!]!;
  return `${ms.slice(0, 8)}-${ms.slice(8)}-7${idCounter.toString(16).padStart(3, '0')}-${HEX[(r[0]! & 0x3f) | 0x80]}${HEX[r[1]!]}-${tail}`;
}

/** A refused message operation, with the code the client gets. */
export class MessageError extends Error {
  override name = 'MessageError';
  constructor(
    readonly code: number,
    message: string = codeText(code),
  ) {
    super(message);
  }
}

/** The message as one mailbox holds it: seq and flow of that mailbox. */
export function toWire(message: StoredMessage, flow: MessageFlow): WireMessage {
  const wire: WireMessage = {
    id: message.id,
    seq: flow === 'out' ? message.fromSeq : message.toSeq,
    flow,
    from: message.from,
    to: message.to,
    text: message.text,
    time: message.time,
  };
  if (flow === 'out') wire.clientMsgId = message.clientMsgId;
  return wire;
}

/** Sends answered 9031 whose outcome this node does not know, remembered at most (oldest dropped first). */
const MAX_UNCERTAIN_SENDS = 10_000;

export class MessageService {
  private readonly retentionTimer: NodeJS.Timeout | undefined;
  private sweeping = false;
  /** (app, sender, clientMsgId) of sends answered 9031: a retry found stored is pushed. Bounded. */
  private readonly uncertain = new Set<string>();

  constructor(
    private readonly store: MessageStore,
    private readonly engine: InstanceEngine,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly mailbox?: MailboxConfig,
  ) {
    const retentionMs = (mailbox?.retentionSeconds ?? 0) * 1000;
    if (retentionMs > 0) {
      this.retentionTimer = setInterval(() => void this.sweepExpired(), Math.max(1_000, Math.min(RETENTION_EVERY_MS, retentionMs / 10)));
      this.retentionTimer.unref();
    }
  }

  /**
   * Retention: delete the messages older than `mailbox.retentionSeconds`, one batch (one
   * transaction, through the store's time index) at a time, yielding between batches.
   * Resolves with how many were deleted. Runs by itself on a timer; exposed for tests.
   */
  async sweepExpired(now = Date.now()): Promise<number> {
    const retentionMs = (this.mailbox?.retentionSeconds ?? 0) * 1000;
    if (retentionMs <= 0 || this.sweeping) return 0;
    this.sweeping = true;
    let total = 0;
    try {
      for (;;) {
        const removed = await this.store.removeExpired(now - retentionMs, RETENTION_BATCH);
        total += removed;
        if (removed > 0) this.metrics.messagesExpired.inc({ why: 'retention' }, removed);
        if (removed < RETENTION_BATCH) break;
        await new Promise((resolve) => setImmediate(resolve));
      }
    } catch (err) {
      if (!(err instanceof StoreClosedError)) this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'retention sweep failed; retried at the next one');
    } finally {
      this.sweeping = false;
    }
    if (total > 0) this.log.info({ removed: total }, 'expired messages deleted');
    return total;
  }

  private noteUncertain(key: string): void {
    this.uncertain.delete(key);
    this.uncertain.add(key);
    if (this.uncertain.size > MAX_UNCERTAIN_SENDS) this.uncertain.delete(this.uncertain.values().next().value as string);
  }

  /** Stop the retention timer (server close). */
  close(): void {
    if (this.retentionTimer) clearInterval(this.retentionTimer);
  }

  /**
   * Store a message from `sender` and deliver it; resolves with the sender's view (flow
   * `out`). A retry of a stored (sender, clientMsgId) resolves with the same message and
   * delivers nothing, unless an attempt of it failed with 9031 on this node: that attempt
   * may have committed without a push, so the retry pushes it (delivery made certain). Rejects with a {@link MessageError} (9020, 9021, 80002, 9007, 9099).
   */
  async send(sender: Instance, input: { clientMsgId: string; to: string; text: string }): Promise<WireMessage> {
    if (!isUserID(input.to)) throw new MessageError(CODE.MSG_INVALID_RECIPIENT, `to must be a userID: ${USERID_RULE}`);
    const refused = textMessageError(input.to, input.text);
    if (refused) throw new MessageError(refused.code, refused.message);
    const { message, created } = await this.timed('send', () =>
      this.store.send({
        id: newMessageId(),
        sdkAppId: sender.sdkAppId,
        from: sender.userID,
        to: input.to,
        clientMsgId: input.clientMsgId,
        text: input.text,
        time: Date.now(),
      }),
    ).catch((err: unknown) => {
      if (err instanceof MessageError && err.code === CODE.STORE_UNAVAILABLE) this.noteUncertain(`${sender.sdkAppId}\n${sender.userID}\n${input.clientMsgId}`);
      throw err;
    });
    const key = `${sender.sdkAppId}\n${sender.userID}\n${input.clientMsgId}`;
    if (created) {
      this.metrics.messagesStored.inc();
      this.uncertain.delete(key);
      this.deliver(sender, message);
    } else {
      this.metrics.messagesDuplicate.inc();
      // An earlier attempt failed with 9031 here but may have committed after its store call
      // gave up (a stalled database): then nobody pushed it. Push it now; clients drop a
      // message they already have (same seq). Other duplicates were pushed when stored.
      const unsure = this.uncertain.delete(key);
      if (unsure) this.deliver(sender, message);
      this.log.debug({ instId: sender.instId, clientMsgId: input.clientMsgId, id: message.id, pushed: unsure }, 'duplicate send answered with the stored message');
    }
    return toWire(message, 'out');
  }

  /**
   * A page of the instance's mailbox after `afterSeq` (default: the instance's position),
   * at most `limit` messages and about {@link SYNC_PAGE_BYTES} of text.
   */
  async sync(inst: Instance, afterSeq: number | undefined, limit: number = LIMITS.defaultSyncLimit): Promise<SyncResultData> {
    const from = afterSeq ?? inst.ackedSeq;
    // The store reads only what fits the byte budget (never `limit` big rows to trim here).
    const page = await this.timed('read', () => this.store.read(inst.sdkAppId, inst.userID, from, limit, SYNC_PAGE_BYTES));
    const messages = page.entries.map((entry) => toWire(entry.message, entry.flow));
    if (messages.length > 0) this.metrics.messagesDelivered.inc({ via: 'sync' }, messages.length);
    return { afterSeq: from, messages, more: page.more, head: page.head };
  }

  /** Record that `inst` processed its mailbox up to `seq` (clamped to the mailbox head). */
  async ack(inst: Instance, seq: number): Promise<void> {
    const recorded = await this.timed('ack', () => this.store.ack(inst.sdkAppId, inst.userID, seq));
    inst.ackedSeq = Math.max(inst.ackedSeq, recorded);
  }

  /** Where a new login of the user starts: the highest seq any instance of the user acknowledged. */
  startPosition(sdkAppId: number, userID: string): Promise<number> {
    return this.timed('position', () => this.store.acked(sdkAppId, userID));
  }

  /**
   * Push to the recipient's online instances (flow `in`) and the sender's other ones (flow
   * `out`), on every node (the engine routes to other nodes). Detached instances catch up
   * with `sync` when they resume.
   */
  private deliver(sender: Instance, message: StoredMessage): void {
    let pushed = 0;
    if (message.to !== message.from) pushed += this.engine.deliver(message.sdkAppId, message.to, toWire(message, 'in'));
    pushed += this.engine.deliver(message.sdkAppId, message.from, toWire(message, 'out'), sender);
    if (pushed > 0) this.metrics.messagesDelivered.inc({ via: 'push' }, pushed);
  }

  /**
   * Pushes to these (connected, local) instances may have been lost (the cluster's PUB/SUB
   * was cut): push each the newest entry of its mailbox when it is beyond the instance's
   * acknowledged position. The client treats it as any push: a gap starts its `sync`, a
   * message it already has is dropped. Best effort; failures only leave the delay.
   */
  async resync(instances: Instance[]): Promise<void> {
    const byUser = new Map<string, Instance[]>();
    for (const inst of instances) {
      const key = userKey(inst.sdkAppId, inst.userID);
      const list = byUser.get(key);
      if (list) list.push(inst);
      else byUser.set(key, [inst]);
    }
    for (const list of byUser.values()) {
      const { sdkAppId, userID } = list[0]!;
      try {
        const head = await this.store.head(sdkAppId, userID);
        const behind = list.filter((i) => i.ackedSeq < head && i.owner?.deliverMessage);
        if (head === 0 || behind.length === 0) continue;
        const [entry] = (await this.store.read(sdkAppId, userID, head - 1, 1)).entries;
        if (!entry) continue;
        const wire = toWire(entry.message, entry.flow);
        for (const inst of behind) inst.owner?.deliverMessage?.(inst.instId, wire);
        this.metrics.messagesDelivered.inc({ via: 'push' }, behind.length);
      } catch (err) {
        this.log.debug({ userID, err: err instanceof Error ? err.message : String(err) }, 'resync push failed');
      }
    }
  }

  /** Whether the last store call reached the store (readiness, gauge `tabchat_store_available`). */
  get storeAvailable(): boolean {
    return this.storeUp;
  }

  private storeUp = true;

  private setStoreUp(up: boolean, err?: string): void {
    if (this.storeUp === up) return;
    this.storeUp = up;
    this.metrics.storeAvailable.set(up ? 1 : 0);
    if (up) this.log.info('message store reachable again');
    else this.log.warn({ err }, 'message store unavailable: sends, logins and syncs fail with 9031 until it answers');
  }

  /** Run a store call, time it, and turn store failures into coded errors. */
  private async timed<T>(op: string, fn: () => Promise<T>): Promise<T> {
    const started = performance.now();
    try {
      const result = await fn();
      this.setStoreUp(true);
      return result;
    } catch (err) {
      if (err instanceof StoreClosedError) throw new MessageError(CODE.SERVER_SHUTTING_DOWN);
      if (err instanceof MailboxFullError) throw new MessageError(CODE.MAILBOX_FULL, `${err.message} (mailbox quota)`);
      if (err instanceof StoreUnavailableError) {
        // One warning per outage (a retry storm must not flood the log); each refusal is counted.
        this.setStoreUp(false, err.message);
        this.log.debug({ op, err: err.message }, 'message store unavailable');
        throw new MessageError(CODE.STORE_UNAVAILABLE, `the message store is unavailable (${op}); retry later with the same clientMsgId (a send may have been stored: the retry returns it, once)`);
      }
      this.log.error({ op, err: err instanceof Error ? err.stack : String(err) }, 'message store failed');
      throw new MessageError(CODE.SERVER_INTERNAL, `message store failed (${op}); retry`);
    } finally {
      this.metrics.storeDuration.observe({ op }, (performance.now() - started) / 1000);
    }
  }
}
