/**
 * A follower tab's link to the leader's hub (leader-tab transport): commands go out on the
 * BroadcastChannel `tabchat:rpc:<build>` addressed to one leader run (its epoch), answers
 * come back addressed to this tab. The leader's hub runs in a dedicated worker of the leader
 * tab (worker/leader-host.ts), so a busy or paused leader page delays nothing here; but the
 * browser may still freeze that tab with its worker before it could hand over, so this link
 * watches whether the hub answers:
 *
 * - A request unanswered for {@link PROBE_AFTER_MS} makes the link ping the leader run; the
 *   hub answers a ping at once, whatever it is doing (a login may legitimately wait for the
 *   server much longer).
 * - No pong within {@link PONG_WAIT_MS}: the hub is stalled. The link tells its listener
 *   (the tab's hub connection: `NET_STATE_CHANGE connecting` and `ERROR` 9009 for its
 *   chats), rejects with 9009 the waiting calls that change nothing the tab would have to
 *   undo (send, logout, forget, state, bye), and rejects new calls with 9009 at once rather
 *   than queueing them on a hub that does not run. `login` and `register` keep waiting
 *   within their own timeouts: the hub may still carry them out, and the tab must then hear
 *   the outcome.
 * - It keeps pinging; the first pong (or any answer) ends the stall: the listener hears
 *   `null`, and the tab resyncs. A new leader ends it too: the dead leader's life lock is
 *   released and the tab moves to the new one.
 * - A ping whose timer fired late (this tab was throttled or frozen itself) proves nothing
 *   about the leader: it is sent again instead of declaring a stall.
 */
import { CODE } from '../src/protocol/codes.js';
import type { ErrorData } from '../src/protocol/data.js';
import { ChatError, fromErrorData } from '../src/core/errors.js';
import { PendingMap } from '../src/core/pending.js';
import {
  workerLockName,
  type HubApi,
  type HubLink,
  type RpcMessage,
  type RpcMethod,
} from '../src/protocol/hub-protocol.js';

/** Upper bound of one follower command on the channel (the caller's own timeout is shorter). */
export const RPC_TIMEOUT_MS = 30_000;
/** A request unanswered this long makes the follower ping the leader. */
export const PROBE_AFTER_MS = 1_000;
/** A ping unanswered this long means the leader's hub is stalled (9009); also the ping interval while it is. */
export const PONG_WAIT_MS = 2_000;

/** Calls rejected with 9009 when the hub stalls (asking again later is harmless); the others keep waiting. */
const ABANDONED_ON_STALL: ReadonlySet<RpcMethod> = new Set<RpcMethod>(['sendText', 'conversation', 'logout', 'forget', 'getState', 'bye']);

export interface RemoteLinkOptions {
  tabId: string;
  /** The leader run this link talks to. */
  epoch: string;
  /** Post on the RPC channel. */
  post(message: RpcMessage): void;
  /** Web Locks, to notice the leader run's death (its life lock released); null: not noticed. */
  locks: Pick<LockManager, 'request'> | null;
  /** A request id unique in the page. */
  nextId(): string;
  /** The link was closed (stop routing answers to it). */
  onClose(link: RemoteLink): void;
  /** Test hooks: {@link PROBE_AFTER_MS}, {@link PONG_WAIT_MS}. */
  probeAfterMs?: number;
  pongWaitMs?: number;
}

/** Commands to one leader run over the channel; `failed` rejects when its life lock is released. */
export class RemoteLink implements HubLink {
  readonly api: HubApi;
  readonly failed: Promise<never>;
  readonly epoch: string;
  readonly #options: RemoteLinkOptions;
  readonly #probeAfterMs: number;
  readonly #pongWaitMs: number;
  readonly #pending = new PendingMap<string, unknown>();
  /** Requests waiting for their answer: method and when they were sent. */
  readonly #requests = new Map<string, { method: RpcMethod; since: number }>();
  readonly #watch = new AbortController();
  #listener: ((stall: ErrorData | null) => void) | null = null;
  /** Set while the hub is stalled: the error calls get. */
  #stall: ErrorData | null = null;
  /** The ping waiting for its pong. */
  #ping: { id: string; sentAt: number } | null = null;
  /** Last proof that the hub runs (a pong or an answer), ms since epoch. */
  #aliveAt = Date.now();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: RemoteLinkOptions) {
    this.#options = options;
    this.epoch = options.epoch;
    this.#probeAfterMs = options.probeAfterMs ?? PROBE_AFTER_MS;
    this.#pongWaitMs = options.pongWaitMs ?? PONG_WAIT_MS;
    const epoch = options.epoch;
    this.failed = new Promise<never>((_, reject) => {
      options.locks
        ?.request(workerLockName(epoch), { mode: 'shared', signal: this.#watch.signal }, () => {
          reject(new ChatError(CODE.WORKER_GONE, `the leader tab (epoch ${epoch}) went away`));
        })
        .catch(() => {}); // aborted by close()
    });
    this.failed.catch(() => {}); // only raced by the caller
    const send = this.#send.bind(this);
    this.api = {
      register: (req) => send('register', [req]) as ReturnType<HubApi['register']>,
      login: (tabId, spec, creds) => send('login', [tabId, spec, creds]) as ReturnType<HubApi['login']>,
      // A send may wait for the server as long as the tab's send timeout allows.
      sendText: (tabId, chatId, message, timeoutMs) =>
        send('sendText', [tabId, chatId, message, timeoutMs], Math.max(RPC_TIMEOUT_MS, timeoutMs + RPC_TIMEOUT_MS)) as ReturnType<HubApi['sendText']>,
      logout: (tabId, chatId, allTabs) => send('logout', [tabId, chatId, allTabs]) as ReturnType<HubApi['logout']>,
      conversation: (tabId, chatId, call) => send('conversation', [tabId, chatId, call]) as ReturnType<HubApi['conversation']>,
      forget: (tabId, chatId) => send('forget', [tabId, chatId]) as ReturnType<HubApi['forget']>,
      bye: (tabId) => send('bye', [tabId]) as ReturnType<HubApi['bye']>,
      getState: () => send('getState', []) as ReturnType<HubApi['getState']>,
    };
  }

  /** The error calls get while the hub is stalled; null while it answers. */
  get stall(): ErrorData | null {
    return this.#stall;
  }

  watch(listener: (stall: ErrorData | null) => void): void {
    this.#listener = listener;
  }

  /** A `res` or `pong` addressed to this tab (the caller checked `to`). */
  receive(message: RpcMessage): void {
    if (this.#closed || (message.kind !== 'res' && message.kind !== 'pong') || message.epoch !== this.epoch) return;
    if (message.kind === 'res') {
      this.#requests.delete(message.id);
      this.#pending.take(message.id)?.resolve(message.value);
    }
    // Any answer, even to an earlier ping, proves the hub runs now.
    this.#alive();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#watch.abort();
    const error = new ChatError(CODE.WORKER_GONE, 'the leader tab went away');
    for (const id of [...this.#requests.keys()]) this.#pending.take(id)?.reject(error);
    this.#requests.clear();
    this.#options.onClose(this);
  }

  #send(method: RpcMethod, args: unknown[], timeoutMs = RPC_TIMEOUT_MS): Promise<unknown> {
    if (this.#closed) return Promise.reject(new ChatError(CODE.WORKER_GONE, 'the leader tab went away'));
    // Not queued on a hub that does not run: the caller hears it now.
    if (this.#stall) return Promise.reject(fromErrorData(this.#stall));
    const id = this.#options.nextId();
    const answer = this.#pending.wait(id, timeoutMs, `the leader tab did not answer ${method} within ${timeoutMs} ms`);
    const done = () => {
      this.#requests.delete(id);
    };
    answer.then(done, done);
    this.#requests.set(id, { method, since: Date.now() });
    this.#options.post({ kind: 'req', id, from: this.#options.tabId, epoch: this.epoch, method, args });
    this.#arm();
    return answer;
  }

  /** Schedule the next check: when the oldest waiting request reaches {@link PROBE_AFTER_MS} unanswered since the hub last proved alive. */
  #arm(): void {
    if (this.#closed || this.#timer !== undefined || this.#ping) return;
    let oldest = Infinity;
    for (const request of this.#requests.values()) oldest = Math.min(oldest, request.since);
    if (oldest === Infinity) return;
    const due = Math.max(oldest, this.#aliveAt) + this.#probeAfterMs;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#check();
    }, Math.max(0, due - Date.now()));
  }

  #check(): void {
    if (this.#closed || this.#ping) return;
    const now = Date.now();
    const waiting = [...this.#requests.values()].some((r) => now - Math.max(r.since, this.#aliveAt) >= this.#probeAfterMs);
    if (waiting || this.#stall) this.#sendPing();
    else this.#arm();
  }

  #sendPing(): void {
    const id = this.#options.nextId();
    this.#ping = { id, sentAt: Date.now() };
    this.#options.post({ kind: 'ping', id, from: this.#options.tabId, epoch: this.epoch });
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#noPong();
    }, this.#pongWaitMs);
  }

  #noPong(): void {
    const ping = this.#ping;
    if (this.#closed || !ping) return;
    this.#ping = null;
    // This timer ran late: this tab was throttled or frozen, which says nothing about the leader.
    const late = Date.now() - ping.sentAt > 2 * this.#pongWaitMs;
    if (!this.#stall && !late) this.#stalled();
    this.#sendPing();
  }

  #stalled(): void {
    const waitedMs = this.#probeAfterMs + this.#pongWaitMs;
    const stall: ErrorData = {
      code: CODE.HUB_UNRESPONSIVE,
      message: `the tabchat leader tab did not answer within ${waitedMs} ms (frozen or busy); calls fail with 9009 until it answers again or another tab leads`,
      data: { epoch: this.epoch },
    };
    this.#stall = stall;
    for (const [id, request] of [...this.#requests]) {
      if (ABANDONED_ON_STALL.has(request.method)) this.#pending.take(id)?.reject(fromErrorData(stall));
    }
    this.#listener?.(stall);
  }

  #alive(): void {
    this.#aliveAt = Date.now();
    if (this.#ping) {
      this.#ping = null;
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    if (this.#stall) {
      this.#stall = null;
      this.#listener?.(null);
    }
    this.#arm();
  }
}
