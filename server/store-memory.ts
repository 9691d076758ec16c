/**
 * In-memory {@link MessageStore}: for demos and tests. Everything is lost when the process
 * ends; clients then see their mailbox position beyond the new head and start over from 0
 * (see `head` in docs/protocol.md). Quota and retention as the other stores (store.ts).
 */
import { utf8ByteLength } from '../src/protocol/frames.js';
import { userKey } from './registry.js';
import { MemoryConversations } from './store-memory-conversations.js';
import {
  MAX_EVICTIONS_PER_SEND,
  MailboxFullError,
  NO_QUOTA,
  StoreClosedError,
  type MailboxEntry,
  type MailboxPage,
  type MailboxQuota,
  type MessageStore,
  type NewMessage,
  type StoredMessage,
} from './store.js';

interface Mailbox {
  /** Ascending seqs; the first ones may have been removed (retention, quota). */
  entries: MailboxEntry[];
  head: number;
  acked: number;
  /** Text bytes of `entries`. */
  bytes: number;
}

/** A stored message and how many mailbox entries still hold it (1 or 2). */
interface Live {
  message: StoredMessage;
  bytes: number;
  refs: number;
}

/** Index of the first entry with seq > `afterSeq` (entries ascending by seq). */
function firstAfter(entries: MailboxEntry[], afterSeq: number): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.seq <= afterSeq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryStore implements MessageStore {
  readonly kind = 'memory';
  readonly conversations: MemoryConversations = new MemoryConversations({
    entryAt: (sdkAppId, userID, seq) => {
      const entries = this.mailboxes.get(userKey(sdkAppId, userID))?.entries;
      const entry = entries?.[firstAfter(entries, seq - 1)];
      return entry?.seq === seq ? entry : undefined;
    },
    message: (id) => this.live.get(id)?.message,
    check: () => this.check(),
  });
  private readonly mailboxes = new Map<string, Mailbox>();
  /** By `${sdkAppId}\0${from}\0${clientMsgId}`. */
  private readonly byClientId = new Map<string, StoredMessage>();
  /** Messages still held by a mailbox, by id. */
  private readonly live = new Map<string, Live>();
  /** Ids in storage order (= time order): the retention index. Removed ones are skipped. */
  private readonly byTime: string[] = [];
  private byTimeStart = 0;
  private closed = false;

  constructor(private readonly quota: MailboxQuota = NO_QUOTA) {}

  async send(input: NewMessage): Promise<{ message: StoredMessage; created: boolean }> {
    this.check();
    const key = this.clientKey(input);
    const existing = this.byClientId.get(key);
    if (existing) return { message: existing, created: false };
    const bytes = utf8ByteLength(input.text);
    const self = input.from === input.to;
    const recipient = this.mailbox(input.sdkAppId, input.to);
    if (!this.makeRoom(recipient, bytes)) throw new MailboxFullError(input.to);
    const sender = self ? recipient : this.mailbox(input.sdkAppId, input.from);
    if (!self) this.makeRoom(sender, bytes); // the sender's own mailbox is never refused
    const fromSeq = ++sender.head;
    const toSeq = self ? fromSeq : ++recipient.head;
    const message: StoredMessage = { ...input, fromSeq, toSeq };
    this.add(sender, input.from, { seq: fromSeq, flow: 'out', message }, bytes);
    if (!self) this.add(recipient, input.to, { seq: toSeq, flow: 'in', message }, bytes);
    this.byClientId.set(key, message);
    this.live.set(message.id, { message, bytes, refs: self ? 1 : 2 });
    this.byTime.push(message.id);
    return { message, created: true };
  }

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number, maxBytes = Infinity): Promise<MailboxPage> {
    this.check();
    const box = this.mailboxes.get(userKey(sdkAppId, userID));
    if (!box) return { entries: [], more: false, head: 0 };
    const start = firstAfter(box.entries, afterSeq);
    const page: MailboxEntry[] = [];
    let bytes = 0;
    let i = start;
    for (; i < box.entries.length && page.length < limit; i++) {
      const entry = box.entries[i]!;
      const size = this.live.get(entry.message.id)?.bytes ?? 0;
      if (page.length > 0 && bytes + size > maxBytes) break;
      bytes += size;
      page.push(entry);
    }
    return { entries: page, more: i < box.entries.length, head: box.head };
  }

  async head(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.mailboxes.get(userKey(sdkAppId, userID))?.head ?? 0;
  }

  async acked(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.mailboxes.get(userKey(sdkAppId, userID))?.acked ?? 0;
  }

  async ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    this.check();
    const box = this.mailboxes.get(userKey(sdkAppId, userID));
    if (!box) return 0;
    const clamped = Math.min(seq, box.head);
    box.acked = Math.max(box.acked, clamped);
    return clamped;
  }

  async removeExpired(before: number, max: number): Promise<number> {
    this.check();
    let removed = 0;
    while (removed < max && this.byTimeStart < this.byTime.length) {
      const id = this.byTime[this.byTimeStart]!;
      const live = this.live.get(id);
      if (live && live.message.time >= before) break;
      this.byTimeStart++;
      if (!live) continue; // already removed by quota
      const { message } = live;
      this.removeEntry(this.mailboxes.get(userKey(message.sdkAppId, message.from)), message.fromSeq);
      if (message.to !== message.from) this.removeEntry(this.mailboxes.get(userKey(message.sdkAppId, message.to)), message.toSeq);
      removed++;
    }
    if (this.byTimeStart > 1024 && this.byTimeStart * 2 > this.byTime.length) {
      this.byTime.splice(0, this.byTimeStart);
      this.byTimeStart = 0;
    }
    return removed;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** Drop the mailbox's oldest acknowledged entries until `bytes` more fit; false if they still do not. */
  private makeRoom(box: Mailbox, bytes: number): boolean {
    const fits = () => box.entries.length + 1 <= this.quota.maxMessages && box.bytes + bytes <= this.quota.maxBytes;
    for (let dropped = 0; !fits() && dropped < MAX_EVICTIONS_PER_SEND; dropped++) {
      const oldest = box.entries[0];
      if (oldest === undefined || oldest.seq > box.acked) break;
      this.removeEntry(box, oldest.seq);
    }
    return fits();
  }

  private add(box: Mailbox, userID: string, entry: MailboxEntry, bytes: number): void {
    box.entries.push(entry);
    box.bytes += bytes;
    this.conversations.added(entry.message.sdkAppId, userID, entry);
  }

  private removeEntry(box: Mailbox | undefined, seq: number): void {
    if (!box) return;
    const at = firstAfter(box.entries, seq - 1);
    const entry = box.entries[at];
    if (entry === undefined || entry.seq !== seq) return;
    box.entries.splice(at, 1);
    this.conversations.removed(entry.message.sdkAppId, entry.flow === 'in' ? entry.message.to : entry.message.from, entry);
    const live = this.live.get(entry.message.id);
    if (!live) return;
    box.bytes -= live.bytes;
    if (--live.refs === 0) {
      this.live.delete(entry.message.id);
      this.byClientId.delete(this.clientKey(entry.message));
    }
  }

  private clientKey(message: { sdkAppId: number; from: string; clientMsgId: string }): string {
    return `${userKey(message.sdkAppId, message.from)}\u0000${message.clientMsgId}`;
  }

  private mailbox(sdkAppId: number, userID: string): Mailbox {
    const key = userKey(sdkAppId, userID);
    let box = this.mailboxes.get(key);
    if (!box) this.mailboxes.set(key, (box = { entries: [], head: 0, acked: 0, bytes: 0 }));
    return box;
  }

  private check(): void {
    if (this.closed) throw new StoreClosedError();
  }
}
