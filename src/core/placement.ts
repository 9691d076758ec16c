/**
 * The instances on the engine's socket: logging them in, taking them over (`resume`),
 * logging them out, restoring them after a reconnect (a silent resume, or a re-login with
 * the stored UserSig when the resume window has passed), and ending them on a kick or a
 * terminal close. A kicked instance is forgotten at once and never logs itself in again.
 *
 * The instances are keyed by their server id on the current connection. A restarted server
 * numbers its instances from 1 again: an id it hands out that one of our stale instances
 * still holds displaces the stale one, which waits under a negative key until its own
 * restore logs it in again.
 *
 * What an instance's messages need when it starts, comes back or ends (its mailbox, its
 * send queue), the engine does through the {@link InstanceLifecycle} it gives this class.
 */
import { CODE, isTerminalClose, terminalCloseError } from '../protocol/codes.js';
import type { Logger } from '../protocol/data.js';
import { isKickType, type KickFrame, type KickType, type LoginResultData, type RequestFrame, type ResumeResultData } from '../protocol/frames.js';
import { ChatError, KICK_REASON_CODE, asChatError, toErrorData } from './errors.js';
import { Instance, type InstanceView } from './instance.js';
import { safely } from './log.js';
import type { ServerLink } from './server-link.js';
import type { InstanceEvents, LoginParams, LoginGrant } from './types.js';

/** What the placement uses of the engine's link to the server. */
export type PlacementLink = Pick<ServerLink, 'state' | 'whenOpen' | 'request' | 'releaseIfUnused' | 'reconnectLater' | 'goIdle' | 'serverTime'>;

/** What becomes of an instance's messages when the instance starts, comes back or ends. */
export interface InstanceLifecycle {
  /** A new instance is placed (called on the next macrotask, once the caller has its handle). */
  placed(instance: Instance): void;
  /** A detached instance is attached again (resumed, or logged in again). */
  restored(instance: Instance): void;
  /** The instance is about to log out: its mailbox position goes to the server first. */
  leaving(instance: Instance): void;
  /**
   * The instance is gone: its queued sends fail with `error` (their outbox entries are
   * deleted unless `keepEntries`) and its mailbox state is dropped.
   */
  ended(instance: Instance, error: ChatError, keepEntries: boolean): void;
}

/** Login refusals that mean a resumed instance was, in effect, kicked. */
const REFUSAL_KICK: Readonly<Record<number, KickType>> = {
  [CODE.USERSIG_EXPIRED]: 'userSigExpired',
  [CODE.USERSIG_REVOKED]: 'REST_API_Kick',
};

/**
 * A re-login refused with 70001 / 70052 becomes the kick it stands for (code 3004 / 3006,
 * `data.kickType`), like a resume refused by a kick; other errors are returned unchanged.
 */
function refusalAsKick(error: ChatError): ChatError {
  const kickType = REFUSAL_KICK[error.code];
  if (!kickType) return error;
  return new ChatError(KICK_REASON_CODE[kickType], error.message, { ...error.data, kickType, serverCode: error.code });
}

function isLoginResultData(value: unknown): value is LoginResultData {
  if (typeof value !== 'object' || value === null) return false;
  const data = value as Record<string, unknown>;
  return typeof data.instId === 'number' && typeof data.token === 'string' && typeof data.userID === 'string';
}

function loginFrame(id: number, params: LoginParams): RequestFrame {
  return { type: 'login', id, sdkAppId: params.sdkAppId, userID: params.userID, userSig: params.userSig, platform: params.platform };
}

/** The instances of one engine; see the module comment. */
export class Placement implements InstanceView {
  /** By current instId (negative keys: displaced instances). */
  private readonly instances = new Map<number, Instance>();
  /** Displaced instance → its key in {@link instances}. */
  private readonly displaced = new Map<Instance, number>();
  private displacedSeq = 0;
  /** Logins between their call and their settlement; they keep the socket open. */
  private activeLogins = 0;

  constructor(
    private readonly link: PlacementLink,
    private readonly lifecycle: InstanceLifecycle,
    private readonly log: Logger,
    private readonly requestTimeoutMs: number,
  ) {}

  get size(): number {
    return this.instances.size;
  }
  /** Instances or logins need the socket. */
  get busy(): boolean {
    return this.instances.size > 0 || this.activeLogins > 0;
  }

  owns(instance: Instance): boolean {
    return this.instances.get(this.displaced.get(instance) ?? instance.instId) === instance;
  }
  find(instId: number): Instance | undefined {
    return this.instances.get(instId);
  }
  all(): Iterable<Instance> {
    return this.instances.values();
  }

  login(params: LoginParams, events: InstanceEvents): Promise<LoginGrant> {
    return this.acquire(params, events, null, (remainingMs) => this.loginRequest(params, remainingMs()));
  }

  resume(params: LoginParams, saved: { instId: number; token: string; lastSeq?: number | null }, events: InstanceEvents): Promise<LoginGrant> {
    return this.acquire(params, events, saved.lastSeq ?? null, async (remainingMs) => {
      try {
        const resumed = await this.resumeRequest(saved.instId, saved.token, remainingMs());
        return { instId: saved.instId, token: saved.token, userID: params.userID, serverTime: resumed.serverTime, expireAt: resumed.expireAt };
      } catch (err) {
        const error = asChatError(err);
        if (error.code !== CODE.RESUME_FAILED) throw error;
      }
      try {
        return await this.loginRequest(params, remainingMs());
      } catch (err) {
        throw refusalAsKick(asChatError(err));
      }
    });
  }

  async logout(instance: Instance, keepQueued: boolean): Promise<void> {
    if (!this.owns(instance)) return;
    // The position goes to the server first, so the user's next login starts after it.
    this.lifecycle.leaving(instance);
    this.unplace(instance);
    const why = keepQueued ? 'logged out before the server stored the message; it stays in the outbox for the next instance of the user' : 'logged out before the server stored the message';
    this.lifecycle.ended(instance, new ChatError(CODE.MSG_CANCELLED, why, { cause: CODE.LOGGED_OUT }), keepQueued);
    try {
      // A restoring instance is logged out when its resume answers (see restore);
      // a detached one is released by the server when the resume window ends.
      if (instance.state === 'attached') await this.link.request((id) => ({ type: 'logout', id, instId: instance.instId }));
    } catch (err) {
      this.log.info(`logout of instance ${instance.instId} not confirmed by the server:`, asChatError(err).message);
    } finally {
      this.link.releaseIfUnused();
    }
  }

  /** The link is open again: restore every instance its last socket left detached. */
  restoreDetached(): void {
    for (const instance of [...this.instances.values()]) {
      if (instance.state === 'detached') void this.restore(instance);
    }
  }

  /**
   * The socket is gone: every instance is detached. A terminal close (4500–4999) ends them
   * all (`onLost`); else they wait for the reconnect, or the link goes idle when none is left.
   */
  socketDropped(code: number, reason: string, text: string): void {
    for (const instance of this.instances.values()) instance.state = 'detached';
    if (isTerminalClose(code)) {
      const lost = [...this.instances.values()];
      this.instances.clear();
      this.displaced.clear();
      const error = new ChatError(terminalCloseError(code), `the server ended the connection for good: ${text}`, { closeCode: code });
      this.link.goIdle(error, code, reason);
      for (const instance of lost) {
        this.lifecycle.ended(instance, new ChatError(CODE.MSG_CANCELLED, `the session was lost before the server stored the message: ${text}`, { cause: error.code }), false);
        safely(this.log, () => instance.events.onLost(toErrorData(error)));
      }
      return;
    }
    if (this.instances.size > 0) this.link.reconnectLater(code, reason);
    else this.link.goIdle(new ChatError(CODE.NETWORK_ERROR, text, { closeCode: code }), code, reason);
  }

  kicked(frame: KickFrame): void {
    const instance = this.instances.get(frame.instId);
    if (!instance) {
      this.log.debug(`kick for unknown instance ${frame.instId} dropped`);
      return;
    }
    this.end(instance, (events) => events.onKicked(frame.reason), `kicked (${frame.reason})`);
  }

  /** The engine closes: every instance ends without a word to the server (outbox entries stay). */
  endAll(error: ChatError): void {
    for (const instance of this.instances.values()) this.lifecycle.ended(instance, error, true);
    this.instances.clear();
    this.displaced.clear();
  }

  /**
   * Common part of login and resume: wait for the connection (the whole call is bounded by
   * one request timeout), run `register` on it, and track the instance it yields.
   */
  private async acquire(
    params: LoginParams,
    events: InstanceEvents,
    lastSeq: number | null,
    register: (remainingMs: () => number) => Promise<LoginResultData>,
  ): Promise<LoginGrant> {
    if (this.link.state === 'closed') throw new ChatError(CODE.DESTROYED, 'the session engine is closed');
    const deadline = Date.now() + this.requestTimeoutMs;
    this.activeLogins++;
    try {
      await this.link.whenOpen(deadline);
      const data = await register(() => Math.max(1, deadline - Date.now()));
      const instance = new Instance(data.instId, data.token, params, events);
      instance.lastSeq = lastSeq;
      this.place(instance);
      // After the caller has the handle: catch up on the mailbox, adopt the user's outbox.
      setTimeout(() => {
        if (this.owns(instance)) this.lifecycle.placed(instance);
      }, 0);
      return {
        handle: instance,
        result: { instId: data.instId, userID: data.userID, serverTime: data.serverTime, expireAt: data.expireAt },
      };
    } finally {
      this.activeLogins--;
      this.link.releaseIfUnused();
    }
  }

  /** Register `instance` under its server id; a stale holder of that id is displaced. */
  private place(instance: Instance): void {
    const holder = this.instances.get(instance.instId);
    if (holder && holder !== instance) {
      const key = -++this.displacedSeq;
      this.displaced.set(holder, key);
      this.instances.set(key, holder);
      this.log.info(`instance id ${instance.instId} was given again by the server (restarted?); the older instance logs in again on its own`);
    }
    this.unplace(instance);
    this.instances.set(instance.instId, instance);
  }

  private unplace(instance: Instance): void {
    if (!this.owns(instance)) return;
    this.instances.delete(this.displaced.get(instance) ?? instance.instId);
    this.displaced.delete(instance);
  }

  /** Forget an instance for good, tell its owner, and release the socket if it was the last. */
  private end(instance: Instance, notify: (events: InstanceEvents) => void, why = 'the session ended'): void {
    this.unplace(instance);
    this.lifecycle.ended(instance, new ChatError(CODE.MSG_CANCELLED, `${why} before the server stored the message`), false);
    // The owner first (a tab waits for its KICKED_OUT), the log line after.
    safely(this.log, () => notify(instance.events));
    this.log.info(`instance ${instance.instId} ended by the server`);
    this.link.releaseIfUnused();
  }

  /** Silent resume after a reconnect; falls back to a re-login when the server answers 9005. */
  private async restore(instance: Instance): Promise<void> {
    instance.state = 'restoring';
    let relogin = false;
    let data: { instId: number; token: string };
    try {
      try {
        await this.resumeRequest(instance.instId, instance.token);
        data = instance;
      } catch (err) {
        if (asChatError(err).code !== CODE.RESUME_FAILED || !this.owns(instance)) throw err;
        relogin = true;
        data = await this.loginRequest(instance.params).catch((e: unknown) => Promise.reject(refusalAsKick(asChatError(e))));
      }
    } catch (err) {
      const error = asChatError(err);
      if (!this.owns(instance)) return;
      const kickType = error.data.kickType;
      if (error.code === CODE.NETWORK_ERROR) instance.state = 'detached'; // restored on the next connection
      else if (isKickType(kickType)) this.end(instance, (events) => events.onKicked(kickType), `kicked (${kickType})`);
      else this.end(instance, (events) => events.onLost(toErrorData(error)), `the session was lost (${error.code})`);
      return;
    }
    if (!this.owns(instance)) {
      this.logoutQuietly(data.instId); // logged out while its restore was in flight
      return;
    }
    this.unplace(instance);
    instance.instId = data.instId;
    instance.token = data.token;
    instance.state = 'attached';
    // A new server-side instance knows nothing of our acknowledgements.
    if (relogin) instance.ackedSeq = 0;
    this.place(instance);
    this.log.info(relogin ? `instance logged in again as ${data.instId} (resume window passed)` : `instance ${data.instId} resumed`);
    safely(this.log, () => instance.events.onRestored?.({ instId: instance.instId, relogin }));
    // Catch up on what arrived while we were away, and send what waited (including what an
    // instance of the user that left meanwhile kept in the outbox).
    if (this.owns(instance)) this.lifecycle.restored(instance);
  }

  private async loginRequest(params: LoginParams, timeoutMs?: number): Promise<LoginResultData> {
    const data = await this.link.request((id) => loginFrame(id, params), timeoutMs);
    if (!isLoginResultData(data)) throw new ChatError(CODE.UNCAUGHT_ERROR, 'malformed login result from the server');
    return data;
  }

  /** Resolves with the server time of the reply and the instance's UserSig expiry. */
  private async resumeRequest(instId: number, token: string, timeoutMs?: number): Promise<{ serverTime: number; expireAt: number }> {
    const data = (await this.link.request((id) => ({ type: 'resume', id, instId, token }), timeoutMs)) as Partial<ResumeResultData>;
    return { serverTime: this.link.serverTime(), expireAt: typeof data.expireAt === 'number' ? data.expireAt : 0 };
  }

  private logoutQuietly(instId: number): void {
    this.link.request((id) => ({ type: 'logout', id, instId }))
      .catch((err: unknown) => this.log.info(`logout of instance ${instId} not confirmed:`, asChatError(err).message))
      .finally(() => this.link.releaseIfUnused());
  }
}
