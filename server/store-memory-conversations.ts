/**
 * Conversations of the memory store (conversation-store.ts): per user and peer, the
 * markers and the seqs of the conversation's entries in the user's mailbox (ascending), so
 * a history page is a binary search, never a scan of the mailbox. The memory store calls
 * {@link MemoryConversations.added} / {@link MemoryConversations.removed} inside its own
 * insert and removal of an entry, so counts and entries always agree.
 */
import { userKey } from './registry.js';
import type { ConversationRow, ConversationStore, HistoryPage, ReadOutcome } from './conversation-store.js';
import type { MailboxEntry, StoredMessage } from './store.js';

interface Conv {
  peer: string;
  unread: number;
  readSeq: number;
  lastSeq: number;
  peerReadSeq: number;
  clearedSeq: number;
  /** Seqs of the conversation's entries still in the mailbox, ascending. */
  seqs: number[];
}

/** What the conversations may ask of the memory store. */
export interface MemoryMailboxes {
  entryAt(sdkAppId: number, userID: string, seq: number): MailboxEntry | undefined;
  message(id: string): StoredMessage | undefined;
  check(): void;
}

/** Index of the first value > `after` (ascending array). */
function firstAfter(values: number[], after: number): number {
  let lo = 0;
  let hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (values[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The other party of a mailbox entry. */
export function peerOf(entry: MailboxEntry): string {
  return entry.flow === 'in' ? entry.message.from : entry.message.to;
}

export class MemoryConversations implements ConversationStore {
  /** By user key, then peer. */
  private readonly users = new Map<string, Map<string, Conv>>();

  constructor(private readonly boxes: MemoryMailboxes) {}

  /** The store inserted `entry` into the mailbox of `userID`. */
  added(sdkAppId: number, userID: string, entry: MailboxEntry): void {
    const key = userKey(sdkAppId, userID);
    let convs = this.users.get(key);
    if (!convs) this.users.set(key, (convs = new Map()));
    const peer = peerOf(entry);
    let conv = convs.get(peer);
    if (!conv) convs.set(peer, (conv = { peer, unread: 0, readSeq: 0, lastSeq: 0, peerReadSeq: 0, clearedSeq: 0, seqs: [] }));
    conv.lastSeq = entry.seq;
    conv.seqs.push(entry.seq);
    if (entry.flow === 'in') conv.unread++;
  }

  /** The store removed `entry` from the mailbox of `userID` (retention, quota). */
  removed(sdkAppId: number, userID: string, entry: MailboxEntry): void {
    const conv = this.users.get(userKey(sdkAppId, userID))?.get(peerOf(entry));
    if (!conv) return;
    const at = firstAfter(conv.seqs, entry.seq - 1);
    if (conv.seqs[at] === entry.seq) conv.seqs.splice(at, 1);
  }

  private row(sdkAppId: number, userID: string, conv: Conv): ConversationRow {
    const last = this.boxes.entryAt(sdkAppId, userID, conv.lastSeq) ?? null;
    return { peer: conv.peer, unread: conv.unread, readSeq: conv.readSeq, lastSeq: conv.lastSeq, peerReadSeq: conv.peerReadSeq, clearedSeq: conv.clearedSeq, last };
  }

  private visible(sdkAppId: number, userID: string, peer: string): Conv | undefined {
    const conv = this.users.get(userKey(sdkAppId, userID))?.get(peer);
    return conv && conv.lastSeq > conv.clearedSeq ? conv : undefined;
  }

  async list(sdkAppId: number, userID: string, limit: number): Promise<{ conversations: ConversationRow[]; total: number }> {
    this.boxes.check();
    const all = [...(this.users.get(userKey(sdkAppId, userID))?.values() ?? [])];
    const total = all.reduce((sum, c) => sum + c.unread, 0);
    const shown = all.filter((c) => c.lastSeq > c.clearedSeq).sort((a, b) => b.lastSeq - a.lastSeq).slice(0, limit);
    return { conversations: shown.map((c) => this.row(sdkAppId, userID, c)), total };
  }

  async get(sdkAppId: number, userID: string, peer: string): Promise<ConversationRow | null> {
    this.boxes.check();
    const conv = this.visible(sdkAppId, userID, peer);
    return conv ? this.row(sdkAppId, userID, conv) : null;
  }

  async total(sdkAppId: number, userID: string): Promise<number> {
    this.boxes.check();
    let total = 0;
    for (const c of this.users.get(userKey(sdkAppId, userID))?.values() ?? []) total += c.unread;
    return total;
  }

  async history(sdkAppId: number, userID: string, peer: string, beforeSeq: number | null, limit: number): Promise<HistoryPage> {
    this.boxes.check();
    const conv = this.users.get(userKey(sdkAppId, userID))?.get(peer);
    if (!conv) return { entries: [], more: false };
    const end = beforeSeq === null ? conv.seqs.length : firstAfter(conv.seqs, beforeSeq - 1);
    const start = Math.max(firstAfter(conv.seqs, conv.clearedSeq), end - limit);
    const entries: MailboxEntry[] = [];
    for (let i = start; i < end; i++) {
      const entry = this.boxes.entryAt(sdkAppId, userID, conv.seqs[i]!);
      if (entry) entries.push(entry);
    }
    return { entries, more: start > firstAfter(conv.seqs, conv.clearedSeq) };
  }

  async locate(sdkAppId: number, userID: string, messageId: string): Promise<{ seq: number; peer: string } | null> {
    this.boxes.check();
    const m = this.boxes.message(messageId);
    if (!m || m.sdkAppId !== sdkAppId || (m.from !== userID && m.to !== userID)) return null;
    const seq = m.from === userID ? m.fromSeq : m.toSeq;
    const entry = this.boxes.entryAt(sdkAppId, userID, seq);
    return entry ? { seq, peer: peerOf(entry) } : null;
  }

  async markRead(sdkAppId: number, userID: string, peer: string): Promise<ReadOutcome | null> {
    this.boxes.check();
    const conv = this.visible(sdkAppId, userID, peer);
    if (!conv) return null;
    const changed = conv.unread > 0 || conv.readSeq < conv.lastSeq;
    conv.unread = 0;
    conv.readSeq = conv.lastSeq;
    let lastIn: StoredMessage | null = null;
    for (let i = conv.seqs.length - 1; i >= 0 && lastIn === null; i--) {
      const entry = this.boxes.entryAt(sdkAppId, userID, conv.seqs[i]!);
      if (entry?.flow === 'in') lastIn = entry.message;
    }
    return { row: this.row(sdkAppId, userID, conv), changed, lastIn };
  }

  async setPeerRead(sdkAppId: number, userID: string, peer: string, seq: number): Promise<ConversationRow | null> {
    this.boxes.check();
    const conv = this.users.get(userKey(sdkAppId, userID))?.get(peer);
    if (!conv || conv.peerReadSeq >= seq) return null;
    conv.peerReadSeq = seq;
    return this.row(sdkAppId, userID, conv);
  }

  async remove(sdkAppId: number, userID: string, peer: string): Promise<boolean> {
    this.boxes.check();
    const conv = this.visible(sdkAppId, userID, peer);
    if (!conv) return false;
    conv.unread = 0;
    conv.readSeq = conv.clearedSeq = conv.lastSeq;
    return true;
  }
}
