/**
 * An instance as the engine tracks it: its server id and resume token, its state on the
 * current connection, its mailbox position and its send queue. Handed out as its
 * {@link SessionHandle}. The parts of the engine reach the instances through an
 * {@link InstanceView}.
 */
import type { WireMessage } from '../protocol/frames.js';
import { SendQueue } from './send-queue.js';
import type { InstanceEvents, LoginParams, SessionHandle } from './types.js';

type Timer = ReturnType<typeof setTimeout>;

/**
 * - `attached`: live on the current connection.
 * - `detached`: its connection dropped; resumed when the next one opens.
 * - `restoring`: resume (or re-login) in flight.
 */
export type InstanceState = 'attached' | 'detached' | 'restoring';

/** An instance as the engine tracks it; handed out as its {@link SessionHandle}. */
export class Instance implements SessionHandle {
  instId: number;
  token: string;
  state: InstanceState = 'attached';
  readonly params: LoginParams;
  readonly events: InstanceEvents;
  /** Mailbox position: highest seq processed; null until the first sync answered. */
  lastSeq: number | null = null;
  /** Highest seq acknowledged to the server on the current server-side instance. */
  ackedSeq = 0;
  /** A sync loop is running. */
  syncing = false;
  /** Something beyond lastSeq was seen while syncing: sync once more after this loop. */
  resyncWanted = false;
  /** Failed syncs in a row (for the retry backoff). */
  syncFailures = 0;
  syncRetryTimer: Timer | undefined;
  ackTimer: Timer | undefined;
  /** Messages sent by this instance, oldest first, until the server acknowledges them. */
  readonly queue = new SendQueue();
  /**
   * This instance's own acknowledged sends beyond lastSeq: seq → the stored message (never
   * reported as received, unless the host asked for them with `reportOwn`).
   */
  readonly own = new Map<number, WireMessage>();
  /** Pushed messages beyond lastSeq + 1, or that came while a sync ran: applied in order once the gap is filled. */
  readonly buffered = new Map<number, WireMessage>();

  constructor(instId: number, token: string, params: LoginParams, events: InstanceEvents) {
    this.instId = instId;
    this.token = token;
    this.params = params;
    this.events = events;
  }
  get userID(): string {
    return this.params.userID;
  }
  get sdkAppId(): number {
    return this.params.sdkAppId;
  }
  get platform(): LoginParams['platform'] {
    return this.params.platform;
  }
}

/** What the sender and the mailbox may ask about the instances the engine holds. */
export interface InstanceView {
  /** Whether the engine still holds `instance` (not logged out, kicked, lost or closed). */
  owns(instance: Instance): boolean;
  /** The instance the server calls `instId` on the current connection. */
  find(instId: number): Instance | undefined;
  /** Every instance held now. */
  all(): Iterable<Instance>;
}
