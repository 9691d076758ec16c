/**
 * Node liveness in the cluster: every `nodeHeartbeatMs` each node refreshes its liveness
 * key `<prefix>node:<nodeKey>` (PX `nodeTimeoutMs`; the value is its stats, which
 * `get_stats` on any node sums up) and its membership of `<prefix>nodes`. Any node that
 * finds another node's key gone releases that node's instances, those the dead node still
 * owns (a resumed one has moved on), under a lock so one node reaps each dead node.
 */
import { PLATFORMS, type Platform } from '../src/protocol/frames.js';
import type { ClusterStats, NodeStats } from './engine.js';
import type { Logger } from './log.js';
import type { ClusterMetrics } from './metrics.js';
import type { RedisLink } from './redis-health.js';
import { parseIndexEntry, type RedisKeys } from './redis-keys.js';

/** How long after a local change the stats in the liveness key are refreshed. */
const STATS_REFRESH_MS = 50;
/** How long the lock of the node that reaps a dead node lasts. */
const REAP_LOCK_MS = 30_000;
/** How long the "you were reaped" marker of a node waits for that node to come back. */
const REAPED_MARKER_MS = 3_600_000;
/** Delete a key only if it still holds the given value. */
const DELETE_IF_EQUAL = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0";

/** A node's stats as its liveness key holds them. */
interface StatsRecord {
  node: string;
  connections: number;
  instances: { [platform: string]: number };
  at: number;
}

export interface NodeLivenessOptions {
  /** Display node id (logs, metrics, stats). */
  node: string;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  log: Logger;
  metrics: ClusterMetrics;
  /** Open connections of this node. */
  connections(): number;
  /** This node's instances per platform. */
  countByPlatform(): Map<Platform, number>;
  /**
   * The cluster took this node for dead and released its instances (found on its own
   * heartbeat): reconcile the local state with Redis; resolves with whether that succeeded.
   */
  reaped(): Promise<boolean>;
  /** A heartbeat got an answer (after the reaped check and the reap of dead nodes). */
  answered(): void;
}

export class NodeLiveness {
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private reaping = false;
  private ticking = false;
  /** The reaped marker this node already reported (logged and counted once). */
  private reportedMarker: string | null = null;

  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly nodeKey: string,
    private readonly opts: NodeLivenessOptions,
  ) {}

  /** Heartbeat (and reap dead nodes) every `heartbeatMs` from now on. */
  start(): void {
    this.heartbeatTimer = setInterval(() => void this.tick(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
  }

  stop(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.statsTimer) clearTimeout(this.statsTimer);
  }

  /**
   * Refresh this node's liveness key (with its stats) and its membership of the node set.
   * @param ttlMs - how long the key lives; at shutdown, one resume window
   */
  async heartbeat(ttlMs = this.opts.nodeTimeoutMs): Promise<string | null> {
    const [, , marker] = await Promise.all([
      this.link.cmd.set(this.keys.nodeLiveness(this.nodeKey), JSON.stringify(this.localStats()), 'PX', ttlMs),
      this.link.cmd.sadd(this.keys.nodes, this.nodeKey),
      this.link.cmd.get(this.keys.reapedMarker(this.nodeKey)),
    ]);
    return marker;
  }

  /** Soon after a local change, so get_stats on other nodes is fresh. */
  statsChanged(): void {
    if (this.statsTimer || this.link.closed) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = null;
      if (this.link.available) this.link.background('heartbeat', this.heartbeat());
    }, STATS_REFRESH_MS);
    this.statsTimer.unref();
  }

  /** Connections and instances of every live node (this one first), and their sums. */
  async clusterStats(): Promise<ClusterStats> {
    const others = await this.link.call('stats', async () => {
      const nodes = (await this.link.cmd.smembers(this.keys.nodes)).filter((n) => n !== this.nodeKey);
      return Promise.all(nodes.map((n) => this.link.cmd.get(this.keys.nodeLiveness(n))));
    });
    const nodes: NodeStats[] = [];
    for (const raw of [JSON.stringify(this.localStats()), ...others]) {
      if (raw === null) continue; // dead, about to be reaped
      try {
        const s = JSON.parse(raw) as StatsRecord;
        const instances = new Map<Platform, number>();
        for (const p of PLATFORMS) if (s.instances[p]) instances.set(p, s.instances[p]!);
        nodes.push({ node: s.node, connections: s.connections, instances });
      } catch {
        // a foreign value: ignore
      }
    }
    const instances = new Map<Platform, number>();
    let connections = 0;
    for (const n of nodes) {
      connections += n.connections;
      for (const [p, c] of n.instances) instances.set(p, (instances.get(p) ?? 0) + c);
    }
    return { connections, instances, nodes };
  }

  /**
   * Release, in Redis, the instances listed in `node`'s index set (a dead node's, or this
   * node's leftovers) that Redis still gives to `node`, and drop their entries, except
   * those `keep` names (`null`: an entry that does not parse; dropped unless kept).
   * @returns how many instances were still registered to `node` and are released now
   */
  async releaseIndexed(node: string, keep: (instId: number | null) => boolean): Promise<number> {
    const { cmd } = this.link;
    const set = this.keys.nodeIndex(node);
    let released = 0;
    for (const member of await cmd.smembers(set)) {
      const entry = parseIndexEntry(member);
      if (keep(entry === undefined ? null : Number(entry.id))) continue;
      if (entry !== undefined && (await cmd.tcRelease(this.keys.user(entry.a, entry.u).instances, entry.id, node, '')) === 1) {
        released++;
        await cmd.del(this.keys.instanceId(entry.id));
      }
      await cmd.srem(set, member);
    }
    return released;
  }

  private localStats(): StatsRecord {
    const instances: { [platform: string]: number } = {};
    for (const [p, n] of this.opts.countByPlatform()) instances[p] = n;
    return { node: this.opts.node, connections: this.opts.connections(), instances, at: Date.now() };
  }

  private async tick(): Promise<void> {
    // One heartbeat at a time: a stalled link must not pile up commands that all run late.
    if (!this.link.available || this.ticking) return;
    this.ticking = true;
    try {
      const marker = await this.heartbeat();
      this.link.healthy();
      if (marker !== null) await this.recoverFromReap(marker);
      await this.reap();
      this.opts.answered();
    } catch (err) {
      this.opts.metrics.errors.inc({ op: 'heartbeat' });
      this.link.unhealthy('heartbeat', err);
    } finally {
      this.ticking = false;
    }
  }

  /**
   * This node's heartbeat found the reaped marker: the cluster took it for dead (its link
   * stalled past `nodeTimeoutMs` without breaking, so no reconnect ever told it) and
   * released its instances. Once the reaper is done (its lock says so or expired), the
   * node reconciles: instances the cluster released are dropped and their connections
   * closed with 4005 (their clients log in again and catch up with `sync`). The marker is
   * deleted only after a reconcile that succeeded.
   */
  private async recoverFromReap(marker: string): Promise<void> {
    const { cmd } = this.link;
    const lock = await cmd.get(this.keys.reapLock(this.nodeKey));
    if (lock !== null && lock !== 'done') return; // the reaper is still at work: next heartbeat
    if (this.reportedMarker !== marker) {
      this.reportedMarker = marker;
      this.opts.metrics.reapedSelf.inc();
      this.opts.log.warn(
        { reapedBy: marker.split(' ')[0] },
        'the cluster took this node for dead (its Redis link was silent longer than nodeTimeoutMs) and released its instances: reconciling',
      );
    }
    if (await this.opts.reaped()) await cmd.eval(DELETE_IF_EQUAL, 1, this.keys.reapedMarker(this.nodeKey), marker);
  }

  /** Release the instances of nodes whose liveness key expired (one reaper per dead node). */
  private async reap(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    const { cmd } = this.link;
    try {
      const nodes = await cmd.smembers(this.keys.nodes);
      let live = 0;
      for (const dead of nodes) {
        if (dead === this.nodeKey || (await cmd.exists(this.keys.nodeLiveness(dead))) === 1) {
          live++;
          continue;
        }
        const lockKey = this.keys.reapLock(dead);
        const lock = await cmd.set(lockKey, this.nodeKey, 'PX', REAP_LOCK_MS, 'NX');
        if (lock !== 'OK') continue;
        // Heartbeating again since we looked (its link came back): not dead after all.
        if ((await cmd.exists(this.keys.nodeLiveness(dead))) === 1) {
          await cmd.eval(DELETE_IF_EQUAL, 1, lockKey, this.nodeKey);
          live++;
          continue;
        }
        // Tell the node, should it come back, before anything of it is released.
        await cmd.set(this.keys.reapedMarker(dead), `${this.nodeKey} ${Date.now()}`, 'PX', REAPED_MARKER_MS);
        const released = await this.releaseIndexed(dead, () => false);
        if ((await cmd.scard(this.keys.nodeIndex(dead))) === 0) await cmd.srem(this.keys.nodes, dead);
        await cmd.set(lockKey, 'done', 'KEEPTTL');
        this.opts.metrics.reaped.inc(released);
        this.opts.log.warn({ deadNode: dead, released }, 'released the instances of a node that stopped heartbeating');
      }
      this.opts.metrics.nodes.set(live);
    } finally {
      this.reaping = false;
    }
  }
}
