/**
 * The engine's sends (docs/protocol.md "Messages"): `send()` records the message in the
 * outbox, then sends it when the connection is open, paced to `framesPerSecond` (a token
 * bucket), and sends it again after a reconnect or a retryable refusal until the server
 * acknowledges it; the server's idempotency on `clientMsgId` makes that exactly once.
 * When an instance of a user logs in, is taken over or is restored, the user's outbox
 * entries that no queue of the engine holds are adopted and sent.
 */
import { CODE, codeText } from '../protocol/codes.js';
import type { Logger, OutgoingText } from '../protocol/data.js';
import { LIMITS, encodeFrame, isWireMessage, textMessageError, utf8ByteLength, type ClientFrame, type WireMessage } from '../protocol/frames.js';
import { ChatError, asChatError } from './errors.js';
import { Instance, type InstanceView } from './instance.js';
import type { QueuedSend, SendWaiter } from './send-queue.js';
import type { ServerLink } from './server-link.js';
import type { Outbox, OutboxEntry, SessionHandle } from './types.js';

/** Delay before a send refused with a retryable code goes out again, in ms. */
const SEND_RETRY_DELAY_MS = 1_000;
/** Longest delay between re-sends refused with 9030/9031 (the backoff doubles up to it), in ms. */
const SEND_BACKOFF_MAX_MS = 15_000;
/** Refusals that mean "the server's engine or store is down": back off (with jitter) instead of a fixed delay. */
const BACKOFF_SEND_CODES: ReadonlySet<number> = new Set([CODE.ENGINE_UNAVAILABLE, CODE.STORE_UNAVAILABLE]);
/**
 * Send failures that are worth another try (on the next connection, or after a delay);
 * any other code fails the send for good. 2024/9004: the server does not see the instance
 * on this connection yet (a restore is under way). 9030/9031: the cluster engine or the
 * store is down for a while; the same clientMsgId is sent again until the send timeout.
 */
const RETRYABLE_SEND_CODES: ReadonlySet<number> = new Set([
  CODE.NETWORK_ERROR,
  CODE.NETWORK_TIMEOUT,
  CODE.USER_NOT_LOGGED_IN,
  CODE.UNKNOWN_INSTANCE,
  CODE.HELLO_REQUIRED,
  CODE.FRAME_RATE_LIMITED,
  CODE.SERVER_SHUTTING_DOWN,
  CODE.SERVER_INTERNAL,
  CODE.ENGINE_UNAVAILABLE,
  CODE.STORE_UNAVAILABLE,
]);

/** What the sender uses of the engine's link to the server. */
export type SenderLink = Pick<ServerLink, 'state' | 'isOpen' | 'request'>;

export interface SenderOptions {
  outbox: Outbox;
  sendTimeoutMs: number;
  framesPerSecond: number;
  maxFrameBytes: number;
  log: Logger;
  /** The server stored a message the instance sent (its seq in the instance's mailbox is now known). */
  stored(instance: Instance, message: WireMessage): void;
}

/** UTF-8 size of the `send` frame of a message (with the largest id and instId), as the server's maxPayload counts it. */
function sendFrameBytes(message: { clientMsgId: string; to: string; text: string }): number {
  const frame: ClientFrame = {
    type: 'send',
    id: LIMITS.maxRequestId,
    instId: Number.MAX_SAFE_INTEGER,
    clientMsgId: message.clientMsgId,
    to: message.to,
    text: message.text,
  };
  return utf8ByteLength(encodeFrame(frame));
}

/** The sends of one engine's instances; see the module comment. */
export class Sender {
  private readonly outbox: Outbox;
  private readonly log: Logger;
  /** Token bucket pacing message frames. */
  private tokens: number;
  private tokensAt = Date.now();
  /** Pending {@link flush} (waiting for a token, or a retry delay). */
  private flushTimer: ReturnType<typeof setTimeout> | undefined;
  /** 9030/9031 refusals since the last acknowledged send (the backoff's exponent). */
  private refusals = 0;
  /** Sends on their way (transmitted, not answered). */
  private inFlight = 0;

  constructor(
    private readonly link: SenderLink,
    private readonly instances: InstanceView,
    private readonly options: SenderOptions,
  ) {
    this.outbox = options.outbox;
    this.log = options.log;
    this.tokens = options.framesPerSecond;
  }

  /** See `SessionEngineApi.send`. */
  async send(handle: SessionHandle, message: OutgoingText, options: { timeoutMs?: number } = {}): Promise<WireMessage> {
    if (this.link.state === 'closed') throw new ChatError(CODE.DESTROYED, 'the session engine is closed');
    if (!(handle instanceof Instance) || !this.instances.owns(handle)) throw new ChatError(CODE.USER_NOT_LOGGED_IN, 'this instance is not logged in');
    const instance = handle;
    const clientMsgId: unknown = message.clientMsgId;
    if (typeof clientMsgId !== 'string' || clientMsgId.length === 0 || clientMsgId.length > LIMITS.maxClientMsgIdLength) {
      throw new ChatError(CODE.INVALID_PARAMETER, `clientMsgId must be a string of 1..${LIMITS.maxClientMsgIdLength} characters`);
    }
    const refused = textMessageError(message.to, message.text);
    if (refused) throw new ChatError(refused.code, refused.message);
    const timeoutMs = options.timeoutMs ?? this.options.sendTimeoutMs;
    return new Promise<WireMessage>((resolve, reject) => {
      let item: QueuedSend | null = null;
      let timedOut = false;
      const waiter: SendWaiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          timedOut = true;
          item?.waiters.delete(waiter);
          reject(
            new ChatError(CODE.MSG_SEND_TIMEOUT, `message ${clientMsgId} not acknowledged within ${timeoutMs} ms; it stays queued and is sent when the connection allows`, {
              clientMsgId,
            }),
          );
        }, timeoutMs),
      };
      this.enqueue(instance, { clientMsgId, to: message.to, text: message.text }).then(
        (queued) => {
          if (timedOut) return;
          item = queued;
          queued.waiters.add(waiter);
          this.flush();
        },
        (err: unknown) => {
          clearTimeout(waiter.timer);
          reject(asChatError(err));
        },
      );
    });
  }

  /** See `SessionEngineApi.cancelSend`. */
  cancel(instance: Instance, clientMsgId: string): boolean {
    const item = instance.queue.get(clientMsgId);
    if (!item || item.inFlight) return false;
    this.failSend(instance, item, new ChatError(CODE.MSG_CANCELLED, `message ${clientMsgId} was cancelled before it was sent`));
    return true;
  }

  /**
   * Send every queued message that is not on its way, paced by the frame budget. While the
   * server refuses with 9030/9031, one probe per backoff round instead: the oldest queued
   * message, once the round's timer fired and nothing is on its way; its success sends the rest.
   */
  flush(): void {
    if (!this.link.isOpen) return;
    if (this.refusals > 0) {
      if (this.flushTimer === undefined && this.inFlight === 0) this.probe();
      return;
    }
    for (const instance of this.instances.all()) {
      if (instance.state !== 'attached') continue;
      for (let item = instance.queue.peek(); item !== undefined; item = instance.queue.peek()) {
        if (!this.takeToken()) {
          this.scheduleFlush(Math.ceil(1000 / this.options.framesPerSecond));
          return;
        }
        instance.queue.take();
        this.transmit(instance, item);
      }
    }
  }

  private probe(): void {
    for (const instance of this.instances.all()) {
      if (instance.state !== 'attached') continue;
      const item = instance.queue.peek();
      if (item === undefined) continue;
      if (!this.takeToken()) {
        this.scheduleFlush(Math.ceil(1000 / this.options.framesPerSecond));
        return;
      }
      instance.queue.take();
      this.transmit(instance, item);
      return;
    }
  }

  /**
   * A message of the instance's own came back through its mailbox: if it still waits in
   * the queue (stored, but its answer was lost with a connection), settle it; whether it did.
   */
  settleQueued(instance: Instance, message: WireMessage): boolean {
    const item = message.clientMsgId === undefined ? undefined : instance.queue.get(message.clientMsgId);
    if (!item) return false;
    this.completeSend(instance, item, message);
    return true;
  }

  /** The instance is gone: fail its queued sends with `error`; delete their outbox entries unless `keepEntries`. */
  dropQueue(instance: Instance, error: ChatError, keepEntries: boolean): void {
    for (const item of instance.queue.values()) this.failSend(instance, item, error, keepEntries);
  }

  /**
   * The server closed with 1009: a frame was over its `maxPayloadBytes`. The culprit is the
   * largest send on its way; fail it with 80002 rather than re-sending it after every
   * reconnect.
   */
  dropOversized(): void {
    let worst: { instance: Instance; item: QueuedSend } | null = null;
    for (const instance of this.instances.all()) {
      for (const item of instance.queue.values()) {
        if (item.inFlight && (worst === null || item.frameBytes > worst.item.frameBytes)) worst = { instance, item };
      }
    }
    if (worst === null) return;
    const { instance, item } = worst;
    item.inFlight = false;
    this.log.warn(`the server refused a frame as too big (1009); failing message ${item.entry.clientMsgId} (${item.frameBytes} bytes)`);
    this.failSend(instance, item, new ChatError(CODE.MSG_TOO_LONG, `the server closed the connection on a ${item.frameBytes}-byte frame (1009): the message is too big for it`));
  }

  /**
   * Queue the user's outbox entries no queue of this engine holds (left by an earlier engine,
   * or by an instance of the user that logged out with `keepQueued`), oldest first.
   */
  async adopt(instance: Instance): Promise<void> {
    let entries: OutboxEntry[];
    try {
      entries = await this.outbox.list(instance.sdkAppId, instance.userID);
    } catch (err) {
      this.log.warn(`outbox: could not list the queued messages of ${instance.userID}:`, asChatError(err).message);
      return;
    }
    if (!this.instances.owns(instance) || entries.length === 0) return;
    const adopted: Array<{ entry: OutboxEntry; frameBytes: number }> = [];
    for (const entry of [...entries].sort((a, b) => a.queuedAt - b.queuedAt)) {
      if (this.isQueued(entry.clientMsgId)) continue;
      const frameBytes = sendFrameBytes(entry);
      if (textMessageError(entry.to, entry.text) || frameBytes > this.options.maxFrameBytes) {
        this.log.warn(`outbox: dropping unsendable entry ${entry.clientMsgId}`);
        this.outboxDelete(entry.clientMsgId);
        continue;
      }
      adopted.push({ entry, frameBytes });
    }
    if (adopted.length === 0) return;
    instance.queue.prepend(adopted);
    this.log.info(`outbox: sending ${adopted.length} message(s) of ${instance.userID} queued by an earlier session`);
    this.flush();
  }

  /** The engine closes: no more flushes. */
  stop(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
  }

  /** The queued send of this clientMsgId (an existing one, or a new one recorded in the outbox first). */
  private async enqueue(instance: Instance, message: OutgoingText): Promise<QueuedSend> {
    const find = () => instance.queue.get(message.clientMsgId);
    const existing = find();
    if (existing) return existing;
    const frameBytes = sendFrameBytes(message);
    if (frameBytes > this.options.maxFrameBytes) {
      throw new ChatError(CODE.MSG_TOO_LONG, `the message's frame would be ${frameBytes} bytes; the server accepts frames of ${this.options.maxFrameBytes} bytes`);
    }
    const entry: OutboxEntry = { ...message, sdkAppId: instance.sdkAppId, from: instance.userID, queuedAt: Date.now() };
    try {
      await this.outbox.put(entry);
    } catch (err) {
      throw new ChatError(CODE.OUTBOX_ERROR, `${codeText(CODE.OUTBOX_ERROR)}: ${asChatError(err).message}`);
    }
    if (!this.instances.owns(instance)) {
      this.outboxDelete(entry.clientMsgId);
      throw new ChatError(CODE.MSG_CANCELLED, 'the session ended before the message was queued');
    }
    const again = find(); // the same id sent twice while the outbox wrote
    if (again) return again;
    return instance.queue.append(entry, frameBytes);
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer !== undefined) return;
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.flush();
    }, delayMs);
  }

  /** Token bucket of `framesPerSecond` (burst: one second's worth). */
  private takeToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.options.framesPerSecond, this.tokens + ((now - this.tokensAt) / 1000) * this.options.framesPerSecond);
    this.tokensAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private transmit(instance: Instance, item: QueuedSend): void {
    item.inFlight = true;
    this.inFlight++;
    const { entry } = item;
    const instId = instance.instId;
    this.link.request((id) => ({ type: 'send', id, instId, clientMsgId: entry.clientMsgId, to: entry.to, text: entry.text }))
      .then((data) => {
        const message = (data as { message?: unknown } | null)?.message;
        if (!isWireMessage(message)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed send result from the server');
        item.inFlight = false;
        this.inFlight--;
        const recovered = this.refusals > 0;
        this.refusals = 0;
        if (instance.queue.holds(item)) this.completeSend(instance, item, message);
        else if (!this.isQueued(entry.clientMsgId)) this.outboxDelete(entry.clientMsgId); // stored after its instance left
        if (this.instances.owns(instance)) this.options.stored(instance, message);
        if (recovered) this.flush(); // the probe went through: the rest follows
      })
      .catch((err: unknown) => {
        this.inFlight--;
        this.sendFailed(instance, item, asChatError(err));
      });
  }

  private sendFailed(instance: Instance, item: QueuedSend, error: ChatError): void {
    item.inFlight = false;
    if (!instance.queue.holds(item) || !this.instances.owns(instance)) return;
    if (RETRYABLE_SEND_CODES.has(error.code)) {
      instance.queue.requeue(item);
      // A closed socket: sent again once the instance is restored on the next connection.
      if (BACKOFF_SEND_CODES.has(error.code)) {
        // The server's store or engine is down: every client re-sending each second would be
        // a retry storm. Double the delay per refusal (1 s, 2 s, 4 s… 15 s), half of it random.
        // One step per retry round, however many queued sends the round had refused.
        const step = this.flushTimer === undefined ? this.refusals++ : this.refusals;
        const cap = Math.min(SEND_BACKOFF_MAX_MS, SEND_RETRY_DELAY_MS * 2 ** Math.min(step, 10));
        this.scheduleFlush(cap / 2 + Math.random() * (cap / 2));
      } else if (error.code !== CODE.NETWORK_ERROR || this.link.state === 'open') this.scheduleFlush(SEND_RETRY_DELAY_MS);
      this.log.debug(`send of ${item.entry.clientMsgId} will be retried: ${error.code} ${error.message}`);
      return;
    }
    this.failSend(instance, item, error);
    if (this.refusals > 0) this.flush(); // a probe that failed for good: the next one goes now
  }

  /** The server stored the message: settle its waiters and forget it. */
  private completeSend(instance: Instance, item: QueuedSend, message: WireMessage): void {
    this.removeQueued(instance, item, true);
    for (const waiter of item.waiters) {
      clearTimeout(waiter.timer);
      waiter.resolve(message);
    }
    item.waiters.clear();
  }

  /** The message will not be sent: reject its waiters; delete its outbox entry unless `keepEntry`. */
  private failSend(instance: Instance, item: QueuedSend, error: ChatError, keepEntry = false): void {
    this.removeQueued(instance, item, !keepEntry);
    const failure = item.inFlight ? new ChatError(error.code, `${error.message} (it was already on its way and may have been stored)`, { ...error.data, inFlight: true }) : error;
    for (const waiter of item.waiters) {
      clearTimeout(waiter.timer);
      waiter.reject(failure);
    }
    item.waiters.clear();
  }

  private removeQueued(instance: Instance, item: QueuedSend, deleteEntry: boolean): void {
    instance.queue.remove(item);
    if (deleteEntry) this.outboxDelete(item.entry.clientMsgId);
  }

  private outboxDelete(clientMsgId: string): void {
    this.outbox.delete(clientMsgId).catch((err: unknown) => this.log.warn(`outbox: could not delete ${clientMsgId}:`, asChatError(err).message));
  }

  /** Whether a queue of this engine holds the message. */
  private isQueued(clientMsgId: string): boolean {
    for (const instance of this.instances.all()) {
      if (instance.queue.get(clientMsgId) !== undefined) return true;
    }
    return false;
  }
}
