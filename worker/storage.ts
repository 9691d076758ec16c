/**
 * Durable record of the server instances each worker run holds, in IndexedDB (idb-keyval,
 * dedicated database `tabchat-hub`, one store). The worker is the only writer.
 *
 * Why: a SharedWorker can die without its tabs (Chrome hosts it in the renderer of the tab
 * that started it, so a crash of that tab kills the worker too; browsers may OOM-kill it).
 * The surviving tabs start a new worker and take their own instances over, but the dead
 * tab's instance would stay on the server for the resume window. The new worker reads the
 * dead run's record and releases every instance whose tabs are gone (worker/orphans.ts).
 *
 * One entry per worker run (key: epoch). The resume token is a secret that lets its holder
 * resume the instance for the resume window; it is stored only while the instance lives.
 */
import { createStore, del, delMany, entries, get, set, type UseStore } from 'idb-keyval';
import type { Logger } from '../src/protocol/data.js';

/** One server instance of a worker run. */
export interface StoredInstance {
  key: string;
  server: string;
  sdkAppId: number;
  userID: string;
  instId: number;
  token: string;
  /** Tabs whose chats are attached to it. */
  tabIds: string[];
}

export interface StoredRun {
  epoch: string;
  build: string;
  /** When the record was written (ms since epoch). */
  updatedAt: number;
  instances: StoredInstance[];
}

/**
 * Records older than this are dropped unread: the server's resume window (at most one hour
 * by config) has passed, so their instances are gone anyway.
 */
export const MAX_RUN_AGE_MS = 3_600_000;

/** A well-formed run record younger than {@link MAX_RUN_AGE_MS}. */
function isRecent(run: unknown): run is StoredRun {
  if (typeof run !== 'object' || run === null) return false;
  const { instances, updatedAt } = run as Partial<StoredRun>;
  return Array.isArray(instances) && typeof updatedAt === 'number' && Date.now() - updatedAt < MAX_RUN_AGE_MS;
}

/** The record of this worker run: coalesced writes, latest state wins. */
export class RunStore {
  private readonly store: UseStore | null;
  private latest: StoredInstance[] | null = null;
  private writing: Promise<void> | null = null;

  constructor(
    private readonly epoch: string,
    private readonly build: string,
    private readonly log: Logger,
  ) {
    this.store = typeof indexedDB === 'undefined' ? null : createStore('tabchat-hub', 'runs');
  }

  /** Record the instances this run holds now (written soon, in order). */
  save(instances: StoredInstance[]): void {
    if (!this.store) return;
    this.latest = instances;
    if (!this.writing) this.writing = this.flush();
  }

  private async flush(): Promise<void> {
    const store = this.store;
    if (!store) return;
    try {
      while (this.latest) {
        const instances = this.latest;
        this.latest = null;
        if (instances.length === 0) await del(this.epoch, store);
        else await set(this.epoch, { epoch: this.epoch, build: this.build, updatedAt: Date.now(), instances } satisfies StoredRun, store);
      }
    } catch (err) {
      this.log.warn('cannot record the worker instances in IndexedDB:', err);
    } finally {
      this.writing = null;
    }
  }

  /** Recent records of other runs (dead or alive; the caller checks their locks). Old ones are dropped. */
  async others(): Promise<StoredRun[]> {
    const store = this.store;
    if (!store) return [];
    const all = await entries<string, unknown>(store);
    const recent: StoredRun[] = [];
    const stale: string[] = [];
    for (const [key, run] of all) {
      if (key === this.epoch) continue;
      if (isRecent(run)) recent.push(run);
      else stale.push(key);
    }
    if (stale.length > 0) await delMany(stale, store);
    return recent;
  }

  /** The record of one run, if it is there and recent. */
  async get(epoch: string): Promise<StoredRun | undefined> {
    const store = this.store;
    if (!store) return undefined;
    const run = await get<unknown>(epoch, store);
    return isRecent(run) ? run : undefined;
  }

  /** Forget another run's record once its instances are dealt with. */
  async drop(epoch: string): Promise<void> {
    if (this.store) await del(epoch, this.store);
  }
}
