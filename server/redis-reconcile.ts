/**
 * The reconcile pass of a cluster node, after every reconnect to Redis, and after the node
 * found on its own heartbeat that the cluster had taken it for dead (redis-liveness.ts).
 *
 * If Redis lost its data (its epoch key changed): re-register every instance this node
 * holds, its login settings and the node itself. Otherwise repair what PUB/SUB or failed
 * calls lost: kicks (tombstones), moves (forget), releases done here while Redis was away,
 * and instances the cluster released behind this node's back (their clients reconnect).
 * Then let connected instances catch up on pushes they may have missed.
 */
import { randomBytes } from 'node:crypto';
import { isKickType, type KickType } from '../src/protocol/frames.js';
import type { Logger } from './log.js';
import type { ClusterMetrics } from './metrics.js';
import type { RedisLink } from './redis-health.js';
import type { NodeLiveness } from './redis-liveness.js';
import { instanceIdTtlMs, toHashEntry, type ClusterInstance, type InstanceHashEntry, type RedisKeys } from './redis-keys.js';

/** The node's local state, as the reconcile pass reads and repairs it (the Redis engine). */
export interface ReconcileTarget {
  /** The instances this node holds. */
  instances(): Iterable<ClusterInstance>;
  /** Whether `inst` is still this node's copy (not released or replaced meanwhile). */
  holds(inst: ClusterInstance): boolean;
  /** Whether this node holds the instance or is logging it in or resuming it right now. */
  keeps(instId: number): boolean;
  /** Write the apps' login settings to Redis where missing, and read them back. */
  loadSettings(): Promise<void>;
  /** The instance was resumed on another node: drop the local copy (the `forget` notice was lost). */
  movedAway(inst: ClusterInstance): void;
  /** The cluster no longer knows the instance: drop it; its client must reconnect and log in again. */
  lost(inst: ClusterInstance): void;
  /** The instance was kicked (the `kick` notice was lost). */
  kick(instId: number, type: KickType): void;
  /** Connected instances (maybe none) may have missed pushes: let them catch up; so may recipients on other nodes of pushes this node could not route. */
  resync(attached: ClusterInstance[]): void;
}

export interface ReconcilerOptions {
  nodeKey: string;
  /** How long kick tombstones (and an id's index entry after its expiry) live. */
  tombstoneTtlMs: number;
  log: Logger;
  metrics: ClusterMetrics;
}

export class Reconciler {
  /** The epoch of Redis's data as this node last saw it. */
  private epoch: string | null = null;
  private running: Promise<void> | null = null;
  private again = false;
  /** Whether the last pass failed. */
  private failed = false;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly liveness: NodeLiveness,
    private readonly target: ReconcileTarget,
    private readonly opts: ReconcilerOptions,
  ) {}

  /** On joining the cluster: note the epoch of Redis's data (set it if there is none). */
  async join(): Promise<void> {
    this.epoch = await this.ensureEpoch();
  }

  /** Reconcile now (as {@link run}); resolves with whether the last pass succeeded. */
  async runChecked(): Promise<boolean> {
    await this.run();
    return !this.failed;
  }

  /** Reconcile now; a call during a pass runs one more pass after it. */
  run(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.runOnce();
          this.failed = false;
        } catch (err) {
          this.failed = true;
          this.opts.metrics.errors.inc({ op: 'reconcile' });
          this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'reconcile with the cluster engine failed; retried at the next reconnect (or heartbeat, after a reap)');
          break;
        }
      } while (this.again && this.link.available);
    })().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private async ensureEpoch(): Promise<string | null> {
    await this.link.cmd.set(this.keys.epoch, randomBytes(8).toString('hex'), 'NX');
    return this.link.cmd.get(this.keys.epoch);
  }

  private async runOnce(): Promise<void> {
    if (!this.link.available) return;
    const epoch = await this.link.cmd.get(this.keys.epoch);
    if (epoch !== this.epoch) {
      this.epoch = await this.ensureEpoch();
      const restored = await this.restoreAll();
      this.opts.log.warn({ restored }, 'the cluster engine (Redis) lost its data: re-registered the instances of this node');
    } else {
      await this.verifyAll();
    }
    await this.liveness.heartbeat();
    const attached = [...this.target.instances()].filter((i) => i.owner !== null);
    this.target.resync(attached);
  }

  /** Redis lost its data: register again everything this node holds. */
  private async restoreAll(): Promise<number> {
    const { cmd } = this.link;
    const { nodeKey, tombstoneTtlMs } = this.opts;
    await this.target.loadSettings();
    let restored = 0;
    await Promise.all(
      [...this.target.instances()].map(async (inst) => {
        const keys = this.keys.user(inst.sdkAppId, inst.userID);
        const [done] = await Promise.all([
          cmd.tcRestore(keys.instances, keys.user, inst.instId, JSON.stringify(toHashEntry(inst, nodeKey))),
          cmd.set(this.keys.instanceId(inst.instId), JSON.stringify({ a: inst.sdkAppId, u: inst.userID }), 'PX', instanceIdTtlMs(inst.expireAt, tombstoneTtlMs)),
          cmd.sadd(this.keys.nodeIndex(nodeKey), this.keys.indexEntry(inst.sdkAppId, inst.userID, inst.instId)),
        ]);
        if (done === 1) restored++;
      }),
    );
    return restored;
  }

  /** Compare every local instance with Redis and repair what was lost either way. */
  private async verifyAll(): Promise<void> {
    const { cmd } = this.link;
    const { nodeKey } = this.opts;
    const now = Date.now();
    await Promise.all(
      [...this.target.instances()].map(async (inst) => {
        const keys = this.keys.user(inst.sdkAppId, inst.userID);
        const [raw, tomb] = await Promise.all([cmd.hget(keys.instances, String(inst.instId)), cmd.hget(keys.tombstones, String(inst.instId))]);
        if (!this.target.holds(inst)) return;
        if (raw !== null) {
          const entry = JSON.parse(raw) as InstanceHashEntry;
          if (entry.n !== nodeKey) {
            this.target.movedAway(inst);
          } else if (inst.owner === null && entry.c === 1) {
            // Detached here while Redis was away.
            this.link.background('detach', cmd.tcDetach(keys.instances, inst.instId, nodeKey, inst.gen));
          }
          return;
        }
        const t = tomb === null ? null : (JSON.parse(tomb) as { k: unknown; x: number });
        if (t && t.x > now && isKickType(t.k)) {
          this.target.kick(inst.instId, t.k); // the kick notice was lost
          return;
        }
        // Released by the cluster (this node was taken for dead): the client logs in again.
        this.target.lost(inst);
      }),
    );
    // Instances Redis still gives to this node that this node no longer holds (released
    // here while Redis was away). An entry that does not parse is left for the reaper.
    await this.liveness.releaseIndexed(nodeKey, (instId) => instId === null || this.target.keeps(instId));
  }
}
