/**
 * The session engine: one WebSocket to the chat server carrying any number of login
 * instances, addressed by `instId`. See docs/protocol.md for the frames and
 * docs/client-api.md for what applications observe.
 *
 * - The socket opens lazily on the first login and closes when the last instance leaves.
 * - While instances exist, a lost socket is reopened with capped full-jitter backoff and
 *   every instance is resumed silently (or logged in again with its stored UserSig when
 *   the resume window has passed). Terminal close codes (4500–4999) end all instances.
 *
 * `SessionEngine` is the one public class; it composes four parts, each reaching the others
 * only through narrow interfaces and the callbacks wired here:
 * - {@link ServerLink} (server-link.ts): the socket, the state machine, heartbeats, requests,
 *   reconnects;
 * - {@link Placement} (placement.ts): the instances on the socket, login / resume / logout,
 *   restores, kicks;
 * - {@link Sender} (sender.ts): the outbox, pacing, retries (the send queue: send-queue.ts);
 * - {@link Mailbox} (mailbox.ts): sync, buffered pushes, acknowledgements.
 *
 * Portable: no Node-only or window-only API; the WebSocket constructor is injected.
 */
import { CODE } from '../protocol/codes.js';
import type { ConversationCall, NetState, OutgoingText } from '../protocol/data.js';
import type { WireMessage } from '../protocol/frames.js';
import {
  DEFAULT_ACK_DELAY_MS,
  DEFAULT_FRAMES_PER_SECOND,
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_SEND_TIMEOUT_MS,
  DEFAULT_SILENCE_MARGIN_MS,
  fullJitterBackoff,
} from './defaults.js';
import { ChatError } from './errors.js';
import { Instance } from './instance.js';
import { createConsoleLogger } from './log.js';
import { Mailbox } from './mailbox.js';
import { Conversations } from './conversations.js';
import { MemoryOutbox } from './outbox.js';
import { Placement } from './placement.js';
import { Sender } from './sender.js';
import { ServerLink, netStateOf } from './server-link.js';
import type {
  InstanceEvents,
  LoginGrant,
  LoginParams,
  SessionEngineApi,
  SessionEngineOptions,
  SessionHandle,
  SessionState,
  StateChange,
} from './types.js';

/** Close code of a frame over the server's maxPayload. */
const CLOSE_MESSAGE_TOO_BIG = 1009;

/** The session engine; see the module comment. */
export class SessionEngine implements SessionEngineApi {
  private readonly link: ServerLink;
  private readonly placement: Placement;
  private readonly sender: Sender;
  private readonly mailbox: Mailbox;
  private readonly conversations: Conversations;

  /** @param options - see {@link SessionEngineOptions} for the defaults */
  constructor(options: SessionEngineOptions) {
    const log = options.logger ?? createConsoleLogger('tabchat:engine');
    const backoff = options.backoff ?? fullJitterBackoff();
    const requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.link = new ServerLink(
      {
        url: options.url,
        WebSocket: options.WebSocket,
        clientName: options.clientName ?? 'tabchat',
        requestTimeoutMs,
        silenceMarginMs: options.silenceMarginMs ?? DEFAULT_SILENCE_MARGIN_MS,
        backoff,
        log,
      },
      {
        opened: () => this.placement.restoreDetached(),
        pushed: (frame) =>
          frame.type === 'kick' ? this.placement.kicked(frame) : frame.type === 'conv' ? this.conversations.pushed(frame, this.placement.find(frame.instId)) : this.mailbox.received(frame),
        dropped: (code, reason, text) => {
          if (code === CLOSE_MESSAGE_TOO_BIG) this.sender.dropOversized();
          this.placement.socketDropped(code, reason, text);
        },
        inUse: () => this.placement.busy,
      },
    );
    this.placement = new Placement(
      this.link,
      {
        placed: (instance) => {
          this.conversations.attach(instance, false);
          this.mailbox.startSync(instance);
          void this.sender.adopt(instance);
        },
        restored: (instance) => {
          this.conversations.attach(instance, true);
          this.mailbox.startSync(instance);
          this.sender.flush();
          void this.sender.adopt(instance);
        },
        leaving: (instance) => this.mailbox.ackNow(instance),
        ended: (instance, error, keepEntries) => {
          this.conversations.detach(instance);
          this.mailbox.forget(instance);
          this.sender.dropQueue(instance, error, keepEntries);
        },
      },
      log,
      requestTimeoutMs,
    );
    this.sender = new Sender(this.link, this.placement, {
      outbox: options.outbox ?? new MemoryOutbox(),
      sendTimeoutMs: options.sendTimeoutMs ?? DEFAULT_SEND_TIMEOUT_MS,
      framesPerSecond: Math.max(1, options.framesPerSecond ?? DEFAULT_FRAMES_PER_SECOND),
      maxFrameBytes: options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
      log,
      stored: (instance, message) => this.mailbox.noteOwn(instance, message),
    });
    this.mailbox = new Mailbox(this.link, this.placement, {
      ackDelayMs: options.ackDelayMs ?? DEFAULT_ACK_DELAY_MS,
      backoff,
      log,
      settleQueued: (instance, message) => this.sender.settleQueued(instance, message),
      applied: (instance, messages) => this.conversations.applied(instance, messages),
    });
    this.conversations = new Conversations({ link: this.link, instances: () => this.placement.all(), log });
  }

  get state(): SessionState {
    return this.link.state;
  }
  get netState(): NetState {
    return netStateOf(this.link.state);
  }
  get instanceCount(): number {
    return this.placement.size;
  }

  onStateChange(listener: (change: StateChange) => void): () => void {
    return this.link.onStateChange(listener);
  }
  onNetState(listener: (state: NetState) => void): () => void {
    return this.link.onNetState(listener);
  }

  getServerTime(): number {
    return this.link.serverTime();
  }

  login(params: LoginParams, events: InstanceEvents): Promise<LoginGrant> {
    return this.placement.login(params, events);
  }

  resume(params: LoginParams, saved: { instId: number; token: string; lastSeq?: number | null }, events: InstanceEvents): Promise<LoginGrant> {
    return this.placement.resume(params, saved, events);
  }

  async logout(handle: SessionHandle, options: { keepQueued?: boolean } = {}): Promise<void> {
    if (handle instanceof Instance) await this.placement.logout(handle, options.keepQueued === true);
  }

  send(handle: SessionHandle, message: OutgoingText, options: { timeoutMs?: number } = {}): Promise<WireMessage> {
    return this.sender.send(handle, message, options);
  }

  conversation(handle: SessionHandle, call: ConversationCall): Promise<unknown> {
    if (!(handle instanceof Instance) || !this.placement.owns(handle)) return Promise.reject(new ChatError(CODE.USER_NOT_LOGGED_IN, 'this instance is not logged in'));
    return this.conversations.call(handle, call);
  }

  async cancelSend(handle: SessionHandle, clientMsgId: string): Promise<boolean> {
    return handle instanceof Instance && this.sender.cancel(handle, clientMsgId);
  }

  /**
   * The host's view of the network (browser `online` / `offline` events). Offline: close
   * the socket now (instances stay, as on any drop: NET_STATE_CHANGE `connecting`) and do not
   * try again until online. Online: if a reconnect is waiting, connect now, without backoff.
   * Logins started while offline still try the network (the event may be wrong).
   */
  setOnline(online: boolean): void {
    this.link.setOnline(online);
  }

  close(): void {
    if (this.link.state === 'closed') return;
    const error = new ChatError(CODE.DESTROYED, 'the session engine was closed');
    this.sender.stop();
    // Outbox entries stay: a durable outbox hands them to the next engine.
    this.placement.endAll(error);
    this.link.close(error);
  }
}
