/**
 * Everything a hub needs around it, whoever hosts it: the SharedWorker (worker/index.ts) or
 * a leader tab (the leader-tab fallback loads this same bundle into the page). One runtime
 * per host: its epoch, the event channel, the life lock, tab watching through Web Locks,
 * counted sockets, the durable record of its instances and the release of orphans left by
 * dead runs, and the diagnostic mirror on `tabchat-diag`.
 */
import { SessionEngine } from '../src/core/engine.js';
import { watchNetwork, type NetworkEventSource } from './network.js';
import { toErrorData } from '../src/core/errors.js';
import type { Logger } from '../src/protocol/data.js';
import {
  BUILD,
  DIAG_CHANNEL,
  VERSION,
  holdForLife,
  tabEventsChannel,
  tabLockName,
  webLocks,
  workerLockName,
  type DiagMessage,
  type HubApi,
  type Reply,
} from '../src/protocol/hub-protocol.js';
import { Hub, type HubEngine } from './hub.js';
import { adoptDeadRuns, releaseInstance } from './orphans.js';
import { createOutbox } from './outbox.js';
import { newClientMsgId } from '../src/core/outbox.js';
import { RunStore } from './storage.js';

/** Checks of `query()` for a tab's own lock request before the hub waits on it (delays 5, 10, 20 … ms: about 5 s in all). */
const TAB_LOCK_CHECKS = 10;
const TAB_LOCK_CHECK_MS = 5;

export interface Runtime {
  epoch: string;
  /** Resolves once the life lock is held (commands wait for it). */
  ready: Promise<void>;
  /**
   * A command surface over the hub; commands never throw (errors become Reply data).
   * @param port - the tab's own port (comlink), if it has one: the hub then posts the
   *   envelopes of the tabs that register on it there, instead of on their channel
   */
  api(port?: MessagePort): HubApi;
  log: Logger;
}


function describe(value: unknown): string {
  if (value instanceof Error) return value.stack ?? `${value.name}: ${value.message}`;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value);
  } catch {
    return String(value);
  }
}

/**
 * Start a hub runtime.
 * @param name - the host's name for diagnostics (the worker name, or `leader:<worker name>`)
 * @param consoleTag - prefix of the lines this host writes to its own console
 */
export function createRuntime(name: string, consoleTag: string): Runtime {
  const epoch = newClientMsgId();

  // -------------------------------------------------------------- diagnostics
  const diag = new BroadcastChannel(DIAG_CHANNEL);
  const mirror = (level: DiagMessage['level'], args: unknown[]) => {
    const message: DiagMessage = { source: 'worker', name, epoch, level, text: args.map(describe).join(' '), time: Date.now() };
    try {
      diag.postMessage(message);
    } catch {
      // The channel is best effort; the console still has warnings and errors.
    }
  };
  /** Mirrors every line to the diag channel; warnings and errors also go to the host's console. */
  const log: Logger = {
    debug: (...args) => mirror('debug', args),
    info: (...args) => mirror('info', args),
    warn: (...args) => { mirror('warn', args); console.warn(consoleTag, ...args); },
    error: (...args) => { mirror('error', args); console.error(consoleTag, ...args); },
  };

  // -------------------------------------------------------------- sockets
  let socketsOpen = 0;
  let socketsOpened = 0;
  /** The platform WebSocket, counted for getState() (how many sockets this profile holds). */
  class CountedWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      socketsOpen++;
      socketsOpened++;
      this.addEventListener('close', () => { socketsOpen--; });
    }
  }

  // -------------------------------------------------------------- locks
  const lockManager = webLocks();
  const workerLock = workerLockName(epoch);
  /** Held for this run's life: its release when the host dies is how tabs notice. */
  const ready: Promise<void> = lockManager
    ? holdForLife(lockManager, workerLock).catch((err: unknown) => {
        log.error('cannot hold the life lock; tabs will not notice this host dying:', err);
      })
    : Promise.resolve();

  /**
   * Wait on the tab's life lock: granted means the tab is gone. A tab asks for its lock
   * alongside its first command, not before it, so this request could reach the lock manager
   * first and be granted at once: for a tab that `justAttached`, it is made only once the
   * tab's own request shows in `query()` (held or pending; requests are granted in order),
   * after a few checks at most (a tab that died before its request is released then).
   */
  const watchTab = (tabId: string, onGone: () => void, justAttached = false): (() => void) => {
    if (!lockManager) return () => {};
    const controller = new AbortController();
    const name = tabLockName(tabId);
    const watch = () => {
      lockManager
        .request(name, { signal: controller.signal }, () => {
          if (!controller.signal.aborted) onGone();
        })
        .catch((err: unknown) => {
          if (!controller.signal.aborted) log.error(`cannot watch tab ${tabId}:`, err);
        });
    };
    const check = async (attempt: number): Promise<void> => {
      const state = await lockManager.query();
      if (controller.signal.aborted) return;
      const known = [...(state.held ?? []), ...(state.pending ?? [])].some((lock) => lock.name === name);
      if (known || attempt >= TAB_LOCK_CHECKS) {
        // Never seen: the tab died before its request (or holds none); the watch is granted: gone.
        watch();
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, TAB_LOCK_CHECK_MS * 2 ** attempt));
      if (!controller.signal.aborted) await check(attempt + 1);
    };
    if (!justAttached) {
      watch();
      return () => controller.abort();
    }
    check(0).catch((err: unknown) => {
      log.warn(`cannot look for the lock of tab ${tabId}; watching it now:`, err);
      if (!controller.signal.aborted) watch();
    });
    return () => controller.abort();
  };

  // -------------------------------------------------------------- hub
  /** Each tab's event channel (tabEventsChannel), while the tab is known to the hub. */
  const channels = new Map<string, BroadcastChannel>();
  /**
   * The port a tab registered on, where it has one (SharedWorker; the leader page's own
   * chats): envelopes go there, a direct pipe to the tab, in order with the command answers.
   */
  const ports = new Map<string, MessagePort>();
  const runs = new RunStore(epoch, BUILD, log);
  const clientName = `tabchat-worker/${VERSION}`;
  const hub = new Hub({
    epoch,
    workerLock,
    name,
    createEngine: (server): HubEngine =>
      new SessionEngine({ url: server, WebSocket: CountedWebSocket, clientName, logger: log, outbox: createOutbox(server) }),
    deliver: (tabId, envelope) => {
      const port = ports.get(tabId);
      if (port) {
        port.postMessage(envelope);
        return;
      }
      let channel = channels.get(tabId);
      if (!channel) channels.set(tabId, (channel = new BroadcastChannel(tabEventsChannel(tabId))));
      channel.postMessage(envelope);
    },
    forgetTab: (tabId) => {
      ports.delete(tabId);
      channels.get(tabId)?.close();
      channels.delete(tabId);
    },
    watchTab,
    socketStats: () => ({ open: socketsOpen, opened: socketsOpened }),
    persist: (instances) => runs.save(instances),
    releaseOrphan: (instance) => releaseInstance(CountedWebSocket, instance, clientName, log),
    dropRun: (deadEpoch) => runs.drop(deadEpoch),
    log,
  });

  // Instances of runs that died (now, or later: their life lock is released) are released
  // once their tabs are gone (worker/orphans.ts).
  if (lockManager) {
    ready
      .then(() => adoptDeadRuns({
        locks: lockManager,
        others: () => runs.others(),
        record: (deadEpoch) => runs.get(deadEpoch),
        adopt: (run) => hub.adoptOrphans(run),
        log,
      }))
      .catch((err: unknown) => log.warn('cannot check the records of previous runs:', err));
  }

  const guarded = async <T>(what: string, run: () => Promise<Reply<T>>): Promise<Reply<T>> => {
    try {
      await ready;
      return await run();
    } catch (err) {
      log.error(`${what} failed:`, err);
      return { ok: false, error: toErrorData(err) };
    }
  };

  const api = (port?: MessagePort): HubApi => ({
    register: (req) => guarded('register', async () => {
      // Before the hub knows the tab: its first envelopes already take the port.
      const tabId = typeof req?.tabId === 'string' ? req.tabId : null;
      if (port && tabId !== null) ports.set(tabId, port);
      const reply = await hub.register(req);
      if (!reply.ok && tabId !== null && ports.get(tabId) === port && !hub.knowsTab(tabId)) ports.delete(tabId);
      return reply;
    }),
    login: (tabId, spec, creds) => guarded('login', () => hub.login(tabId, spec, creds)),
    sendText: (tabId, chatId, message, timeoutMs) => guarded('sendText', () => hub.sendText(tabId, chatId, message, timeoutMs)),
    logout: (tabId, chatId, allTabs) => guarded('logout', () => hub.logout(tabId, chatId, allTabs === true)),
    conversation: (tabId, chatId, call) => guarded('conversation', () => hub.conversation(tabId, chatId, call)),
    forget: (tabId, chatId) => guarded('forget', () => hub.forget(tabId, chatId)),
    bye: async (tabId) => {
      try {
        await hub.tabGone(tabId);
      } catch (err) {
        log.error('bye failed:', err);
      }
    },
    getState: async () => hub.getState(),
  });

  // -------------------------------------------------------------- network
  // `offline`: close the sockets and wait; `online`: reconnect now (worker/network.ts).
  const scope = globalThis as unknown as Partial<NetworkEventSource>;
  if (typeof scope.addEventListener === 'function' && typeof scope.removeEventListener === 'function') {
    watchNetwork(scope as NetworkEventSource, (online) => hub.networkChanged(online));
  }

  log.info(`${name} started (epoch ${epoch})`);
  return { epoch, ready, api, log };
}
