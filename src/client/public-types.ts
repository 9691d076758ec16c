/**
 * The types both entries (`tabchat`, `tabchat/node`) export, in one list: the chat API's
 * types and the names the reference SDK exports (`ChatSDK`, `Message`, …).
 */
export type {
  AnyEventHandler,
  Chat as ChatSDK,
  ChatPromise,
  ChatResponse,
  ChatEventMap,
  EventData,
  LoginOptions,
  LoginResponseData,
  LogoutOptions,
  SendMessageData,
  TextMessageOptions,
} from './chat.js';
export type { NotImplementedName, ReferenceObject } from './compat.js';
export type {
  ReferenceObject as UserInfo,
  ReferenceObject as SimplifiedMessage,
  ReferenceObject as Conversation,
  ReferenceObject as Group,
  ReferenceObject as Profile,
  ReferenceObject as Friend,
  ReferenceObject as FriendApplication,
  ReferenceObject as FriendGroup,
  ReferenceObject as GroupMember,
  ReferenceObject as Topic,
  ReferenceObject as Signaling,
} from './compat.js';
export type { Message, MessagePayload, MessageStatus } from './message.js';
export type { ChatEvent, ChatEventHandler } from './emitter.js';
export type { ReferenceCreateOptions } from './params.js';
export type { NetState } from '../protocol/data.js';
export type { KickType } from '../protocol/frames.js';
