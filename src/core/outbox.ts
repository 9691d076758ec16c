/**
 * The engine's default {@link Outbox} (in memory, lost with the process) and the client
 * message id generator. A host that must keep queued messages across its own restart
 * (the SharedWorker) plugs in a durable implementation of the same interface.
 */
import type { Outbox, OutboxEntry } from './types.js';

/** An {@link Outbox} in memory: entries live as long as the object. */
export class MemoryOutbox implements Outbox {
  private readonly entries = new Map<string, OutboxEntry>();

  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.clientMsgId, { ...entry });
  }

  async delete(clientMsgId: string): Promise<void> {
    this.entries.delete(clientMsgId);
  }

  async list(sdkAppId: number, userID: string): Promise<OutboxEntry[]> {
    return [...this.entries.values()].filter((e) => e.sdkAppId === sdkAppId && e.from === userID).map((e) => ({ ...e }));
  }

  /** Number of entries (for tests and diagnostics). */
  get size(): number {
    return this.entries.size;
  }
}

const HEX = '0123456789abcdef';

/**
 * A new client message id: 32 random hex digits from `crypto.getRandomValues` (Node 20,
 * browsers, workers), so two clients never pick the same one.
 */
export function newClientMsgId(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  let id = '';
  for (const byte of bytes) id += HEX[byte >> 4]! + HEX[byte & 15]!;
  return id;
}
