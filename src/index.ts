/**
 * The browser ESM entry (`import TabChat from 'tabchat'`) and the source of the drop-in
 * `dist/tabchat.js` global. Only the default export exists at run time, so the IIFE global
 * is `TabChat` itself; the rest are types.
 */
import TabChat from './browser/tabchat.js';

export default TabChat;
export type { BrowserCreateOptions } from './browser/tabchat.js';
export type { TabsMode, WorkerState } from './protocol/hub-protocol.js';
export type {
  Chat,
  ChatResponse,
  ChatEventMap,
  EventData,
  LoginOptions,
  LoginResponseData,
  SendMessageData,
  TextMessageOptions,
} from './client/chat.js';
export type { Message, MessageStatus } from './client/message.js';
export type { ChatEvent, ChatEventHandler } from './client/emitter.js';
export type { ChatError } from './core/errors.js';
export type { ErrorData, NetState } from './protocol/data.js';
export type { KickType } from './protocol/frames.js';
