/**
 * Each instance's mailbox as the engine reads it (docs/protocol.md "Messages"): the
 * instance's position (`lastSeq`) is the highest seq it processed. A pushed message with
 * seq <= lastSeq is dropped, seq = lastSeq + 1 is delivered, a larger seq means a gap and
 * triggers a `sync` from lastSeq, which also runs after every login, resume and re-login.
 * Pushes that arrive during a sync wait in the instance's buffer and are applied in order
 * once the gap is filled. The instance's own sends fill their seqs without being reported
 * (unless the host asked with `reportOwn`). Processed positions are acknowledged (`ack`),
 * one per burst.
 */
import { CODE } from '../protocol/codes.js';
import type { Logger } from '../protocol/data.js';
import { isSyncResultData, type MsgFrame, type WireMessage } from '../protocol/frames.js';
import { ChatError, asChatError } from './errors.js';
import type { Instance, InstanceView } from './instance.js';
import { safely } from './log.js';
import type { ServerLink } from './server-link.js';

/** Messages asked for per `sync` page. */
const SYNC_PAGE_SIZE = 200;
/** Pushed messages held per instance while a gap is being filled; beyond this they are dropped (the sync brings them). */
const MAX_BUFFERED = 10_000;

/** What the mailbox uses of the engine's link to the server. */
export type MailboxLink = Pick<ServerLink, 'state' | 'request' | 'post'>;

export interface MailboxOptions {
  /** Delay before processed positions are acknowledged. */
  ackDelayMs: number;
  /** Delay before the next try after `failures` failed syncs in a row. */
  backoff: (failures: number) => number;
  log: Logger;
  /**
   * A message of the instance's own (flow `out`) came through the mailbox: if it is still
   * in the instance's send queue (stored, but its answer was lost with a connection), settle
   * it there and say true.
   */
  settleQueued(instance: Instance, message: WireMessage): boolean;
  /** Every message the position moved over, in order (own sends included): the conversation cache. */
  applied?(instance: Instance, messages: WireMessage[]): void;
}

/** The mailboxes of one engine's instances; see the module comment. */
export class Mailbox {
  private readonly log: Logger;

  constructor(
    private readonly link: MailboxLink,
    private readonly instances: InstanceView,
    private readonly options: MailboxOptions,
  ) {
    this.log = options.log;
  }

  /** A `msg` push from the server. */
  received(frame: MsgFrame): void {
    const instance = this.instances.find(frame.instId);
    if (!instance) {
      this.log.debug(`message for unknown instance ${frame.instId} dropped`);
      return;
    }
    if (!instance.events.onMessages) return; // nobody takes messages: they wait on the server
    const message = frame.message;
    const last = instance.lastSeq;
    if (last !== null && message.seq <= last) return; // already processed
    if (last !== null && !instance.syncing && message.seq === last + 1 && instance.buffered.size === 0) {
      this.apply(instance, [message]);
      return;
    }
    // A gap, or a sync is filling one: hold it, applied in order when the gap is filled.
    if (instance.buffered.size < MAX_BUFFERED) instance.buffered.set(message.seq, message);
    if (!instance.syncing) this.startSync(instance);
  }

  /** Read the mailbox from the instance's position until it is caught up (one loop at a time). */
  startSync(instance: Instance): void {
    clearTimeout(instance.syncRetryTimer);
    instance.syncRetryTimer = undefined;
    if (instance.syncing) {
      instance.resyncWanted = true;
      return;
    }
    if (instance.state !== 'attached' || this.link.state !== 'open') return; // runs again when restored
    if (!instance.events.onMessages) return; // nobody takes messages: never read nor acknowledge them
    instance.syncing = true;
    instance.resyncWanted = false;
    void this.syncLoop(instance);
  }

  /** The server stored a message this instance sent: its seq in our mailbox is known and never reported. */
  noteOwn(instance: Instance, message: WireMessage): void {
    if (!instance.events.onMessages) return; // this instance does not track its mailbox
    const last = instance.lastSeq;
    if (last !== null && message.seq <= last) return;
    instance.own.set(message.seq, message);
    if (last === null || instance.syncing) return; // the running sync accounts for it
    if (message.seq === last + 1) {
      this.apply(instance, []); // moves over it (and reports it with `reportOwn`)
      this.applyBuffered(instance);
      return;
    }
    this.startSync(instance); // messages between lastSeq and this seq did not reach us
  }

  /** Send the position now if it moved since the last ack (not attached: acknowledged after the restore's sync). */
  ackNow(instance: Instance): void {
    clearTimeout(instance.ackTimer);
    instance.ackTimer = undefined;
    const seq = instance.lastSeq ?? 0;
    if (seq <= instance.ackedSeq || instance.state !== 'attached') return;
    if (this.link.post({ type: 'ack', instId: instance.instId, seq })) instance.ackedSeq = seq;
  }

  /** The instance is gone (or the engine closes): stop its timers, drop what it held. */
  forget(instance: Instance): void {
    clearTimeout(instance.syncRetryTimer);
    clearTimeout(instance.ackTimer);
    instance.syncRetryTimer = undefined;
    instance.ackTimer = undefined;
    instance.own.clear();
    instance.buffered.clear();
  }

  private async syncLoop(instance: Instance): Promise<void> {
    try {
      for (;;) {
        const after = instance.lastSeq;
        const instId = instance.instId;
        const data = await this.link.request((id) =>
          after === null ? { type: 'sync', id, instId, limit: SYNC_PAGE_SIZE } : { type: 'sync', id, instId, afterSeq: after, limit: SYNC_PAGE_SIZE },
        );
        if (!isSyncResultData(data)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed sync result from the server');
        if (!this.instances.owns(instance)) return;
        if (data.afterSeq > data.head) {
          this.log.warn(`the server's mailbox of ${instance.userID} ends at seq ${data.head}, before our position ${data.afterSeq} (its store was reset): reading it from the start`);
          instance.lastSeq = 0;
          instance.ackedSeq = 0;
          instance.own.clear();
          instance.buffered.clear();
          continue;
        }
        if (instance.lastSeq === null) instance.lastSeq = data.afterSeq;
        this.apply(instance, data.messages);
        if (data.more && data.messages.length > 0) continue;
        // Pushes and own sends that came during the sync, if they continue without a gap.
        this.applyBuffered(instance);
        if (instance.resyncWanted || instance.buffered.size > 0 || this.ownGap(instance)) {
          instance.resyncWanted = false;
          continue;
        }
        break;
      }
      instance.syncFailures = 0;
      this.scheduleAck(instance);
    } catch (err) {
      const error = asChatError(err);
      // A closed socket: the restore on the next connection syncs again.
      if (this.instances.owns(instance) && error.code !== CODE.NETWORK_ERROR) {
        const delay = this.options.backoff(instance.syncFailures++);
        this.log.warn(`sync of instance ${instance.instId} failed (${error.code} ${error.message}); retrying in ${Math.round(delay)} ms`);
        instance.syncRetryTimer = setTimeout(() => {
          instance.syncRetryTimer = undefined;
          if (this.instances.owns(instance)) this.startSync(instance);
        }, delay);
      }
    } finally {
      instance.syncing = false;
    }
  }

  /** Own sends known beyond lastSeq + 1 mean messages in between were missed. */
  private ownGap(instance: Instance): boolean {
    const last = instance.lastSeq ?? 0;
    for (const seq of instance.own.keys()) if (seq > last + 1) return true;
    return false;
  }

  /** Apply held pushes that continue from lastSeq; drop those at or below it. */
  private applyBuffered(instance: Instance): void {
    if (instance.buffered.size === 0) return;
    const ready: WireMessage[] = [];
    let next = (instance.lastSeq ?? 0) + 1;
    for (;;) {
      const own = instance.own.get(next);
      const message = instance.buffered.get(next);
      if (message) ready.push(message);
      else if (own === undefined) break;
      next++;
    }
    if (ready.length > 0) this.apply(instance, ready);
    const last = instance.lastSeq ?? 0;
    for (const seq of instance.buffered.keys()) if (seq <= last) instance.buffered.delete(seq);
  }

  /**
   * Advance the position over consecutive messages (each seq = lastSeq + 1; own sends fill
   * their own seqs), report the ones that are not this instance's own, and schedule the ack.
   */
  private apply(instance: Instance, messages: WireMessage[]): void {
    const fresh: WireMessage[] = [];
    const ownOut = instance.events.reportOwn === true ? fresh : undefined;
    const seen: WireMessage[] = [];
    for (const message of messages) {
      this.advanceOverOwn(instance, ownOut, seen);
      const last = instance.lastSeq ?? 0;
      if (message.seq <= last) continue;
      if (message.seq !== last + 1) this.log.warn(`mailbox of instance ${instance.instId} jumps from seq ${last} to ${message.seq}`);
      instance.lastSeq = message.seq;
      seen.push(message);
      if (!this.isOwn(instance, message) || ownOut) fresh.push(message);
    }
    this.advanceOverOwn(instance, ownOut, seen);
    if (seen.length > 0 && this.options.applied) safely(this.log, () => this.options.applied?.(instance, seen));
    if (fresh.length > 0) safely(this.log, () => instance.events.onMessages?.(fresh));
    this.scheduleAck(instance);
  }

  /** Whether a mailbox message is one this instance sent (settling its queued send if it was still waiting). */
  private isOwn(instance: Instance, message: WireMessage): boolean {
    const own = instance.own.get(message.seq);
    if (own !== undefined) {
      instance.own.delete(message.seq);
      if (own.id === message.id) return true;
    }
    if (message.flow !== 'out' || message.clientMsgId === undefined) return false;
    return this.options.settleQueued(instance, message);
  }

  /** Own sends fill their seqs: move the position over them (collecting them in `report`, when given). */
  private advanceOverOwn(instance: Instance, report?: WireMessage[], seen?: WireMessage[]): void {
    if (instance.lastSeq === null || instance.own.size === 0) return;
    for (let own = instance.own.get(instance.lastSeq + 1); own !== undefined; own = instance.own.get(instance.lastSeq + 1)) {
      instance.own.delete(own.seq);
      instance.lastSeq = own.seq;
      report?.push(own);
      seen?.push(own);
    }
    for (const seq of instance.own.keys()) if (seq <= instance.lastSeq) instance.own.delete(seq);
  }

  /** Acknowledge the position after `ackDelayMs` (one ack per burst). */
  private scheduleAck(instance: Instance): void {
    if (instance.ackTimer !== undefined || (instance.lastSeq ?? 0) <= instance.ackedSeq) return;
    instance.ackTimer = setTimeout(() => {
      instance.ackTimer = undefined;
      if (this.instances.owns(instance)) this.ackNow(instance);
    }, this.options.ackDelayMs);
  }
}
