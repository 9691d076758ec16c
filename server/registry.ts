/**
 * The login-instance registry of the embedded (single-node) engine: the one writer of
 * instance state. Applies the login policy and the per-platform limit, kicks, UserSig
 * expiry, REST revocation, and the resume window of dropped connections.
 *
 * Connections are abstracted as {@link InstanceOwner} so the registry never touches a
 * socket; the server delivers kicks.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { KickType, Platform } from '../src/protocol/frames.js';
import type { UserPush } from '../src/protocol/conversation-frames.js';
import type { AppConfig, LoginPolicy } from './config.js';

/** Whatever holds instances: a WebSocket connection. */
export interface InstanceOwner {
  /** Tell the client its instance was kicked. Called after the instance is removed. */
  deliverKick(instId: number, type: KickType): void;
  /** Another owner resumed this instance (this owner's socket was half-open). */
  forget(instId: number): void;
  /** Push a stored message to the client of this instance (owners that carry no messages may omit it). */
  deliverMessage?(instId: number, message: UserPush): void;
  /**
   * Whether an instance of app `sdkAppId` may be resumed onto this owner: 0, or the code of
   * the refusal (the page origin is not allowed for that app). Asked before anything moves.
   */
  admits?(sdkAppId: number): number;
  /**
   * The cluster no longer knows this instance although this node still held it (the node
   * was taken for dead while cut off from Redis): the client must reconnect, find it gone
   * (9005) and log in again. Only the Redis engine calls it.
   */
  lost?(instId: number): void;
}

export interface Instance {
  readonly instId: number;
  readonly sdkAppId: number;
  readonly userID: string;
  readonly platform: Platform;
  /**
   * The login's number among its user's logins: 1, 2, 3 … in login order (smaller = older),
   * the `a1`, `a2`, `a3` of the reference docs. Numbering may restart at 1 once the user has
   * no instance left (memory engine); the Redis engine keeps counting.
   */
  readonly loginSeq: number;
  readonly loginAt: number;
  readonly expireAt: number;
  readonly token: string;
  /**
   * Mailbox position of this instance: the highest seq it acknowledged, starting at the
   * user's acknowledged position when it logged in (see docs/protocol.md "Messages").
   */
  ackedSeq: number;
  owner: InstanceOwner | null;
  detachTimer: NodeJS.Timeout | null;
  expiryTimer: NodeJS.Timeout | null;
}

export interface KickRecord {
  instId: number;
  type: KickType;
}

export interface RegistryEvents {
  onKick?(inst: Instance, type: KickType): void;
  onRelease?(inst: Instance, why: 'logout' | 'resume-window' | 'shutdown'): void;
}

const MOBILE: ReadonlySet<Platform> = new Set(['Android', 'iPhone', 'iPad']);
const DESKTOP: ReadonlySet<Platform> = new Set(['Windows', 'Mac', 'Linux']);
/** Longest delay Node's setTimeout accepts; longer expiries re-arm. */
const MAX_TIMER_MS = 2_147_483_647;
/** Kicked-instance tombstones are kept this long beyond the resume window. */
const TOMBSTONE_EXTRA_MS = 60_000;

/**
 * Whether an existing instance on `existing` conflicts with a new login on `incoming`
 * under `policy` (the reference's login policies, docs/protocol.md). Same-platform limits
 * are handled separately.
 */
export function policyConflicts(policy: LoginPolicy, incoming: Platform, existing: Platform): boolean {
  if (incoming === existing) return false;
  switch (policy) {
    case 'multi':
      return false;
    case 'single':
      return true;
    case 'dual':
      return incoming !== 'Web' && existing !== 'Web';
    case 'triple':
      return (MOBILE.has(incoming) && MOBILE.has(existing)) || (DESKTOP.has(incoming) && DESKTOP.has(existing));
  }
}

/** Map key of one app's user (registry, cluster engine, memory store). */
export function userKey(sdkAppId: number, userID: string): string {
  return `${sdkAppId}\u0000${userID}`;
}

export class Registry {
  private readonly byId = new Map<number, Instance>();
  /** Instances of one app+user, in login order (Map keeps insertion order). */
  private readonly byUser = new Map<string, Map<number, Instance>>();
  /** Kicked instances, so a resume can report the kick. */
  private readonly tombstones = new Map<number, { type: KickType; until: number }>();
  /** REST kicks: UserSigs issued strictly before this second are refused. */
  private readonly revokedBefore = new Map<string, number>();
  private nextInstId = 1;
  /** Last login number of each user with instances (see {@link Instance.loginSeq}). */
  private readonly lastLoginSeq = new Map<string, number>();

  constructor(
    private readonly resumeWindowMs: number,
    private readonly events: RegistryEvents = {},
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.byId.size;
  }

  /** Instances per platform (for metrics). */
  countByPlatform(): Map<Platform, number> {
    const counts = new Map<Platform, number>();
    for (const inst of this.byId.values()) counts.set(inst.platform, (counts.get(inst.platform) ?? 0) + 1);
    return counts;
  }

  /** The user's instances in login order. */
  instancesOf(sdkAppId: number, userID: string): Instance[] {
    return [...(this.byUser.get(userKey(sdkAppId, userID))?.values() ?? [])];
  }

  get(instId: number): Instance | undefined {
    return this.byId.get(instId);
  }

  /** Whether a UserSig issued at `issuedAtSec` was revoked by a REST kick. */
  isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): boolean {
    const before = this.revokedBefore.get(userKey(sdkAppId, userID));
    return before !== undefined && issuedAtSec < before;
  }

  /**
   * Register a new instance after its UserSig was verified: apply the login policy, then the
   * per-platform limit (kick oldest), then add it. Returns the instance and the kicks done.
   */
  login(app: AppConfig, userID: string, platform: Platform, expireAt: number, owner: InstanceOwner): { inst: Instance; kicked: KickRecord[] } {
    const kicked: KickRecord[] = [];
    // Numbered before the kicks below, which may remove the user's last instance (and counter).
    const key = userKey(app.sdkAppId, userID);
    const loginSeq = (this.lastLoginSeq.get(key) ?? 0) + 1;
    const existing = this.instancesOf(app.sdkAppId, userID);
    for (const other of existing) {
      if (policyConflicts(app.loginPolicy, platform, other.platform)) {
        this.kick(other, 'multipleDevice');
        kicked.push({ instId: other.instId, type: 'multipleDevice' });
      }
    }
    const samePlatform = existing.filter((i) => i.platform === platform && this.byId.has(i.instId));
    // Oldest first; kick until one slot is free.
    while (samePlatform.length >= app.maxInstancesPerPlatform) {
      const oldest = samePlatform.shift()!;
      this.kick(oldest, 'multipleAccount');
      kicked.push({ instId: oldest.instId, type: 'multipleAccount' });
    }
    const inst: Instance = {
      instId: this.nextInstId++,
      sdkAppId: app.sdkAppId,
      userID,
      platform,
      loginSeq,
      loginAt: this.now(),
      expireAt,
      token: randomBytes(18).toString('base64url'),
      ackedSeq: 0,
      owner,
      detachTimer: null,
      expiryTimer: null,
    };
    this.byId.set(inst.instId, inst);
    this.lastLoginSeq.set(key, loginSeq);
    let list = this.byUser.get(key);
    if (!list) this.byUser.set(key, (list = new Map()));
    list.set(inst.instId, inst);
    this.armExpiry(inst);
    return { inst, kicked };
  }

  /** Log out one instance held by `owner`. False if `owner` does not hold it. */
  logout(instId: number, owner: InstanceOwner): boolean {
    const inst = this.byId.get(instId);
    if (!inst || inst.owner !== owner) return false;
    this.remove(inst);
    this.events.onRelease?.(inst, 'logout');
    return true;
  }

  /**
   * Re-attach a detached (or still attached, after a half-open socket) instance to a new
   * owner. Silent: no kicks, login order unchanged.
   */
  resume(instId: number, token: string, owner: InstanceOwner): { ok: true; inst: Instance } | { ok: false; kickType?: KickType; refused?: number } {
    const inst = this.byId.get(instId);
    if (!inst) {
      const tomb = this.tombstones.get(instId);
      if (tomb && tomb.until > this.now()) return { ok: false, kickType: tomb.type };
      return { ok: false };
    }
    const a = Buffer.from(inst.token);
    const b = Buffer.from(token);
    if (a.length !== b.length || !timingSafeEqual(a, b)) return { ok: false };
    const refused = owner.admits?.(inst.sdkAppId) ?? 0;
    if (refused !== 0) return { ok: false, refused };
    if (inst.detachTimer) clearTimeout(inst.detachTimer);
    inst.detachTimer = null;
    if (inst.owner && inst.owner !== owner) inst.owner.forget(instId);
    inst.owner = owner;
    return { ok: true, inst };
  }

  /** A connection dropped: its instances stay for the resume window, then are released. */
  detachOwner(owner: InstanceOwner, instIds: Iterable<number>): void {
    for (const instId of instIds) {
      const inst = this.byId.get(instId);
      if (!inst || inst.owner !== owner) continue;
      inst.owner = null;
      inst.detachTimer = setTimeout(() => {
        inst.detachTimer = null;
        if (this.byId.get(instId) === inst && inst.owner === null) {
          this.remove(inst);
          this.events.onRelease?.(inst, 'resume-window');
        }
      }, this.resumeWindowMs);
      inst.detachTimer.unref();
    }
  }

  /** REST kick: every instance of the user, and revoke UserSigs issued before now. */
  kickUser(sdkAppId: number, userID: string, type: KickType): KickRecord[] {
    this.revokedBefore.set(userKey(sdkAppId, userID), Math.floor(this.now() / 1000));
    const kicked: KickRecord[] = [];
    for (const inst of this.instancesOf(sdkAppId, userID)) {
      this.kick(inst, type);
      kicked.push({ instId: inst.instId, type });
    }
    return kicked;
  }

  /** Remove an instance and tell its owner. */
  kick(inst: Instance, type: KickType): void {
    if (this.byId.get(inst.instId) !== inst) return;
    this.remove(inst);
    this.tombstones.set(inst.instId, { type, until: this.now() + this.resumeWindowMs + TOMBSTONE_EXTRA_MS });
    this.events.onKick?.(inst, type);
    inst.owner?.deliverKick(inst.instId, type);
    this.pruneTombstones();
  }

  /** Drop everything (server shutdown). */
  clear(): void {
    for (const inst of [...this.byId.values()]) {
      this.remove(inst);
      this.events.onRelease?.(inst, 'shutdown');
    }
    this.tombstones.clear();
  }

  private remove(inst: Instance): void {
    if (inst.detachTimer) clearTimeout(inst.detachTimer);
    if (inst.expiryTimer) clearTimeout(inst.expiryTimer);
    inst.detachTimer = null;
    inst.expiryTimer = null;
    this.byId.delete(inst.instId);
    const key = userKey(inst.sdkAppId, inst.userID);
    const list = this.byUser.get(key);
    list?.delete(inst.instId);
    if (list && list.size === 0) {
      this.byUser.delete(key);
      this.lastLoginSeq.delete(key);
    }
  }

  private armExpiry(inst: Instance): void {
    const delay = inst.expireAt - this.now();
    if (delay <= 0) {
      queueMicrotask(() => this.kick(inst, 'userSigExpired'));
      return;
    }
    inst.expiryTimer = setTimeout(() => {
      inst.expiryTimer = null;
      if (inst.expireAt - this.now() > 0) this.armExpiry(inst);
      else this.kick(inst, 'userSigExpired');
    }, Math.min(delay, MAX_TIMER_MS));
    inst.expiryTimer.unref();
  }

  private pruneTombstones(): void {
    if (this.tombstones.size < 1024) return;
    const now = this.now();
    for (const [id, t] of this.tombstones) if (t.until <= now) this.tombstones.delete(id);
  }
}
