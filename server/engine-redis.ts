/**
 * The Redis engine: this process is one node of a cluster that shares instances, limits,
 * kicks, revocations, login settings and message routing over one Redis (Centrifugo's Redis
 * engine is the model). Design and guarantees: docs/scaling.md.
 *
 * - The registry is in Redis and changes only through the atomic Lua scripts of
 *   redis-scripts.ts (one per user and operation). This node keeps a local copy of the
 *   instances it owns (attached or inside their resume window): their sockets, timers
 *   (resume window, UserSig expiry) and mailbox positions.
 * - Every node subscribes to its own channel `<prefix>node:<nodeKey>`, where the scripts
 *   publish kicks and "forget" notices for its instances and other nodes publish message
 *   pushes, and to `<prefix>all` (login settings). PUB/SUB is at-most-once: what is lost is
 *   repaired by the resume path (tombstones in Redis report kicks), by mailbox sync (a lost
 *   push only delays a message) and by a reconcile pass after every reconnect to Redis.
 * - Liveness: each node refreshes `<prefix>node:<nodeKey>` (PX `nodeTimeoutMs`) every
 *   `nodeHeartbeatMs`; any node that finds another node's key gone releases that node's
 *   instances (only those the dead node still owns: a resumed one has moved on).
 * - Redis unreachable: logins, REST calls and resumes that need Redis fail fast with 9030
 *   (`enableOfflineQueue: false`, short command timeout); connected sessions keep working
 *   (their instances are local); the node reconciles (or, if Redis lost its data,
 *   re-registers everything it holds) when Redis is back.
 */
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { Redis, Cluster } from 'ioredis';
import { Counter, Gauge, type Registry as PromRegistry } from 'prom-client';
import { KICK_TYPES, PLATFORMS, isPlatform, type KickType, type Platform, type WireMessage } from '../src/protocol/frames.js';
import { LOGIN_POLICIES, type AppConfig, type LoginPolicy } from './config.js';
import {
  EngineUnavailableError,
  RevokedError,
  pushToOwners,
  type ClusterStats,
  type InstanceEngine,
  type InstanceEngineEvents,
  type LocalInstances,
  type LoginRequest,
  type LoginSettings,
  type NodeStats,
  type OnlineInstance,
  type ResumeResult,
} from './engine.js';
import { redactUrl, type Logger } from './log.js';
import { SCRIPTS, type ScriptCommands } from './redis-scripts.js';
import { userKey, type Instance, type InstanceOwner, type KickRecord } from './registry.js';

/** Redis commands that do not answer within this time fail (9030 for the caller). */
const COMMAND_TIMEOUT_MS = 2_000;
/** Kicked-instance tombstones are kept this long beyond the resume window (as the memory engine). */
const TOMBSTONE_EXTRA_MS = 60_000;
/** Longest delay Node's setTimeout accepts; longer expiries re-arm. */
const MAX_TIMER_MS = 2_147_483_647;
/** How long a kick for an instance this node has not registered yet is remembered. */
const EARLY_KICK_MS = 30_000;
/** Upper bound of the instance-id index TTL. */
const MAX_INDEX_TTL_MS = 400 * 86_400_000;

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
  metrics: PromRegistry;
  events: InstanceEngineEvents & {
    /** Pushes this node made for messages published by other nodes. */
    onPush?(count: number): void;
    /** After a reconnect to Redis: pushes may have been lost; the server lets these instances catch up. */
    onResync?(instances: Instance[]): void;
  };
  /** Open connections of this node (stats). */
  connections: () => number;
}

interface ClusterInstance extends Instance {
  /** Generation in Redis: bumped by every resume; releases and detaches name it. */
  gen: number;
  tokenHash: string;
}

interface InstanceRecord {
  p: string;
  n: string;
  o: number;
  e: number;
  l: number;
  t: string;
  c: number;
  g: number;
}

type RedisClient = Redis | Cluster;
type Commands = RedisClient & ScriptCommands;

/** A pub/sub message between nodes. */
type NodeMessage =
  | { t: 'kick'; id: string; k: KickType }
  | { t: 'forget'; id: string }
  | { t: 'msg'; a: number; u: string; x: number; m: WireMessage }
  | { t: 'settings'; a: number; max: number; policy: LoginPolicy };

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}


function isKickType(value: unknown): value is KickType {
  return (KICK_TYPES as readonly unknown[]).includes(value);
}

/** Turn a Redis failure into 9030 (the caller fails fast); other errors pass through. */
function unavailable(err: unknown): Error {
  if (err instanceof EngineUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EngineUnavailableError(`the cluster engine (Redis) is unavailable: ${message}`);
}

export class RedisEngine implements InstanceEngine {
  readonly kind = 'redis';
  /** Node key in Redis: the display id plus a boot id, so a restarted node never inherits the old one's instances. */
  readonly nodeKey: string;
  private readonly cmd: Commands;
  private readonly sub: RedisClient;
  private readonly byId = new Map<number, ClusterInstance>();
  private readonly byUser = new Map<string, Map<number, ClusterInstance>>();
  /** Kicks that arrived for instances whose login (or resume) on this node has not finished yet. */
  private readonly earlyKicks = new Map<number, { type: KickType; at: number }>();
  /** Instances being logged in or resumed here right now: the reconcile pass leaves them alone. */
  private readonly pending = new Set<number>();
  private readonly tombstoneTtlMs: number;
  private epoch: string | null = null;
  private everReady = false;
  private closed = false;
  private heartbeatTimer: NodeJS.Timeout | null = null;
  private statsTimer: NodeJS.Timeout | null = null;
  private reconciling: Promise<void> | null = null;
  private reconcileAgain = false;
  private reaping = false;
  private outageLogged = false;
  private readonly gauges: { available: Gauge; nodes: Gauge; pubsub: Counter<'direction' | 'type'>; reaped: Counter; errors: Counter<'op'> };

  private constructor(private readonly opts: RedisEngineOptions) {
    this.nodeKey = `${opts.node}.${randomBytes(3).toString('hex')}`;
    this.tombstoneTtlMs = opts.resumeWindowMs + TOMBSTONE_EXTRA_MS;
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      protocol: 2 as const,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1_000),
      scripts: SCRIPTS,
    };
    if (opts.url.startsWith('redis+cluster://')) {
      const nodes = opts.url.slice('redis+cluster://'.length).split(',').map((hostPort) => {
        const [host, port] = hostPort.split(':');
        return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
      });
      const clusterOptions = { lazyConnect: true, enableOfflineQueue: false, redisOptions: { ...common, lazyConnect: undefined }, scripts: common.scripts };
      this.cmd = new Cluster(nodes, clusterOptions) as Commands;
      this.sub = new Cluster(nodes, clusterOptions);
    } else {
      this.cmd = new Redis(opts.url, { ...common, connectionName: `tabchat:${this.nodeKey}` }) as Commands;
      this.sub = new Redis(opts.url, { ...common, connectionName: `tabchat-sub:${this.nodeKey}` });
    }
    const registers = [opts.metrics];
    this.gauges = {
      available: new Gauge({ name: 'tabchat_engine_available', help: 'Whether this node reaches the cluster engine (Redis): 1 or 0', registers }),
      nodes: new Gauge({ name: 'tabchat_cluster_nodes', help: 'Live nodes of the cluster, as last seen by this node', registers }),
      pubsub: new Counter({
        name: 'tabchat_cluster_pubsub_messages_total',
        help: 'Node-to-node PUB/SUB messages by direction (in, out) and type (kick, forget, msg, settings)',
        labelNames: ['direction', 'type'],
        registers,
      }),
      reaped: new Counter({ name: 'tabchat_cluster_reaped_instances_total', help: 'Instances of dead nodes released by this node', registers }),
      errors: new Counter({ name: 'tabchat_engine_errors_total', help: 'Cluster engine (Redis) operations that failed, by operation', labelNames: ['op'], registers }),
    };
  }

  /** Connect to Redis, load the scripts and settings, subscribe, and join the cluster. */
  static async start(opts: RedisEngineOptions): Promise<RedisEngine> {
    const engine = new RedisEngine(opts);
    try {
      await engine.connect();
    } catch (err) {
      engine.cmd.disconnect();
      engine.sub.disconnect();
      throw new Error(`cannot connect to redis ${redactUrl(opts.url)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    return engine;
  }

  // ------------------------------------------------------------------ keys

  private tag(sdkAppId: number, userID: string): string {
    return `${this.opts.prefix}{${sdkAppId}:${encodeURIComponent(userID)}}`;
  }
  private keys(sdkAppId: number, userID: string): { i: string; u: string; k: string } {
    const t = this.tag(sdkAppId, userID);
    return { i: `${t}:i`, u: `${t}:u`, k: `${t}:k` };
  }
  private idKey(instId: number | string): string {
    return `${this.opts.prefix}iid:${instId}`;
  }
  private nodeInstancesKey(nodeKey: string): string {
    return `${this.opts.prefix}ni:${nodeKey}`;
  }
  private nodeKeyOf(nodeKey: string): string {
    return `${this.opts.prefix}node:${nodeKey}`;
  }
  private get nodesKey(): string {
    return `${this.opts.prefix}nodes`;
  }
  private get channelPrefix(): string {
    return `${this.opts.prefix}node:`;
  }
  private get broadcastChannel(): string {
    return `${this.opts.prefix}all`;
  }
  private settingsKey(sdkAppId: number): string {
    return `${this.opts.prefix}settings:${sdkAppId}`;
  }
  private get epochKey(): string {
    return `${this.opts.prefix}epoch`;
  }
  /** Entry of an instance in its node's index set (what the reaper of a dead node walks). */
  private indexEntry(sdkAppId: number, userID: string, instId: number | string): string {
    return JSON.stringify({ a: sdkAppId, u: userID, id: String(instId) });
  }

  // ------------------------------------------------------------------ lifecycle

  private async connect(): Promise<void> {
    this.cmd.on('error', (err: Error) => this.redisError('command', err));
    this.sub.on('error', (err: Error) => this.redisError('subscriber', err));
    this.cmd.on('ready', () => this.redisReady('command'));
    this.sub.on('ready', () => this.redisReady('subscriber'));
    this.cmd.on('close', () => this.redisClosed());
    this.sub.on('message', (_channel: string, text: string) => this.subOnMessage(text));
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
    await this.sub.subscribe(this.channelPrefix + this.nodeKey, this.broadcastChannel);
    this.epoch = await this.ensureEpoch();
    await this.loadSettings();
    await this.heartbeat();
    this.everReady = true;
    this.gauges.available.set(1);
    this.heartbeatTimer = setInterval(() => void this.tick(), this.opts.heartbeatMs);
    this.heartbeatTimer.unref();
    this.opts.log.info({ engine: 'redis', redis: redactUrl(this.opts.url), nodeKey: this.nodeKey, prefix: this.opts.prefix }, 'joined the cluster');
  }

  get available(): boolean {
    return !this.closed && this.cmd.status === 'ready';
  }

  private redisError(which: string, err: Error): void {
    if (!this.outageLogged) this.opts.log.warn({ redis: which, err: err.message }, 'cluster engine (Redis) error');
    this.outageLogged = true;
  }

  private redisClosed(): void {
    this.gauges.available.set(0);
    if (!this.closed && this.everReady && !this.outageLogged) {
      this.opts.log.warn('lost the connection to the cluster engine (Redis): new logins fail with 9030 until it is back');
      this.outageLogged = true;
    }
  }

  private redisReady(which: string): void {
    if (this.cmd.status === 'ready') this.gauges.available.set(1);
    if (!this.everReady || this.closed) return;
    this.opts.log.info({ redis: which }, 'cluster engine (Redis) reachable again: reconciling');
    this.outageLogged = false;
    void this.reconcile();
  }

  private check(): void {
    if (this.closed) throw new EngineUnavailableError('the server is shutting down');
    if (this.cmd.status !== 'ready') throw new EngineUnavailableError();
  }

  /** Run a Redis call for a caller that must fail fast: any failure becomes 9030. */
  private async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (err) {
      this.gauges.errors.inc({ op });
      throw unavailable(err);
    }
  }

  /** Fire-and-forget Redis work: failures are counted and logged at debug; reconcile repairs. */
  private background(op: string, work: Promise<unknown>): void {
    work.catch((err: unknown) => {
      this.gauges.errors.inc({ op });
      this.opts.log.debug({ op, err: err instanceof Error ? err.message : String(err) }, 'cluster engine call failed (repaired on reconnect)');
    });
  }

  private async ensureEpoch(): Promise<string | null> {
    await this.cmd.set(this.epochKey, randomBytes(8).toString('hex'), 'NX');
    return this.cmd.get(this.epochKey);
  }

  /** Cluster-wide login settings win over the config file: they outlive node restarts. */
  private async loadSettings(): Promise<void> {
    for (const app of this.opts.apps.values()) {
      const key = this.settingsKey(app.sdkAppId);
      await this.cmd.hsetnx(key, 'max', String(app.maxInstancesPerPlatform));
      await this.cmd.hsetnx(key, 'policy', app.loginPolicy);
      this.applySettings(app, await this.cmd.hgetall(key));
    }
  }

  private applySettings(app: AppConfig, raw: { max?: string | number; policy?: string }): LoginSettings {
    const max = Number(raw.max);
    if (Number.isInteger(max) && max >= 1 && max <= 1000) app.maxInstancesPerPlatform = max;
    if ((LOGIN_POLICIES as readonly unknown[]).includes(raw.policy)) app.loginPolicy = raw.policy as LoginPolicy;
    return { maxInstancesPerPlatform: app.maxInstancesPerPlatform, loginPolicy: app.loginPolicy };
  }

  private localStats(): { node: string; connections: number; instances: { [p: string]: number }; at: number } {
    const instances: { [p: string]: number } = {};
    for (const [p, n] of this.countByPlatform()) instances[p] = n;
    return { node: this.opts.node, connections: this.opts.connections(), instances, at: Date.now() };
  }

  /** Refresh this node's liveness key (with its stats) and its membership of the node set. */
  private async heartbeat(ttlMs = this.opts.nodeTimeoutMs): Promise<void> {
    await Promise.all([
      this.cmd.set(this.nodeKeyOf(this.nodeKey), JSON.stringify(this.localStats()), 'PX', ttlMs),
      this.cmd.sadd(this.nodesKey, this.nodeKey),
    ]);
  }

  /** Soon after a local change, so get_stats on other nodes is fresh. */
  private statsChanged(): void {
    if (this.statsTimer || this.closed) return;
    this.statsTimer = setTimeout(() => {
      this.statsTimer = null;
      if (this.available) this.background('heartbeat', this.heartbeat());
    }, 50);
    this.statsTimer.unref();
  }

  private async tick(): Promise<void> {
    if (!this.available) return;
    try {
      await this.heartbeat();
      await this.reap();
    } catch (err) {
      this.gauges.errors.inc({ op: 'heartbeat' });
      this.opts.log.debug({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed');
    }
  }

  /** Release the instances of nodes whose liveness key expired (one reaper per dead node). */
  private async reap(): Promise<void> {
    if (this.reaping) return;
    this.reaping = true;
    try {
      const nodes = await this.cmd.smembers(this.nodesKey);
      let live = 0;
      for (const dead of nodes) {
        if (dead === this.nodeKey || (await this.cmd.exists(this.nodeKeyOf(dead))) === 1) {
          live++;
          continue;
        }
        const lock = await this.cmd.set(`${this.opts.prefix}reap:${dead}`, this.nodeKey, 'PX', 30_000, 'NX');
        if (lock !== 'OK') continue;
        const released = await this.releaseIndexed(dead, () => false);
        if ((await this.cmd.scard(this.nodeInstancesKey(dead))) === 0) await this.cmd.srem(this.nodesKey, dead);
        this.gauges.reaped.inc(released);
        this.opts.log.warn({ deadNode: dead, released }, 'released the instances of a node that stopped heartbeating');
      }
      this.gauges.nodes.set(live);
    } finally {
      this.reaping = false;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.statsTimer) clearTimeout(this.statsTimer);
    const detached: Array<Promise<unknown>> = [];
    for (const inst of this.byId.values()) {
      if (inst.detachTimer) clearTimeout(inst.detachTimer);
      if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
      inst.detachTimer = null;
      inst.expiryTimer = null;
      if (inst.owner && this.cmd.status === 'ready') {
        detached.push(this.cmd.tcDetach(this.keys(inst.sdkAppId, inst.userID).i, inst.instId, this.nodeKey, inst.gen).catch(() => 0));
      }
      this.opts.events.onRelease?.(inst.instId, 'shutdown');
    }
    // Leave the instances resumable on other nodes: this node's key lives one more resume
    // window, after which any node releases what was not resumed elsewhere.
    if (this.cmd.status === 'ready') {
      await Promise.allSettled([...detached, this.heartbeat(Math.max(this.opts.resumeWindowMs, 1))]);
    }
    this.closed = true;
    this.byId.clear();
    this.byUser.clear();
    this.gauges.available.set(0);
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  // ------------------------------------------------------------------ local state

  readonly local: LocalInstances = (() => {
    const engine = this;
    return {
      get size() {
        return engine.byId.size;
      },
      get: (instId: number) => engine.byId.get(instId),
      instancesOf: (sdkAppId: number, userID: string) => engine.localOf(sdkAppId, userID),
    };
  })();

  private localOf(sdkAppId: number, userID: string): ClusterInstance[] {
    return [...(this.byUser.get(userKey(sdkAppId, userID))?.values() ?? [])].sort((a, b) => a.loginSeq - b.loginSeq);
  }

  countByPlatform(): Map<Platform, number> {
    const counts = new Map<Platform, number>();
    for (const inst of this.byId.values()) counts.set(inst.platform, (counts.get(inst.platform) ?? 0) + 1);
    return counts;
  }

  private addLocal(inst: ClusterInstance): void {
    this.byId.set(inst.instId, inst);
    const key = userKey(inst.sdkAppId, inst.userID);
    let list = this.byUser.get(key);
    if (!list) this.byUser.set(key, (list = new Map()));
    list.set(inst.instId, inst);
    this.armExpiry(inst);
    this.statsChanged();
    const early = this.earlyKicks.get(inst.instId);
    if (early) {
      this.earlyKicks.delete(inst.instId);
      // After the caller has answered the login/resume: the client must know the instance first.
      setImmediate(() => this.kickLocal(inst.instId, early.type));
    }
  }

  private removeLocal(inst: ClusterInstance): void {
    if (inst.detachTimer) clearTimeout(inst.detachTimer);
    if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
    inst.detachTimer = null;
    inst.expiryTimer = null;
    if (this.byId.get(inst.instId) !== inst) return;
    this.byId.delete(inst.instId);
    const key = userKey(inst.sdkAppId, inst.userID);
    const list = this.byUser.get(key);
    list?.delete(inst.instId);
    if (list && list.size === 0) this.byUser.delete(key);
    this.statsChanged();
  }

  /** A kick decided by a script (here or on another node) for an instance of this node. */
  private kickLocal(instId: number, type: KickType): void {
    const inst = this.byId.get(instId);
    if (!inst) {
      if (this.pending.has(instId) || this.earlyKicks.size < 10_000) this.earlyKicks.set(instId, { type, at: Date.now() });
      this.pruneEarlyKicks();
      return;
    }
    this.removeLocal(inst);
    this.background('unindex', this.cmd.srem(this.nodeInstancesKey(this.nodeKey), this.indexEntry(inst.sdkAppId, inst.userID, instId)));
    inst.owner?.deliverKick(instId, type);
  }

  private pruneEarlyKicks(): void {
    const limit = Date.now() - EARLY_KICK_MS;
    for (const [id, k] of this.earlyKicks) if (k.at < limit) this.earlyKicks.delete(id);
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
      this.background('tombstone', this.cmd.pexpire(this.idKey(id), this.tombstoneTtlMs));
      if (node === this.nodeKey) this.kickLocal(instId, type);
      else {
        this.gauges.pubsub.inc({ direction: 'out', type: 'kick' });
        this.background('unindex', this.cmd.srem(this.nodeInstancesKey(node), this.indexEntry(sdkAppId, userID, id)));
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
    if (this.byId.get(inst.instId) !== inst) return;
    const keys = this.keys(inst.sdkAppId, inst.userID);
    try {
      this.check();
      const flat = await this.cmd.tcExpire(keys.i, keys.k, inst.instId, this.nodeKey, this.tombstoneTtlMs, this.channelPrefix, Date.now());
      this.handleKicks(inst.sdkAppId, inst.userID, flat);
    } catch {
      // Redis is away: kick here; the reconcile pass removes it from Redis later.
      this.gauges.errors.inc({ op: 'expire' });
      this.opts.events.onKick?.({ instId: inst.instId, sdkAppId: inst.sdkAppId, userID: inst.userID, platform: inst.platform, type: 'userSigExpired' });
      this.kickLocal(inst.instId, 'userSigExpired');
    }
  }

  // ------------------------------------------------------------------ engine API

  async isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): Promise<boolean> {
    const rb = await this.call('revocation', () => this.cmd.hget(this.keys(sdkAppId, userID).u, 'rb'));
    return rb !== null && issuedAtSec < Number(rb);
  }

  async login(app: AppConfig, req: LoginRequest, owner: InstanceOwner): Promise<{ inst: Instance; kicked: KickRecord[] }> {
    this.check();
    const settings = await this.loginSettings(app);
    const keys = this.keys(app.sdkAppId, req.userID);
    const token = randomBytes(18).toString('base64url');
    const tokenHash = sha256(token);
    const indexTtl = Math.min(Math.max(req.expireAt - Date.now(), 0), MAX_INDEX_TTL_MS) + this.tombstoneTtlMs;
    // A random id, claimed cluster-wide first (collisions, also with tombstoned ids, retry).
    let instId = 0;
    for (let attempt = 0; instId === 0; attempt++) {
      if (attempt >= 5) throw new EngineUnavailableError('could not allocate an instance id');
      const candidate = randomInt(1, 2 ** 48 - 1);
      const claimed = await this.call('login', () =>
        this.cmd.set(this.idKey(candidate), JSON.stringify({ a: app.sdkAppId, u: req.userID }), 'PX', indexTtl, 'NX'),
      );
      if (claimed === 'OK') instId = candidate;
    }
    const entry = this.indexEntry(app.sdkAppId, req.userID, instId);
    this.pending.add(instId);
    try {
      let reply: unknown[];
      try {
        // Indexed before it exists: a crash right after the script still leaves it reapable.
        await this.call('login', () => this.cmd.sadd(this.nodeInstancesKey(this.nodeKey), entry));
        reply = await this.call('login', () =>
          this.cmd.tcLogin(
            keys.i, keys.u, keys.k,
            instId, req.platform, this.nodeKey, req.expireAt, tokenHash, req.issuedAtSec,
            settings.loginPolicy, settings.maxInstancesPerPlatform, this.tombstoneTtlMs, this.channelPrefix,
          ),
        );
      } catch (err) {
        this.background('login-undo', Promise.all([this.cmd.del(this.idKey(instId)), this.cmd.srem(this.nodeInstancesKey(this.nodeKey), entry)]));
        throw err;
      }
      if (reply[0] !== 'ok') {
        this.background('login-undo', Promise.all([this.cmd.del(this.idKey(instId)), this.cmd.srem(this.nodeInstancesKey(this.nodeKey), entry)]));
        if (reply[0] === 'revoked') throw new RevokedError();
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
      this.pending.delete(instId);
    }
  }

  async logout(instId: number, owner: InstanceOwner): Promise<boolean> {
    const inst = this.byId.get(instId);
    if (!inst || inst.owner !== owner) return false;
    this.removeLocal(inst);
    this.opts.events.onRelease?.(instId, 'logout');
    // Best effort now; if Redis is away the reconcile pass releases it later.
    await this.releaseInRedis(inst, String(inst.gen)).catch((err: unknown) => {
      this.gauges.errors.inc({ op: 'logout' });
      this.opts.log.debug({ instId, err: err instanceof Error ? err.message : String(err) }, 'logout not recorded in Redis yet');
    });
    return true;
  }

  private async releaseInRedis(inst: { sdkAppId: number; userID: string; instId: number }, gen: string): Promise<void> {
    this.check();
    const done = await this.cmd.tcRelease(this.keys(inst.sdkAppId, inst.userID).i, inst.instId, this.nodeKey, gen);
    await Promise.all([
      done === 1 ? this.cmd.del(this.idKey(inst.instId)) : Promise.resolve(0),
      this.cmd.srem(this.nodeInstancesKey(this.nodeKey), this.indexEntry(inst.sdkAppId, inst.userID, inst.instId)),
    ]);
  }

  async resume(instId: number, token: string, owner: InstanceOwner): Promise<ResumeResult> {
    const local = this.byId.get(instId);
    const tokenHash = sha256(token);
    if (!this.available) {
      // Degraded: a resume on the node that holds the instance needs no one else.
      if (local && local.tokenHash === tokenHash) return { ok: true, inst: this.attach(local, owner), moved: false };
      throw new EngineUnavailableError();
    }
    let who: { a: number; u: string } | null = local ? { a: local.sdkAppId, u: local.userID } : null;
    if (!who) {
      const raw = await this.call('resume', () => this.cmd.get(this.idKey(instId)));
      if (raw === null) return { ok: false };
      try {
        who = JSON.parse(raw) as { a: number; u: string };
      } catch {
        return { ok: false };
      }
    }
    const keys = this.keys(who.a, who.u);
    const entry = this.indexEntry(who.a, who.u, instId);
    this.pending.add(instId);
    try {
      if (!local) await this.call('resume', () => this.cmd.sadd(this.nodeInstancesKey(this.nodeKey), entry));
      const reply = await this.call('resume', () => this.cmd.tcResume(keys.i, keys.k, instId, tokenHash, this.nodeKey, this.channelPrefix));
      if (reply[0] !== 'ok') {
        if (!local) this.background('unindex', this.cmd.srem(this.nodeInstancesKey(this.nodeKey), entry));
        if (reply[0] === 'bad') return { ok: false };
        // Gone or kicked in Redis: a local copy is stale (its kick or release was lost).
        if (local) this.removeLocal(local);
        return reply[0] === 'kicked' && isKickType(reply[1]) ? { ok: false, kickType: reply[1] } : { ok: false };
      }
      const previous = String(reply[1]);
      const rec = JSON.parse(String(reply[2])) as InstanceRecord;
      if (local) {
        local.gen = rec.g;
        return { ok: true, inst: this.attach(local, owner), moved: false };
      }
      if (previous !== this.nodeKey) {
        this.gauges.pubsub.inc({ direction: 'out', type: 'forget' });
        this.background('unindex', this.cmd.srem(this.nodeInstancesKey(previous), entry));
      }
      const inst: ClusterInstance = {
        instId,
        sdkAppId: who.a,
        userID: who.u,
        platform: isPlatform(rec.p) ? rec.p : 'Web',
        loginSeq: rec.o,
        loginAt: rec.l,
        expireAt: rec.e,
        token,
        tokenHash,
        gen: rec.g,
        ackedSeq: 0,
        owner,
        detachTimer: null,
        expiryTimer: null,
      };
      this.addLocal(inst);
      this.opts.log.debug({ instId, from: previous }, 'instance resumed from another node');
      return { ok: true, inst, moved: true };
    } finally {
      this.pending.delete(instId);
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
      const inst = this.byId.get(instId);
      if (!inst || inst.owner !== owner) continue;
      inst.owner = null;
      const gen = inst.gen;
      if (this.available) this.background('detach', this.cmd.tcDetach(this.keys(inst.sdkAppId, inst.userID).i, instId, this.nodeKey, gen));
      inst.detachTimer = setTimeout(() => {
        inst.detachTimer = null;
        if (this.byId.get(instId) !== inst || inst.owner !== null) return;
        this.removeLocal(inst);
        this.opts.events.onRelease?.(instId, 'resume-window');
        if (this.available) this.background('release', this.releaseInRedis(inst, String(gen)));
      }, this.opts.resumeWindowMs);
      inst.detachTimer.unref();
    }
  }

  async kickUser(sdkAppId: number, userID: string, type: KickType): Promise<KickRecord[]> {
    const keys = this.keys(sdkAppId, userID);
    const flat = await this.call('kick', () => this.cmd.tcKickUser(keys.i, keys.u, keys.k, this.nodeKey, type, this.tombstoneTtlMs, this.channelPrefix));
    return this.handleKicks(sdkAppId, userID, flat);
  }

  deliver(sdkAppId: number, userID: string, message: WireMessage, except?: Instance): number {
    const pushed = this.pushLocal(sdkAppId, userID, message, except?.instId ?? 0);
    if (this.available) {
      const payload = JSON.stringify({ t: 'msg', a: sdkAppId, u: userID, x: except?.instId ?? 0, m: message });
      this.background(
        'route',
        this.cmd.tcRoute(this.keys(sdkAppId, userID).i, this.nodeKey, this.channelPrefix, payload).then((nodes) => {
          if (nodes > 0) this.gauges.pubsub.inc({ direction: 'out', type: 'msg' }, nodes);
        }),
      );
    }
    return pushed;
  }

  /** Push order does not matter: the user's instances unsorted and uncopied (this is the relay path). */
  private pushLocal(sdkAppId: number, userID: string, message: WireMessage, exceptId: number): number {
    return pushToOwners(this.byUser.get(userKey(sdkAppId, userID))?.values() ?? [], message, exceptId);
  }

  async online(sdkAppId: number, userIDs: string[]): Promise<OnlineInstance[][]> {
    const all = await this.call('online', () => Promise.all(userIDs.map((u) => this.cmd.hgetall(this.keys(sdkAppId, u).i))));
    return all.map((hash) =>
      Object.entries(hash)
        .map(([id, raw]) => ({ id: Number(id), rec: JSON.parse(raw) as InstanceRecord }))
        .sort((a, b) => a.rec.o - b.rec.o)
        .map(({ id, rec }) => ({ instId: id, platform: isPlatform(rec.p) ? rec.p : 'Web', loginAt: rec.l, connected: rec.c === 1 })),
    );
  }

  async stats(): Promise<ClusterStats> {
    const others = await this.call('stats', async () => {
      const nodes = (await this.cmd.smembers(this.nodesKey)).filter((n) => n !== this.nodeKey);
      return Promise.all(nodes.map((n) => this.cmd.get(this.nodeKeyOf(n))));
    });
    const mine = this.localStats();
    const nodes: NodeStats[] = [];
    for (const raw of [JSON.stringify(mine), ...others]) {
      if (raw === null) continue; // dead, about to be reaped
      try {
        const s = JSON.parse(raw) as { node: string; connections: number; instances: { [p: string]: number } };
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

  async loginSettings(app: AppConfig): Promise<LoginSettings> {
    const raw = await this.call('settings', () => this.cmd.hgetall(this.settingsKey(app.sdkAppId)));
    return this.applySettings(app, raw);
  }

  async setLoginSettings(app: AppConfig, change: Partial<LoginSettings>): Promise<LoginSettings> {
    const fields: string[] = [];
    if (change.maxInstancesPerPlatform !== undefined) fields.push('max', String(change.maxInstancesPerPlatform));
    if (change.loginPolicy !== undefined) fields.push('policy', change.loginPolicy);
    const key = this.settingsKey(app.sdkAppId);
    const raw = await this.call('settings', async () => {
      if (fields.length > 0) await this.cmd.hset(key, ...fields);
      return this.cmd.hgetall(key);
    });
    const settings = this.applySettings(app, raw);
    // Every login reads the settings from Redis; the broadcast only refreshes the other
    // nodes' copies (get_login_settings while Redis is away, stats).
    const message: NodeMessage = { t: 'settings', a: app.sdkAppId, max: settings.maxInstancesPerPlatform, policy: settings.loginPolicy };
    this.background('settings', this.cmd.publish(this.broadcastChannel, JSON.stringify(message)));
    this.gauges.pubsub.inc({ direction: 'out', type: 'settings' });
    return settings;
  }

  // ------------------------------------------------------------------ node channel

  private subOnMessage(text: string): void {
    let msg: NodeMessage;
    try {
      msg = JSON.parse(text) as NodeMessage;
    } catch {
      return;
    }
    this.gauges.pubsub.inc({ direction: 'in', type: msg.t });
    switch (msg.t) {
      case 'kick':
        if (isKickType(msg.k)) this.kickLocal(Number(msg.id), msg.k);
        return;
      case 'forget': {
        const inst = this.byId.get(Number(msg.id));
        if (!inst) return;
        // Resumed on another node (our socket was half-open, or the client moved).
        this.removeLocal(inst);
        this.opts.events.onRelease?.(inst.instId, 'moved');
        inst.owner?.forget(inst.instId);
        return;
      }
      case 'msg': {
        const pushed = this.pushLocal(msg.a, msg.u, msg.m, msg.x);
        if (pushed > 0) this.opts.events.onPush?.(pushed);
        return;
      }
      case 'settings': {
        const app = this.opts.apps.get(msg.a);
        if (app) this.applySettings(app, { max: msg.max, policy: msg.policy });
        return;
      }
    }
  }

  // ------------------------------------------------------------------ recovery

  /**
   * After a reconnect to Redis. If Redis lost its data (new epoch): re-register every
   * instance this node holds, its settings and itself. Otherwise repair what PUB/SUB or
   * failed calls lost: kicks (tombstones), moves (forget), releases done here while Redis
   * was away, and instances the cluster released behind our back (their clients reconnect).
   * Then let connected instances catch up on pushes they may have missed.
   */
  private reconcile(): Promise<void> {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      do {
        this.reconcileAgain = false;
        try {
          await this.reconcileOnce();
        } catch (err) {
          this.gauges.errors.inc({ op: 'reconcile' });
          this.opts.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'reconcile with the cluster engine failed; retrying at the next reconnect');
          break;
        }
      } while (this.reconcileAgain && this.available);
    })().finally(() => {
      this.reconciling = null;
    });
    return this.reconciling;
  }

  private async reconcileOnce(): Promise<void> {
    if (!this.available) return;
    const epoch = await this.cmd.get(this.epochKey);
    if (epoch !== this.epoch) {
      this.epoch = await this.ensureEpoch();
      const restored = await this.restoreAll();
      this.opts.log.warn({ restored }, 'the cluster engine (Redis) lost its data: re-registered the instances of this node');
    } else {
      await this.verifyAll();
    }
    await this.heartbeat();
    const attached = [...this.byId.values()].filter((i) => i.owner !== null);
    if (attached.length > 0) this.opts.events.onResync?.(attached);
  }

  private async restoreAll(): Promise<number> {
    await this.loadSettings();
    let restored = 0;
    await Promise.all(
      [...this.byId.values()].map(async (inst) => {
        const keys = this.keys(inst.sdkAppId, inst.userID);
        const rec: InstanceRecord = {
          p: inst.platform,
          n: this.nodeKey,
          o: inst.loginSeq,
          e: inst.expireAt,
          l: inst.loginAt,
          t: inst.tokenHash,
          c: inst.owner ? 1 : 0,
          g: inst.gen,
        };
        const ttl = Math.min(Math.max(inst.expireAt - Date.now(), 0), MAX_INDEX_TTL_MS) + this.tombstoneTtlMs;
        const [done] = await Promise.all([
          this.cmd.tcRestore(keys.i, keys.u, inst.instId, JSON.stringify(rec)),
          this.cmd.set(this.idKey(inst.instId), JSON.stringify({ a: inst.sdkAppId, u: inst.userID }), 'PX', ttl),
          this.cmd.sadd(this.nodeInstancesKey(this.nodeKey), this.indexEntry(inst.sdkAppId, inst.userID, inst.instId)),
        ]);
        if (done === 1) restored++;
      }),
    );
    return restored;
  }

  private async verifyAll(): Promise<void> {
    const now = Date.now();
    await Promise.all(
      [...this.byId.values()].map(async (inst) => {
        const keys = this.keys(inst.sdkAppId, inst.userID);
        const [raw, tomb] = await Promise.all([this.cmd.hget(keys.i, String(inst.instId)), this.cmd.hget(keys.k, String(inst.instId))]);
        if (this.byId.get(inst.instId) !== inst) return;
        if (raw !== null) {
          const rec = JSON.parse(raw) as InstanceRecord;
          if (rec.n !== this.nodeKey) {
            // Resumed elsewhere; the forget notice was lost.
            this.removeLocal(inst);
            this.opts.events.onRelease?.(inst.instId, 'moved');
            inst.owner?.forget(inst.instId);
          } else if (inst.owner === null && rec.c === 1) {
            // Detached here while Redis was away.
            this.background('detach', this.cmd.tcDetach(keys.i, inst.instId, this.nodeKey, inst.gen));
          }
          return;
        }
        const t = tomb === null ? null : (JSON.parse(tomb) as { k: unknown; x: number });
        if (t && t.x > now && isKickType(t.k)) {
          this.kickLocal(inst.instId, t.k); // the kick notice was lost
          return;
        }
        // Released by the cluster (this node was taken for dead): the client logs in again.
        this.removeLocal(inst);
        this.opts.events.onRelease?.(inst.instId, 'node-dead');
        this.opts.log.warn({ instId: inst.instId }, 'instance no longer registered in the cluster; its connection must reconnect');
        inst.owner?.lost?.(inst.instId);
      }),
    );
    // Instances Redis still gives to this node that this node no longer holds (released
    // here while Redis was away). An entry that does not parse is left for the reaper.
    await this.releaseIndexed(this.nodeKey, (instId) => instId === null || this.byId.has(instId) || this.pending.has(instId));
  }

  /**
   * Release, in Redis, the instances listed in `node`'s index set (a dead node's, or this
   * node's leftovers) that Redis still gives to `node`, and drop their entries, except
   * those `keep` names (`null`: an entry that does not parse; dropped unless kept).
   * @returns how many instances were still registered to `node` and are released now
   */
  private async releaseIndexed(node: string, keep: (instId: number | null) => boolean): Promise<number> {
    const set = this.nodeInstancesKey(node);
    let released = 0;
    for (const entry of await this.cmd.smembers(set)) {
      let parsed: { a: number; u: string; id: string } | undefined;
      try {
        parsed = JSON.parse(entry) as { a: number; u: string; id: string };
      } catch {
        // not JSON: parsed stays undefined
      }
      if (keep(parsed === undefined ? null : Number(parsed.id))) continue;
      if (parsed !== undefined && (await this.cmd.tcRelease(this.keys(parsed.a, parsed.u).i, parsed.id, node, '')) === 1) {
        released++;
        await this.cmd.del(this.idKey(parsed.id));
      }
      await this.cmd.srem(set, entry);
    }
    return released;
  }
}
