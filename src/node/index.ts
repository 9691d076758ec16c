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
 */
import WebSocket from 'ws';
import { Chat } from '../client/chat.js';
import { EVENT, TYPES, VERSION } from '../client/constants.js';
import { paramsError, parseSdkAppId } from '../client/params.js';
import { DirectBackend } from '../client/direct-backend.js';
import { DEFAULT_FRAMES_PER_SECOND, DEFAULT_MAX_FRAME_BYTES, DEFAULT_SEND_TIMEOUT_MS } from '../core/defaults.js';
import { SessionEngine } from '../core/engine.js';
import { createConsoleLogger } from '../core/log.js';
import { isPlatform, type Platform } from '../protocol/frames.js';

/** Options of `TabChat.create()` in Node. */
export interface NodeCreateOptions {
  /** Required: a positive integer, or a string of digits. Anything else makes `create()` return null. */
  SDKAppID: number | string;
  /** Required: WebSocket URL of the chat server, `ws://…/ws` or `wss://…/ws`. */
  server: string;
  /** Login platform, one of `Web Android iPhone iPad Windows Mac Linux`. Default `'Web'`. */
  platform?: Platform;
  /** Sent as the WebSocket `Origin` header (checked against the app's `allowedOrigins`). Default: none. */
  origin?: string;
  /**
   * How long `sendMessage()` waits for the server's acknowledgement before it rejects with
   * 9022 (the message stays queued and is still sent). Default 30 000 ms.
   */
  sendTimeoutMs?: number;
  /**
   * Most message frames sent per second; keep it below the server's
   * `rateLimits.framesPerSecond` (default 100). Default 80.
   */
  framesPerSecond?: number;
  /** The server's `maxPayloadBytes`: larger messages fail at once with 80002. Default 65 536. */
  maxFrameBytes?: number;
}

function isPositiveNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function isWebSocketUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const url = new URL(value);
    return url.protocol === 'ws:' || url.protocol === 'wss:';
  } catch {
    return false;
  }
}

/**
 * A new chat instance on its own WebSocket (every call returns a new one: one process often
 * hosts many users).
 * @returns the instance, or null (with an error logged) when `SDKAppID` is not numeric, as the reference SDK does
 * @throws Error('Params validate failed.') when `server`, `platform`, `origin` or a numeric option is invalid
 */
function create(options: NodeCreateOptions): Chat | null {
  if (typeof options !== 'object' || options === null) throw paramsError();
  const { server, platform = 'Web', origin } = options;
  if (!isWebSocketUrl(server) || !isPlatform(platform)) throw paramsError();
  if (origin !== undefined && (typeof origin !== 'string' || origin.length === 0)) throw paramsError();
  const {
    sendTimeoutMs = DEFAULT_SEND_TIMEOUT_MS,
    framesPerSecond = DEFAULT_FRAMES_PER_SECOND,
    maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
  } = options;
  if (!isPositiveNumber(sendTimeoutMs) || !isPositiveNumber(framesPerSecond) || !isPositiveNumber(maxFrameBytes)) throw paramsError();
  const logger = createConsoleLogger('tabchat');
  const sdkAppId = parseSdkAppId(options.SDKAppID);
  if (sdkAppId === null) {
    logger.error(`create: SDKAppID must be a number, got ${JSON.stringify(options.SDKAppID)}`);
    return null;
  }
  class OriginWebSocket extends WebSocket {
    constructor(url: string) {
      super(url, origin === undefined ? {} : { origin });
    }
  }
  const engine = new SessionEngine({
    url: server,
    WebSocket: OriginWebSocket,
    clientName: `tabchat-node/${VERSION}`,
    logger,
    sendTimeoutMs,
    framesPerSecond,
    maxFrameBytes,
  });
  return new Chat(new DirectBackend(engine, { sdkAppId, platform }), { logger });
}

/** The default export: `TabChat.create`, `TabChat.EVENT`, `TabChat.TYPES`, `TabChat.VERSION`. */
const TabChat = Object.freeze({ create, EVENT, TYPES, VERSION });
export default TabChat;

export { create, EVENT, TYPES, VERSION, Chat };
export { ChatError } from '../core/errors.js';
export type { ChatResponse, ChatEventMap, EventData, LoginOptions, LoginResponseData, SendMessageData, TextMessageOptions } from '../client/chat.js';
export type { Message, MessageStatus } from '../client/message.js';
export type { ChatEvent, ChatEventHandler } from '../client/emitter.js';
export type { KickType, Platform } from '../protocol/frames.js';
export type { NetState } from '../protocol/data.js';
