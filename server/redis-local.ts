/**
 * The local copies of the instances a cluster node holds (attached, or inside their resume
 * window), by id and by user: what its connections touch directly, without Redis.
 */
import type { KickType, Platform } from '../src/protocol/frames.js';
import type { LocalInstances } from './engine.js';
import type { ClusterInstance } from './redis-keys.js';
import { userKey } from './registry.js';

/** How long a kick for an instance this node has not registered yet is remembered. */
const EARLY_KICK_MS = 30_000;
/** Most early kicks remembered for ids that are not being logged in or resumed here. */
const MAX_EARLY_KICKS = 10_000;

export class LocalCopies implements LocalInstances {
  /** Instances being logged in or resumed here right now: the reconcile pass leaves them alone. */
  readonly pending = new Set<number>();
  private readonly byId = new Map<number, ClusterInstance>();
  private readonly byUser = new Map<string, Map<number, ClusterInstance>>();
  /** Kicks that arrived for instances whose login (or resume) on this node has not finished yet. */
  private readonly earlyKicks = new Map<number, { type: KickType; at: number }>();

  /** @param changed - called after every add and remove (the node's stats changed) */
  constructor(private readonly changed: () => void) {}

  get size(): number {
    return this.byId.size;
  }

  get(instId: number): ClusterInstance | undefined {
    return this.byId.get(instId);
  }

  /** Whether `inst` is still the copy held for its id (not removed or replaced). */
  holds(inst: ClusterInstance): boolean {
    return this.byId.get(inst.instId) === inst;
  }

  /** Whether the instance is held here, or being logged in or resumed here right now. */
  keeps(instId: number): boolean {
    return this.byId.has(instId) || this.pending.has(instId);
  }

  values(): IterableIterator<ClusterInstance> {
    return this.byId.values();
  }

  /** The user's instances held here, in login order. */
  instancesOf(sdkAppId: number, userID: string): ClusterInstance[] {
    return [...this.unorderedOf(sdkAppId, userID)].sort((a, b) => a.loginSeq - b.loginSeq);
  }

  /** The user's instances held here, unsorted and uncopied (the message relay path). */
  unorderedOf(sdkAppId: number, userID: string): Iterable<ClusterInstance> {
    return this.byUser.get(userKey(sdkAppId, userID))?.values() ?? [];
  }

  countByPlatform(): Map<Platform, number> {
    const counts = new Map<Platform, number>();
    for (const inst of this.byId.values()) counts.set(inst.platform, (counts.get(inst.platform) ?? 0) + 1);
    return counts;
  }

  add(inst: ClusterInstance): void {
    this.byId.set(inst.instId, inst);
    const key = userKey(inst.sdkAppId, inst.userID);
    let list = this.byUser.get(key);
    if (!list) this.byUser.set(key, (list = new Map()));
    list.set(inst.instId, inst);
    this.changed();
  }

  /** Stop the instance's timers and drop it, if it is still the copy held for its id. */
  remove(inst: ClusterInstance): void {
    if (inst.detachTimer) clearTimeout(inst.detachTimer);
    if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
    inst.detachTimer = null;
    inst.expiryTimer = null;
    if (!this.holds(inst)) return;
    this.byId.delete(inst.instId);
    const key = userKey(inst.sdkAppId, inst.userID);
    const list = this.byUser.get(key);
    list?.delete(inst.instId);
    if (list && list.size === 0) this.byUser.delete(key);
    this.changed();
  }

  /** A kick for an instance not held here (yet): remembered for its login or resume to find. */
  kickedEarly(instId: number, type: KickType): void {
    if (this.pending.has(instId) || this.earlyKicks.size < MAX_EARLY_KICKS) this.earlyKicks.set(instId, { type, at: Date.now() });
    const limit = Date.now() - EARLY_KICK_MS;
    for (const [id, k] of this.earlyKicks) if (k.at < limit) this.earlyKicks.delete(id);
  }

  /** The kick that arrived for `instId` before it was added here, if any (forgotten now). */
  takeEarlyKick(instId: number): KickType | undefined {
    const early = this.earlyKicks.get(instId);
    this.earlyKicks.delete(instId);
    return early?.type;
  }

  /** Forget everything (shutdown; timers are the caller's). */
  clear(): void {
    this.byId.clear();
    this.byUser.clear();
  }
}
