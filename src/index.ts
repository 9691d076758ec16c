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
export type * from './client/public-types.js';
export type { Chat } from './client/chat.js';
export type { BrowserCreateOptions } from './browser/tabchat.js';
export type { TabsMode, WorkerState } from './protocol/hub-protocol.js';
export type { ChatError } from './core/errors.js';
export type { ErrorData } from './protocol/data.js';
