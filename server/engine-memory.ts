/**
 * The embedded single-node engine: the in-process {@link Registry}, unchanged. Every call
 * does its work synchronously, at call time, and returns an already settled promise, so the
 * default server behaves (and performs) exactly as before the engine interface existed.
 */
import type { KickType, Platform } from '../src/protocol/frames.js';
import type { UserPush } from '../src/protocol/conversation-frames.js';
import type { AppConfig } from './config.js';
import {
  RevokedError,
  pushToOwners,
  type ClusterStats,
  type InstanceEngine,
  type InstanceEngineEvents,
  type LoginOutcome,
  type LoginRequest,
  type LoginSettings,
  type OnlineInstance,
  type ResumeResult,
} from './engine.js';
import { Registry, type Instance, type InstanceOwner, type KickRecord } from './registry.js';

export class MemoryEngine implements InstanceEngine {
  readonly kind = 'memory';
  readonly available = true;
  readonly registry: Registry;

  /**
   * @param connections - open connections of this server (for stats)
   */
  constructor(
    resumeWindowMs: number,
    events: InstanceEngineEvents,
    private readonly connections: () => number,
  ) {
    this.registry = new Registry(resumeWindowMs, {
      onKick: (inst, type) =>
        events.onKick?.({ instId: inst.instId, sdkAppId: inst.sdkAppId, userID: inst.userID, platform: inst.platform, type }),
      onRelease: (inst, why) => events.onRelease?.(inst.instId, why),
    });
  }

  get local(): Registry {
    return this.registry;
  }

  isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): boolean {
    return this.registry.isRevoked(sdkAppId, userID, issuedAtSec);
  }

  login(app: AppConfig, req: LoginRequest, owner: InstanceOwner): LoginOutcome {
    // A REST kick may have landed while the login was being verified.
    if (this.registry.isRevoked(app.sdkAppId, req.userID, req.issuedAtSec)) throw new RevokedError();
    return this.registry.login(app, req.userID, req.platform, req.expireAt, owner);
  }

  logout(instId: number, owner: InstanceOwner): boolean {
    return this.registry.logout(instId, owner);
  }

  resume(instId: number, token: string, owner: InstanceOwner): ResumeResult {
    const result = this.registry.resume(instId, token, owner);
    return result.ok ? { ok: true, inst: result.inst, moved: false } : result;
  }

  detachOwner(owner: InstanceOwner, instIds: Iterable<number>): void {
    this.registry.detachOwner(owner, instIds);
  }

  async kickUser(sdkAppId: number, userID: string, type: KickType): Promise<KickRecord[]> {
    return this.registry.kickUser(sdkAppId, userID, type);
  }

  deliver(sdkAppId: number, userID: string, message: UserPush, except?: Instance): number {
    return pushToOwners(this.registry.instancesOf(sdkAppId, userID), message, except?.instId ?? 0);
  }

  async online(sdkAppId: number, userIDs: string[]): Promise<OnlineInstance[][]> {
    return userIDs.map((userID) =>
      this.registry.instancesOf(sdkAppId, userID).map((i) => ({ instId: i.instId, platform: i.platform, loginOrder: i.loginSeq, loginAt: i.loginAt, connected: i.owner !== null })),
    );
  }

  async stats(): Promise<ClusterStats> {
    return { connections: this.connections(), instances: this.registry.countByPlatform() };
  }

  async loginSettings(app: AppConfig): Promise<LoginSettings> {
    return { maxInstancesPerPlatform: app.maxInstancesPerPlatform, loginPolicy: app.loginPolicy };
  }

  async setLoginSettings(app: AppConfig, change: Partial<LoginSettings>): Promise<LoginSettings> {
    if (change.maxInstancesPerPlatform !== undefined) app.maxInstancesPerPlatform = change.maxInstancesPerPlatform;
    if (change.loginPolicy !== undefined) app.loginPolicy = change.loginPolicy;
    return this.loginSettings(app);
  }

  countByPlatform(): Map<Platform, number> {
    return this.registry.countByPlatform();
  }

  async close(): Promise<void> {
    this.registry.clear();
  }
}
