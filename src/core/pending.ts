/**
 * Requests waiting for an answer, each with a timeout: the one implementation behind the
 * engine's requests to the server and its waits for a connection, the tab's calls to its
 * hub, and the leader-tab RPC. No promise waits forever: an entry is answered, rejected by
 * its owner (a socket closed, a hub gone), or rejected with 2801 when its time is up.
 */
import { CODE } from '../protocol/codes.js';
import { ChatError, asChatError } from './errors.js';

/** How one waiting request is settled. */
export interface PendingEntry<T> {
  resolve(value: T): void;
  reject(error: ChatError): void;
  /** When the wait began (ms since epoch). */
  readonly since: number;
}

interface Entry<T> extends PendingEntry<T> {
  timer: ReturnType<typeof setTimeout>;
}

/** Waiting requests by key. */
export class PendingMap<K, T = unknown> {
  readonly #entries = new Map<K, Entry<T>>();

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Wait for the answer to `key`. After `timeoutMs` the entry is dropped and the promise
   * rejects with 2801 (`timeoutMessage`); `expired` runs after that rejection.
   */
  wait(key: K, timeoutMs: number, timeoutMessage: string, expired?: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#entries.delete(key);
        reject(new ChatError(CODE.NETWORK_TIMEOUT, timeoutMessage));
        expired?.();
      }, timeoutMs);
      this.#entries.set(key, { resolve, reject, timer, since: Date.now() });
    });
  }

  /** Remove the entry of `key` (stopping its timer) to settle it; undefined when none waits (timed out, settled). */
  take(key: K): PendingEntry<T> | undefined {
    const entry = this.#entries.get(key);
    if (entry) {
      this.#entries.delete(key);
      clearTimeout(entry.timer);
    }
    return entry;
  }

  /** Settle the entry of `key`, if it still waits, as `promise` settles. */
  follow(key: K, promise: Promise<T>): void {
    promise.then(
      (value) => this.take(key)?.resolve(value),
      (err: unknown) => this.take(key)?.reject(asChatError(err)),
    );
  }

  /** Remove every entry, to settle them. */
  takeAll(): Array<PendingEntry<T>> {
    const taken = [...this.#entries.values()];
    this.#entries.clear();
    for (const entry of taken) clearTimeout(entry.timer);
    return taken;
  }
}
