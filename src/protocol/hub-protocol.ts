/**
 * The contract between a tab (src/browser) and its hub (worker/, in a SharedWorker or a
 * leader tab): the command surface, the BroadcastChannel event envelope, and the names both
 * sides derive (worker name, channel names, lock names, instance keys), next to the wire
 * frames the hub speaks to the server. Both sides import this file, so nothing here may
 * touch `window` or `document`. See docs/architecture.md.
 */
import { PROTOCOL_VERSION } from './frames.js';
import type { KickType, WireMessage } from './frames.js';
import type { ConversationCall, ConversationsUpdate, ErrorData, Logger, NetState, OutgoingText } from './data.js';

declare const __TABCHAT_VERSION__: string;
declare const __TABCHAT_BUILD__: string;

/** Package version (`TabChat.VERSION`); injected by vite.config.ts. */
export const VERSION: string = typeof __TABCHAT_VERSION__ === 'string' ? __TABCHAT_VERSION__ : '0.0.0-dev';

/**
 * Build id: package version plus a hash of the sources that went into the bundles. Tab and
 * worker compare it on register (mismatch → 9012), and it is part of the worker name.
 */
export const BUILD: string = typeof __TABCHAT_BUILD__ === 'string' ? __TABCHAT_BUILD__ : `${VERSION}+dev`;

/** Version of this tab ↔ worker contract (the envelope `v`; 2: envelopes addressed per tab, with `prev`). */
export const HUB_VERSION = 2;

/** Where `tabchat-worker.js`, loaded into a leader tab, leaves its {@link LeaderHostFactory}. */
export const LEADER_HOST_GLOBAL = '__tabchatLeaderHost';

/** A live link from a tab to its hub: commands, a promise that rejects if the host fails, cleanup. */
export interface HubLink {
  api: HubApi;
  /** Rejects when the host fails (did not start, went away); never resolves. */
  failed: Promise<never>;
  close(): void;
  /**
   * Where the link can tell (a follower's link to a leader tab's hub): `listener` hears the
   * hub stop answering (the error to report, code 9009) and answer again (`null`).
   */
  watch?(listener: (stall: ErrorData | null) => void): void;
  /**
   * Where the link has a port of its own (SharedWorker, the leader page's own chats): the hub
   * posts this tab's envelopes on it; `listener` gets every message that is not a command
   * answer (the tab checks it is an envelope).
   */
  events?(listener: (data: unknown) => void): void;
  /**
   * Resolves once the hub is known to run this very build, so commands may be posted behind
   * the register before its answer (a hub of another build must never run them: it would
   * refuse the register with 9012 but log in all the same). Absent: known from the start.
   */
  sameBuild?: Promise<void>;
  /**
   * Where the page itself ends the hub (the leader page's own chats: the page hands over on
   * freeze, pagehide or when hidden): `listener` hears it at once, so the page's chats move to
   * the next hub without waiting for the hub's life lock, whose release a frozen page sees
   * only later.
   */
  gone?(listener: (why: string) => void): void;
}

/** What a SharedWorker posts first on every port that connects (comlink ignores it: no `id`). */
export interface HubHello {
  type: 'tabchat-hello';
  build: string;
  hubVersion: number;
}

/**
 * What the worker bundle, loaded into a tab with a `<script>` element, offers for the
 * leader-tab fallback (browsers without SharedWorker): a link to the current leader's hub,
 * which runs in a dedicated worker of the elected tab (this tab's own when it wins the
 * election; worker/leader.ts, worker/leader-host.ts).
 */
export interface LeaderHostFactory {
  build: string;
  hubVersion: number;
  /**
   * Join the election (once per page) and resolve a link once a leader is known.
   * @param deadEpochs - hubs known dead; their late announcements are ignored
   */
  link(tabId: string, deadEpochs: ReadonlySet<string>, log: Logger): Promise<HubLink>;
}

/** Web Lock whose holder is the leader tab (only used without SharedWorker). */
export const LEADER_LOCK = `tabchat:leader:${BUILD}`;

/**
 * Shared Web Lock every leader-transport tab holds while its page is visible, so a leader
 * can see (with `navigator.locks.query()`) whether a visible tab waits to lead.
 */
export const VISIBLE_LOCK = `tabchat:visible:${BUILD}`;

/** BroadcastChannel where tabs look for the leader (`who`) and the leader's hub announces itself (`leader`). */
export const RPC_CHANNEL = `tabchat:rpc:${BUILD}`;

/**
 * BroadcastChannel of the followers' commands (`req`, `ping`): only the leaders' hubs listen
 * to it; a follower posts each command on a channel it opens for that post and closes at
 * once, so no other tab receives it.
 */
export const RPC_HUB_CHANNEL = `${RPC_CHANNEL}:hub`;

/** BroadcastChannel of the answers (`res`, `pong`) for one follower tab: only that tab listens. */
export function rpcTabChannel(tabId: string): string {
  return `${RPC_CHANNEL}:tab:${tabId}`;
}

/** Post one message on BroadcastChannel `name` without listening to it: open, post, close. */
export function postOnce(name: string, message: unknown): void {
  const channel = new BroadcastChannel(name);
  try {
    channel.postMessage(message);
  } finally {
    channel.close();
  }
}

/** Messages on {@link RPC_CHANNEL}, {@link RPC_HUB_CHANNEL} and {@link rpcTabChannel}. */
export type RpcMessage =
  /** A follower looks for the leader. */
  | { kind: 'who' }
  /** The leader announces itself (on start and in answer to `who`). */
  | { kind: 'leader'; epoch: string }
  /**
   * A command for the hub of leader run `epoch`. Any other leader ignores it: a new leader
   * must not answer what a follower meant for the dead one (the follower asks again on its
   * link once it notices the death; see worker/leader.ts).
   */
  | { kind: 'req'; id: string; from: string; epoch: string; method: RpcMethod; args: unknown[] }
  /** The leader's answer, for tab `to`. */
  | { kind: 'res'; id: string; to: string; epoch: string; value: unknown }
  /** A follower whose request waits too long asks whether leader run `epoch` still answers. */
  | { kind: 'ping'; id: string; from: string; epoch: string }
  /** The leader's answer to a ping, for tab `to`. */
  | { kind: 'pong'; id: string; to: string; epoch: string };

/** Commands a follower may send (all of {@link HubApi}). */
export type RpcMethod = keyof HubApi;

/**
 * SharedWorker `name`: carries the wire PROTOCOL_VERSION and the build, so two deployed
 * builds never share a worker (identity = URL + name + origin). The constructor options are
 * otherwise always `{name}` only (classic script, default credentials), identical across
 * versions, as a mismatch of `type`/`credentials` makes the constructor fail.
 */
export const WORKER_NAME = `tabchat:p${PROTOCOL_VERSION}:${BUILD}`;

/** BroadcastChannel of worker → tab events for this build. */
export const EVENTS_CHANNEL = `tabchat:events:${BUILD}`;

/**
 * BroadcastChannel of the events for one tab: the hub posts each envelope only on the
 * channels of the tabs it concerns, so the cost of an event does not grow with the tab count.
 */
export function tabEventsChannel(tabId: string): string {
  return `${EVENTS_CHANNEL}:${tabId}`;
}

/** BroadcastChannel where every worker mirrors its logs and errors (tests, debugging). */
export const DIAG_CHANNEL = 'tabchat-diag';

/**
 * The Web Locks of this page or worker, or null where there are none: a page on a non-secure
 * origin (plain http on a LAN address) has no `navigator.locks`, nor has Node.
 */
export function webLocks(): LockManager | null {
  return typeof navigator !== 'undefined' && navigator.locks ? navigator.locks : null;
}

/**
 * Hold lock `name` until this page or worker dies: the callback's promise never settles on
 * purpose, so the browser releases the lock only when its holder closes, navigates or
 * crashes, and that release is what the other side waits for. Resolves once the lock is held.
 */
export function holdForLife(locks: LockManager, name: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    locks.request(name, () => {
      resolve();
      return new Promise<never>(() => {});
    }).catch(reject);
  });
}

/** Web Lock each tab holds for its whole life; the worker waits on it to notice a dead tab. */
export function tabLockName(tabId: string): string {
  return `tabchat:tab:${tabId}`;
}

/** Web Lock a worker holds for its whole life; tabs wait on it to notice a dead worker. */
export function workerLockName(epoch: string): string {
  return `tabchat:worker:${epoch}`;
}

/** How tabs of one browser profile map to server instances (`TabChat.create({tabs})`). */
export type TabsMode = 'separate' | 'shared';

/** Identity of one chat object (one `TabChat.create()` in one tab). */
export interface ChatSpec {
  /** Unique per page load and create(): `<tabId>/<n>`. */
  chatId: string;
  /** WebSocket URL of the chat server. */
  server: string;
  sdkAppId: number;
  tabs: TabsMode;
}

/** Everything a worker needs to take over a tab's logged-in chat without a new login. */
export interface ChatResume extends ChatSpec {
  userID: string;
  /** Kept for a re-login when the resume window has passed. */
  userSig: string;
  instId: number;
  token: string;
  /**
   * Mailbox position the tab has seen (from the last `messages` envelope it applied), so the
   * new worker reads on from there: nothing delivered twice, nothing the tab missed skipped.
   */
  lastSeq?: number;
}

/**
 * Key of a server instance inside the worker, and the envelope `target` of its events.
 * `separate`: one instance per chat. `shared`: one per server, app and user.
 */
export function instanceKey(spec: ChatSpec, userID: string): string {
  return spec.tabs === 'shared'
    ? `shared|${spec.server}|${spec.sdkAppId}|${userID}`
    : `chat|${spec.chatId}`;
}

/** Envelope target of events about one server connection (net state). */
export function serverKey(server: string): string {
  return `server|${server}`;
}

/** A command result: commands never throw across the port (comlink keeps only `message`). */
export type Reply<T> = { ok: true; value: T } | { ok: false; error: ErrorData };

/** A chat's state as the worker sees it. */
export type ChatPhase = 'idle' | 'loggingIn' | 'ready' | 'kicked' | 'lost' | 'loggedOut';

export interface ChatSnapshot {
  phase: ChatPhase;
  /**
   * Bumped by every login, logout and take-over of the chat in the worker; a tab ignores a
   * snapshot older than its own session (the snapshot and the login reply may cross).
   */
  generation: number;
  /** Present when logged in (`ready`). */
  userID?: string;
  instId?: number;
  token?: string;
  kickType?: KickType;
  error?: ErrorData;
}

/** What `register` answers: on the first connect, on `pageshow` (persisted), on a sequence gap or a new epoch. */
export interface Snapshot {
  /** Random id of this worker run; changes when the worker restarts. */
  epoch: string;
  build: string;
  /** Sequence number of the last envelope sent before this snapshot was taken. */
  seq: number;
  /** Name of the lock the worker holds for its life ({@link workerLockName}). */
  workerLock: string;
  chats: Record<string, ChatSnapshot>;
  /** Per server URL: the socket's net state and the server clock (ms) as the worker knows it. */
  servers: Record<string, { net: NetState; serverTime: number }>;
  /**
   * `messages` envelopes of this epoch, after the `after` position of the register, for the
   * instances of the tab's chats (from the worker's bounded per-instance buffer), in order.
   */
  messages: MessagesEnvelope[];
  /** Instance keys whose buffer no longer reaches back to `after`: messages were lost for them. */
  gaps: string[];
}

export interface RegisterRequest {
  tabId: string;
  build: string;
  hubVersion: number;
  /** Logged-in chats to take over silently (worker restart, new epoch, bfcache return). */
  resume: ChatResume[];
  /**
   * The last envelope the tab applied (a resync after a sequence gap): the snapshot then
   * carries the `messages` envelopes it missed. Another epoch than the worker's: all of
   * them (the tab was on a worker that died).
   */
  after?: { epoch: string; seq: number };
}

export interface LoginReply {
  instId: number;
  token: string;
  userID: string;
  serverTime: number;
  expireAt: number;
  /** Envelope sequence number when the reply was made: envelopes up to it predate this login. */
  seq: number;
  /** Worker run that made the reply (the epoch of {@link seq}). */
  epoch: string;
  /** The chat's generation in the worker (see {@link ChatSnapshot.generation}). */
  generation: number;
  /**
   * State of the worker's socket to this chat's server when the reply was made. A chat that
   * joins a socket another tab already opened sees no `net` envelope; it learns the state here.
   */
  net: NetState;
}

/** Diagnostic view of a worker (`TabChat.getWorkerState()`). */
export interface WorkerState {
  name: string;
  build: string;
  epoch: string;
  /** WebSockets currently open (or opening) in this worker. */
  sockets: number;
  /** WebSockets this worker ever opened. */
  socketsOpened: number;
  tabs: string[];
  instances: Array<{ key: string; userID: string; instId: number; members: string[]; server: string }>;
  chats: Record<string, ChatSnapshot & { tabId: string }>;
  seq: number;
}

/** The command surface a worker exposes on each tab's port (via comlink). */
export interface HubApi {
  register(req: RegisterRequest): Promise<Reply<Snapshot>>;
  login(tabId: string, spec: ChatSpec, params: { userID: string; userSig: string }): Promise<Reply<LoginReply>>;
  /**
   * Log the chat out. `allTabs`: also every other chat of the same user, server and SDKAppID
   * in the profile (phase `loggedOut`, envelope `loggedOut` to each instance they held).
   */
  logout(tabId: string, chatId: string, allTabs?: boolean): Promise<Reply<null>>;
  /**
   * Send a C2C text message as the chat's instance (through the durable outbox); resolves
   * with the stored message, rejects like `SessionEngineApi.send` (9022 after `timeoutMs`,
   * the message staying queued).
   */
  sendText(tabId: string, chatId: string, message: OutgoingText, timeoutMs: number): Promise<Reply<WireMessage>>;
  /**
   * A conversation call as the chat's instance (src/core/conversations.ts): the list from
   * the hub's shared cache, history pages, read, delete; rejects with the engine's codes.
   */
  conversation(tabId: string, chatId: string, call: ConversationCall): Promise<Reply<unknown>>;
  /** The chat is destroyed: logs it out if needed and forgets it. */
  forget(tabId: string, chatId: string): Promise<Reply<null>>;
  /** Best-effort goodbye on `pagehide`: same as the tab's lock being released. */
  bye(tabId: string): Promise<void>;
  getState(): Promise<WorkerState>;
}

interface EnvelopeBase {
  v: typeof HUB_VERSION;
  workerEpoch: string;
  /** Per-epoch, strictly increasing across all envelopes of the worker (every tab's). */
  seq: number;
  /**
   * `seq` of the previous envelope the hub posted to this tab (0: none this epoch). A tab
   * that has not applied (or seen in a snapshot) `prev` missed one: it resyncs.
   */
  prev: number;
  /**
   * Whom the event is for: an instance key ({@link instanceKey}: one chat in `separate` mode,
   * every chat of the user on this server and app in `shared` mode) or a server key
   * ({@link serverKey}: every chat using that server).
   */
  target: string;
}

/** The instance was kicked by the server. Terminal for every chat attached to it. */
export interface KickedEnvelope extends EnvelopeBase {
  type: 'kicked';
  kickType: KickType;
}
/** The instance could not be restored after a reconnect. Terminal. */
export interface LostEnvelope extends EnvelopeBase {
  type: 'lost';
  error: ErrorData;
}
/** The instance was logged out by one of the user's chats for every tab (`logout({allTabs: true})`). Terminal. */
export interface LoggedOutEnvelope extends EnvelopeBase {
  type: 'loggedOut';
}
/** The instance came back after a reconnect (maybe under a new instId / token). */
export interface RestoredEnvelope extends EnvelopeBase {
  type: 'restored';
  instId: number;
  token: string;
}
/** Connection state of the worker's socket to `target` (a server key). */
export interface NetEnvelope extends EnvelopeBase {
  type: 'net';
  state: NetState;
}
/**
 * Messages for the instance, in mailbox order, each once: what the engine reports, own
 * sends included (a chat drops those it sent itself, by `clientMsgId`).
 */
export interface MessagesEnvelope extends EnvelopeBase {
  type: 'messages';
  messages: WireMessage[];
  /** The instance's mailbox position after these messages (see {@link ChatResume.lastSeq}). */
  position: number;
}
/** The user's conversations changed in the hub's shared cache (or were loaded): the whole list and the unread total. */
export interface ConversationsEnvelope extends EnvelopeBase {
  type: 'conversations';
  update: ConversationsUpdate;
}
export type Envelope = KickedEnvelope | LostEnvelope | LoggedOutEnvelope | RestoredEnvelope | NetEnvelope | MessagesEnvelope | ConversationsEnvelope;

const ENVELOPE_TYPES: ReadonlySet<string> = new Set(['kicked', 'lost', 'loggedOut', 'restored', 'net', 'messages', 'conversations']);

/** Runtime guard for envelopes read from the channel (another build may share the origin). */
export function isEnvelope(value: unknown): value is Envelope {
  if (typeof value !== 'object' || value === null) return false;
  const env = value as Record<string, unknown>;
  return env.v === HUB_VERSION && typeof env.type === 'string' && ENVELOPE_TYPES.has(env.type) &&
    typeof env.workerEpoch === 'string' && typeof env.seq === 'number' && typeof env.prev === 'number' && typeof env.target === 'string';
}

/** A diagnostic line mirrored on {@link DIAG_CHANNEL}. */
export interface DiagMessage {
  source: 'worker';
  name: string;
  epoch: string;
  level: 'debug' | 'info' | 'warn' | 'error';
  text: string;
  time: number;
}
