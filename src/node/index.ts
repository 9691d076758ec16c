/**
 * `tabchat/node`: the same chat API as the browser build, with one direct WebSocket (one
 * session engine) per instance and no worker. Used by bots, servers, load tests and tests.
 *
 * ```ts
 * import TabChat from 'tabchat/node';
 * const chat = TabChat.create({ SDKAppID: 1400000001, server: 'ws://127.0.0.1:8080/ws' });
 * chat.on(TabChat.EVENT.SDK_READY, () => console.log('ready'));
 * await chat.login({ userID: 'alice', userSig });
 * ```
 *
 * The default export is the namespace of src/node/api.ts (`create`, `EVENT`, `TYPES`,
 * `TSignaling`, `VERSION`); they are named exports too.
 */
import * as TabChat from './api.js';

export default TabChat;
export { create, EVENT, TSignaling, TYPES, VERSION } from './api.js';
export { Chat } from '../client/chat.js';
export { ChatError } from '../core/errors.js';
export type { NodeCreateOptions } from './create.js';
export type * from '../client/public-types.js';
export type { Platform } from '../protocol/frames.js';
