/**
 * Runs the `sync` reads of every connection, taking the connections in turn (round robin):
 * one sync of the first waiting connection, then one of the next, with a yield to the
 * event loop (`setImmediate`) between two, so logins, sends and pings of other clients are
 * served in between. A connection that sends syncs in a loop gets its turn like every
 * other, never more, and only while its client takes what it was sent (see
 * {@link SyncWorker.syncReady}). See docs/operations.md "Limits and abuse".
 */

/** A connection as the scheduler sees it. */
export interface SyncWorker {
  /** Whether a sync of it can run now (queued, allowed by its rate, its send buffer below the pause mark). */
  syncReady(): boolean;
  /** Run its next sync, reply included. */
  runSync(): Promise<void>;
}

export class SyncScheduler {
  /** Workers waiting for their turn, in order; each at most once. */
  private readonly waiting: SyncWorker[] = [];
  private readonly queued = new Set<SyncWorker>();
  private running = 0;
  private pumpPending = false;
  private closed = false;

  /** @param concurrency - syncs running at once (1 for stores that read on the main thread) */
  constructor(private readonly concurrency: number) {}

  /** `worker` may have a sync to run: it takes its turn after the workers already waiting. */
  wake(worker: SyncWorker): void {
    if (this.closed || this.queued.has(worker)) return;
    this.queued.add(worker);
    this.waiting.push(worker);
    this.schedulePump();
  }

  close(): void {
    this.closed = true;
    this.waiting.length = 0;
    this.queued.clear();
  }

  private schedulePump(): void {
    if (this.pumpPending) return;
    this.pumpPending = true;
    setImmediate(() => {
      this.pumpPending = false;
      this.pump();
    });
  }

  private pump(): void {
    while (!this.closed && this.running < this.concurrency && this.waiting.length > 0) {
      const worker = this.waiting.shift()!;
      this.queued.delete(worker);
      if (!worker.syncReady()) continue; // it wakes itself again when it is
      this.running++;
      worker
        .runSync()
        .catch(() => undefined)
        .finally(() => {
          this.running--;
          if (worker.syncReady()) this.wake(worker);
          else if (this.waiting.length > 0) this.schedulePump();
        });
    }
  }
}
