/**
 * The instance engine: where login instances live and how kicks and message pushes reach
 * them (not to be confused with the client's session engine, src/core/engine.ts).
 *
 * Two implementations behind {@link InstanceEngine}:
 * - `memory` (engine-memory.ts, the default): the single-node {@link Registry} in this
 *   process, exactly the embedded behaviour.
 * - `redis` (engine-redis.ts, config `redis`): a cluster-wide registry in Redis, changed only
 *   by atomic Lua scripts, with a PUB/SUB channel per node that carries kicks, "forget"
 *   notices and message pushes to the node that holds the instance. See docs/scaling.md.
 *
 * The rest of the server talks to the engine only: connections (login, logout, resume,
 * detach), the message service (deliver), the authenticator (revocation) and REST (kick,
 * online status, stats, login settings).
 */
import type { KickType, Platform } from '../src/protocol/frames.js';
import type { UserPush } from '../src/protocol/conversation-frames.js';
import type { AppConfig, LoginPolicy } from './config.js';
import type { Instance, InstanceOwner, KickRecord } from './registry.js';

/** A login the authenticator accepted. */
export interface LoginRequest {
  userID: string;
  platform: Platform;
  /** When the UserSig stops being valid (ms since epoch). */
  expireAt: number;
  /** The UserSig's `TLS.time` (whole seconds): checked again against REST revocation, atomically with the login. */
  issuedAtSec: number;
}

/**
 * What a login registered. The memory engine answers login, logout and resume
 * synchronously (a plain value, not a promise), so the embedded server orders frames
 * exactly as it always did; callers await only real promises.
 */
export interface LoginOutcome {
  inst: Instance;
  kicked: KickRecord[];
}

export type ResumeResult =
  | {
      ok: true;
      inst: Instance;
      /** The instance was held by another node until now (its mailbox position is not known here). */
      moved: boolean;
    }
  | {
      ok: false;
      kickType?: KickType;
      /** The new owner refused it ({@link InstanceOwner.admits}): the code to answer; the instance stays where it was. */
      refused?: number;
    };

/** One instance as query_online_status reports it. */
export interface OnlineInstance {
  instId: number;
  platform: Platform;
  /** The login's number among its user's logins (1 = first; see `Instance.loginSeq`). */
  loginOrder: number;
  /** ms since epoch. */
  loginAt: number;
  /** False while its connection is down (inside the resume window). */
  connected: boolean;
}

export interface NodeStats {
  node: string;
  connections: number;
  instances: Map<Platform, number>;
}

export interface ClusterStats {
  /** Open WebSocket connections (this node for `memory`; all live nodes for `redis`). */
  connections: number;
  /** Instances per platform, over all apps (all live nodes for `redis`). */
  instances: Map<Platform, number>;
  /** Per live node; only the `redis` engine reports it. */
  nodes?: NodeStats[];
}

export interface LoginSettings {
  maxInstancesPerPlatform: number;
  loginPolicy: LoginPolicy;
}

/** A kick, as logged and counted by the node that decided it. */
export interface KickInfo {
  instId: number;
  sdkAppId: number;
  userID: string;
  platform: Platform | undefined;
  type: KickType;
}

export interface InstanceEngineEvents {
  onKick?(kick: KickInfo): void;
  onRelease?(instId: number, why: 'logout' | 'resume-window' | 'shutdown' | 'node-dead' | 'moved'): void;
}

/** The instances this node holds (what the server's connections can touch directly). */
export interface LocalInstances {
  readonly size: number;
  get(instId: number): Instance | undefined;
  /** The user's instances held by this node, in login order. */
  instancesOf(sdkAppId: number, userID: string): Instance[];
}

/** The server's instance engine (config `redis` absent: memory; present: redis). */
export interface InstanceEngine {
  readonly kind: 'memory' | 'redis';
  /** This node's instances. */
  readonly local: LocalInstances;
  /** Whether a UserSig issued at `issuedAtSec` was revoked by a REST kick (70052). */
  isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): boolean | Promise<boolean>;
  /**
   * Register a new instance: login policy kicks, then the per-platform limit (kick the
   * oldest), then add it; one atomic step per user across the cluster. Rejects with
   * {@link RevokedError} or {@link EngineUnavailableError}.
   */
  login(app: AppConfig, req: LoginRequest, owner: InstanceOwner): LoginOutcome | Promise<LoginOutcome>;
  /** Release one instance held by `owner`; false if `owner` does not hold it. */
  logout(instId: number, owner: InstanceOwner): boolean | Promise<boolean>;
  /** Re-attach an instance (from any node, inside its resume window) to `owner`. Silent. */
  resume(instId: number, token: string, owner: InstanceOwner): ResumeResult | Promise<ResumeResult>;
  /** A connection dropped: its instances stay resumable for the resume window. */
  detachOwner(owner: InstanceOwner, instIds: Iterable<number>): void;
  /** REST kick: every instance of the user, on every node, and revoke older UserSigs. */
  kickUser(sdkAppId: number, userID: string, type: KickType): Promise<KickRecord[]>;
  /**
   * Push a stored message to the connected instances of `userID` on every node, except
   * `except` (the sending instance). Returns how many pushes this node made; other nodes
   * push theirs when the message reaches them (at most once, see docs/scaling.md).
   */
  deliver(sdkAppId: number, userID: string, message: UserPush, except?: Instance): number;
  /** The instances of each user, in login order, over the whole cluster. */
  online(sdkAppId: number, userIDs: string[]): Promise<OnlineInstance[][]>;
  stats(): Promise<ClusterStats>;
  loginSettings(app: AppConfig): Promise<LoginSettings>;
  /** Change the app's login settings on every node (effective for the very next login). */
  setLoginSettings(app: AppConfig, change: Partial<LoginSettings>): Promise<LoginSettings>;
  /** This node's instances per platform (the `tabchat_instances` gauge). */
  countByPlatform(): Map<Platform, number>;
  /** Whether logins can be served now (false while Redis is unreachable). */
  readonly available: boolean;
  /** Server shutdown: stop timers, leave instances resumable on other nodes where possible. */
  close(): Promise<void>;
}

/**
 * Push a message to each of these instances that has a connected owner, except the one
 * with id `exceptId` (the sending instance; 0 = none). Detached instances (no owner) catch
 * up with `sync` when they resume. Returns how many pushes were made.
 */
export function pushToOwners(instances: Iterable<Instance>, message: UserPush, exceptId: number): number {
  let pushed = 0;
  for (const inst of instances) {
    if (inst.instId === exceptId || !inst.owner?.deliverMessage) continue;
    inst.owner.deliverMessage(inst.instId, message);
    pushed++;
  }
  return pushed;
}

/** The cluster engine cannot be reached (9030). */
export class EngineUnavailableError extends Error {
  override name = 'EngineUnavailableError';
  constructor(message = 'the cluster engine (Redis) is unavailable') {
    super(message);
  }
}

/** The login's UserSig was revoked by a REST kick (70052), found atomically with the login. */
export class RevokedError extends Error {
  override name = 'RevokedError';
  constructor() {
    super('UserSig was issued before a REST kick of this user; generate a new one');
  }
}
