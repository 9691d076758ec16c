/**
 * Conversations on the server: the conversation list, history pages, read markers and
 * deletion, answered from the store (conversation-store.ts), and the `conv` pushes that
 * tell every other instance of the user (on every node: the engine routes them through
 * Redis like messages) and the peer (read receipts) what changed. See docs/protocol.md
 * "Conversations".
 */
import { CODE, codeText } from '../src/protocol/codes.js';
import {
  CONVERSATION_LIMITS,
  type ConvDeleteResultData,
  type ConvListResultData,
  type ConversationRequestFrame,
  type HistoryResultData,
  type ReadResultData,
  type WireConversation,
} from '../src/protocol/conversation-frames.js';
import { USERID_RULE, isUserID } from '../src/protocol/frames.js';
import type { ConversationRow, ConversationStore } from './conversation-store.js';
import type { InstanceEngine } from './engine.js';
import type { Logger } from './log.js';
import { MessageError, toWire } from './messages.js';
import type { Instance } from './registry.js';
import { StoreClosedError, StoreUnavailableError, type MessageStore } from './store.js';

/** A conversation as its owner's clients get it. */
export function toWireConversation(row: ConversationRow): WireConversation {
  return {
    peer: row.peer,
    unread: row.unread,
    readSeq: row.readSeq,
    lastSeq: row.lastSeq,
    peerReadSeq: row.peerReadSeq,
    last: row.last ? toWire(row.last.message, row.last.flow) : null,
  };
}

export class ConversationService {
  private readonly store: ConversationStore;

  constructor(
    private readonly messages: MessageStore,
    private readonly engine: InstanceEngine,
    private readonly log: Logger,
  ) {
    this.store = messages.conversations;
  }

  /** Answer a conversation request of `inst`: the result data, or a {@link MessageError}. */
  async handle(inst: Instance, frame: ConversationRequestFrame): Promise<unknown> {
    const { sdkAppId, userID } = inst;
    if (frame.type === 'convList') {
      const head = await this.call(() => this.messages.head(sdkAppId, userID));
      const { conversations, total } = await this.call(() => this.store.list(sdkAppId, userID, CONVERSATION_LIMITS.maxConversations));
      const data: ConvListResultData = { conversations: conversations.map(toWireConversation), total, head };
      return data;
    }
    const peer = frame.peer;
    if (!isUserID(peer)) throw new MessageError(CODE.INVALID_CONVERSATION_ID, `the conversation's userID must be ${USERID_RULE}`);
    switch (frame.type) {
      case 'history':
        return this.history(inst, peer, frame.before, frame.limit ?? CONVERSATION_LIMITS.pageSize);
      case 'read':
        return this.read(inst, peer);
      case 'convDelete': {
        const removed = await this.call(() => this.store.remove(sdkAppId, userID, peer));
        if (!removed) throw new MessageError(CODE.CONVERSATION_NOT_FOUND, `no conversation with ${peer}`);
        this.engine.deliver(sdkAppId, userID, { kind: 'conv', removed: peer }, inst);
        const data: ConvDeleteResultData = { removed };
        return data;
      }
    }
  }

  private async history(inst: Instance, peer: string, before: string | undefined, limit: number): Promise<HistoryResultData> {
    const { sdkAppId, userID } = inst;
    let beforeSeq: number | null = null;
    if (before !== undefined) {
      // The cursor must be a message of THIS user's conversation with THIS peer: a message id
      // of another conversation or user names nothing here (no content leaks either way).
      const at = await this.call(() => this.store.locate(sdkAppId, userID, before));
      if (!at || at.peer !== peer) throw new MessageError(CODE.INVALID_PAGE_CURSOR, `nextReqMessageID ${before.slice(0, 64)} is not a message of conversation C2C${peer}`);
      beforeSeq = at.seq;
    }
    const page = await this.call(() => this.store.history(sdkAppId, userID, peer, beforeSeq, limit));
    return { messages: page.entries.map((e) => toWire(e.message, e.flow)), more: page.more };
  }

  private async read(inst: Instance, peer: string): Promise<ReadResultData> {
    const { sdkAppId, userID } = inst;
    const outcome = await this.call(() => this.store.markRead(sdkAppId, userID, peer));
    if (!outcome) throw new MessageError(CODE.CONVERSATION_NOT_FOUND, `no conversation with ${peer}`);
    const conversation = toWireConversation(outcome.row);
    if (outcome.changed) this.engine.deliver(sdkAppId, userID, { kind: 'conv', conversation }, inst);
    const lastIn = outcome.lastIn;
    if (lastIn && lastIn.from === peer && peer !== userID) {
      // The read receipt: the peer's conversation with this user learns how far its messages were read.
      try {
        const peerRow = await this.store.setPeerRead(sdkAppId, peer, userID, lastIn.fromSeq);
        if (peerRow) this.engine.deliver(sdkAppId, peer, { kind: 'conv', conversation: toWireConversation(peerRow), readMessageID: lastIn.id });
      } catch (err) {
        this.log.warn({ err: err instanceof Error ? err.message : String(err) }, 'read receipt not recorded');
      }
    }
    return { conversation, changed: outcome.changed };
  }

  /** Run a store call; store failures become coded errors (9007, 9031, 9099). */
  private async call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof MessageError) throw err;
      if (err instanceof StoreClosedError) throw new MessageError(CODE.SERVER_SHUTTING_DOWN, codeText(CODE.SERVER_SHUTTING_DOWN));
      if (err instanceof StoreUnavailableError) throw new MessageError(CODE.STORE_UNAVAILABLE, 'the message store is unavailable; retry later');
      this.log.error({ err: err instanceof Error ? err.stack : String(err) }, 'conversation store failed');
      throw new MessageError(CODE.SERVER_INTERNAL, 'conversation store failed; retry');
    }
  }
}
