/**
 * The chat's conversation calls and events (the reference SDK's names and shapes, C2C):
 * `getConversationList`, `getMessageList`, `setMessageRead`, `getTotalUnreadMessageCount`,
 * `deleteConversation`; CONVERSATION_LIST_UPDATED, TOTAL_UNREAD_MESSAGE_COUNT_UPDATED,
 * MESSAGE_READ_BY_PEER. The data comes from the engine's shared cache (one per user per
 * browser profile, src/core/conversations.ts) through the backend; this object keeps the
 * last update so `getTotalUnreadMessageCount()` answers synchronously, and announces only
 * changes (one TOTAL_UNREAD_MESSAGE_COUNT_UPDATED per new total). docs/client-api.md.
 */
import { CODE } from '../protocol/codes.js';
import type { ConversationCall, ConversationsUpdate } from '../protocol/data.js';
import type { HistoryResultData, WireConversation } from '../protocol/conversation-frames.js';
import { ChatError } from '../core/errors.js';
import type { ChatBackend } from './backend.js';
import { EVENT } from './constants.js';
import { Message } from './message.js';
import { paramsError } from './params.js';

/** A conversation in the reference SDK's shape (C2C). */
export interface Conversation {
  conversationID: string;
  type: 'C2C';
  subType: string;
  unreadCount: number;
  lastMessage: {
    lastTime: number;
    lastSequence: number;
    fromAccount: string;
    messageForShow: string;
    type: string;
    payload: { text: string };
    isRevoked: boolean;
    isPeerRead: boolean;
    nick: string;
    nameCard: string;
    cloudCustomData: string;
  };
  userProfile: { userID: string; nick: string; avatar: string };
  peerReadTime: number;
  isPinned: boolean;
  messageRemindType: string;
  groupAtInfoList: unknown[];
  remark: string;
  markList: number[];
  customData: string;
  conversationGroupList: string[];
  draftText: string;
}

/** `data` of `getMessageList()`. */
export interface MessageListData {
  messageList: Message[];
  nextReqMessageID: string;
  isCompleted: boolean;
}

/** The peer of a conversationID `'C2C' + userID`, or a rejected 9043. */
function peerOf(conversationID: unknown): string | ChatError {
  if (typeof conversationID === 'string' && conversationID.startsWith('C2C') && conversationID.length > 3 && conversationID.length <= 131) {
    return conversationID.slice(3);
  }
  return new ChatError(CODE.INVALID_CONVERSATION_ID, `conversationID must be 'C2C' followed by a userID (tabchat has C2C conversations only): ${String(conversationID).slice(0, 140)}`);
}

function toConversation(c: WireConversation): Conversation {
  const last = c.last;
  return {
    conversationID: `C2C${c.peer}`,
    type: 'C2C',
    subType: '',
    unreadCount: c.unread,
    lastMessage: {
      lastTime: last ? Math.floor(last.time / 1000) : 0,
      lastSequence: last?.seq ?? 0,
      fromAccount: last?.from ?? '',
      messageForShow: last?.text ?? '',
      type: last ? 'TIMTextElem' : '',
      payload: { text: last?.text ?? '' },
      isRevoked: false,
      isPeerRead: !!last && last.flow === 'out' && last.seq <= c.peerReadSeq,
      nick: '',
      nameCard: '',
      cloudCustomData: '',
    },
    userProfile: { userID: c.peer, nick: '', avatar: '' },
    peerReadTime: 0,
    isPinned: false,
    messageRemindType: '',
    groupAtInfoList: [],
    remark: '',
    markList: [],
    customData: '',
    conversationGroupList: [],
    draftText: '',
  };
}

export class ChatConversations {
  #update: ConversationsUpdate | null = null;
  /** What was last announced: the list (as JSON) and the total. */
  #announcedList = '[]';
  #announcedTotal = 0;
  /** Highest read receipt announced per peer. */
  readonly #peerRead = new Map<string, number>();

  constructor(
    private readonly backend: ChatBackend,
    private readonly emit: (name: string, data: unknown) => void,
    private readonly ready: () => boolean,
  ) {}

  /** An update from the backend (held until SDK_READY, then announced). */
  received(update: ConversationsUpdate): void {
    this.#update = update;
    if (this.ready()) this.#announce(update);
  }

  /** SDK_READY fired: announce what is known, or fetch it (from the shared cache). */
  becameReady(): void {
    if (this.#update) this.#announce(this.#update);
    else void this.#call({ op: 'list' }).then((update) => this.received(update as ConversationsUpdate), () => undefined);
  }

  /** The session ended: forget the user's data. */
  reset(): void {
    this.#update = null;
    this.#announcedList = '[]';
    this.#announcedTotal = 0;
    this.#peerRead.clear();
  }

  total(): number {
    return this.#update?.total ?? 0;
  }

  async list(options: unknown): Promise<{ conversationList: Conversation[]; isSyncCompleted: boolean }> {
    const update = (await this.#call({ op: 'list' })) as ConversationsUpdate;
    this.received(update);
    let list = update.conversations;
    if (Array.isArray(options)) list = list.filter((c) => options.includes(`C2C${c.peer}`));
    else if (typeof options === 'object' && options !== null) {
      const { type, hasUnreadCount } = options as { type?: unknown; hasUnreadCount?: unknown };
      if (type !== undefined && type !== 'C2C') list = [];
      if (hasUnreadCount === true) list = list.filter((c) => c.unread > 0);
    }
    return { conversationList: list.map(toConversation), isSyncCompleted: true };
  }

  async messages(options: { conversationID: string; nextReqMessageID?: string }): Promise<MessageListData> {
    if (typeof options !== 'object' || options === null || typeof options.conversationID !== 'string') throw paramsError();
    const peer = peerOf(options.conversationID);
    if (peer instanceof ChatError) throw peer;
    const before = options.nextReqMessageID;
    if (before !== undefined && typeof before !== 'string') throw paramsError();
    const page = (await this.#call(before ? { op: 'history', peer, before } : { op: 'history', peer })) as HistoryResultData;
    const peerReadSeq = this.#update?.conversations.find((c) => c.peer === peer)?.peerReadSeq ?? 0;
    const messageList = page.messages.map((wire) => {
      const message = Message.fromWire(wire);
      message.isPeerRead = wire.flow === 'out' && wire.seq <= peerReadSeq;
      return message;
    });
    return { messageList, nextReqMessageID: messageList[0]?.ID ?? '', isCompleted: !page.more };
  }

  async read(options: { conversationID: string }): Promise<Record<string, never>> {
    if (typeof options !== 'object' || options === null || typeof options.conversationID !== 'string') throw paramsError();
    const peer = peerOf(options.conversationID);
    if (peer instanceof ChatError) throw peer;
    await this.#call({ op: 'read', peer });
    return {};
  }

  async remove(options: string | { conversationIDList: string[] }): Promise<{ conversationID: string } | { conversationIDList: string[] }> {
    const ids = typeof options === 'string' ? [options] : options?.conversationIDList;
    if (!Array.isArray(ids) || ids.length === 0) throw paramsError();
    const peers = ids.map(peerOf);
    const invalid = peers.find((p) => p instanceof ChatError);
    if (invalid) throw invalid;
    for (const peer of peers as string[]) await this.#call({ op: 'delete', peer });
    return typeof options === 'string' ? { conversationID: options } : { conversationIDList: ids };
  }

  #call(call: ConversationCall): Promise<unknown> {
    return this.backend.conversation(call);
  }

  #announce(update: ConversationsUpdate): void {
    const listKey = JSON.stringify(update.conversations);
    if (listKey !== this.#announcedList) {
      this.#announcedList = listKey;
      this.emit(EVENT.CONVERSATION_LIST_UPDATED, update.conversations.map(toConversation));
    }
    if (update.total !== this.#announcedTotal) {
      this.#announcedTotal = update.total;
      this.emit(EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED, update.total);
    }
    for (const receipt of update.peerRead ?? []) {
      if (receipt.peerReadSeq <= (this.#peerRead.get(receipt.peer) ?? 0)) continue;
      this.#peerRead.set(receipt.peer, receipt.peerReadSeq);
      this.emit(EVENT.MESSAGE_READ_BY_PEER, [
        { ID: receipt.messageID, conversationID: `C2C${receipt.peer}`, conversationType: 'C2C', to: receipt.peer, sequence: receipt.peerReadSeq, isPeerRead: true },
      ]);
    }
  }
}
