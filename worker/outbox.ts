/**
 * The durable outbox of the browser: the engine's {@link Outbox} in IndexedDB (idb-keyval,
 * dedicated database `tabchat-outbox`, one object store `outbox`), so a message queued while
 * the socket is down survives the tab that sent it and the worker that held it.
 *
 * - One writer: the hub's host (the SharedWorker, or the leader tab). Tabs never open this
 *   database; they send through the hub.
 * - One {@link IdbOutbox} per engine (per server URL), all on the same store: the key is
 *   `[server, clientMsgId]`, so engines of two servers never adopt each other's entries.
 * - Every call is one IndexedDB transaction (`set` / `del` resolve on commit). No
 *   read-modify-write is needed: an entry is written once, then deleted.
 * - A new worker adopts the entries of a user when an instance of that user logs in, is
 *   taken over or restored (the engine's rule); the server's idempotency on
 *   (sender, clientMsgId) makes each of them stored once however often it is sent.
 */
import { createStore, del, set, values, type UseStore } from 'idb-keyval';
import { MemoryOutbox } from '../src/core/outbox.js';
import type { Outbox, OutboxEntry } from '../src/core/types.js';

/** Database and object store of the outbox (dedicated: idb-keyval opens it without a version). */
export const OUTBOX_DB = 'tabchat-outbox';
export const OUTBOX_STORE = 'outbox';

/** What is stored: the engine's entry plus the server it belongs to. */
export interface StoredOutboxEntry extends OutboxEntry {
  server: string;
}

function isStoredEntry(value: unknown): value is StoredOutboxEntry {
  if (typeof value !== 'object' || value === null) return false;
  const entry = value as Record<string, unknown>;
  return typeof entry.server === 'string' && typeof entry.clientMsgId === 'string' && typeof entry.sdkAppId === 'number' &&
    typeof entry.from === 'string' && typeof entry.to === 'string' && typeof entry.text === 'string' && typeof entry.queuedAt === 'number';
}

/** The outbox of one engine (one server URL) in the shared IndexedDB store. */
export class IdbOutbox implements Outbox {
  constructor(
    private readonly server: string,
    private readonly store: UseStore,
  ) {}

  put(entry: OutboxEntry): Promise<void> {
    const stored: StoredOutboxEntry = { ...entry, server: this.server };
    return set([this.server, entry.clientMsgId], stored, this.store);
  }

  delete(clientMsgId: string): Promise<void> {
    return del([this.server, clientMsgId], this.store);
  }

  async list(sdkAppId: number, userID: string): Promise<OutboxEntry[]> {
    const all = await values<unknown>(this.store);
    const mine: OutboxEntry[] = [];
    for (const value of all) {
      if (!isStoredEntry(value) || value.server !== this.server || value.sdkAppId !== sdkAppId || value.from !== userID) continue;
      const { server: _server, ...entry } = value;
      mine.push(entry);
    }
    return mine;
  }
}

let sharedStore: UseStore | null = null;

/**
 * The outbox for the engine of `server`: in IndexedDB when this context has it, else in
 * memory (lost with the worker; the engine works the same).
 */
export function createOutbox(server: string): Outbox {
  if (typeof indexedDB === 'undefined') return new MemoryOutbox();
  sharedStore ??= createStore(OUTBOX_DB, OUTBOX_STORE);
  return new IdbOutbox(server, sharedStore);
}
