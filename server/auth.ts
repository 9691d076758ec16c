/**
 * Who may log in: app lookup, service state, origin rule, login-failure rate limits,
 * UserSig verification and REST revocation. Shared by WebSocket logins and REST auth so
 * both answer with the same codes.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { CODE } from '../src/protocol/codes.js';
import { originAllowed, type AppConfig, type RateLimitConfig } from './config.js';
import { UserSigError, userSigExpiresAt, verifyUserSig, type UserSigFields } from './usersig.js';

/** Who knows about REST revocations: the engine (in memory, or cluster-wide in Redis). */
export interface Revocations {
  isRevoked(sdkAppId: number, userID: string, issuedAtSec: number): boolean | Promise<boolean>;
}

export class AuthError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
    this.name = 'AuthError';
  }
}

export interface AuthRequest {
  sdkAppId: number;
  userID: string;
  userSig: string;
  /** Browser Origin header of the connection, if any. */
  origin?: string | undefined;
  /** Client IP, for rate limiting. */
  ip: string;
}

export interface AuthOk {
  app: AppConfig;
  /** When the UserSig stops being valid (ms since epoch). */
  expireAt: number;
  /** The UserSig's `TLS.time` (whole seconds). */
  issuedAtSec: number;
}

export class Authenticator {
  private readonly perIp: RateLimiterMemory;
  private readonly perUser: RateLimiterMemory;

  constructor(
    private readonly apps: Map<number, AppConfig>,
    private readonly revocations: Revocations,
    limits: RateLimitConfig,
  ) {
    this.perIp = new RateLimiterMemory({ points: limits.loginFailuresPerIp, duration: limits.windowSeconds });
    this.perUser = new RateLimiterMemory({ points: limits.loginFailuresPerUser, duration: limits.windowSeconds });
  }

  /** The app, or AuthError 70020 / 60020. */
  app(sdkAppId: number): AppConfig {
    const app = this.apps.get(sdkAppId);
    if (!app) throw new AuthError(CODE.SDKAPPID_NOT_FOUND, `SDKAppID ${sdkAppId} is not configured on this server`);
    if (!app.enabled) throw new AuthError(CODE.SERVICE_DISABLED, `SDKAppID ${sdkAppId} is disabled (service expired or not purchased)`);
    return app;
  }

  /**
   * Verify a login. Throws AuthError with the first failing check's code (docs/protocol.md
   * lists the order). Failures count toward the per-IP and per-user limits.
   */
  async verify(req: AuthRequest, checkOrigin: boolean): Promise<AuthOk> {
    const app = this.app(req.sdkAppId);
    if (checkOrigin && !originAllowed(app, req.origin)) {
      throw new AuthError(
        CODE.NETWORK_TIMEOUT,
        `origin ${req.origin ?? '(none)'} is not allowed for SDKAppID ${app.sdkAppId}: add it to the app's allowedOrigins (trusted-domain rule)`,
      );
    }
    const userKey = `${app.sdkAppId}:${req.userID}`;
    await this.checkLimit(req.ip, userKey);
    let fields: UserSigFields;
    try {
      fields = verifyUserSig(req.userSig, { sdkAppId: app.sdkAppId, key: app.secretKey, userID: req.userID });
    } catch (err) {
      await this.recordFailure(req.ip, userKey);
      if (err instanceof UserSigError) throw new AuthError(err.code, err.message);
      throw err;
    }
    // May reject with EngineUnavailableError (Redis away): that is not the user's failure.
    const pending = this.revocations.isRevoked(app.sdkAppId, req.userID, fields.time);
    if (typeof pending === 'boolean' ? pending : await pending) {
      await this.recordFailure(req.ip, userKey);
      throw new AuthError(CODE.USERSIG_REVOKED, 'UserSig was issued before a REST kick of this user; generate a new one');
    }
    return { app, expireAt: userSigExpiresAt(fields), issuedAtSec: fields.time };
  }

  /** Count a failure that happened outside verify() (e.g. REST admin mismatch). */
  async recordFailure(ip: string, userKey?: string): Promise<void> {
    await Promise.all([
      this.perIp.penalty(ip, 1),
      userKey === undefined ? undefined : this.perUser.penalty(userKey, 1),
    ]);
  }

  /** Throw 70050 when the IP or the user already failed too often. */
  async checkLimit(ip: string, userKey?: string): Promise<void> {
    const [byIp, byUser] = await Promise.all([
      this.perIp.get(ip),
      userKey === undefined ? null : this.perUser.get(userKey),
    ]);
    const over = (res: { consumedPoints: number; msBeforeNext: number } | null, limit: number) =>
      res !== null && res.consumedPoints >= limit ? res.msBeforeNext : 0;
    const waitMs = Math.max(over(byIp, this.perIp.points), over(byUser, this.perUser.points));
    if (waitMs > 0) {
      throw new AuthError(CODE.LOGIN_RATE_LIMITED, `too many failed logins; retry in ${Math.ceil(waitMs / 1000)} s`);
    }
  }
}
