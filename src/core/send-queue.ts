/**
 * An instance's send queue: the messages it sent that the server has not acknowledged yet,
 * each with the callers waiting for it.
 */
import type { WireMessage } from '../protocol/frames.js';
import type { ChatError } from './errors.js';
import type { OutboxEntry } from './types.js';

/** A caller waiting for one queued message: settled when the server stores it or it fails for good. */
export interface SendWaiter {
  resolve(message: WireMessage): void;
  reject(error: ChatError): void;
  timer: ReturnType<typeof setTimeout>;
}

/** A message in an instance's send queue (its outbox entry, plus who waits for it). */
export interface QueuedSend {
  readonly entry: OutboxEntry;
  readonly waiters: Set<SendWaiter>;
  /** A `send` request for it is on the current connection. */
  inFlight: boolean;
  /** Size of its `send` frame in bytes (the suspect when the server closes with 1009). */
  readonly frameBytes: number;
  /** Its place in the queue: sends go out in ascending order. */
  readonly order: number;
}

/**
 * An instance's send queue: by clientMsgId in queue order, plus a min-heap (by `order`) of
 * the sends waiting for transmission, so queueing, finding, settling and picking the next
 * send to transmit cost O(1) or O(log n) however long the queue is — not a scan per send.
 * The heap may hold stale items (settled, or on their way); they are dropped when they
 * surface.
 */
export class SendQueue {
  private readonly items = new Map<string, QueuedSend>();
  private readonly waiting: QueuedSend[] = [];
  private lastOrder = 0;
  private firstOrder = 0;

  get size(): number {
    return this.items.size;
  }
  get(clientMsgId: string): QueuedSend | undefined {
    return this.items.get(clientMsgId);
  }
  /** Whether `item` is (still) in this queue. */
  holds(item: QueuedSend): boolean {
    return this.items.get(item.entry.clientMsgId) === item;
  }
  /** Queued sends in queue order. */
  values(): QueuedSend[] {
    return [...this.items.values()].sort((a, b) => a.order - b.order);
  }
  /** A new send at the end of the queue, waiting for transmission. */
  append(entry: OutboxEntry, frameBytes: number): QueuedSend {
    const item: QueuedSend = { entry, waiters: new Set(), inFlight: false, frameBytes, order: ++this.lastOrder };
    this.items.set(entry.clientMsgId, item);
    this.push(item);
    return item;
  }
  /** New sends at the front of the queue (in this order), waiting for transmission. */
  prepend(entries: Array<{ entry: OutboxEntry; frameBytes: number }>): void {
    this.firstOrder -= entries.length;
    entries.forEach(({ entry, frameBytes }, i) => {
      const item: QueuedSend = { entry, waiters: new Set(), inFlight: false, frameBytes, order: this.firstOrder + i };
      this.items.set(entry.clientMsgId, item);
      this.push(item);
    });
  }
  remove(item: QueuedSend): boolean {
    if (!this.holds(item)) return false;
    this.items.delete(item.entry.clientMsgId);
    return true;
  }
  /** A send of this queue came back (its request failed): it waits for transmission again, in its place. */
  requeue(item: QueuedSend): void {
    if (this.holds(item) && !item.inFlight) this.push(item);
  }
  /** The first send waiting for transmission (left in place). */
  peek(): QueuedSend | undefined {
    for (let top = this.waiting[0]; top !== undefined; top = this.waiting[0]) {
      if (this.holds(top) && !top.inFlight) return top;
      this.pop();
    }
    return undefined;
  }
  /** Take the first send waiting for transmission (after {@link peek} found it). */
  take(): void {
    this.pop();
  }

  private push(item: QueuedSend): void {
    const heap = this.waiting;
    let i = heap.push(item) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]!.order <= item.order) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = item;
  }

  private pop(): void {
    const heap = this.waiting;
    const last = heap.pop();
    if (last === undefined || heap.length === 0) return;
    let i = 0;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const child = left + 1 < heap.length && heap[left + 1]!.order < heap[left]!.order ? left + 1 : left;
      if (heap[child]!.order >= last.order) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
}
