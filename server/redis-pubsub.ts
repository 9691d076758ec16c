/**
 * Node-to-node notices over Redis PUB/SUB. Every node listens to its own channel
 * `<prefix>node:<nodeKey>` and to `<prefix>all`:
 *
 * - `kick` and `forget` (an instance of this node was kicked, or resumed on another node)
 *   are published by the Lua scripts, atomically with the change;
 * - `msg` (a message push for a user with instances here) by the ROUTE script, once per
 *   node that holds a connected instance of the recipient;
 * - `settings` (an app's login settings changed) by the node that changed them, on `all`;
 * - `sync` (let these users' connected instances catch up: pushes to them could not be
 *   routed while the publishing node's link was down) on `all` (redis-unrouted.ts).
 *
 * PUB/SUB is at-most-once: a lost notice is repaired by the resume path (tombstones report
 * kicks), by mailbox sync (a lost push only delays a message) and by the reconcile pass
 * after every reconnect to Redis (redis-reconcile.ts).
 */
import { isKickType, type KickType } from '../src/protocol/frames.js';
import type { UserPush } from '../src/protocol/conversation-frames.js';
import type { LoginPolicy } from './config.js';
import type { LoginSettings } from './engine.js';
import type { ClusterMetrics } from './metrics.js';
import type { RedisLink } from './redis-health.js';
import type { RedisKeys } from './redis-keys.js';

/** A notice between nodes (short field names: the scripts write them too). */
export type NodeMessage =
  | { t: 'kick'; id: string; k: KickType }
  | { t: 'forget'; id: string }
  | { t: 'msg'; a: number; u: string; x: number; m: UserPush }
  | { t: 'settings'; a: number; max: number; policy: LoginPolicy }
  | { t: 'sync'; n: string; u: Array<[number, string]> | 'all' };

/** What a node does with the notices it receives. */
export interface NodeMessageHandlers {
  /** An instance of this node was kicked (by a script here or on another node). */
  kick(instId: number, type: KickType): void;
  /** An instance of this node was resumed on another node. */
  forget(instId: number): void;
  /** Push a message to this node's connected instances of the user, except `exceptId`. */
  push(sdkAppId: number, userID: string, message: UserPush, exceptId: number): void;
  /** An app's login settings changed on another node. */
  settings(sdkAppId: number, settings: { max: number; policy: LoginPolicy }): void;
  /** Let this node's connected instances of these users (or all of them) catch up. */
  sync(users: Array<[number, string]> | 'all'): void;
}

export class NodeChannel {
  constructor(
    private readonly link: RedisLink,
    private readonly keys: RedisKeys,
    private readonly nodeKey: string,
    private readonly metrics: ClusterMetrics,
    private readonly handlers: NodeMessageHandlers,
  ) {
    link.sub.on('message', (_channel: string, text: string) => this.subOnMessage(text));
  }

  /** Listen to this node's channel and to the broadcast channel. */
  async subscribe(): Promise<void> {
    await this.link.sub.subscribe(this.keys.nodeChannelPrefix + this.nodeKey, this.keys.broadcastChannel);
  }

  /** Count notices a script published for this node's call. */
  sent(type: NodeMessage['t'], count = 1): void {
    this.metrics.pubsub.inc({ direction: 'out', type }, count);
  }

  /** The `msg` notice the ROUTE script publishes to the recipient's other nodes. */
  messagePayload(sdkAppId: number, userID: string, exceptId: number, message: UserPush): string {
    return JSON.stringify({ t: 'msg', a: sdkAppId, u: userID, x: exceptId, m: message });
  }

  /** Tell every node an app's new login settings (best effort: each login reads them from Redis anyway). */
  publishSettings(sdkAppId: number, settings: LoginSettings): void {
    const message: NodeMessage = { t: 'settings', a: sdkAppId, max: settings.maxInstancesPerPlatform, policy: settings.loginPolicy };
    this.link.background('settings', this.link.cmd.publish(this.keys.broadcastChannel, JSON.stringify(message)));
    this.sent('settings');
  }

  /** Ask every other node to let connected instances of `users` (or all) catch up. */
  async publishSync(users: Array<[number, string]> | 'all'): Promise<void> {
    const message: NodeMessage = { t: 'sync', n: this.nodeKey, u: users };
    await this.link.cmd.publish(this.keys.broadcastChannel, JSON.stringify(message));
    this.sent('sync');
  }

  private subOnMessage(text: string): void {
    let msg: NodeMessage;
    try {
      msg = JSON.parse(text) as NodeMessage;
    } catch {
      return;
    }
    this.metrics.pubsub.inc({ direction: 'in', type: msg.t });
    switch (msg.t) {
      case 'kick':
        if (isKickType(msg.k)) this.handlers.kick(Number(msg.id), msg.k);
        return;
      case 'forget':
        this.handlers.forget(Number(msg.id));
        return;
      case 'msg':
        this.handlers.push(msg.a, msg.u, msg.m, msg.x);
        return;
      case 'settings':
        this.handlers.settings(msg.a, { max: msg.max, policy: msg.policy });
        return;
      case 'sync':
        if (msg.n !== this.nodeKey && (msg.u === 'all' || Array.isArray(msg.u))) this.handlers.sync(msg.u);
        return;
    }
  }
}
