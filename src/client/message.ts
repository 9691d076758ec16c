/**
 * The `Message` object of the chat API (docs/client-api.md "Messages"): what `createTextMessage()` returns,
 * what `sendMessage()` takes and resolves with, and what `MESSAGE_RECEIVED` carries.
 * Field names and values follow the reference SDK; tabchat fills the C2C text subset.
 */
import type { WireMessage } from '../protocol/frames.js';
import { TYPES } from './constants.js';

/** `message.status`: `unSend` while created or sending, then `success` or `fail`. */
export type MessageStatus = 'unSend' | 'success' | 'fail';

/**
 * `message.payload`: `{text}` for the text messages tabchat sends and receives. Typed open
 * (`[field]: any`) as the reference types it (`any`), so code that reads the payload of
 * other message types compiles.
 */
export interface MessagePayload {
  text: string;
  [field: string]: any;
}

/** What {@link Message.outgoing} needs. */
export interface OutgoingMessageInit {
  clientMsgId: string;
  from: string;
  to: string;
  conversationType: string;
  text: string;
  /** Server time now, ms since epoch. */
  serverTime: number;
}

/** One message. Create outgoing ones with `chat.createTextMessage()`, never with `new`. */
export class Message {
  /**
   * Message id. Before the server stored it, a provisional client id; after
   * `sendMessage()` succeeds (and on every received message) the server's id, the same on
   * every instance of sender and recipient.
   */
  ID: string;
  /**
   * Element type: always `'TIMTextElem'` (`TYPES.MSG_TEXT`) here; typed `TYPES` as in the
   * reference, so that code comparing it with other `TYPES.MSG_*` values compiles.
   */
  readonly type: TYPES = TYPES.MSG_TEXT;
  payload: MessagePayload;
  /** `'C2C' + peer userID`. */
  conversationID: string;
  /** `'C2C'` (`TYPES.CONV_C2C`); any other value makes `sendMessage()` reject 2106. */
  conversationType: TYPES | string;
  /** Recipient userID. */
  to: string;
  /** Sender userID. */
  from: string;
  /** `'out'`: sent by this user (on this or another instance); `'in'`: received. */
  flow: 'in' | 'out';
  /** Server time of the message in seconds (an estimate until the server stored it). */
  time: number;
  /** Server time, in seconds, at which this object was created. */
  clientTime: number;
  status: MessageStatus;
  /** Position in this user's mailbox (1, 2, 3 … per user); 0 until stored. */
  sequence: number;
  /** Random number, as the reference sets on every message. */
  random: number;
  priority: TYPES | string = TYPES.MSG_PRIORITY_NORMAL;
  nick = '';
  avatar = '';
  cloudCustomData = '';
  /** Received messages start unread; messages of this user are read. */
  isRead: boolean;
  /** True when the message is sent again after a failure. */
  isResend = false;
  isRevoked = false;
  isDeleted = false;
  isModified = false;
  isSystemMessage = false;
  protocol = 'JSON';
  // The reference's other fields, with its defaults (features tabchat does not have).
  isPeerRead = false;
  nameCard = '';
  atUserList: string[] = [];
  needReadReceipt = false;
  readReceiptInfo: { readCount?: number; unreadCount?: number; isPeerRead?: boolean; timestamp: number } = { timestamp: 0 };
  isBroadcastMessage = false;
  isSupportExtension = false;
  revoker = '';
  revokerInfo = { userID: '', nick: '', avatar: '' };
  revokeReason = '';
  hasRiskContent = false;
  /** Idempotency key of an outgoing message (sending it again never duplicates it). */
  readonly #clientMsgId: string;

  private constructor(init: {
    ID: string;
    clientMsgId: string;
    conversationType: string;
    from: string;
    to: string;
    flow: 'in' | 'out';
    text: string;
    timeMs: number;
    clientTimeMs: number;
    status: MessageStatus;
    sequence: number;
  }) {
    this.ID = init.ID;
    this.#clientMsgId = init.clientMsgId;
    this.payload = { text: init.text };
    this.conversationType = init.conversationType;
    this.from = init.from;
    this.to = init.to;
    this.flow = init.flow;
    this.conversationID = `${init.conversationType}${init.flow === 'out' ? init.to : init.from}`;
    this.time = Math.floor(init.timeMs / 1000);
    this.clientTime = Math.floor(init.clientTimeMs / 1000);
    this.status = init.status;
    this.sequence = init.sequence;
    this.random = Math.floor(Math.random() * 0xffffffff);
    this.isRead = init.flow === 'out';
  }

  /** A new outgoing message (status `unSend`). @internal used by `createTextMessage()` */
  static outgoing(init: OutgoingMessageInit): Message {
    return new Message({
      ID: init.clientMsgId,
      clientMsgId: init.clientMsgId,
      conversationType: init.conversationType,
      from: init.from,
      to: init.to,
      flow: 'out',
      text: init.text,
      timeMs: init.serverTime,
      clientTimeMs: init.serverTime,
      status: 'unSend',
      sequence: 0,
    });
  }

  /** A stored message as a mailbox delivered it (status `success`). @internal */
  static fromWire(wire: WireMessage): Message {
    return new Message({
      ID: wire.id,
      clientMsgId: wire.clientMsgId ?? '',
      conversationType: 'C2C',
      from: wire.from,
      to: wire.to,
      flow: wire.flow,
      text: wire.text,
      timeMs: wire.time,
      clientTimeMs: wire.time,
      status: 'success',
      sequence: wire.seq,
    });
  }

  /** The client id sending uses. @internal */
  get clientMsgId(): string {
    return this.#clientMsgId;
  }

  /** Take the server's facts after a successful send. @internal */
  markSent(wire: WireMessage): void {
    this.ID = wire.id;
    this.from = wire.from;
    this.time = Math.floor(wire.time / 1000);
    this.sequence = wire.seq;
    this.status = 'success';
  }
}
