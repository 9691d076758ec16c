/**
 * The browser `create()` (docs/client-api.md) and the diagnostics `getWorkerState()`; the
 * `TabChat` object is src/browser/api.ts. Every chat instance is the shared API object of
 * src/client over a {@link WorkerBackend}: the session lives in ONE SharedWorker per browser
 * profile (one WebSocket for all tabs).
 */
import { Chat } from '../client/chat.js';
import { warnIgnored } from '../client/compat.js';
import { IGNORED_CREATE_OPTIONS, paramsError, parseSdkAppId, serverOption, type ReferenceCreateOptions } from '../client/params.js';
import { DEFAULT_SEND_TIMEOUT_MS } from '../core/defaults.js';
import { ChatError } from '../core/errors.js';
import { createConsoleLogger } from '../core/log.js';
import { CODE } from '../protocol/codes.js';
import { HubConnection, type Transport } from './hub-connection.js';
import type { TabsMode, WorkerState } from '../protocol/hub-protocol.js';


/**
 * Options of `TabChat.create()` in browsers. The reference SDK's options are accepted too
 * ({@link ReferenceCreateOptions}: `proxyServer` is another name for `server`).
 */
export interface BrowserCreateOptions extends ReferenceCreateOptions {
  /** Required: a positive integer, or a string of digits. Anything else makes `create()` return null. */
  SDKAppID: number | string;
  /**
   * WebSocket URL of the chat server (`http(s)://` is turned into `ws(s)://`; relative to
   * tabchat.js). Default: `proxyServer` when given, else `ws(s)://<host that served tabchat.js>/ws`.
   */
  server?: string;
  /** SharedWorker script; must be same-origin with the page. Default `tabchat-worker.js` next to tabchat.js. */
  workerUrl?: string;
  /** `'separate'` (default): every tab is its own login instance. `'shared'`: tabs of one user share one. */
  tabs?: TabsMode;
  /**
   * `'auto'` (default): SharedWorker when the browser has it, else a leader tab elected with
   * Web Locks. `'shared-worker'`, `'leader'`: force one.
   */
  transport?: 'auto' | 'shared-worker' | 'leader';
  /**
   * How long `sendMessage()` waits for the server's acknowledgement before it rejects with
   * 9022 (the message stays queued in the worker's outbox and is still sent). Default 30 000 ms.
   */
  sendTimeoutMs?: number;
}

/**
 * URL of the script that defined this module, captured at load: `document.currentScript`
 * for the drop-in build, `import.meta.url` for the ESM build (the IIFE build defines
 * `import.meta.url` as undefined), else the page itself.
 */
const scriptUrl: string = (() => {
  const current = typeof document !== 'undefined' ? document.currentScript : null;
  if (current && 'src' in current && typeof current.src === 'string' && current.src) return current.src;
  const meta: string | undefined = import.meta.url;
  if (typeof meta === 'string' && /^https?:/.test(meta)) return meta;
  return typeof location !== 'undefined' ? location.href : 'http://localhost/';
})();

function defaultServer(): string {
  const url = new URL(scriptUrl);
  return `${url.protocol === 'https:' ? 'wss:' : 'ws:'}//${url.host}/ws`;
}

function resolveServer(value: unknown): string {
  if (value === undefined) return defaultServer();
  if (typeof value !== 'string') throw paramsError();
  let url: URL;
  try {
    url = new URL(value, scriptUrl);
  } catch {
    throw paramsError();
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw paramsError();
  return url.href;
}

function resolveWorkerUrl(value: unknown): string {
  if (value !== undefined && typeof value !== 'string') throw paramsError();
  let url: URL;
  try {
    url = new URL(value ?? 'tabchat-worker.js', value === undefined ? scriptUrl : location.href);
  } catch {
    throw paramsError();
  }
  if (typeof location !== 'undefined' && url.origin !== location.origin) {
    throw new ChatError(
      CODE.WORKER_CROSS_ORIGIN,
      `workerUrl ${url.href} is not same-origin with the page (${location.origin}); browsers only start a SharedWorker ` +
        `from the page's own origin: host tabchat-worker.js on ${location.origin} and pass its URL as workerUrl`,
      { workerUrl: url.href, pageOrigin: location.origin },
    );
  }
  return url.href;
}

const hubs = new Map<string, HubConnection>();
/** The hub of the page's first chat (the default of getWorkerState; the page may also hold the one it attached to on load). */
let firstChatHub: HubConnection | null = null;
const instances = new Map<number, Chat>();
const logger = createConsoleLogger('tabchat');

function hubFor(workerUrl: string, transport: Transport): HubConnection {
  const key = `${transport} ${workerUrl}`;
  let hub = hubs.get(key);
  if (!hub) {
    hub = new HubConnection(workerUrl, transport, logger);
    hubs.set(key, hub);
  }
  return hub;
}

/** The transport a `transport` option resolves to in this browser. */
function resolveTransport(transport: unknown): Transport {
  if (transport !== undefined && transport !== 'auto' && transport !== 'shared-worker' && transport !== 'leader') {
    throw paramsError();
  }
  const available = typeof SharedWorker === 'function';
  if (transport === 'shared-worker' && !available) {
    throw new ChatError(CODE.TRANSPORT_UNAVAILABLE, "transport 'shared-worker' was requested but this browser has no SharedWorker");
  }
  if (transport === 'leader' || transport === 'shared-worker') return transport;
  return available ? 'shared-worker' : 'leader';
}

/**
 * The chat instance of `options.SDKAppID` in this page: the same SDKAppID returns the same
 * instance until it is destroyed, as in the reference SDK (docs/reference-behaviour.md).
 * Typed non-null for a numeric SDKAppID (a number, or a string literal of a number), as the
 * reference typings have it; at run time a value that is not a positive integer still
 * returns null, as the reference does.
 * @returns the instance, or null (with an error logged) when `SDKAppID` is not numeric
 * @throws Error('Params validate failed.') on an invalid option
 * @throws ChatError 9013 when `workerUrl` is not same-origin with the page; 9014 when
 *   `transport: 'shared-worker'` is forced in a browser without SharedWorker
 */
function create(options: BrowserCreateOptions & { SDKAppID: number | `${number}` }): Chat;
function create(options: BrowserCreateOptions): Chat | null;
function create(options: BrowserCreateOptions): Chat | null {
  if (typeof options !== 'object' || options === null) throw paramsError();
  const sdkAppId = parseSdkAppId(options.SDKAppID);
  if (sdkAppId === null) {
    logger.error(`create: SDKAppID must be a number, got ${JSON.stringify(options.SDKAppID)}`);
    return null;
  }
  const existing = instances.get(sdkAppId);
  if (existing) return existing;
  const { tabs = 'separate', sendTimeoutMs = DEFAULT_SEND_TIMEOUT_MS } = options;
  if (tabs !== 'separate' && tabs !== 'shared') throw paramsError();
  if (typeof sendTimeoutMs !== 'number' || !(sendTimeoutMs > 0) || sendTimeoutMs === Infinity) throw paramsError();
  const server = resolveServer(serverOption(options));
  warnIgnored(logger, 'create', options, IGNORED_CREATE_OPTIONS);
  const workerUrl = resolveWorkerUrl(options.workerUrl);
  const hub = hubFor(workerUrl, resolveTransport(options.transport));
  firstChatHub ??= hub;
  const backend = hub.createBackend(server, sdkAppId, tabs, sendTimeoutMs);
  const chat: Chat = new Chat(backend, {
    sdkAppId,
    logger,
    onDestroy: () => {
      if (instances.get(sdkAppId) === chat) instances.delete(sdkAppId);
    },
  });
  instances.set(sdkAppId, chat);
  // Attach the page to its hub now, not on the first login (no socket to the server yet).
  hub.attach();
  return chat;
}

/**
 * Diagnostics: the state of the hub this page uses, in the SharedWorker or the leader tab
 * (sockets, tabs, instances, epoch). Starts it when the page has none yet. Not part of the
 * reference API.
 * @param workerUrl - default: the hub of the page's first chat, else the default worker URL
 */
function getWorkerState(workerUrl?: string): Promise<WorkerState> {
  const first = firstChatHub ?? hubs.values().next().value;
  if (workerUrl === undefined && first) return first.getWorkerState();
  return hubFor(resolveWorkerUrl(workerUrl), resolveTransport(undefined)).getWorkerState();
}

/**
 * The drop-in script (a classic `<script>`) attaches the page to its hub as it loads, before
 * `create()`, so the first `login()` finds the page attached: the default worker URL and the
 * SharedWorker, or the script element's `data-worker-url` / `data-transport`;
 * `data-attach="false"` turns it off. Without SharedWorker only `data-transport="leader"`
 * does it (joining the leader election is for pages that chat). It opens no socket (the hub
 * connects on the first login). A `create()` with other options attaches to its own hub.
 */
function attachOnLoad(): void {
  // Only the drop-in build (it defines import.meta.url as undefined): the ESM build may be
  // bundled into an application's script, whose folder has no tabchat-worker.js.
  const meta: string | undefined = import.meta.url;
  // Node (tabchat/node re-exports this module) has neither document nor HTMLScriptElement.
  if (meta !== undefined || typeof document === 'undefined' || typeof HTMLScriptElement === 'undefined') return;
  const script = document.currentScript;
  const data = script instanceof HTMLScriptElement ? script.dataset : null;
  if (!data || data.attach === 'false') return;
  try {
    if (data.transport === undefined && typeof SharedWorker !== 'function') return;
    hubFor(resolveWorkerUrl(data.workerUrl), resolveTransport(data.transport)).attach();
  } catch {
    // A cross-origin default worker URL, an unknown transport: create() reports them.
  }
}
attachOnLoad();

export { create, getWorkerState, Chat };
