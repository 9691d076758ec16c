/**
 * Bench-only page bundle (the BASELINE of bench/browser-bench.ts): the same chat API object
 * as every other build (`src/client/chat.ts`) over a direct session engine with the page's
 * own `WebSocket`, i.e. a `tabchat/node`-style client in a tab: one socket per chat, no
 * SharedWorker, no coordination between tabs. Built at bench time with vite (IIFE, global
 * `TabChat`, same shape as the drop-in `dist/tabchat.js` for what the bench harness uses).
 */
import { Chat } from '../../src/client/chat.js';
import { EVENT, TYPES, VERSION } from '../../src/client/constants.js';
import { DirectBackend } from '../../src/client/direct-backend.js';
import { SessionEngine } from '../../src/core/engine.js';
import { createConsoleLogger } from '../../src/core/log.js';

const logger = createConsoleLogger('tabchat-direct');
const instances = new Map<number, Chat>();

/** Default server: `ws(s)://<page host>/ws`, as the drop-in build derives it. */
function defaultServer(): string {
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;
}

/** One chat per SDKAppID per page, each on its own WebSocket. */
function create(options: { SDKAppID: number; server?: string }): Chat {
  const sdkAppId = Number(options.SDKAppID);
  const existing = instances.get(sdkAppId);
  if (existing) return existing;
  const engine = new SessionEngine({ url: options.server ?? defaultServer(), WebSocket, clientName: `tabchat-direct-bench/${VERSION}`, logger });
  const chat: Chat = new Chat(new DirectBackend(engine, { sdkAppId, platform: 'Web' }), {
    sdkAppId,
    logger,
    onDestroy: () => {
      if (instances.get(sdkAppId) === chat) instances.delete(sdkAppId);
    },
  });
  instances.set(sdkAppId, chat);
  return chat;
}

const TabChat = Object.freeze({ create, EVENT, TYPES, VERSION });
export default TabChat;
