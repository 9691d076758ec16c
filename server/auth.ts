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
  /** Client address, for rate limiting. */
  ip: string;
}

export interface AuthOk {
  app: AppConfig;
  /** When the UserSig stops being valid (ms since epoch). */
  expireAt: number;
  /** The UserSig's `TLS.time` (whole seconds). */
  issuedAtSec: number;
}

/** Which limits a verification takes part in: a WebSocket login, or a REST call's admin authentication. */
export type AuthKind = 'login' | 'rest';

/** The key of one user's failures from one address. */
function userIpKey(sdkAppId: number, userID: string, ip: string): string {
  return `${sdkAppId}\u0000${userID}\u0000${ip}`;
}

/** Milliseconds until `limiter` has a point for `key` again, after a refused consume (0 if not refused). */
async function take(limiter: RateLimiterMemory, key: string): Promise<number> {
  try {
    await limiter.consume(key, 1);
    return 0;
  } catch (res) {
    if (res instanceof Error) throw res;
    return Math.max(1, (res as { msBeforeNext: number }).msBeforeNext);
  }
}

const retryIn = (ms: number) => `retry in ${Math.ceil(ms / 1000)} s`;

/**
 * The UserSig is checked first, always: a correct, current UserSig is never refused
 * because of failures (anyone's), so strangers cannot lock a user out. Failures are counted
 * per address and per (user, address); beyond either budget the failures of that address
 * are answered 70050 (without saying what was wrong). The attempt rate of an address
 * (`loginsPerIp`, every login, good or bad) bounds how fast it can guess at all, and
 * `loginsPerUser` bounds the successful logins of one user (a UserSig used in a loop).
 */
export class Authenticator {
  private readonly failuresPerIp: RateLimiterMemory;
  private readonly failuresPerUserIp: RateLimiterMemory;
  private readonly attemptsPerIp: RateLimiterMemory;
  private readonly successesPerUser: RateLimiterMemory;

  constructor(
    private readonly apps: Map<number, AppConfig>,
    private readonly revocations: Revocations,
    limits: RateLimitConfig,
  ) {
    const duration = limits.windowSeconds;
    this.failuresPerIp = new RateLimiterMemory({ points: limits.loginFailuresPerIp, duration });
    this.failuresPerUserIp = new RateLimiterMemory({ points: limits.loginFailuresPerUser, duration });
    this.attemptsPerIp = new RateLimiterMemory({ points: limits.loginsPerIp, duration });
    this.successesPerUser = new RateLimiterMemory({ points: limits.loginsPerUser, duration });
  }

  /** The app, or AuthError 70020 / 60020. */
  app(sdkAppId: number): AppConfig {
    const app = this.apps.get(sdkAppId);
    if (!app) throw new AuthError(CODE.SDKAPPID_NOT_FOUND, `SDKAppID ${sdkAppId} is not configured on this server`);
    if (!app.enabled) throw new AuthError(CODE.SERVICE_DISABLED, `SDKAppID ${sdkAppId} is disabled (service expired or not purchased)`);
    return app;
  }

  /**
   * Verify a login (`kind` "login": origin rule and the login rate limits apply) or a REST
   * call's admin UserSig (`kind` "rest"). Throws AuthError with the first failing check's
   * code (docs/protocol.md lists the order).
   */
  async verify(req: AuthRequest, kind: AuthKind): Promise<AuthOk> {
    const app = this.app(req.sdkAppId);
    if (kind === 'login' && !originAllowed(app, req.origin)) {
      throw new AuthError(
        CODE.NETWORK_TIMEOUT,
        `origin ${req.origin ?? '(none)'} is not allowed for SDKAppID ${app.sdkAppId}: add it to the app's allowedOrigins (trusted-domain rule)`,
      );
    }
    if (kind === 'login') {
      const waitMs = await take(this.attemptsPerIp, req.ip);
      if (waitMs > 0) throw new AuthError(CODE.LOGIN_RATE_LIMITED, `too many logins from this address; ${retryIn(waitMs)}`);
    }
    let fields: UserSigFields;
    try {
      fields = verifyUserSig(req.userSig, { sdkAppId: app.sdkAppId, key: app.secretKey, userID: req.userID });
    } catch (err) {
      if (!(err instanceof UserSigError)) throw err;
      throw await this.failure(req.ip, app.sdkAppId, req.userID, new AuthError(err.code, err.message));
    }
    // May reject with EngineUnavailableError (Redis away): that is not the user's failure.
    const pending = this.revocations.isRevoked(app.sdkAppId, req.userID, fields.time);
    if (typeof pending === 'boolean' ? pending : await pending) {
      throw await this.failure(req.ip, app.sdkAppId, req.userID, new AuthError(CODE.USERSIG_REVOKED, 'UserSig was issued before a REST kick of this user; generate a new one'));
    }
    if (kind === 'login') {
      const waitMs = await take(this.successesPerUser, `${app.sdkAppId}\u0000${req.userID}`);
      if (waitMs > 0) throw new AuthError(CODE.LOGIN_RATE_LIMITED, `too many logins of this user; ${retryIn(waitMs)}`);
    }
    return { app, expireAt: userSigExpiresAt(fields), issuedAtSec: fields.time };
  }

  /**
   * Count a failure of `userID` from `ip` (a bad or revoked UserSig, a REST identifier that
   * is not the admin) and return the error to answer: `error` itself, or 70050 once the
   * address is over one of its failure budgets.
   */
  async failure(ip: string, sdkAppId: number, userID: string, error: AuthError): Promise<AuthError> {
    const [byIp, byUser] = await Promise.all([take(this.failuresPerIp, ip), take(this.failuresPerUserIp, userIpKey(sdkAppId, userID, ip))]);
    const waitMs = Math.max(byIp, byUser);
    return waitMs > 0 ? new AuthError(CODE.LOGIN_RATE_LIMITED, `too many failed logins from this address; ${retryIn(waitMs)}`) : error;
  }
}
