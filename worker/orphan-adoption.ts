/**
 * The hub's charge of orphaned instances: the instances a dead run of the hub held (read
 * from its record, see worker/storage.ts). Each one is released on the server (resume +
 * logout on a socket of its own, worker/orphans.ts) as soon as every tab it belonged to is
 * gone, unless a live tab takes it over first (its `register` claims it).
 */
import type { Logger } from '../src/protocol/data.js';
import type { StoredInstance, StoredRun } from './storage.js';

/** What the adoption needs of the hub's host. */
export interface OrphanHost {
  /**
   * Call `onGone` once the tab's life lock is released; returns a function that stops watching.
   * @param justAttached - the tab may not have asked for its lock yet (it asks alongside its
   *   first command): wait until its request shows before waiting on the lock
   */
  watchTab(tabId: string, onGone: () => void, justAttached?: boolean): () => void;
  /** Release an orphaned instance of a dead run on the server (resume + logout). */
  releaseOrphan(instance: StoredInstance): Promise<unknown>;
  /** Forget a dead run's record. */
  dropRun(epoch: string): Promise<void>;
  log: Logger;
}

/** An instance of a dead run, waiting for its tabs' locks. */
interface Orphan {
  instance: StoredInstance;
  stopWatching: Array<() => void>;
  /** Tabs not yet known dead. */
  alive: Set<string>;
  done: () => void;
}

/** The orphans one hub has in charge, by instId. */
export class OrphanAdoption {
  private readonly orphans = new Map<number, Orphan>();

  /**
   * @param host - tab watching, release on the server, run records
   * @param isClaimed - whether the hub holds (or is taking over) the server instance `instId`
   */
  constructor(
    private readonly host: OrphanHost,
    private readonly isClaimed: (instId: number) => boolean,
  ) {}

  /** Take charge of the instances of a dead run; its record is dropped once all are dealt with. */
  adopt(run: StoredRun): void {
    let pending = run.instances.length;
    const settleOne = () => {
      if (--pending === 0) this.host.dropRun(run.epoch).catch((err: unknown) => this.host.log.warn('cannot drop a dead run record:', err));
    };
    if (pending === 0) {
      pending = 1;
      settleOne();
      return;
    }
    this.host.log.info(`run ${run.epoch} died holding ${run.instances.length} instance(s); watching their tabs`);
    for (const instance of run.instances) {
      if (this.isClaimed(instance.instId) || this.orphans.has(instance.instId)) {
        settleOne();
        continue;
      }
      let finished = false;
      const orphan: Orphan = {
        instance,
        stopWatching: [],
        alive: new Set(instance.tabIds),
        done: () => {
          if (finished) return;
          finished = true;
          for (const stop of orphan.stopWatching) stop();
          this.orphans.delete(instance.instId);
          settleOne();
        },
      };
      this.orphans.set(instance.instId, orphan);
      if (orphan.alive.size === 0) {
        void this.release(orphan);
        continue;
      }
      for (const tabId of instance.tabIds) {
        orphan.stopWatching.push(this.host.watchTab(tabId, () => {
          orphan.alive.delete(tabId);
          if (orphan.alive.size === 0) void this.release(orphan);
        }));
      }
    }
  }

  /** A live tab claims the instance `instId` (it offers it for take-over): it is no orphan. */
  claim(instId: number): void {
    this.orphans.get(instId)?.done();
  }

  private async release(orphan: Orphan): Promise<void> {
    try {
      if (!this.isClaimed(orphan.instance.instId)) await this.host.releaseOrphan(orphan.instance);
    } catch (err) {
      this.host.log.warn(`release of orphaned instance ${orphan.instance.instId} failed:`, err);
    } finally {
      orphan.done();
    }
  }
}
