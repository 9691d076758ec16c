/**
 * The browser ESM entry (`import TabChat from 'tabchat'`) and the source of the drop-in
 * `dist/tabchat.js` global. Only the default export exists at run time, so the IIFE global
 * is `TabChat` itself; the rest are types.
 *
 * `TabChat` is the namespace of src/browser/api.ts: `TabChat.create`, `EVENT`, `TYPES`,
 * `TSignaling`, `VERSION`, `getWorkerState` as values, and `TabChat.EVENT` / `TabChat.TYPES`
 * also as types, as in the reference SDK's typings. The type names the reference exports
 * are exported here too (`ChatSDK`, `Message`, …), so an application changes only its import.
 */
import * as TabChat from './browser/api.js';

export default TabChat;
export type { BrowserCreateOptions } from './browser/tabchat.js';
export type { ReferenceCreateOptions } from './client/params.js';
export type { TabsMode, WorkerState } from './protocol/hub-protocol.js';
export type {
  AnyEventHandler,
  Chat,
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
} from './client/chat.js';
export type { NotImplementedName, ReferenceObject } from './client/compat.js';
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
} from './client/compat.js';
export type { Message, MessageStatus } from './client/message.js';
export type { ChatEvent, ChatEventHandler } from './client/emitter.js';
export type { ChatError } from './core/errors.js';
export type { ErrorData, NetState } from './protocol/data.js';
export type { KickType } from './protocol/frames.js';
