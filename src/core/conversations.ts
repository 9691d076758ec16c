/**
 * Conversations in the session engine: ONE cache per user per engine (so per browser
 * profile in the SharedWorker or the leader's hub, per process in Node), shared by every
 * instance of that user on the socket. docs/architecture.md "Conversations".
 *
 * - Loaded once per user (`convList`) when the user's first instance is placed, and again
 *   after each reconnect (a `conv` push may have been lost with the socket). A later
 *   instance of the same user, and every `getConversationList()`, is served from the cache
 *   without a server round trip.
 * - Messages the mailbox applies (in order, each once per instance) update it: a message
 *   with seq <= the conversation's `lastSeq` (or <= the mailbox head the list was read at)
 *   is already counted, so a message seen by several instances, a resend or a re-sync is
 *   never counted twice.
 * - `conv` pushes (a read or delete elsewhere, the peer's read receipt) and the answers of
 *   this engine's own reads replace the server state of the conversation; received
 *   messages applied here after that state are kept on top of it.
 * - The unread total is the sum over the cached conversations.
 * - The newest history page of recently viewed conversations is kept (dropped when the
 *   conversation changes), bounded.
 */
import { CODE } from '../protocol/codes.js';
import type { ConversationCall, ConversationsUpdate } from '../protocol/data.js';
import type {
  ConvDeleteResultData,
  ConvFrame,
  ConvListResultData,
  HistoryResultData,
  ReadResultData,
  WireConversation,
} from '../protocol/conversation-frames.js';
import type { Logger } from '../protocol/data.js';
import type { RequestFrame, WireMessage } from '../protocol/frames.js';
import { ChatError } from './errors.js';
import type { Instance } from './instance.js';
import { safely } from './log.js';
import type { ServerLink } from './server-link.js';

/** Newest history pages kept per user. */
const MAX_CACHED_PAGES = 32;
/** Received messages counted on top of a conversation's server state before a reload is preferred. */
const MAX_LOCAL_IN = 1000;

interface Conv {
  /** Server state, with the messages applied here since. */
  state: WireConversation;
  /** Seqs of received messages counted here on top of the last server state. */
  localIn: number[];
}

interface UserCache {
  convs: Map<string, Conv>;
  /** Messages with seq <= this were in the loaded list. */
  head: number;
  loaded: boolean;
  loading: Promise<void> | null;
  /** Peers deleted here: messages up to this seq stay deleted. */
  removed: Map<string, number>;
  /** Newest page per peer (insertion order = age). */
  pages: Map<string, HistoryResultData>;
}

/** What the conversations use of the engine. */
export interface ConversationHost {
  link: Pick<ServerLink, 'request' | 'state'>;
  /** The live instances (to find those of a user). */
  instances(): Iterable<Instance>;
  log: Logger;
}

function userOf(instance: Instance): string {
  return `${instance.sdkAppId}\u0000${instance.userID}`;
}

function peerOf(message: WireMessage): string {
  return message.flow === 'in' ? message.from : message.to;
}

export class Conversations {
  private readonly users = new Map<string, UserCache>();

  constructor(private readonly host: ConversationHost) {}

  /** An instance was placed or restored: make sure its user's cache is loaded, then tell it. */
  attach(instance: Instance, reload: boolean): void {
    if (!instance.events.onConversations) return;
    const cache = this.cache(instance);
    if (cache.loaded && !reload) {
      this.emitTo(instance, cache);
      return;
    }
    void this.load(instance, cache).catch((err: unknown) => this.host.log.debug('conversation list not loaded:', err instanceof Error ? err.message : String(err)));
  }

  /** The instance ended: drop its user's cache when no other instance of the user remains. */
  detach(instance: Instance): void {
    const user = userOf(instance);
    for (const other of this.host.instances()) if (other !== instance && userOf(other) === user) return;
    this.users.delete(user);
  }

  /** Messages the mailbox applied for `instance`, in order (own sends included). */
  applied(instance: Instance, messages: WireMessage[]): void {
    const cache = this.users.get(userOf(instance));
    if (!cache?.loaded) return;
    let changed = false;
    for (const message of messages) changed = this.applyMessage(cache, message) || changed;
    if (changed) this.emitUser(userOf(instance), cache);
  }

  /** A `conv` push for one of our instances. */
  pushed(frame: ConvFrame, instance: Instance | undefined): void {
    if (!instance) return;
    const cache = this.users.get(userOf(instance));
    if (!cache?.loaded) return;
    const { conversation, removed } = frame.update;
    let peerRead: ConversationsUpdate['peerRead'];
    if (removed !== undefined) this.removeLocal(cache, removed);
    if (conversation) peerRead = this.applyState(cache, conversation, frame.update.readMessageID);
    this.emitUser(userOf(instance), cache, peerRead);
  }

  /** One conversation call of `instance` (getConversationList, getMessageList, setMessageRead, deleteConversation). */
  async call(instance: Instance, call: ConversationCall): Promise<unknown> {
    const cache = this.cache(instance);
    switch (call.op) {
      case 'list':
        if (!cache.loaded) await this.load(instance, cache);
        return this.update(cache);
      case 'history': {
        const cached = call.before === undefined ? cache.pages.get(call.peer) : undefined;
        if (cached) return cached;
        const page = (await this.request(instance, (id) => ({ type: 'history', id, instId: instance.instId, peer: call.peer, ...(call.before === undefined ? {} : { before: call.before }) }))) as HistoryResultData;
        if (call.before === undefined) {
          cache.pages.delete(call.peer);
          cache.pages.set(call.peer, page);
          if (cache.pages.size > MAX_CACHED_PAGES) cache.pages.delete(cache.pages.keys().next().value!);
        }
        return page;
      }
      case 'read': {
        const data = (await this.request(instance, (id) => ({ type: 'read', id, instId: instance.instId, peer: call.peer }))) as ReadResultData;
        if (cache.loaded) {
          this.applyState(cache, data.conversation);
          this.emitUser(userOf(instance), cache);
        }
        return data;
      }
      case 'delete': {
        const data = (await this.request(instance, (id) => ({ type: 'convDelete', id, instId: instance.instId, peer: call.peer }))) as ConvDeleteResultData;
        if (cache.loaded) {
          this.removeLocal(cache, call.peer);
          this.emitUser(userOf(instance), cache);
        }
        return data;
      }
    }
  }

  private cache(instance: Instance): UserCache {
    const user = userOf(instance);
    let cache = this.users.get(user);
    if (!cache) this.users.set(user, (cache = { convs: new Map(), head: 0, loaded: false, loading: null, removed: new Map(), pages: new Map() }));
    return cache;
  }

  private request(_instance: Instance, build: (id: number) => RequestFrame): Promise<unknown> {
    if (this.host.link.state !== 'open') return Promise.reject(new ChatError(CODE.NETWORK_ERROR, 'not connected to the chat server; retry when NET_STATE_CHANGE reports connected'));
    return this.host.link.request(build);
  }

  /** Load (or reload) the user's list; concurrent callers share one request. */
  private load(instance: Instance, cache: UserCache): Promise<void> {
    cache.loading ??= (async () => {
      try {
        const data = (await this.request(instance, (id) => ({ type: 'convList', id, instId: instance.instId }))) as ConvListResultData;
        cache.convs.clear();
        cache.removed.clear();
        cache.pages.clear();
        for (const state of data.conversations) cache.convs.set(state.peer, { state, localIn: [] });
        cache.head = data.head;
        cache.loaded = true;
      } finally {
        cache.loading = null;
      }
      this.emitUser(userOf(instance), cache);
    })();
    return cache.loading;
  }

  private applyMessage(cache: UserCache, message: WireMessage): boolean {
    const peer = peerOf(message);
    cache.pages.delete(peer);
    const conv = cache.convs.get(peer);
    if (conv) {
      if (message.seq <= conv.state.lastSeq) return false;
    } else if (message.seq <= cache.head || message.seq <= (cache.removed.get(peer) ?? 0)) return false;
    const state: WireConversation = conv?.state ?? { peer, unread: 0, readSeq: 0, lastSeq: 0, peerReadSeq: 0, last: null };
    state.lastSeq = message.seq;
    state.last = message;
    const entry = conv ?? { state, localIn: [] };
    if (message.flow === 'in' && message.from !== message.to) {
      state.unread++;
      if (entry.localIn.length < MAX_LOCAL_IN) entry.localIn.push(message.seq);
    }
    cache.convs.set(peer, entry);
    return true;
  }

  /** A server state of one conversation; returns the peer-read change, if any. */
  private applyState(cache: UserCache, server: WireConversation, readMessageID = ''): ConversationsUpdate['peerRead'] {
    cache.removed.delete(server.peer);
    const conv = cache.convs.get(server.peer);
    const oldPeerRead = conv?.state.peerReadSeq ?? 0;
    if (!conv || server.lastSeq >= conv.state.lastSeq) {
      cache.convs.set(server.peer, { state: { ...server }, localIn: [] });
    } else {
      // Messages counted here are newer than this state: keep them on top of it.
      const localIn = conv.localIn.filter((seq) => seq > server.lastSeq);
      conv.localIn = localIn;
      conv.state = { ...server, lastSeq: conv.state.lastSeq, last: conv.state.last, unread: server.unread + localIn.length };
    }
    return server.peerReadSeq > oldPeerRead ? [{ peer: server.peer, peerReadSeq: server.peerReadSeq, messageID: readMessageID }] : undefined;
  }

  private removeLocal(cache: UserCache, peer: string): void {
    const conv = cache.convs.get(peer);
    cache.removed.set(peer, Math.max(cache.removed.get(peer) ?? 0, conv?.state.lastSeq ?? 0));
    cache.convs.delete(peer);
    cache.pages.delete(peer);
  }

  private update(cache: UserCache, peerRead?: ConversationsUpdate['peerRead']): ConversationsUpdate {
    const conversations = [...cache.convs.values()].map((c) => c.state).sort((a, b) => b.lastSeq - a.lastSeq);
    const total = conversations.reduce((sum, c) => sum + c.unread, 0);
    return peerRead ? { conversations, total, peerRead } : { conversations, total };
  }

  private emitUser(user: string, cache: UserCache, peerRead?: ConversationsUpdate['peerRead']): void {
    const update = this.update(cache, peerRead);
    for (const instance of this.host.instances()) {
      if (userOf(instance) === user) safely(this.host.log, () => instance.events.onConversations?.(update));
    }
  }

  private emitTo(instance: Instance, cache: UserCache): void {
    const update = this.update(cache);
    queueMicrotask(() => safely(this.host.log, () => instance.events.onConversations?.(update)));
  }
}
