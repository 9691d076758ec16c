/**
 * In-memory {@link MessageStore}: for demos and tests. Everything is lost when the process
 * ends; clients then see their mailbox position beyond the new head and start over from 0
 * (see `head` in docs/protocol.md).
 */
import { userKey } from './registry.js';
import { StoreClosedError, type MailboxEntry, type MailboxPage, type MessageStore, type NewMessage, type StoredMessage } from './store.js';

interface Mailbox {
  /** entries[i] has seq i + 1. */
  entries: MailboxEntry[];
  acked: number;
}

export class MemoryStore implements MessageStore {
  readonly kind = 'memory';
  private readonly mailboxes = new Map<string, Mailbox>();
  /** By `${sdkAppId}\0${from}\0${clientMsgId}`. */
  private readonly byClientId = new Map<string, StoredMessage>();
  private closed = false;

  async send(input: NewMessage): Promise<{ message: StoredMessage; created: boolean }> {
    this.check();
    const key = `${userKey(input.sdkAppId, input.from)}\u0000${input.clientMsgId}`;
    const existing = this.byClientId.get(key);
    if (existing) return { message: existing, created: false };
    const sender = this.mailbox(input.sdkAppId, input.from);
    const fromSeq = sender.entries.length + 1;
    const self = input.from === input.to;
    const recipient = self ? sender : this.mailbox(input.sdkAppId, input.to);
    const toSeq = self ? fromSeq : recipient.entries.length + 1;
    const message: StoredMessage = { ...input, fromSeq, toSeq };
    sender.entries.push({ seq: fromSeq, flow: 'out', message });
    if (!self) recipient.entries.push({ seq: toSeq, flow: 'in', message });
    this.byClientId.set(key, message);
    return { message, created: true };
  }

  async read(sdkAppId: number, userID: string, afterSeq: number, limit: number): Promise<MailboxPage> {
    this.check();
    const entries = this.mailboxes.get(userKey(sdkAppId, userID))?.entries ?? [];
    const page = entries.slice(afterSeq, afterSeq + limit);
    return { entries: page, more: afterSeq + page.length < entries.length, head: entries.length };
  }

  async head(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.mailboxes.get(userKey(sdkAppId, userID))?.entries.length ?? 0;
  }

  async acked(sdkAppId: number, userID: string): Promise<number> {
    this.check();
    return this.mailboxes.get(userKey(sdkAppId, userID))?.acked ?? 0;
  }

  async ack(sdkAppId: number, userID: string, seq: number): Promise<number> {
    this.check();
    const box = this.mailboxes.get(userKey(sdkAppId, userID));
    if (!box) return 0;
    const clamped = Math.min(seq, box.entries.length);
    box.acked = Math.max(box.acked, clamped);
    return clamped;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private mailbox(sdkAppId: number, userID: string): Mailbox {
    const key = userKey(sdkAppId, userID);
    let box = this.mailboxes.get(key);
    if (!box) this.mailboxes.set(key, (box = { entries: [], acked: 0 }));
    return box;
  }

  private check(): void {
    if (this.closed) throw new StoreClosedError();
  }
}
