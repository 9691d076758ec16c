/**
 * The Redis engine: this process is one node of a cluster that shares instances, limits,
 * kicks, revocations, login settings and message routing over one Redis (Centrifugo's Redis
 * engine is the model). Design and guarantees: docs/scaling.md.
 *
 * - The registry is in Redis and changes only through the atomic Lua scripts of
 *   redis-scripts.ts (one per user and operation); key names and stored values are in
 *   redis-keys.ts. This node keeps a local copy of the instances it owns (attached or
 *   inside their resume window; redis-local.ts): their sockets, timers (resume window,
 *   UserSig expiry) and mailbox positions. This file answers the {@link InstanceEngine}
 *   calls and keeps those copies in step with Redis.
 * - Node-to-node notices (kicks, "forget", message pushes, login settings): redis-pubsub.ts;
 *   the cluster-wide login settings: redis-settings.ts.
 * - Liveness (heartbeat, reaping the instances of dead nodes, cluster stats):
 *   redis-liveness.ts.
 * - Redis unreachable: logins, REST calls and resumes that need Redis fail fast with 9030
 *   (redis-health.ts); connected sessions keep working (their instances are local); the
 *   node reconciles (redis-reconcile.ts; or, if Redis lost its data, re-registers
 *   everything it holds) when Redis is back.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { isKickType, isPlatform, type KickType, type Platform } from '../src/protocol/frames.js';
import type { UserPush } from '../src/protocol/conversation-frames.js';
import type { AppConfig } from './config.js';
import {
  EngineUnavailableError,
  RevokedError,
  pushToOwners,
  type ClusterStats,
  type InstanceEngine,
  type InstanceEngineEvents,
  type LoginRequest,
  type LoginSettings,
  type OnlineInstance,
  type ResumeResult,
} from './engine.js';
import { redactUrl, type Logger } from './log.js';
import type { ClusterMetrics } from './metrics.js';
import { RedisLink } from './redis-health.js';
import { LocalCopies } from './redis-local.js';
import { entryPlatform, instanceIdTtlMs, RedisKeys, type ClusterInstance, type InstanceHashEntry } from './redis-keys.js';
import { NodeLiveness } from './redis-liveness.js';
import { NodeChannel } from './redis-pubsub.js';
import { Reconciler } from './redis-reconcile.js';
import { UnroutedUsers } from './redis-unrouted.js';
import { ClusterLoginSettings } from './redis-settings.js';
import type { Instance, InstanceOwner, KickRecord } from './registry.js';

/** Kicked-instance tombstones are kept this long beyond the resume window (as the memory engine). */
const TOMBSTONE_EXTRA_MS = 60_000;
/**
 * The login script refuses to run (no kick, no instance) when it reaches Redis more than
 * this long after it was sent: by then the node has given up on it (command timeout 2 s)
 * or is about to, and the client is told 9030. The margin covers the answer's way back and
 * clock differences between the node and Redis (keep them NTP-synced).
 */
const LOGIN_SCRIPT_BUDGET_MS = 1_500;
/** Longest delay Node's setTimeout accepts; longer expiries re-arm. */
const MAX_TIMER_MS = 2_147_483_647;

export interface RedisEngineOptions {
  /** `redis://…`, `rediss://…`, or `redis+cluster://host:port,host:port` (Redis Cluster). */
  url: string;
  /** Key and channel prefix; several clusters may share one Redis with different prefixes. */
  prefix: string;
  /** Display node id (logs, metrics, stats). */
  node: string;
  resumeWindowMs: number;
  heartbeatMs: number;
  nodeTimeoutMs: number;
  apps: Map<number, AppConfig>;
  log: Logger;
  /** The cluster metrics, in the server's registry. */
  metrics: ClusterMetrics;
  events: InstanceEngineEvents & {
    /** Pushes this node made for messages published by other nodes. */
    onPush?(count: number): void;
    /** After a reconnect to Redis: pushes may have been lost; the server lets these instances catch up. */
    onResync?(instances: Instance[]): void;
  };
  /** Open connections of this node (stats). */
  connections: () => number;
  /** Recipients of unrouted pushes remembered by name before one catch-up notice for all (default {@link MAX_UNROUTED_USERS}). */
  maxUnroutedUsers?: number;
}

/** Recipients of unrouted pushes a node remembers by name (about 100 bytes each). */
export const MAX_UNROUTED_USERS = 10_000;

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class RedisEngine implements InstanceEngine {
  readonly kind = 'redis';
  /** Node key in Redis: the display id plus a boot id, so a restarted node never inherits the old one's instances. */
  readonly nodeKey: string;
  private readonly keys: RedisKeys;
  private readonly link: RedisLink;
  private readonly channel: NodeChannel;
  private readonly liveness: NodeLiveness;
  private readonly reconciler: Reconciler;
  /** The instances this node holds. */
  readonly local: LocalCopies;
  private readonly settings: ClusterLoginSettings;
  private readonly tombstoneTtlMs: number;
  /** Recipients of pushes this node could not route while its link was down. */
  private readonly unrouted: UnroutedUsers;

  private constructor(private readonly opts: RedisEngineOptions) {
    this.nodeKey = `${opts.node}.${randomBytes(3).toString('hex')}`;
    this.tombstoneTtlMs = opts.resumeWindowMs + TOMBSTONE_EXTRA_MS;
    this.keys = new RedisKeys(opts.prefix);
    this.local = new LocalCopies(() => this.liveness.statsChanged());
    const { log, metrics } = opts;
    this.link = new RedisLink({ url: opts.url, nodeKey: this.nodeKey, metrics, log, onBack: () => void this.reconciler.run() });
    this.channel = new NodeChannel(this.link, this.keys, this.nodeKey, metrics, {
      kick: (instId, type) => this.kickLocal(instId, type),
      forget: (instId) => {
        const inst = this.local.get(instId);
        // Resumed on another node (our socket was half-open, or the client moved).
        if (inst) this.movedAway(inst);
      },
      push: (sdkAppId, userID, message, exceptId) => {
        const pushed = this.pushLocal(sdkAppId, userID, message, exceptId);
        if (pushed > 0) this.opts.events.onPush?.(pushed);
      },
      settings: (sdkAppId, settings) => this.settings.received(sdkAppId, settings),
      sync: (users) => this.syncLocal(users),
    });
    this.unrouted = new UnroutedUsers(this.link, (users) => this.channel.publishSync(users), metrics.unrouted, log, opts.maxUnroutedUsers ?? MAX_UNROUTED_USERS);
    this.settings = new ClusterLoginSettings(this.link, this.keys, opts.apps, this.channel);
    this.liveness = new NodeLiveness(this.link, this.keys, this.nodeKey, {
      node: opts.node,
      heartbeatMs: opts.heartbeatMs,
      nodeTimeoutMs: opts.nodeTimeoutMs,
      log,
      metrics,
      connections: opts.connections,
      countByPlatform: () => this.local.countByPlatform(),
      reaped: () => this.reconciler.runChecked(),
      answered: () => void this.unrouted.flush(),
    });
    this.reconciler = new Reconciler(
      this.link,
      this.keys,
      this.liveness,
      {
        instances: () => this.local.values(),
        holds: (inst) => this.local.holds(inst),
        keeps: (instId) => this.local.keeps(instId),
        loadSettings: () => this.settings.load(),
        movedAway: (inst) => this.movedAway(inst),
        lost: (inst) => {
          this.local.remove(inst);
          this.opts.events.onRelease?.(inst.instId, 'node-dead');
          this.opts.log.warn({ instId: inst.instId }, 'instance no longer registered in the cluster; its connection must reconnect');
          inst.owner?.lost?.(inst.instId);
        },
        kick: (instId, type) => this.kickLocal(instId, type),
        resync: (attached) => {
          if (attached.length > 0) this.opts.events.onResync?.(attached);
          void this.unrouted.flush();
        },
      },
      { nodeKey: this.nodeKey, tombstoneTtlMs: this.tombstoneTtlMs, log, metrics },
    );
  }

  /** Connect to Redis, load the scripts and settings, subscribe, and join the cluster. */
  static async start(opts: RedisEngineOptions): Promise<RedisEngine> {
    const engine = new RedisEngine(opts);
    try {
      await engine.join();
    } catch (err) {
      engine.link.disconnect();
      throw new Error(`cannot connect to redis ${redactUrl(opts.url)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return engine;
  }

  private async join(): Promise<void> {
    await this.link.connect();
    await this.channel.subscribe();
    await this.reconciler.join();
    await this.settings.load();
    await this.liveness.heartbeat();
    this.link.joined();
    this.liveness.start();
    this.opts.log.info({ engine: 'redis', redis: redactUrl(this.opts.url), nodeKey: this.nodeKey, prefix: this.opts.prefix }, 'joined the cluster');
  }

  /** Whether Redis can be used now: connected and answering (see {@link RedisLink.usable}). */
  get available(): boolean {
    return this.link.usable;
  }

  async close(): Promise<void> {
    if (this.link.closed) return;
    this.liveness.stop();
    const detached: Array<Promise<unknown>> = [];
    for (const inst of this.local.values()) {
      if (inst.detachTimer) clearTimeout(inst.detachTimer);
      if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
      inst.detachTimer = null;
      inst.expiryTimer = null;
      if (inst.owner && this.link.connected) {
        detached.push(this.link.cmd.tcDetach(this.keys.user(inst.sdkAppId, inst.userID).instances, inst.instId, this.nodeKey, inst.gen).catch(() => 0));
      }
      this.opts.events.onRelease?.(inst.instId, 'shutdown');
    }
    // Leave the instances resumable on other nodes: this node's key lives one more resume
    // window, after which any node releases what was not resumed elsewhere.
    if (this.link.connected) {
      await Promise.allSettled([...detached, this.liveness.heartbeat(Math.max(this.opts.resumeWindowMs, 1))]);
    }
    this.local.clear();
    await this.link.close();
  }

  // ------------------------------------------------------------------ local state

  countByPlatform(): Map<Platform, number> {
    return this.local.countByPlatform();
  }

  private addLocal(inst: ClusterInstance): void {
    this.local.add(inst);
    this.armExpiry(inst);
    const early = this.local.takeEarlyKick(inst.instId);
    // After the caller has answered the login/resume: the client must know the instance first.
    if (early) setImmediate(() => this.kickLocal(inst.instId, early));
  }

  /** The instance now belongs to another node (resumed there): drop the local copy and tell its connection. */
  private movedAway(inst: ClusterInstance): void {
    this.local.remove(inst);
    this.opts.events.onRelease?.(inst.instId, 'moved');
    inst.owner?.forget(inst.instId);
  }

  /** Remove an instance from this node's index set in Redis (best effort). */
  private unindex(node: string, sdkAppId: number, userID: string, instId: number | string): void {
    this.link.background('unindex', this.link.cmd.srem(this.keys.nodeIndex(node), this.keys.indexEntry(sdkAppId, userID, instId)));
  }

  /** A kick decided by a script (here or on another node) for an instance of this node. */
  private kickLocal(instId: number, type: KickType): void {
    const inst = this.local.get(instId);
    if (!inst) {
      this.local.kickedEarly(instId, type);
      return;
    }
    this.local.remove(inst);
    this.unindex(this.nodeKey, inst.sdkAppId, inst.userID, instId);
    inst.owner?.deliverKick(instId, type);
  }

  /** The reply of a kicking script: count and log every kick, deliver this node's own, retire ids. */
  private handleKicks(sdkAppId: number, userID: string, flat: unknown[]): KickRecord[] {
    const kicked: KickRecord[] = [];
    for (let i = 0; i + 3 < flat.length; i += 4) {
      const id = String(flat[i]);
      const node = String(flat[i + 1]);
      const type = flat[i + 2];
      const platform = flat[i + 3];
      if (!isKickType(type)) continue;
      const instId = Number(id);
      kicked.push({ instId, type });
      this.opts.events.onKick?.({ instId, sdkAppId, userID, platform: isPlatform(platform) ? platform : undefined, type });
      this.link.background('tombstone', this.link.cmd.pexpire(this.keys.instanceId(id), this.tombstoneTtlMs));
      if (node === this.nodeKey) this.kickLocal(instId, type);
      else {
        this.channel.sent('kick');
        this.unindex(node, sdkAppId, userID, id);
      }
    }
    return kicked;
  }

  private armExpiry(inst: ClusterInstance): void {
    if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
    const delay = inst.expireAt - Date.now();
    inst.expiryTimer = setTimeout(() => {
      inst.expiryTimer = null;
      if (inst.expireAt - Date.now() > 0) this.armExpiry(inst);
      else void this.expire(inst);
    }, Math.max(0, Math.min(delay, MAX_TIMER_MS)));
    inst.expiryTimer.unref();
  }

  private async expire(inst: ClusterInstance): Promise<void> {
    if (this.local.get(inst.instId) !== inst) return;
    const keys = this.keys.user(inst.sdkAppId, inst.userID);
    try {
      this.link.check();
      const flat = await this.link.cmd.tcExpire(keys.instances, keys.tombstones, inst.instId, this.nodeKey, this.tombstoneTtlMs, this.keys.nodeChannelPrefix, Date.now());
      this.handleKicks(inst.sdkAppId, inst.userID, flat);
    } catch {
      // Redis is away: kick here; the reconcile pass removes it from Redis later.
      this.opts.metrics.errors.inc({ op: 'expire' });
      this.opts.events.onKick?.({ instId: inst.instId, sdkAppId: inst.sdkAppId, userID: inst.userID, platform: inst.platform, type: 'userSigExpired' });
      this.kickLocal(inst.instId, 'userSigExpired');
    }
  }

  // ------------------------------------------------------------------ engine API

  async isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): Promise<boolean> {
    const rb = await this.link.call('revocation', () => this.link.cmd.hget(this.keys.user(sdkAppId, userID).user, 'rb'));
    return rb !== null && issuedAtSec < Number(rb);
  }

  async login(app: AppConfig, req: LoginRequest, owner: InstanceOwner): Promise<{ inst: Instance; kicked: KickRecord[] }> {
    this.link.check();
    const { cmd } = this.link;
    const settings = await this.loginSettings(app);
    const keys = this.keys.user(app.sdkAppId, req.userID);
    const token = randomBytes(18).toString('base64url');
    const tokenHash = sha256(token);
    const idTtl = instanceIdTtlMs(req.expireAt, this.tombstoneTtlMs);
    // A random id, claimed cluster-wide first (collisions, also with tombstoned ids, retry).
    let instId = 0;
    for (let attempt = 0; instId === 0; attempt++) {
      if (attempt >= 5) throw new EngineUnavailableError('could not allocate an instance id');
      const candidate = randomInt(1, 2 ** 48 - 1);
      const claimed = await this.link.call('login', () => cmd.set(this.keys.instanceId(candidate), JSON.stringify({ a: app.sdkAppId, u: req.userID }), 'PX', idTtl, 'NX'));
      if (claimed === 'OK') instId = candidate;
    }
    const index = this.keys.nodeIndex(this.nodeKey);
    const entry = this.keys.indexEntry(app.sdkAppId, req.userID, instId);
    // Undo, in this order on the one command connection: Redis runs commands in the order
    // sent, so on a stalled link that later resumes, a login script that still ran (its
    // answer lost) is released right after it, and the index entry goes only after that.
    const undo = () =>
      this.link.background(
        'login-undo',
        (async () => {
          await cmd.tcRelease(keys.instances, instId, this.nodeKey, '');
          await Promise.all([cmd.del(this.keys.instanceId(instId)), cmd.srem(index, entry)]);
        })(),
      );
    this.local.pending.add(instId);
    try {
      let reply: unknown[];
      try {
        // Indexed before it exists: a crash right after the script still leaves it reapable.
        await this.link.call('login', () => cmd.sadd(index, entry));
        reply = await this.link.call('login', () =>
          cmd.tcLogin(
            keys.instances, keys.user, keys.tombstones,
            instId, req.platform, this.nodeKey, req.expireAt, tokenHash, req.issuedAtSec,
            settings.loginPolicy, settings.maxInstancesPerPlatform, this.tombstoneTtlMs, this.keys.nodeChannelPrefix,
            Date.now() + LOGIN_SCRIPT_BUDGET_MS,
          ),
        );
      } catch (err) {
        undo();
        throw err;
      }
      if (reply[0] !== 'ok') {
        undo();
        if (reply[0] === 'revoked') throw new RevokedError();
        if (reply[0] === 'late') throw new EngineUnavailableError('the cluster engine (Redis) answered too late');
        throw new EngineUnavailableError(`login script answered ${String(reply[0])}`);
      }
      const kicked = this.handleKicks(app.sdkAppId, req.userID, (reply[3] as unknown[]) ?? []);
      const inst: ClusterInstance = {
        instId,
        sdkAppId: app.sdkAppId,
        userID: req.userID,
        platform: req.platform,
        loginSeq: Number(reply[1]),
        loginAt: Number(reply[2]),
        expireAt: req.expireAt,
        token,
        tokenHash,
        gen: 0,
        ackedSeq: 0,
        owner,
        detachTimer: null,
        expiryTimer: null,
      };
      this.addLocal(inst);
      return { inst, kicked };
    } finally {
      this.local.pending.delete(instId);
    }
  }

  async logout(instId: number, owner: InstanceOwner): Promise<boolean> {
    const inst = this.local.get(instId);
    if (!inst || inst.owner !== owner) return false;
    this.local.remove(inst);
    this.opts.events.onRelease?.(instId, 'logout');
    // Best effort now; if Redis is away the reconcile pass releases it later.
    await this.releaseInRedis(inst, String(inst.gen)).catch((err: unknown) => {
      this.opts.metrics.errors.inc({ op: 'logout' });
      this.opts.log.debug({ instId, err: err instanceof Error ? err.message : String(err) }, 'logout not recorded in Redis yet');
    });
    return true;
  }

  private async releaseInRedis(inst: { sdkAppId: number; userID: string; instId: number }, gen: string): Promise<void> {
    this.link.check();
    const { cmd } = this.link;
    const done = await cmd.tcRelease(this.keys.user(inst.sdkAppId, inst.userID).instances, inst.instId, this.nodeKey, gen);
    await Promise.all([
      done === 1 ? cmd.del(this.keys.instanceId(inst.instId)) : Promise.resolve(0),
      cmd.srem(this.keys.nodeIndex(this.nodeKey), this.keys.indexEntry(inst.sdkAppId, inst.userID, inst.instId)),
    ]);
  }

  async resume(instId: number, token: string, owner: InstanceOwner): Promise<ResumeResult> {
    const local = this.local.get(instId);
    const tokenHash = sha256(token);
    if (local) {
      const refused = owner.admits?.(local.sdkAppId) ?? 0;
      if (refused !== 0 && local.tokenHash === tokenHash) return { ok: false, refused };
    }
    if (!this.link.available) {
      // Degraded: a resume on the node that holds the instance needs no one else.
      if (local && local.tokenHash === tokenHash) return { ok: true, inst: this.attach(local, owner), moved: false };
      throw new EngineUnavailableError();
    }
    const { cmd } = this.link;
    let who: { a: number; u: string } | null = local ? { a: local.sdkAppId, u: local.userID } : null;
    if (!who) {
      const raw = await this.link.call('resume', () => cmd.get(this.keys.instanceId(instId)));
      if (raw === null) return { ok: false };
      try {
        who = JSON.parse(raw) as { a: number; u: string };
      } catch {
        return { ok: false };
      }
    }
    // The page origin is checked before anything moves (the token is checked by the script:
    // a refusal here tells nothing about an instance whose token the caller does not know).
    const refused = owner.admits?.(who.a) ?? 0;
    if (refused !== 0) return { ok: false, refused };
    const keys = this.keys.user(who.a, who.u);
    const index = this.keys.nodeIndex(this.nodeKey);
    const entry = this.keys.indexEntry(who.a, who.u, instId);
    this.local.pending.add(instId);
    try {
      if (!local) await this.link.call('resume', () => cmd.sadd(index, entry));
      const reply = await this.link.call('resume', () => cmd.tcResume(keys.instances, keys.tombstones, instId, tokenHash, this.nodeKey, this.keys.nodeChannelPrefix));
      if (reply[0] !== 'ok') {
        if (!local) this.link.background('unindex', cmd.srem(index, entry));
        if (reply[0] === 'bad') return { ok: false };
        // Gone or kicked in Redis: a local copy is stale (its kick or release was lost).
        if (local) this.local.remove(local);
        return reply[0] === 'kicked' && isKickType(reply[1]) ? { ok: false, kickType: reply[1] } : { ok: false };
      }
      const previous = String(reply[1]);
      const hashEntry = JSON.parse(String(reply[2])) as InstanceHashEntry;
      if (local) {
        local.gen = hashEntry.g;
        return { ok: true, inst: this.attach(local, owner), moved: false };
      }
      if (previous !== this.nodeKey) {
        this.channel.sent('forget');
        this.link.background('unindex', cmd.srem(this.keys.nodeIndex(previous), entry));
      }
      const inst: ClusterInstance = {
        instId,
        sdkAppId: who.a,
        userID: who.u,
        platform: entryPlatform(hashEntry),
        loginSeq: hashEntry.o,
        loginAt: hashEntry.l,
        expireAt: hashEntry.e,
        token,
        tokenHash,
        gen: hashEntry.g,
        ackedSeq: 0,
        owner,
        detachTimer: null,
        expiryTimer: null,
      };
      this.addLocal(inst);
      this.opts.log.debug({ instId, from: previous }, 'instance resumed from another node');
      return { ok: true, inst, moved: true };
    } finally {
      this.local.pending.delete(instId);
    }
  }

  private attach(inst: ClusterInstance, owner: InstanceOwner): ClusterInstance {
    if (inst.detachTimer) clearTimeout(inst.detachTimer);
    inst.detachTimer = null;
    if (inst.owner && inst.owner !== owner) inst.owner.forget(inst.instId);
    inst.owner = owner;
    return inst;
  }

  detachOwner(owner: InstanceOwner, instIds: Iterable<number>): void {
    for (const instId of instIds) {
      const inst = this.local.get(instId);
      if (!inst || inst.owner !== owner) continue;
      inst.owner = null;
      const gen = inst.gen;
      if (this.link.available) this.link.background('detach', this.link.cmd.tcDetach(this.keys.user(inst.sdkAppId, inst.userID).instances, instId, this.nodeKey, gen));
      inst.detachTimer = setTimeout(() => {
        inst.detachTimer = null;
        if (this.local.get(instId) !== inst || inst.owner !== null) return;
        this.local.remove(inst);
        this.opts.events.onRelease?.(instId, 'resume-window');
        if (this.link.available) this.link.background('release', this.releaseInRedis(inst, String(gen)));
      }, this.opts.resumeWindowMs);
      inst.detachTimer.unref();
    }
  }

  async kickUser(sdkAppId: number, userID: string, type: KickType): Promise<KickRecord[]> {
    const keys = this.keys.user(sdkAppId, userID);
    const flat = await this.link.call('kick', () =>
      this.link.cmd.tcKickUser(keys.instances, keys.user, keys.tombstones, this.nodeKey, type, this.tombstoneTtlMs, this.keys.nodeChannelPrefix),
    );
    return this.handleKicks(sdkAppId, userID, flat);
  }

  deliver(sdkAppId: number, userID: string, message: UserPush, except?: Instance): number {
    const exceptId = except?.instId ?? 0;
    const pushed = this.pushLocal(sdkAppId, userID, message, exceptId);
    if (!this.link.available) {
      this.unrouted.note(sdkAppId, userID);
      return pushed;
    }
    const payload = this.channel.messagePayload(sdkAppId, userID, exceptId, message);
    this.link.background(
      'route',
      this.link.cmd.tcRoute(this.keys.user(sdkAppId, userID).instances, this.nodeKey, this.keys.nodeChannelPrefix, payload).then(
        (nodes) => {
          if (nodes > 0) this.channel.sent('msg', nodes);
        },
        (err: unknown) => {
          this.unrouted.note(sdkAppId, userID);
          throw err;
        },
      ),
    );
    return pushed;
  }

  /** Another node could not route pushes to these users: let this node's connected instances of them catch up. */
  private syncLocal(users: Array<[number, string]> | 'all'): void {
    const attached: ClusterInstance[] = [];
    const take = (list: Iterable<ClusterInstance>) => {
      for (const inst of list) if (inst.owner !== null) attached.push(inst);
    };
    if (users === 'all') take(this.local.values());
    else for (const [a, u] of users) if (typeof a === 'number' && typeof u === 'string') take(this.local.unorderedOf(a, u));
    if (attached.length > 0) this.opts.events.onResync?.(attached);
  }

  /** Push order does not matter: the user's instances unsorted and uncopied (this is the relay path). */
  private pushLocal(sdkAppId: number, userID: string, message: UserPush, exceptId: number): number {
    return pushToOwners(this.local.unorderedOf(sdkAppId, userID), message, exceptId);
  }

  async online(sdkAppId: number, userIDs: string[]): Promise<OnlineInstance[][]> {
    const all = await this.link.call('online', () => Promise.all(userIDs.map((u) => this.link.cmd.hgetall(this.keys.user(sdkAppId, u).instances))));
    return all.map((hash) =>
      Object.entries(hash)
        .map(([id, raw]) => ({ id: Number(id), entry: JSON.parse(raw) as InstanceHashEntry }))
        .sort((a, b) => a.entry.o - b.entry.o)
        .map(({ id, entry }) => ({ instId: id, platform: entryPlatform(entry), loginOrder: entry.o, loginAt: entry.l, connected: entry.c === 1 })),
    );
  }

  stats(): Promise<ClusterStats> {
    return this.liveness.clusterStats();
  }

  loginSettings(app: AppConfig): Promise<LoginSettings> {
    return this.settings.get(app);
  }

  setLoginSettings(app: AppConfig, change: Partial<LoginSettings>): Promise<LoginSettings> {
    return this.settings.set(app, change);
  }
}
