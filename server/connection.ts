/**
 * One client WebSocket: handshake, request dispatch, frame limits, heartbeat state. Holds
 * the ids of the instances it carries; the registry owns the instances themselves.
 */
import type { Duplex } from 'node:stream';
import type { WebSocket } from 'ws';
import { CLOSE, CODE, codeText } from '../src/protocol/codes.js';
import {
  KICK_REASON_CODE,
  PROTOCOL_VERSION,
  encodeFrame,
  parseClientFrame,
  type AckFrame,
  type ClientFrame,
  type KickType,
  type LoginFrame,
  type LoginResultData,
  type SendFrame,
  type SendResultData,
  type ServerFrame,
  type SyncFrame,
  type WireMessage,
} from '../src/protocol/frames.js';
import { isConvPush, type ConversationRequestFrame, type UserPush } from '../src/protocol/conversation-frames.js';
import { AuthError } from './auth.js';
import { originAllowed } from './config.js';
import type { OpenConnection, ServerContext } from './context.js';
import { EngineUnavailableError, RevokedError, type LoginOutcome, type ResumeResult } from './engine.js';
import { MessageError } from './messages.js';
import { userKey, type Instance, type InstanceOwner } from './registry.js';
import type { SyncWorker } from './sync-scheduler.js';

/** Malformed frames tolerated on one connection before it is closed with 4501. */
const MAX_BAD_FRAMES = 20;
/** `sync` requests of one connection waiting for their turn; one more is refused with 9041. */
export const MAX_QUEUED_SYNCS = 8;
/**
 * Frames kept while reading is paused (those ws had already taken from the socket); the
 * frame rate limit closes a connection long before, this is only a backstop.
 */
const MAX_HELD_FRAMES = 1_000;

let nextConnectionId = 1;

/**
 * Frames written to a socket during one event-loop turn leave in one write: the socket is
 * corked at its first frame of the turn and uncorked at the end of the turn (setImmediate),
 * so a socket that gets N frames costs one `writev` — one loopback/TCP send — instead of N.
 * The relay profile had `writev` at 40% of the server's CPU; under load a turn carries many
 * frames per socket (a group commit acknowledges hundreds of sends at once).
 */
const corked = new Set<Duplex>();

function corkForThisTurn(socket: Duplex): void {
  if (corked.has(socket)) return;
  if (corked.size === 0) setImmediate(uncorkAll);
  socket.cork();
  corked.add(socket);
}

function uncorkAll(): void {
  const sockets = [...corked];
  corked.clear();
  for (const socket of sockets) socket.uncork();
}

/** Write out what is corked on this socket now (before it is destroyed). */
function uncorkNow(socket: Duplex): void {
  if (corked.delete(socket)) socket.uncork();
}

/** A frame as ws hands it over, kept while reading is paused. */
type RawFrame = [data: unknown, isBinary: boolean];

export class Connection implements InstanceOwner, OpenConnection, SyncWorker {
  readonly id = nextConnectionId++;
  /** Instances this connection carries. */
  readonly instances = new Set<number>();
  /** Set by the heartbeat sweep; cleared when a pong arrives. */
  isAlive = true;
  private greeted = false;
  private closed = false;
  /** We started closing the socket: frames still in flight from the client are ignored. */
  private closing = false;
  private badFrames = 0;
  /** Before hello: the hello timeout (4002). After: armed while no instance is carried (4004). */
  private idleTimer: NodeJS.Timeout | null;
  /** Token bucket for the per-connection frame rate limit. */
  private tokens: number;
  private lastRefill = Date.now();
  /** Sends of this connection run one after another, so they are stored in the order they came. */
  private sendChain: Promise<void> = Promise.resolve();
  /** The user (`userKey`) of each instance carried, for `rateLimits.connectionsPerUser`. */
  private readonly instUsers = new Map<number, string>();
  /** Reading stopped: more than `pauseBufferedBytes` wait for the client to take them. */
  private readsPaused = false;
  /** Frames that arrived while reading was paused, handled in order after the drain. */
  private readonly held: RawFrame[] = [];
  /** `sync` requests waiting for their turn (see sync-scheduler.ts). */
  private readonly syncQueue: SyncFrame[] = [];
  /** Per instance: the token bucket of `rateLimits.syncsPerSecond`. */
  private readonly syncBuckets = new Map<number, { tokens: number; at: number }>();
  /** Wakes the scheduler when the next sync's instance has a token again. */
  private syncTimer: NodeJS.Timeout | null = null;

  /**
   * @param socket - the socket under `ws` (from the HTTP upgrade): corked while frames of
   *   one event-loop turn gather
   */
  constructor(
    private readonly ws: WebSocket,
    readonly ip: string,
    readonly origin: string | undefined,
    private readonly ctx: ServerContext,
    private readonly socket: Duplex,
  ) {
    this.tokens = ctx.config.rateLimits.framesPerSecond * 2;
    this.idleTimer = setTimeout(() => this.close(CLOSE.HELLO_TIMEOUT, 'hello timeout'), ctx.config.helloTimeoutMs);
    ws.on('message', (data, isBinary) => this.wsOnMessage(data, isBinary));
    ws.on('pong', () => (this.isAlive = true));
    ws.on('close', () => this.wsOnClose());
    ws.on('error', (err) => ctx.log.debug({ conn: this.id, err: err.message }, 'socket error'));
  }

  /** InstanceOwner: the registry removed one of our instances. */
  deliverKick(instId: number, type: KickType): void {
    this.dropInstance(instId);
    this.send({ type: 'kick', instId, reason: type });
  }

  /** InstanceOwner: whether an instance of this user may be resumed onto this connection (0), or the refusal code. */
  admits(sdkAppId: number): number {
    const app = this.ctx.apps.get(sdkAppId);
    return app !== undefined && !originAllowed(app, this.origin) ? CODE.NETWORK_TIMEOUT : 0;
  }

  /** Bytes written to the socket that its client has not taken yet (ws's buffer and the socket's). */
  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  /** InstanceOwner: another connection resumed one of our instances. */
  forget(instId: number): void {
    this.dropInstance(instId);
  }

  /** InstanceOwner: a message for one of our instances. */
  deliverMessage(instId: number, message: UserPush): void {
    if (!this.instances.has(instId)) return;
    if (isConvPush(message)) this.send({ type: 'conv', instId, update: message });
    else this.send({ type: 'msg', instId, message });
  }

  /** InstanceOwner: the cluster lost this instance; the client reconnects, finds it gone (9005) and logs in again. */
  lost(instId: number): void {
    if (!this.instances.has(instId)) return;
    this.dropInstance(instId);
    this.close(CLOSE.ENGINE_UNAVAILABLE, 'session lost by the cluster; reconnect');
  }

  private addInstance(inst: { instId: number; sdkAppId: number; userID: string }): void {
    this.instances.add(inst.instId);
    const key = userKey(inst.sdkAppId, inst.userID);
    this.instUsers.set(inst.instId, key);
    let users = this.ctx.userConnections.get(key);
    if (!users) this.ctx.userConnections.set(key, (users = new Set()));
    users.add(this);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }

  private dropInstance(instId: number): void {
    this.instances.delete(instId);
    this.syncBuckets.delete(instId);
    const key = this.instUsers.get(instId);
    if (key !== undefined) {
      this.instUsers.delete(instId);
      if (![...this.instUsers.values()].includes(key)) this.leaveUser(key);
    }
    this.armIdleIfEmpty();
  }

  private leaveUser(key: string): void {
    const users = this.ctx.userConnections.get(key);
    users?.delete(this);
    if (users?.size === 0) this.ctx.userConnections.delete(key);
  }

  /** Whether a login of this user here would put the user on more connections than `rateLimits.connectionsPerUser`. */
  private overUserConnections(sdkAppId: number, userID: string): boolean {
    const users = this.ctx.userConnections.get(userKey(sdkAppId, userID));
    return users !== undefined && !users.has(this) && users.size >= this.ctx.config.rateLimits.connectionsPerUser;
  }

  private armIdleIfEmpty(): void {
    if (this.instances.size === 0 && this.greeted && !this.closed && !this.idleTimer) {
      this.idleTimer = setTimeout(() => this.close(CLOSE.IDLE, 'no instance on this connection'), this.ctx.config.idleTimeoutMs);
    }
  }

  close(code: number, reason: string): void {
    this.closing = true;
    if (this.ws.readyState === this.ws.OPEN || this.ws.readyState === this.ws.CONNECTING) this.ws.close(code, reason);
  }

  /** Drop the TCP connection without a close frame (dead peer, tests). */
  terminate(): void {
    uncorkNow(this.socket); // frames sent before the cut still go out, as without corking
    this.ws.terminate();
  }

  ping(): void {
    this.isAlive = false;
    this.ws.ping();
  }

  private send(frame: ServerFrame): void {
    if (this.closed || this.ws.readyState !== this.ws.OPEN) return;
    corkForThisTurn(this.socket);
    this.ws.send(encodeFrame(frame));
    if (this.ws.bufferedAmount > this.ctx.config.pauseBufferedBytes) this.backlogHigh();
  }

  /**
   * More than `pauseBufferedBytes` wait for the client: stop reading its requests until
   * the socket drains; past `maxBufferedBytes` close it (4006). Nothing more is written
   * once the close started, so one socket never holds more than the cap plus one frame.
   */
  private backlogHigh(): void {
    const buffered = this.ws.bufferedAmount;
    if (buffered > this.ctx.config.maxBufferedBytes) {
      this.ctx.metrics.connectionsClosed.inc({ reason: 'slow' });
      this.ctx.sampler.warn(`slow ${this.ip}`, { conn: this.id, ip: this.ip, buffered }, 'connection closed: the client does not take what it is sent (4006)');
      this.close(CLOSE.SLOW_CONSUMER, 'send buffer full');
      return;
    }
    this.pauseReads();
  }

  private pauseReads(): void {
    if (this.readsPaused || this.closed) return;
    this.readsPaused = true;
    this.ctx.metrics.readsPaused.inc();
    this.ws.pause();
    this.socket.once('drain', () => this.socketOnDrain());
  }

  /** The client took everything: read again, handle the frames held meanwhile, let queued syncs run. */
  private socketOnDrain(): void {
    if (!this.readsPaused || this.closed) return;
    this.readsPaused = false;
    this.ws.resume();
    while (this.held.length > 0 && !this.readsPaused && !this.closing && !this.closed) {
      const [data, isBinary] = this.held.shift()!;
      this.handleFrame(data, isBinary);
    }
    if (this.syncQueue.length > 0) this.ctx.syncs.wake(this);
  }

  private replyError(id: number, code: number, message: string, data?: { kickType?: KickType }): void {
    this.send(data ? { type: 'result', id, ok: false, code, message, data } : { type: 'result', id, ok: false, code, message });
  }

  private reject(reason: string, code: number, message: string, id?: number): void {
    this.ctx.metrics.framesRejected.inc({ reason });
    if (id !== undefined) this.replyError(id, code, message);
    else this.send({ type: 'error', code, message });
  }

  private takeToken(): boolean {
    const now = Date.now();
    const rate = this.ctx.config.rateLimits.framesPerSecond;
    this.tokens = Math.min(rate * 2, this.tokens + ((now - this.lastRefill) / 1000) * rate);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private wsOnMessage(data: unknown, isBinary: boolean): void {
    // Once we decided to close (4501, 1003, 4003, 4500, shutdown…), frames the client had
    // already sent are not acted on: a login there would register an instance nobody holds.
    if (this.closed || this.closing) return;
    if (!this.takeToken()) {
      this.ctx.metrics.framesRejected.inc({ reason: 'rate' });
      this.send({ type: 'error', code: CODE.FRAME_RATE_LIMITED, message: codeText(CODE.FRAME_RATE_LIMITED) });
      this.close(CLOSE.FRAME_RATE, 'frame rate limit');
      return;
    }
    // ws may still hand over frames it had read before the pause: they wait their turn.
    if (this.readsPaused || this.held.length > 0) {
      if (this.held.length >= MAX_HELD_FRAMES) return this.close(CLOSE.FRAME_RATE, 'frame rate limit');
      this.held.push([data, isBinary]);
      return;
    }
    this.handleFrame(data, isBinary);
  }

  private handleFrame(data: unknown, isBinary: boolean): void {
    if (isBinary) {
      this.ctx.metrics.framesRejected.inc({ reason: 'binary' });
      this.close(CLOSE.UNSUPPORTED_DATA, 'binary frames are not supported');
      return;
    }
    const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data as ArrayBuffer).toString('utf8');
    const parsed = parseClientFrame(text);
    if (!parsed.ok) {
      this.reject('malformed', parsed.code, parsed.message, parsed.id);
      if (++this.badFrames > MAX_BAD_FRAMES) this.close(CLOSE.PROTOCOL_VIOLATION, 'too many malformed frames');
      return;
    }
    this.dispatch(parsed.frame);
  }

  private dispatch(frame: ClientFrame): void {
    if (frame.type === 'hello') return this.handleHello(frame.v, frame.client);
    if (!this.greeted) {
      this.reject('before-hello', CODE.HELLO_REQUIRED, codeText(CODE.HELLO_REQUIRED), 'id' in frame ? frame.id : undefined);
      return;
    }
    switch (frame.type) {
      case 'ping':
        return this.send({ type: 'pong', serverTime: Date.now() });
      case 'time':
        return this.send({ type: 'result', id: frame.id, ok: true, data: { serverTime: Date.now() } });
      case 'login':
        void this.handleLogin(frame).catch((err: unknown) => this.internalError(frame.id, err));
        return;
      case 'logout':
        void this.handleLogout(frame.id, frame.instId).catch((err: unknown) => this.internalError(frame.id, err));
        return;
      case 'resume':
        void this.handleResume(frame.id, frame.instId, frame.token).catch((err: unknown) => this.internalError(frame.id, err));
        return;
      case 'send':
        this.sendChain = this.sendChain.then(() => this.handleSend(frame)).catch((err: unknown) => this.internalError(frame.id, err));
        return;
      case 'sync':
        return this.enqueueSync(frame);
      case 'ack':
        void this.handleAck(frame).catch((err: unknown) => this.internalError(undefined, err));
        return;
      case 'convList':
      case 'history':
      case 'read':
      case 'convDelete':
        void this.handleConversation(frame).catch((err: unknown) => this.internalError(frame.id, err));
        return;
    }
  }

  /**
   * The instance a message frame names, or the coded refusal: 2024 when this connection
   * carries no instance at all (not logged in), 9004 when it does not carry this one.
   */
  private instanceFor(instId: number): Instance | MessageError {
    const inst = this.instances.has(instId) ? this.ctx.engine.local.get(instId) : undefined;
    if (inst) return inst;
    if (this.instances.size === 0) return new MessageError(CODE.USER_NOT_LOGGED_IN, 'not logged in: log in before sending or syncing messages');
    return new MessageError(CODE.UNKNOWN_INSTANCE, `instance ${instId} is not held by this connection`);
  }

  private async handleSend(frame: SendFrame): Promise<void> {
    const { ctx } = this;
    const inst = this.instanceFor(frame.instId);
    if (inst instanceof MessageError) {
      ctx.metrics.messagesRejected.inc({ code: String(inst.code) });
      return this.replyError(frame.id, inst.code, inst.message);
    }
    if (ctx.shuttingDown) {
      ctx.metrics.messagesRejected.inc({ code: String(CODE.SERVER_SHUTTING_DOWN) });
      return this.replyError(frame.id, CODE.SERVER_SHUTTING_DOWN, codeText(CODE.SERVER_SHUTTING_DOWN));
    }
    let message: WireMessage;
    try {
      message = await ctx.messages.send(inst, { clientMsgId: frame.clientMsgId, to: frame.to, text: frame.text });
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
      ctx.metrics.messagesRejected.inc({ code: String(err.code) });
      return this.replyError(frame.id, err.code, err.message);
    }
    const data: SendResultData = { message };
    this.send({ type: 'result', id: frame.id, ok: true, data });
  }

  /** A sync waits for its turn in the scheduler (fair between connections); a full queue answers 9041. */
  private enqueueSync(frame: SyncFrame): void {
    const inst = this.instanceFor(frame.instId);
    if (inst instanceof MessageError) return this.replyError(frame.id, inst.code, inst.message);
    if (this.syncQueue.length >= MAX_QUEUED_SYNCS) {
      this.ctx.metrics.syncsRefused.inc({ reason: 'queue' });
      return this.replyError(frame.id, CODE.SYNC_RATE_LIMITED, `${MAX_QUEUED_SYNCS} sync requests of this connection are already waiting; send the next after a reply`);
    }
    this.syncQueue.push(frame);
    this.ctx.syncs.wake(this);
  }

  /** SyncWorker: a sync may run now (see sync-scheduler.ts); otherwise the drain or a timer wakes the scheduler again. */
  syncReady(): boolean {
    const next = this.syncQueue[0];
    if (next === undefined || this.closed || this.closing) return false;
    if (this.readsPaused) return false;
    if (this.ws.bufferedAmount > this.ctx.config.pauseBufferedBytes) {
      this.pauseReads();
      return false;
    }
    const waitMs = this.syncTokenWait(next.instId, false);
    if (waitMs === 0) return true;
    if (this.syncTimer === null) {
      this.syncTimer = setTimeout(() => {
        this.syncTimer = null;
        this.ctx.syncs.wake(this);
      }, waitMs);
    }
    return false;
  }

  /** SyncWorker: serve the next queued sync. */
  async runSync(): Promise<void> {
    const frame = this.syncQueue.shift();
    if (frame === undefined) return;
    this.syncTokenWait(frame.instId, true);
    await this.handleSync(frame).catch((err: unknown) => this.internalError(frame.id, err));
  }

  /** Milliseconds until the instance's sync bucket has a token (0: it has one now; `take` takes it). */
  private syncTokenWait(instId: number, take: boolean): number {
    const rate = this.ctx.config.rateLimits.syncsPerSecond;
    const now = Date.now();
    let bucket = this.syncBuckets.get(instId);
    if (!bucket) this.syncBuckets.set(instId, (bucket = { tokens: rate, at: now }));
    bucket.tokens = Math.min(rate, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return Math.ceil(((1 - bucket.tokens) / rate) * 1000);
    if (take) bucket.tokens -= 1;
    return 0;
  }

  private async handleSync(frame: SyncFrame): Promise<void> {
    const inst = this.instanceFor(frame.instId);
    if (inst instanceof MessageError) return this.replyError(frame.id, inst.code, inst.message);
    // A MessageError (store closed or unavailable) is answered with its code by internalError.
    const data = await this.ctx.messages.sync(inst, frame.afterSeq, frame.limit);
    this.send({ type: 'result', id: frame.id, ok: true, data });
  }

  /** Conversations (server/conversations.ts); a refusal is a MessageError answered by internalError. */
  private async handleConversation(frame: ConversationRequestFrame): Promise<void> {
    const inst = this.instanceFor(frame.instId);
    if (inst instanceof MessageError) return this.replyError(frame.id, inst.code, inst.message);
    this.ctx.metrics.conversationRequests.inc({ op: frame.type });
    const data = await this.ctx.conversations.handle(inst, frame);
    this.send({ type: 'result', id: frame.id, ok: true, data });
  }

  private async handleAck(frame: AckFrame): Promise<void> {
    const inst = this.instanceFor(frame.instId);
    if (inst instanceof MessageError) {
      this.ctx.metrics.framesRejected.inc({ reason: 'ack' });
      return this.send({ type: 'error', code: inst.code, message: inst.message });
    }
    try {
      await this.ctx.messages.ack(inst, frame.seq);
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
      this.send({ type: 'error', code: err.code, message: `ack not recorded: ${err.message}` });
    }
  }

  private handleHello(v: number, client: string | undefined): void {
    if (v !== PROTOCOL_VERSION) {
      this.ctx.metrics.framesRejected.inc({ reason: 'version' });
      this.send({
        type: 'error',
        code: CODE.PROTOCOL_VERSION_MISMATCH,
        message: `protocol version ${v} is not supported: this server speaks version ${PROTOCOL_VERSION}; upgrade tabchat`,
      });
      this.close(CLOSE.PROTOCOL_VERSION, 'protocol version mismatch');
      return;
    }
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.greeted = true;
    this.armIdleIfEmpty();
    this.ctx.log.debug({ conn: this.id, client }, 'hello');
    this.send({
      type: 'welcome',
      v: PROTOCOL_VERSION,
      serverTime: Date.now(),
      heartbeatMs: this.ctx.config.heartbeatMs,
      resumeWindowMs: this.ctx.config.resumeWindowMs,
      node: this.ctx.node,
    });
  }

  private async handleLogin(frame: LoginFrame): Promise<void> {
    const started = performance.now();
    const { ctx } = this;
    const finish = (result: string) => {
      ctx.metrics.logins.inc({ result });
      ctx.metrics.loginDuration.observe((performance.now() - started) / 1000);
    };
    if (ctx.shuttingDown) {
      finish(String(CODE.SERVER_SHUTTING_DOWN));
      return this.replyError(frame.id, CODE.SERVER_SHUTTING_DOWN, codeText(CODE.SERVER_SHUTTING_DOWN));
    }
    // Cluster engine (Redis) away: fail fast (9030), nothing registered.
    const refuseUnavailable = (err: EngineUnavailableError) => {
      finish(String(CODE.ENGINE_UNAVAILABLE));
      ctx.sampler.info(`login refused ${this.ip} ${CODE.ENGINE_UNAVAILABLE}`, { conn: this.id, ip: this.ip, sdkAppId: frame.sdkAppId, userID: frame.userID, code: CODE.ENGINE_UNAVAILABLE }, 'login refused: cluster engine unavailable');
      this.replyError(frame.id, CODE.ENGINE_UNAVAILABLE, err.message);
    };
    let auth;
    try {
      auth = await ctx.auth.verify({ sdkAppId: frame.sdkAppId, userID: frame.userID, userSig: frame.userSig, origin: this.origin, ip: this.ip }, 'login');
    } catch (err) {
      if (err instanceof EngineUnavailableError) return refuseUnavailable(err);
      if (!(err instanceof AuthError)) throw err;
      return this.refuseLogin(frame, err.code, err.message, finish);
    }
    // A new instance starts at the user's acknowledged mailbox position (docs/protocol.md "Messages").
    let position: number;
    try {
      position = await ctx.messages.startPosition(frame.sdkAppId, frame.userID);
    } catch (err) {
      if (!(err instanceof MessageError)) throw err;
      finish(String(err.code));
      return this.replyError(frame.id, err.code, err.message);
    }
    // The socket may have gone (or be closing) while we verified: registering would leak an instance.
    if (this.closed || this.closing) return finish('closed');
    if (this.overUserConnections(frame.sdkAppId, frame.userID)) {
      const max = ctx.config.rateLimits.connectionsPerUser;
      return this.refuseLogin(frame, CODE.USER_CONNECTION_LIMIT, `${frame.userID} is already on ${max} connections of this server (rateLimits.connectionsPerUser)`, finish);
    }
    let outcome: LoginOutcome;
    try {
      // The memory engine answers synchronously: no await, so frames keep their order.
      const pending = ctx.engine.login(auth.app, { userID: frame.userID, platform: frame.platform, expireAt: auth.expireAt, issuedAtSec: auth.issuedAtSec }, this);
      outcome = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      if (err instanceof RevokedError) {
        // A REST kick landed between the UserSig check and the registration.
        const refusal = await ctx.auth.failure(this.ip, frame.sdkAppId, frame.userID, new AuthError(CODE.USERSIG_REVOKED, err.message));
        return this.refuseLogin(frame, refusal.code, refusal.message, finish);
      }
      if (err instanceof EngineUnavailableError) return refuseUnavailable(err);
      throw err;
    }
    const { inst, kicked } = outcome;
    // Gone while the cluster registered it: release it, nobody was told about it.
    if (this.closed || this.closing) {
      const released = ctx.engine.logout(inst.instId, this);
      if (released instanceof Promise) void released.catch(() => false);
      return finish('closed');
    }
    inst.ackedSeq = position;
    this.addInstance(inst);
    const data: LoginResultData = { instId: inst.instId, token: inst.token, userID: inst.userID, serverTime: Date.now(), expireAt: inst.expireAt };
    this.send({ type: 'result', id: frame.id, ok: true, data });
    finish('ok');
    ctx.sampler.info(
      `login ${userKey(inst.sdkAppId, inst.userID)}`,
      { conn: this.id, ip: this.ip, sdkAppId: inst.sdkAppId, userID: inst.userID, platform: inst.platform, instId: inst.instId, kicked },
      'login',
    );
  }

  /** Answer a refused login; the log line (sampled per address and code) names the address and the user, never the UserSig. */
  private refuseLogin(frame: LoginFrame, code: number, message: string, finish: (result: string) => void): void {
    finish(String(code));
    this.ctx.sampler.info(`login refused ${this.ip} ${code}`, { conn: this.id, ip: this.ip, sdkAppId: frame.sdkAppId, userID: frame.userID, code }, 'login refused');
    this.replyError(frame.id, code, message);
  }

  private async handleLogout(id: number, instId: number): Promise<void> {
    if (!this.instances.has(instId)) return this.replyError(id, CODE.UNKNOWN_INSTANCE, `instance ${instId} is not held by this connection`);
    const pending = this.ctx.engine.logout(instId, this);
    const released = pending instanceof Promise ? await pending : pending;
    if (!released) return this.replyError(id, CODE.UNKNOWN_INSTANCE, `instance ${instId} is not held by this connection`);
    this.dropInstance(instId);
    this.ctx.log.info({ conn: this.id, instId }, 'logout');
    this.send({ type: 'result', id, ok: true, data: {} });
  }

  private async handleResume(id: number, instId: number, token: string): Promise<void> {
    let result: ResumeResult;
    try {
      const pending = this.ctx.engine.resume(instId, token, this);
      result = pending instanceof Promise ? await pending : pending;
    } catch (err) {
      if (!(err instanceof EngineUnavailableError)) throw err;
      // The instance may live on another node and only Redis knows: make the client
      // reconnect with backoff and try again, keeping its session (docs/protocol.md).
      this.ctx.metrics.resumes.inc({ result: 'failed' });
      this.ctx.log.info({ conn: this.id, instId }, 'resume needs the cluster engine, which is unavailable: closing 4005');
      this.close(CLOSE.ENGINE_UNAVAILABLE, 'cluster engine unavailable; reconnect and resume');
      return;
    }
    if (result.ok && (this.closed || this.closing)) {
      // Gone while resuming: leave it detached (resumable) again.
      this.ctx.engine.detachOwner(this, [instId]);
      return;
    }
    if (!result.ok) {
      if (result.refused !== undefined) {
        this.ctx.metrics.resumes.inc({ result: 'failed' });
        this.ctx.sampler.info(`resume refused ${this.ip} ${result.refused}`, { conn: this.id, ip: this.ip, origin: this.origin, instId, code: result.refused }, 'resume refused');
        return this.replyError(id, result.refused, `origin ${this.origin ?? '(none)'} is not allowed for the app of instance ${instId} (allowedOrigins)`);
      }
      if (result.kickType) {
        this.ctx.metrics.resumes.inc({ result: 'kicked' });
        const code = KICK_REASON_CODE[result.kickType];
        return this.replyError(id, code, `instance ${instId} was kicked (${result.kickType}) while disconnected`, { kickType: result.kickType });
      }
      this.ctx.metrics.resumes.inc({ result: 'failed' });
      return this.replyError(id, CODE.RESUME_FAILED, `instance ${instId} cannot be resumed (resume window passed or unknown); log in again`);
    }
    this.addInstance(result.inst);
    if (result.moved) {
      // Held by another node until now: start from the user's acknowledged position (the
      // client syncs from its own position anyway).
      const inst = result.inst;
      this.ctx.messages.startPosition(inst.sdkAppId, inst.userID).then(
        (position) => (inst.ackedSeq = Math.max(inst.ackedSeq, position)),
        () => undefined,
      );
    }
    this.ctx.metrics.resumes.inc({ result: 'ok' });
    this.ctx.log.debug({ conn: this.id, instId }, 'resume');
    this.send({ type: 'result', id, ok: true, data: { instId, serverTime: Date.now(), expireAt: result.inst.expireAt } });
  }

  /** An unexpected failure: logged; the request (if any) gets 9099, which the client may retry. */
  private internalError(id: number | undefined, err: unknown): void {
    if (err instanceof MessageError) {
      // A coded refusal that escaped its handler (e.g. the store was closed during shutdown).
      if (id !== undefined) this.replyError(id, err.code, err.message);
      return;
    }
    this.ctx.log.error({ conn: this.id, err: err instanceof Error ? err.stack : String(err) }, 'internal error');
    if (id !== undefined) this.replyError(id, CODE.SERVER_INTERNAL, codeText(CODE.SERVER_INTERNAL));
    else this.send({ type: 'error', code: CODE.SERVER_INTERNAL, message: codeText(CODE.SERVER_INTERNAL) });
  }

  private wsOnClose(): void {
    if (this.closed) return;
    this.closed = true;
    uncorkNow(this.socket);
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.syncTimer) clearTimeout(this.syncTimer);
    this.syncQueue.length = 0;
    this.held.length = 0;
    for (const key of new Set(this.instUsers.values())) this.leaveUser(key);
    this.instUsers.clear();
    this.ctx.connections.delete(this);
    this.ctx.metrics.connections.set(this.ctx.connections.size);
    this.ctx.engine.detachOwner(this, this.instances);
    this.instances.clear();
  }
}
