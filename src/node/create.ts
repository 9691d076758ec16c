/**
 * `create()` of `tabchat/node` (src/node/index.ts is the entry): one direct WebSocket (one
 * session engine) per chat instance, no worker.
 */
import WebSocket from 'ws';
import { Chat } from '../client/chat.js';
import { warnIgnored } from '../client/compat.js';
import { VERSION } from '../client/constants.js';
import { IGNORED_CREATE_OPTIONS, paramsError, parseSdkAppId, serverOption, type ReferenceCreateOptions } from '../client/params.js';
import { DirectBackend } from '../client/direct-backend.js';
import { DEFAULT_FRAMES_PER_SECOND, DEFAULT_MAX_FRAME_BYTES, DEFAULT_SEND_TIMEOUT_MS } from '../core/defaults.js';
import { SessionEngine } from '../core/engine.js';
import { createConsoleLogger } from '../core/log.js';
import { isPlatform, type Platform } from '../protocol/frames.js';

/**
 * Options of `TabChat.create()` in Node. The reference SDK's options are accepted too
 * ({@link ReferenceCreateOptions}); `server` stays required in the types (a process has no
 * page to derive it from), and at run time `proxyServer` stands in for a missing `server`.
 */
export interface NodeCreateOptions extends ReferenceCreateOptions {
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
 * hosts many users). Typed non-null for a numeric SDKAppID, as in the browser entry; at run
 * time a value that is not a positive integer still returns null.
 * @returns the instance, or null (with an error logged) when `SDKAppID` is not numeric, as the reference SDK does
 * @throws Error('Params validate failed.') when `server`, `platform`, `origin` or a numeric option is invalid
 */
function create(options: NodeCreateOptions & { SDKAppID: number | `${number}` }): Chat;
function create(options: NodeCreateOptions): Chat | null;
function create(options: NodeCreateOptions): Chat | null {
  if (typeof options !== 'object' || options === null) throw paramsError();
  const server = serverOption(options);
  const { platform = 'Web', origin } = options;
  if (!isWebSocketUrl(server) || !isPlatform(platform)) throw paramsError();
  if (origin !== undefined && (typeof origin !== 'string' || origin.length === 0)) throw paramsError();
  const {
    sendTimeoutMs = DEFAULT_SEND_TIMEOUT_MS,
    framesPerSecond = DEFAULT_FRAMES_PER_SECOND,
    maxFrameBytes = DEFAULT_MAX_FRAME_BYTES,
  } = options;
  if (!isPositiveNumber(sendTimeoutMs) || !isPositiveNumber(framesPerSecond) || !isPositiveNumber(maxFrameBytes)) throw paramsError();
  const logger = createConsoleLogger('tabchat');
  warnIgnored(logger, 'create', options, IGNORED_CREATE_OPTIONS);
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
  return new Chat(new DirectBackend(engine, { sdkAppId, platform }), { sdkAppId, logger });
}

export { create };
