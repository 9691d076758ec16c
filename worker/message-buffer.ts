/**
 * The hub's recent `messages` envelopes, per instance key, for tabs that missed some: a tab
 * that sees a gap in the envelope sequence resyncs (`register` with `after`), and its
 * snapshot carries the envelopes it missed from here. Bounded per instance key (messages,
 * characters of text); the buffer of an instance that ended stays a while, so a tab that
 * resyncs after a kick still gets the messages that preceded it.
 */
import type { MessagesEnvelope } from '../src/protocol/hub-protocol.js';

/** Bounds of one instance's message buffer: messages, and characters of text. */
export const BUFFER_MAX_MESSAGES = 500;
export const BUFFER_MAX_CHARS = 2_000_000;
/** How long the buffer of an ended instance stays (a tab resyncing after a kick still gets what preceded it). */
export const ENDED_BUFFER_TTL_MS = 60_000;

/** Recent `messages` envelopes of one instance key. */
interface KeyBuffer {
  envelopes: MessagesEnvelope[];
  /** Messages and text characters held. */
  count: number;
  chars: number;
  /** Highest envelope seq dropped to stay within the bounds (0: none yet). */
  droppedThrough: number;
  /** Removal of the buffer of an instance that ended. */
  expiry: ReturnType<typeof setTimeout> | undefined;
}

/** Every instance key's buffer in one hub. */
export class MessageBuffers {
  private readonly buffers = new Map<string, KeyBuffer>();

  /** @param isLive - whether an instance of the key lives now (its buffer does not expire then) */
  constructor(private readonly isLive: (key: string) => boolean) {}

  /** Keep an envelope posted for its instance key (`target`), dropping the oldest beyond the bounds. */
  add(envelope: MessagesEnvelope): void {
    let buffer = this.buffers.get(envelope.target);
    if (!buffer) {
      buffer = { envelopes: [], count: 0, chars: 0, droppedThrough: 0, expiry: undefined };
      this.buffers.set(envelope.target, buffer);
    }
    clearTimeout(buffer.expiry);
    buffer.expiry = undefined;
    buffer.envelopes.push(envelope);
    buffer.count += envelope.messages.length;
    for (const message of envelope.messages) buffer.chars += message.text.length;
    while (buffer.envelopes.length > 1 && (buffer.count > BUFFER_MAX_MESSAGES || buffer.chars > BUFFER_MAX_CHARS)) {
      const dropped = buffer.envelopes.shift()!;
      buffer.count -= dropped.messages.length;
      for (const message of dropped.messages) buffer.chars -= message.text.length;
      buffer.droppedThrough = dropped.seq;
    }
  }

  /** The instance of `key` ended: forget its buffer soon, unless a new instance of the key uses it. */
  expire(key: string): void {
    const buffer = this.buffers.get(key);
    if (!buffer) return;
    clearTimeout(buffer.expiry);
    buffer.expiry = setTimeout(() => {
      if (this.buffers.get(key) === buffer && !this.isLive(key)) this.buffers.delete(key);
    }, ENDED_BUFFER_TTL_MS);
  }

  /** Every instance ended (the hub closed its engines). */
  expireAll(): void {
    for (const key of this.buffers.keys()) this.expire(key);
  }

  /**
   * The envelopes of `keys` after envelope `from` (of this run), in order, and the keys whose
   * buffer no longer reaches back to it.
   */
  since(keys: Iterable<string>, from: number): { messages: MessagesEnvelope[]; gaps: string[] } {
    const messages: MessagesEnvelope[] = [];
    const gaps: string[] = [];
    for (const key of keys) {
      const buffer = this.buffers.get(key);
      if (!buffer) continue;
      if (buffer.droppedThrough > from) gaps.push(key);
      for (const envelope of buffer.envelopes) if (envelope.seq > from) messages.push(envelope);
    }
    messages.sort((a, b) => a.seq - b.seq);
    return { messages, gaps };
  }
}
