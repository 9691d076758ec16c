/**
 * Browser benchmark: real tabs (pages of one Chromium BrowserContext) against the built
 * server CLI, for 1, 5 and 20 tabs, each figure next to its baseline from the same run:
 *
 *  - worker: the real drop-in build (`dist/tabchat.js` + `dist/tabchat-worker.js`), one
 *    SharedWorker per profile holding ONE WebSocket for every tab;
 *  - leader: the same build with `transport: 'leader'` forced (bench/pages/leader.html):
 *    the first tab wins the Web Lock election and starts `tabchat-worker.js` as its
 *    dedicated worker, which runs the hub and holds the one socket; the other tabs reach
 *    that hub over BroadcastChannel;
 *  - direct (baseline): the same chat object (`src/client/chat.ts`) over a direct
 *    `SessionEngine` + `DirectBackend` with the page's own `WebSocket` (bench/pages/
 *    direct-entry.ts, built here with vite), i.e. one socket per tab, no worker.
 *
 * Measured per tab count N (fresh BrowserContext per mode and N, so a fresh worker or a
 * fresh election):
 *  1. sockets on the server (`tabchat_connections`) with all N tabs logged in;
 *  2. login() → SDK_READY in a NEW tab while the N tabs are logged in (warm hub);
 *  3. REST kick → KICKED_OUT in the kicked tab; then the same with the FIRST tab's
 *     JavaScript paused (CDP `Debugger.pause`, what a dialog, a long task or a debugger does;
 *     in leader mode the first tab is the leader), kicking the other tabs (one more is opened
 *     when N = 1): the stalled-leader rows;
 *  4. REST kick of one user logged in in all N tabs (`tabs: 'shared'` for worker and
 *     leader; N instances of the user for the baseline) → the LAST tab's KICKED_OUT;
 *  5. JS heap per tab (CDP `HeapProfiler.collectGarbage` + `Runtime.getHeapUsage` per
 *     page; the SharedWorker's heap, and the leader's hub worker's, are read the same way
 *     and reported separately);
 *  6. dead tab released: `page.close()` (and a renderer crash, CDP `Page.crash`) → the
 *     instance leaves `query_online_status` (polled from Node); in leader mode these tabs
 *     are followers;
 *  7. leader mode only, dead LEADER tab: a new follower logs in, then the leader tab is
 *     closed or crashed → the leader's own instance leaves `query_online_status`; then every
 *     follower must be ready again with its instance kept on the server (same InstId), and
 *     the handover time (kill → the last follower's NET_STATE_CHANGE back to connected) is
 *     recorded.
 *
 * dist/ is copied to bench/.build/dist first and everything runs from the copy (the working
 * tree is shared; a concurrent build empties dist/ for a while).
 *
 * Clock: pages timestamp events with `performance.timeOrigin + performance.now()` and Node
 * reads the same expression, so both are Unix-epoch milliseconds from one machine clock;
 * the offset between the two is estimated per page (NTP-style, smallest evaluate round
 * trip) and reported, not subtracted.
 *
 * Env: BENCH_TABS (default "1,5,20"), BENCH_NEWTAB (30 new tabs per row, after
 * BENCH_WARMUP = 2 uncounted ones), BENCH_NEWTAB_SETTLE_MS (0: log in right after load),
 * BENCH_ATTACH (10 more new tabs per worker row for the attach/login breakdown),
 * BENCH_KICKS_BROWSER (30), BENCH_FANOUT (15), BENCH_DEAD (10 closed + 10 crashed tabs per
 * row), BENCH_DEAD_LEADER (leader mode: 10 closed + 10 crashed leader tabs per row),
 * BENCH_MODES (default "worker,leader,direct"; the direct baseline always runs),
 * BENCH_BROWSER=0 skips this benchmark, CHROMIUM_PATH (default /usr/bin/chromium).
 * With the defaults it takes about 5 minutes on the 2-core machine (leader mode ~35 s a row).
 * `npx tsx bench/browser-bench.ts` runs it alone (needs `npm run build` first).
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { chromium, type Browser, type BrowserContext, type Page } from '@playwright/test';
import { build } from 'vite';
import { attachWorker, pauseScript } from '../e2e/page-lifecycle.js';
import { generateUserSig } from '../server/usersig.js';
import { BUILT_CLI, startCli } from '../test/helpers/cli.js';
import { stats, type Stats } from './server-bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..');
const DIST = join(ROOT, 'dist');
/** The built server package (server/dist). */
const SERVER_DIST = dirname(dirname(BUILT_CLI));
/** Bench-time files (gitignored): the direct bundle and snapshots of dist/ and server/dist (see snapshotDist). */
const BUILD_DIR = join(here, '.build');
const SNAPSHOT = join(BUILD_DIR, 'dist');
const SERVER_SNAPSHOT = join(BUILD_DIR, 'server');
const CLI = join(SERVER_SNAPSHOT, relative(SERVER_DIST, BUILT_CLI));

const envInt = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
};
const TABS = (process.env.BENCH_TABS ?? '1,5,20').split(',').map(Number).filter((n) => Number.isInteger(n) && n > 0);
const NEWTAB = envInt('BENCH_NEWTAB', 30);
const WARMUP = envInt('BENCH_WARMUP', 2);
/** Wait this long after a new tab's load before its login (default 0: login right after load). */
const SETTLE_MS = envInt('BENCH_NEWTAB_SETTLE_MS', 0);
/** Worker rows: extra new tabs that attach first (getWorkerState) and log in after, for the breakdown. */
const ATTACH = envInt('BENCH_ATTACH', 10);
const KICKS = envInt('BENCH_KICKS_BROWSER', 30);
const FANOUT = envInt('BENCH_FANOUT', 15);
const DEAD = envInt('BENCH_DEAD', 10);
const DEAD_LEADER = envInt('BENCH_DEAD_LEADER', DEAD);
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Same flags as playwright.config.ts. */
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Separate-mode logins (every tab its own instance); limit high enough that nobody is kicked. */
export const APP_SEPARATE = 1400000011;
/** The user-wide kick: one user in every tab (worker: `tabs: 'shared'`; direct: N instances). */
const APP_SHARED = 1400000012;
/** A second chat in the new tab: a login from a page that is already warm (and attached to the worker). */
const APP_SECOND = 1400000013;
const SECRET = randomBytes(24).toString('hex');
const ADMIN = 'administrator';
/** Server default; a dropped direct socket's instance stays online this long. */
const RESUME_WINDOW_MS = 10_000;

export type Mode = 'worker' | 'leader' | 'direct';
const MODES: Mode[] = ['worker', 'leader', 'direct'];
/** The modes to run (BENCH_MODES), always with the direct baseline. */
const RUN_MODES: Mode[] = (() => {
  const asked = (process.env.BENCH_MODES ?? MODES.join(',')).split(',').map((m) => m.trim());
  return MODES.filter((m) => m === 'direct' || asked.includes(m));
})();
/** The modes whose tabs share one hub (a SharedWorker, or the leader tab). */
const hubMode = (mode: Mode) => mode !== 'direct';

export interface ModeResult {
  mode: Mode;
  tabs: number;
  /** `tabchat_connections` with all tabs logged in (and the hub's own count, worker and leader). */
  sockets: number;
  workerSockets: number | null;
  /** The hub's build id (`getWorkerState().build`), worker and leader. */
  workerBuild: string | null;
  /** login() → SDK_READY in a new tab (ms); `resolved`: login() → its promise resolved. */
  newTabReady: Stats;
  newTabResolved: Stats;
  /** Worker and leader: a new tab's attach to the hub (getWorkerState: connect or election + tab lock + register + getState), then its login() → SDK_READY. */
  attach: Stats | null;
  loginAfterAttach: Stats | null;
  /** login() → SDK_READY of a second chat (another SDKAppID) in the same new tab, right after the first: warm page, tab already attached. */
  secondChatReady: Stats;
  /**
   * A new tab of a user already logged in elsewhere in the profile: login() → SDK_READY →
   * getConversationList() resolved (ms, from the login), and `list` the getConversationList()
   * call alone; `requestsPerTab`: `convList` requests the server answered per new tab.
   */
  newTabList: { total: Stats; list: Stats; requestsPerTab: number };
  /** REST POST (Node, just before fetch) → KICKED_OUT in the tab (ms). */
  kick: Stats;
  /** The same, kicking tabs other than the first while the first tab's JavaScript is paused (ms). */
  stalledKick: Stats;
  /** REST kick of a user in every tab → last tab's KICKED_OUT (ms); `first`: the first tab's. */
  fanoutLast: Stats;
  fanoutFirst: Stats;
  /** JS heap used per tab after forced GC (bytes): median over the N tabs, and the sum. */
  heapPerTab: number;
  heapTabs: number[];
  /** The hub's own JS heap after forced GC: the SharedWorker (worker), the leader tab's dedicated worker (leader); null otherwise or when it could not be read. */
  heapWorker: number | null;
  /** Renderer processes of the browser with the N tabs open (CDP SystemInfo.getProcessInfo); null if unavailable. */
  rendererProcesses: number | null;
  /** page.close() → the instance left query_online_status (ms); null samples timed out. */
  deadClose: Stats;
  /** CDP Page.crash → left query_online_status (ms). */
  deadCrash: Stats;
  deadTimedOut: number;
  /** Leader mode only (null otherwise): the dead LEADER tab, see {@link DeadLeader}. */
  deadLeader: DeadLeaderResult | null;
  /** Page-minus-Node clock offset estimates (ms) and the smallest evaluate round trip. */
  clockOffset: { median: number; maxAbs: number; minRtt: number };
  errors: string[];
  seconds: number;
  /** 1-minute load average at the end of this row (the machine is shared). */
  loadAvg: number;
  /** Every sample behind the stats above (ms, 0.01 ms resolution), in measurement order. */
  samples: Record<string, number[]>;
  /** Set when the run threw; its figures are then NaN. */
  failed?: string;
}

/** Leader mode: the leader tab closed or crashed while N followers stay logged in. */
export interface DeadLeaderResult {
  /** page.close() of the leader → the leader's own instance left query_online_status (ms). */
  close: Stats;
  /** CDP Page.crash of the leader → the same (ms). */
  crash: Stats;
  /** Kill → the last follower's NET_STATE_CHANGE back to connected (page clocks, ms), closed and crashed together. */
  handover: Stats;
  /** Samples whose leader instance did not leave within the resume window + 10 s. */
  timedOut: number;
  /** Follower tabs checked after the handovers (summed over the samples). */
  followersChecked: number;
  /** Followers whose instance on the server changed (other InstId, or not exactly one). */
  followersInstChanged: number;
  /** Followers not ready after the handover, or that saw SDK_NOT_READY / KICKED_OUT meanwhile. */
  followersNotReady: number;
  /** Samples where the leader was not the oldest tab (the election queue is first come, first served). */
  leaderNotOldest: number;
  /** Closed and crashed leaders whose instance took longer than the 1 s target to leave. */
  overTarget: number;
  /** Tabs found not ready or without their instance before a later sample (a session lost in an earlier handover), closed and replaced. */
  tabsReplaced: number;
}

export interface BrowserBenchResult {
  chromium: string;
  config: {
    tabs: number[]; modes: Mode[]; newTab: number; warmup: number; settleMs: number; attach: number; kicks: number; fanout: number; dead: number; deadLeader: number;
    resumeWindowMs: number;
  };
  /** 1-minute load average when the browser part started and ended (the machine is shared). */
  loadAvg: { start: number; end: number };
  /** The direct baseline's page bundle (bench-only, never shipped). */
  directBundle: { raw: number; gzip: number };
  /** A blank page's JS heap after forced GC (bytes): the floor of every tab. */
  heapBlankPage: number;
  runs: ModeResult[];
  seconds: number;
  skipped?: string;
}

/** Node's clock, the same expression as the pages'. */
const nodeNow = () => performance.timeOrigin + performance.now();

// ------------------------------------------------------------------ the direct bundle

/**
 * Copy the built server (server/dist) to bench/.build/server and the drop-in builds
 * (dist/tabchat.js, dist/tabchat-worker.js) to bench/.build/dist, and run everything from
 * those copies: the working tree is shared, and a concurrent `npm run build` empties dist/
 * for a while. The server copy resolves node_modules from the repository root as
 * server/dist does.
 */
function snapshotDist(): void {
  rmSync(BUILD_DIR, { recursive: true, force: true });
  mkdirSync(SNAPSHOT, { recursive: true });
  cpSync(SERVER_DIST, SERVER_SNAPSHOT, { recursive: true });
  for (const file of ['tabchat.js', 'tabchat-worker.js']) copyFileSync(join(DIST, file), join(SNAPSHOT, file));
}

async function buildDirectBundle(): Promise<void> {
  await build({
    configFile: false,
    root: ROOT,
    logLevel: 'warn',
    define: { 'import.meta.url': 'undefined' },
    build: {
      outDir: join(BUILD_DIR, 'direct'),
      emptyOutDir: true,
      copyPublicDir: false,
      target: 'es2020',
      minify: true,
      sourcemap: false,
      lib: { entry: join(here, 'pages', 'direct-entry.ts'), name: 'TabChat', formats: ['iife'], fileName: () => 'tabchat-direct.js' },
    },
  });
}

// ------------------------------------------------------------------ the server

export interface Server {
  httpUrl: string;
  /** POST /v4/<command> as the admin; `sent` receives Node's clock just before the request goes out. */
  rest(sdkAppId: number, command: string, body: unknown, sent?: (at: number) => void): Promise<any>;
  connections(): Promise<number>;
  /** userID → number of online instances, one REST call for all. */
  online(sdkAppId: number, userIDs: string[]): Promise<Map<string, number>>;
  /** userID → its online instances (InstId, and whether a socket holds it now), one REST call for all. */
  instances(sdkAppId: number, userIDs: string[]): Promise<Map<string, Array<{ instId: number; connected: boolean }>>>;
  sig(sdkAppId: number, userID: string): string;
  /** `tabchat_conversation_requests_total{op}`. */
  conversationRequests(op: string): Promise<number>;
  stop(): Promise<void>;
}

export async function startServer(): Promise<Server> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-browser-bench-'));
  const app = (sdkAppId: number) => ({
    sdkAppId, secretKey: SECRET, adminIdentifier: ADMIN, maxInstancesPerPlatform: 1000, loginPolicy: 'multi', allowedOrigins: ['*'],
  });
  const config = {
    apps: [app(APP_SEPARATE), app(APP_SHARED), app(APP_SECOND)],
    store: 'memory',
    logLevel: 'warn',
    resumeWindowMs: RESUME_WINDOW_MS,
    rateLimits: { loginFailuresPerIp: 1e9, loginFailuresPerUser: 1e9, framesPerSecond: 1e6, connectionsPerIp: 10_000, loginsPerIp: 1e9, loginsPerUser: 1e9, connectionsPerUser: 1e6, syncsPerSecond: 1e6 },
    static: { '/bench/': join(here, 'pages'), '/bench-build/': BUILD_DIR },
  };
  const configPath = join(dir, 'config.json');
  writeFileSync(configPath, JSON.stringify(config));
  const cli = await startCli(['--config', configPath, '--port', '0'], { entry: { script: CLI } });
  const { httpUrl } = cli;
  cli.child.stderr!.on('data', (chunk: string) => process.stderr.write(`[server] ${chunk}`));
  const adminSigs = new Map<number, string>();
  const rest = async (sdkAppId: number, command: string, body: unknown, sent?: (at: number) => void) => {
    let usersig = adminSigs.get(sdkAppId);
    if (usersig === undefined) adminSigs.set(sdkAppId, (usersig = generateUserSig({ sdkAppId, key: SECRET, identifier: ADMIN })));
    const query = new URLSearchParams({ sdkappid: String(sdkAppId), identifier: ADMIN, usersig, random: String(Math.floor(Math.random() * 2 ** 32)), contenttype: 'json' });
    const url = `${httpUrl}/v4/${command}?${query}`;
    const init = { method: 'POST', body: JSON.stringify(body) };
    sent?.(nodeNow());
    const res = await fetch(url, init);
    const reply = (await res.json()) as { ErrorCode: number } & Record<string, any>;
    if (reply.ErrorCode !== 0) throw new Error(`REST ${command}: ${JSON.stringify(reply)}`);
    return reply;
  };
  return {
    httpUrl,
    rest,
    async connections() {
      const text = await (await fetch(`${httpUrl}/metrics`)).text();
      const match = /^tabchat_connections(?:\{[^}]*\})? (\d+)/m.exec(text);
      if (!match?.[1]) throw new Error('tabchat_connections not found in /metrics');
      return Number(match[1]);
    },
    async online(sdkAppId, userIDs) {
      const reply = await rest(sdkAppId, 'openim/query_online_status', { To_Account: userIDs, IsNeedDetail: 1 });
      const out = new Map<string, number>();
      for (const r of reply.QueryResult as Array<{ To_Account: string; Detail?: unknown[] }>) out.set(r.To_Account, r.Detail?.length ?? 0);
      return out;
    },
    async instances(sdkAppId, userIDs) {
      const reply = await rest(sdkAppId, 'openim/query_online_status', { To_Account: userIDs, IsNeedDetail: 1 });
      const out = new Map<string, Array<{ instId: number; connected: boolean }>>();
      for (const r of reply.QueryResult as Array<{ To_Account: string; Detail?: Array<{ InstId: number; Connected: boolean }> }>) {
        out.set(r.To_Account, (r.Detail ?? []).map((d) => ({ instId: d.InstId, connected: d.Connected })));
      }
      return out;
    },
    sig: (sdkAppId, userID) => generateUserSig({ sdkAppId, key: SECRET, identifier: userID }),
    async conversationRequests(op) {
      const text = await (await fetch(`${httpUrl}/metrics`)).text();
      const match = new RegExp(`^tabchat_conversation_requests_total\\{[^}]*op="${op}"[^}]*\\} (\\d+)`, 'm').exec(text);
      return Number(match?.[1] ?? 0);
    },
    async stop() {
      await cli.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// ------------------------------------------------------------------ tabs

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or an error after `ms` (nothing in the bench may wait forever). */
function within<T>(what: string, ms: number, promise: Promise<T>): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface ChatHistory {
  ready: boolean;
  kicks: number;
  notReady: number;
  /** NET_STATE_CHANGE events (page clock). */
  net: Array<{ state: string; at: number }>;
}

interface LoginTiming {
  t0: number;
  resolved: number;
  ready: number;
  error?: { code: number; message: string };
}

export class Tabs {
  readonly pages: Page[] = [];
  readonly errors: string[] = [];
  private seq = 0;
  readonly stem = randomBytes(3).toString('hex');

  constructor(
    readonly mode: Mode,
    readonly ctx: BrowserContext,
    readonly server: Server,
  ) {}

  uid(prefix: string): string {
    return `${this.mode}-${prefix}-${this.stem}-${this.seq++}`;
  }

  /** A new page on the mode's bench page, harness loaded; console errors are collected. */
  async open(): Promise<Page> {
    const page = await this.ctx.newPage();
    page.on('console', (message) => {
      if (message.type() === 'error') this.errors.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => this.errors.push(`pageerror: ${error.message}`));
    await page.goto(`${this.server.httpUrl}/bench/${this.mode}.html`);
    await page.waitForFunction(() => typeof (window as any).b === 'object');
    return page;
  }

  /** `b.login` in `page` (creating the chat first when `create` is given); throws on failure. */
  async login(page: Page, sdkAppId: number, userID: string, create?: Record<string, unknown>): Promise<LoginTiming> {
    const sig = this.server.sig(sdkAppId, userID);
    const timing = await within(
      `${this.mode} login ${userID}`,
      20_000,
      page.evaluate(([id, u, s, c]) => (window as any).b.login(id, u, s, c) as Promise<LoginTiming>, [sdkAppId, userID, sig, create ?? null] as const),
    );
    if (timing.error) throw new Error(`${this.mode} login ${userID} failed: ${JSON.stringify(timing.error)}`);
    return timing;
  }

  /** Time (page clock) of the KICKED_OUT of chat `sdkAppId` in `page` since its last login. */
  kicked(page: Page, sdkAppId: number): Promise<number> {
    return within(`${this.mode} KICKED_OUT`, 10_000, page.evaluate((id) => (window as any).b.kicked(id) as Promise<number>, sdkAppId));
  }

  /** What chat `sdkAppId` in `page` went through (bench/pages/harness.js `history`). */
  history(page: Page, sdkAppId: number): Promise<ChatHistory> {
    return within(`${this.mode} history`, 10_000, page.evaluate((id) => (window as any).b.history(id) as ChatHistory, sdkAppId));
  }

  /** Leader page: whether `page` holds the leader lock. */
  isLeader(page: Page): Promise<boolean> {
    return within(`${this.mode} isLeader`, 10_000, page.evaluate(() => (window as any).b.isLeader() as Promise<boolean>));
  }

  async pageErrors(page: Page): Promise<void> {
    const errs = await page.evaluate(() => (window as any).b.errors.splice(0) as unknown[]).catch(() => []);
    for (const e of errs) this.errors.push(`chat: ${JSON.stringify(e)}`);
  }
}

/** Page-minus-Node clock offset, NTP-style: the sample with the smallest round trip. */
async function clockOffset(page: Page): Promise<{ offset: number; rtt: number }> {
  let best = { offset: NaN, rtt: Infinity };
  for (let i = 0; i < 15; i++) {
    const t1 = nodeNow();
    const p = await page.evaluate(() => performance.timeOrigin + performance.now());
    const t2 = nodeNow();
    if (t2 - t1 < best.rtt) best = { offset: p - (t1 + t2) / 2, rtt: t2 - t1 };
  }
  return best;
}

/** JS heap used of `page` after forced GC (CDP on the page target). */
async function pageHeap(page: Page): Promise<number> {
  const session = await page.context().newCDPSession(page);
  try {
    await session.send('HeapProfiler.collectGarbage');
    await session.send('HeapProfiler.collectGarbage');
    const usage = (await session.send('Runtime.getHeapUsage')) as { usedSize: number };
    return usage.usedSize;
  } finally {
    await session.detach().catch(() => {});
  }
}

/**
 * JS heap of the hub's worker in `page`'s context after forced GC: its SharedWorker
 * (`shared_worker`), or the leader tab's dedicated worker (`worker`). Null when that fails.
 */
async function workerHeap(page: Page, type: 'shared_worker' | 'worker'): Promise<number | null> {
  const worker = await attachWorker(page, type).catch(() => null);
  if (!worker) return null;
  try {
    await worker.call('HeapProfiler.collectGarbage');
    await worker.call('HeapProfiler.collectGarbage');
    const usage = (await worker.call('Runtime.getHeapUsage')) as { usedSize: number };
    return usage.usedSize;
  } catch {
    return null;
  } finally {
    await worker.detach();
  }
}

/** Renderer processes of the browser (to check that tabs do not share a V8 isolate). */
async function renderers(browser: Browser): Promise<number | null> {
  const session = await browser.newBrowserCDPSession();
  try {
    const info = (await session.send('SystemInfo.getProcessInfo')) as { processInfo: Array<{ type: string }> };
    return info.processInfo.filter((p) => p.type === 'renderer').length;
  } catch {
    return null;
  } finally {
    await session.detach().catch(() => {});
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000, everyMs = 50): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v)) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await sleep(everyMs);
  }
}

// ------------------------------------------------------------------ one mode, one tab count

async function runMode(browser: Browser, server: Server, mode: Mode, n: number): Promise<ModeResult> {
  const started = performance.now();
  // Nothing of an earlier context may be counted.
  await waitFor('0 server connections before the run', () => server.connections(), (c) => c === 0, 20_000, 100);
  const ctx = await browser.newContext();
  const tabs = new Tabs(mode, ctx, server);
  try {
    // --- N tabs, each its own login instance (separate mode).
    const users: string[] = [];
    for (let i = 0; i < n; i++) {
      const page = await tabs.open();
      tabs.pages.push(page);
      users.push(tabs.uid(`t${i}`));
      await tabs.login(page, APP_SEPARATE, users[i]!, {});
    }

    // 1. sockets.
    await sleep(200);
    const sockets = await server.connections();
    const state = hubMode(mode)
      ? ((await tabs.pages[0]!.evaluate(() => (window as any).b.workerState())) as { name: string; sockets: number; build: string } | null)
      : null;
    // The leader page must really run on the leader transport (hub name `leader:<worker name>`).
    if (mode === 'leader' && !state?.name.startsWith('leader:')) throw new Error(`leader page: the hub is ${JSON.stringify(state?.name)}, not a leader tab`);
    if (mode === 'leader' && !(await tabs.isLeader(tabs.pages[0]!))) throw new Error('leader page: the first tab does not hold the leader lock');
    const workerSockets = state?.sockets ?? null;
    const workerBuild = state?.build ?? null;

    // 5. heap per tab (and the worker's).
    const heapTabs: number[] = [];
    for (const page of tabs.pages) heapTabs.push(await pageHeap(page));
    const heapWorker = hubMode(mode) ? await workerHeap(tabs.pages[0]!, mode === 'worker' ? 'shared_worker' : 'worker') : null;
    const rendererProcesses = await renderers(browser);

    // Clock offset of each page against Node.
    const offsets: number[] = [];
    let minRtt = Infinity;
    for (const page of tabs.pages) {
      const o = await clockOffset(page);
      offsets.push(o.offset);
      minRtt = Math.min(minRtt, o.rtt);
    }

    // 3. REST kick → KICKED_OUT, round-robin over the tabs; the kicked tab logs in again.
    const kickSamples: number[] = [];
    for (let k = 0; k < KICKS; k++) {
      const i = k % n;
      const page = tabs.pages[i]!;
      let t0 = NaN;
      await server.rest(APP_SEPARATE, 'im_open_login_svc/kick', { UserID: users[i] }, (at) => (t0 = at));
      const at = await tabs.kicked(page, APP_SEPARATE);
      kickSamples.push(at - t0);
      await tabs.login(page, APP_SEPARATE, users[i]!);
    }
    const stalledKickSamples = await stalledKicks(tabs, users);

    // 4. one user in every tab; REST kick → the last tab's KICKED_OUT.
    const fanUser = tabs.uid('fan');
    const fanCreate = hubMode(mode) ? { tabs: 'shared' } : {};
    await Promise.all(tabs.pages.map((page) => tabs.login(page, APP_SHARED, fanUser, fanCreate)));
    const fanLast: number[] = [];
    const fanFirst: number[] = [];
    for (let k = 0; k < FANOUT; k++) {
      let t0 = NaN;
      await server.rest(APP_SHARED, 'im_open_login_svc/kick', { UserID: fanUser }, (at) => (t0 = at));
      const ats = await Promise.all(tabs.pages.map((page) => tabs.kicked(page, APP_SHARED)));
      fanLast.push(Math.max(...ats) - t0);
      fanFirst.push(Math.min(...ats) - t0);
      if (k + 1 < FANOUT) await Promise.all(tabs.pages.map((page) => tabs.login(page, APP_SHARED, fanUser)));
    }

    // 2. login() → SDK_READY in a new tab while the N tabs are logged in (warm worker): the
    // page's first call (create + login in one task, right after load). Then a second chat
    // in the same tab: the same login from a warm page (attached to the worker).
    const newReady: number[] = [];
    const newResolved: number[] = [];
    const secondReady: number[] = [];
    for (let k = 0; k < WARMUP + NEWTAB; k++) {
      const page = await tabs.open();
      if (SETTLE_MS > 0) await sleep(SETTLE_MS);
      const t = await tabs.login(page, APP_SEPARATE, tabs.uid('new'), {});
      const t2 = await tabs.login(page, APP_SECOND, tabs.uid('new2'), {});
      if (k >= WARMUP) {
        newReady.push(t.ready - t.t0);
        newResolved.push(t.resolved - t.t0);
        secondReady.push(t2.ready - t2.t0);
      }
      await tabs.pageErrors(page);
      await page.close();
    }

    // 2b. a new tab of users[0] (who has a conversation) → getConversationList() resolved:
    // the hub's cache (worker, leader) or the tab's own fetch (direct), and the server's
    // convList requests per new tab.
    await tabs.pages[0]!.evaluate(([id, u]) => (window as any).b.sendText(id, u, 'bench conversation') as Promise<boolean>, [APP_SEPARATE, `${users[0]!}-peer`] as const);
    const listTotal: number[] = [];
    const listOnly: number[] = [];
    let listRequests = 0;
    for (let k = 0; k < WARMUP + NEWTAB; k++) {
      const page = await tabs.open();
      const before = await server.conversationRequests('convList');
      const t = await tabs.login(page, APP_SEPARATE, users[0]!, {});
      const l = await within('getConversationList', 20_000, page.evaluate((id) => (window as any).b.conversations(id) as Promise<{ t0: number; listed: number; count: number }>, APP_SEPARATE));
      if (l.count !== 1) throw new Error(`${mode}: the new tab listed ${l.count} conversations, not 1`);
      if (k >= WARMUP) {
        listTotal.push(l.listed - t.t0);
        listOnly.push(l.listed - l.t0);
        listRequests += (await server.conversationRequests('convList')) - before;
      }
      await tabs.pageErrors(page);
      await page.close();
    }

    // Breakdown (worker and leader): the attach alone, then the login of an attached new tab.
    let attach: Stats | null = null;
    let loginAfterAttach: Stats | null = null;
    const attachSamples: number[] = [];
    const afterAttachSamples: number[] = [];
    if (hubMode(mode) && ATTACH > 0) {
      const a = attachSamples;
      const l = afterAttachSamples;
      for (let k = 0; k < ATTACH; k++) {
        const page = await tabs.open();
        a.push(await within('attach', 20_000, page.evaluate((id) => (window as any).b.attach(id) as Promise<number>, APP_SEPARATE)));
        const t = await tabs.login(page, APP_SEPARATE, tabs.uid('att'), {});
        l.push(t.ready - t.t0);
        await tabs.pageErrors(page);
        await page.close();
      }
      attach = stats(a);
      loginAfterAttach = stats(l);
    }

    // 6. dead tab → released on the server (in leader mode: follower tabs).
    const dead = await deadTabs(tabs, DEAD);

    // 7. leader mode: the leader tab itself dies.
    const leader = mode === 'leader' ? await deadLeaders(tabs, users, DEAD_LEADER) : null;

    for (const page of tabs.pages) await tabs.pageErrors(page);
    const raw = (xs: number[]) => xs.map((x) => Math.round(x * 100) / 100);
    return {
      mode,
      tabs: n,
      sockets,
      workerSockets,
      workerBuild,
      newTabReady: stats(newReady),
      newTabResolved: stats(newResolved),
      secondChatReady: stats(secondReady),
      newTabList: { total: stats(listTotal), list: stats(listOnly), requestsPerTab: NEWTAB > 0 ? listRequests / NEWTAB : NaN },
      attach,
      loginAfterAttach,
      kick: stats(kickSamples),
      stalledKick: stats(stalledKickSamples),
      fanoutLast: stats(fanLast),
      fanoutFirst: stats(fanFirst),
      heapPerTab: median(heapTabs),
      heapTabs,
      heapWorker,
      rendererProcesses,
      deadClose: stats(dead.close),
      deadCrash: stats(dead.crash),
      deadTimedOut: dead.timedOut,
      deadLeader: leader && {
        close: stats(leader.close), crash: stats(leader.crash), handover: stats(leader.handover), timedOut: leader.timedOut,
        followersChecked: leader.followersChecked, followersInstChanged: leader.followersInstChanged, followersNotReady: leader.followersNotReady,
        leaderNotOldest: leader.leaderNotOldest, tabsReplaced: leader.tabsReplaced,
        overTarget: [...leader.close, ...leader.crash].filter((ms) => ms > TARGETS.deadTabMs).length,
      },
      clockOffset: { median: median(offsets), maxAbs: Math.max(...offsets.map(Math.abs)), minRtt },
      errors: tabs.errors,
      seconds: (performance.now() - started) / 1000,
      loadAvg: loadavg()[0]!,
      samples: {
        newTabReady: raw(newReady),
        newTabResolved: raw(newResolved),
        secondChatReady: raw(secondReady),
        attach: raw(attachSamples),
        loginAfterAttach: raw(afterAttachSamples),
        kick: raw(kickSamples),
        stalledKick: raw(stalledKickSamples),
        fanoutLast: raw(fanLast),
        fanoutFirst: raw(fanFirst),
        deadClose: raw(dead.close),
        deadCrash: raw(dead.crash),
        ...(leader ? { deadLeaderClose: raw(leader.close), deadLeaderCrash: raw(leader.crash), leaderHandover: raw(leader.handover) } : {}),
      },
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const none = stats([]);
    return {
      mode, tabs: n, sockets: NaN, workerSockets: null, workerBuild: null, newTabReady: none, newTabResolved: none, secondChatReady: none, newTabList: { total: none, list: none, requestsPerTab: NaN }, attach: null, loginAfterAttach: null, kick: none, stalledKick: none,
      fanoutLast: none, fanoutFirst: none, heapPerTab: NaN, heapTabs: [], heapWorker: null, rendererProcesses: null, deadClose: none, deadCrash: none,
      deadTimedOut: 0, deadLeader: null, clockOffset: { median: NaN, maxAbs: NaN, minRtt: NaN }, errors: tabs.errors,
      seconds: (performance.now() - started) / 1000, loadAvg: loadavg()[0]!, samples: {}, failed: message,
    };
  } finally {
    await ctx.close().catch(() => {});
  }
}

/**
 * REST kick → KICKED_OUT in a tab while the FIRST tab's JavaScript is paused (CDP
 * `Debugger.pause`; in leader mode the first tab leads): {@link KICKS} kicks round-robin over
 * the other tabs, each kicked tab logging in again (while the first tab stays paused), as in
 * the unpaused kick rows. With one tab, one more tab is opened to be kicked, and closed after.
 * `users[i]` is the user of `tabs.pages[i]` (chat APP_SEPARATE).
 */
async function stalledKicks(tabs: Tabs, users: string[]): Promise<number[]> {
  const victims = tabs.pages.slice(1).map((page, i) => ({ page, user: users[i + 1]! }));
  let extra: Page | null = null;
  if (victims.length === 0) {
    extra = await tabs.open();
    const user = tabs.uid('stall');
    await tabs.login(extra, APP_SEPARATE, user, {});
    victims.push({ page: extra, user });
  }
  const samples: number[] = [];
  const paused = await within(`${tabs.mode} pause the first tab`, 10_000, pauseScript(tabs.pages[0]!));
  try {
    for (let k = 0; k < KICKS; k++) {
      const { page, user } = victims[k % victims.length]!;
      let t0 = NaN;
      await tabs.server.rest(APP_SEPARATE, 'im_open_login_svc/kick', { UserID: user }, (at) => (t0 = at));
      const at = await tabs.kicked(page, APP_SEPARATE);
      samples.push(at - t0);
      await tabs.login(page, APP_SEPARATE, user);
    }
  } finally {
    await paused.resume();
  }
  if (extra) {
    await tabs.pageErrors(extra);
    await extra.close();
  }
  return samples;
}

/**
 * `count` tabs closed (page.close) and `count` crashed (CDP Page.crash), each with its own
 * user; Node polls query_online_status until each instance is gone. The worker and leader
 * tabs are measured two at a time (they go within ~0.1 s); the direct tabs all at once
 * (their instances stay for the server's resume window, ~10 s). In leader mode the victims
 * open after the N tabs, so they are followers.
 */
async function deadTabs(tabs: Tabs, count: number): Promise<{ close: number[]; crash: number[]; timedOut: number }> {
  const close: number[] = [];
  const crash: number[] = [];
  let timedOut = 0;
  if (count === 0) return { close, crash, timedOut };
  const timeoutMs = RESUME_WINDOW_MS + 10_000;
  const batch = hubMode(tabs.mode) ? 2 : 2 * count;
  for (let done = 0; done < 2 * count; done += batch) {
    const victims: Array<{ page: Page; user: string; how: 'close' | 'crash'; at: number; gone: number | null }> = [];
    for (let i = 0; i < batch; i++) {
      const page = await tabs.open();
      const user = tabs.uid('dead');
      await tabs.login(page, APP_SEPARATE, user, {});
      await tabs.pageErrors(page);
      victims.push({ page, user, how: (done + i) % 2 === 0 ? 'close' : 'crash', at: 0, gone: null });
    }
    const online = await tabs.server.online(APP_SEPARATE, victims.map((v) => v.user));
    if (victims.some((v) => online.get(v.user) !== 1)) throw new Error(`dead-tab victims not online: ${JSON.stringify([...online])}`);
    for (const v of victims) {
      if (v.how === 'close') {
        v.at = nodeNow();
        await v.page.close();
      } else {
        const session = await tabs.ctx.newCDPSession(v.page);
        v.at = nodeNow();
        session.send('Page.crash').catch(() => {});
      }
    }
    const until = nodeNow() + timeoutMs;
    while (victims.some((v) => v.gone === null) && nodeNow() < until) {
      const now = await tabs.server.online(APP_SEPARATE, victims.filter((v) => v.gone === null).map((v) => v.user));
      const t = nodeNow();
      for (const v of victims) if (v.gone === null && now.get(v.user) === 0) v.gone = t;
      await sleep(10);
    }
    for (const v of victims) {
      if (v.gone === null) timedOut++;
      else (v.how === 'close' ? close : crash).push(v.gone - v.at);
      if (v.how === 'crash') await v.page.close().catch(() => {});
    }
  }
  return { close, crash, timedOut };
}

/** What {@link deadLeaders} collects (samples in ms). */
interface DeadLeaderSamples {
  close: number[];
  crash: number[];
  handover: number[];
  timedOut: number;
  followersChecked: number;
  followersInstChanged: number;
  followersNotReady: number;
  leaderNotOldest: number;
  tabsReplaced: number;
}

/**
 * Leader mode: `count` leader tabs closed (page.close) and `count` crashed (CDP Page.crash),
 * one at a time. Before each, a new tab logs in with its own user, so a follower always
 * remains to take over and N tabs stay open; the leader is normally the oldest tab (the
 * lock queue is first come, first served; counted when not). Node polls
 * query_online_status until the leader's own instance is gone; then every follower must be
 * ready again on the new leader's hub with its instance kept (the same InstId, connected),
 * without SDK_NOT_READY or KICKED_OUT meanwhile (counted, not thrown; such a tab is replaced
 * before the next sample). `users[i]` is the user of `tabs.pages[i]` (chat APP_SEPARATE);
 * both lists are updated as tabs come and go.
 */
async function deadLeaders(tabs: Tabs, users: string[], count: number): Promise<DeadLeaderSamples> {
  const out: DeadLeaderSamples = {
    close: [], crash: [], handover: [], timedOut: 0, followersChecked: 0, followersInstChanged: 0, followersNotReady: 0, leaderNotOldest: 0, tabsReplaced: 0,
  };
  const timeoutMs = RESUME_WINDOW_MS + 10_000;
  const n = tabs.pages.length;
  for (let k = 0; k < 2 * count; k++) {
    const how = k % 2 === 0 ? 'close' : 'crash';
    // A tab whose session did not survive an earlier handover (counted there) is replaced,
    // so every sample starts from N + 1 ready tabs, each with its one instance.
    const held = await tabs.server.instances(APP_SEPARATE, users);
    const ready = await Promise.all(tabs.pages.map((page) => tabs.history(page, APP_SEPARATE).then((h) => h.ready)));
    for (let i = users.length - 1; i >= 0; i--) {
      if (held.get(users[i]!)?.length === 1 && ready[i]) continue;
      await tabs.pageErrors(tabs.pages[i]!);
      await tabs.pages[i]!.close();
      tabs.pages.splice(i, 1);
      users.splice(i, 1);
      out.tabsReplaced++;
    }
    while (tabs.pages.length < n + 1) {
      const fresh = await tabs.open();
      const freshUser = tabs.uid('f');
      await tabs.login(fresh, APP_SEPARATE, freshUser, {});
      tabs.pages.push(fresh);
      users.push(freshUser);
    }

    let index = -1;
    for (let i = 0; i < tabs.pages.length && index < 0; i++) if (await tabs.isLeader(tabs.pages[i]!)) index = i;
    if (index < 0) throw new Error('dead leader: no tab holds the leader lock');
    if (index !== 0) out.leaderNotOldest++;
    const leader = tabs.pages.splice(index, 1)[0]!;
    const leaderUser = users.splice(index, 1)[0]!;
    const followers = tabs.pages.map((page, i) => ({ page, user: users[i]! }));

    const before = await tabs.server.instances(APP_SEPARATE, [leaderUser, ...users]);
    const notOne = [leaderUser, ...users].filter((u) => before.get(u)?.length !== 1);
    if (notOne.length > 0) throw new Error(`dead leader: not exactly one instance before the kill: ${JSON.stringify(notOne.map((u) => [u, before.get(u)]))}`);
    const marks = await Promise.all(followers.map((f) => tabs.history(f.page, APP_SEPARATE)));
    await tabs.pageErrors(leader);

    let at: number;
    if (how === 'close') {
      at = nodeNow();
      await leader.close();
    } else {
      const session = await tabs.ctx.newCDPSession(leader);
      at = nodeNow();
      session.send('Page.crash').catch(() => {});
    }
    let gone: number | null = null;
    while (gone === null && nodeNow() < at + timeoutMs) {
      const now = await tabs.server.online(APP_SEPARATE, [leaderUser]);
      if (now.get(leaderUser) === 0) gone = nodeNow();
      else await sleep(10);
    }
    if (gone === null) out.timedOut++;
    else out[how].push(gone - at);
    if (how === 'crash') await leader.close().catch(() => {});

    // The followers: back to connected on the new hub, same instances. Waits (bounded) for
    // the slowest one, not for a follower that already lost its session (SDK_NOT_READY or
    // KICKED_OUT: it does not come back by itself); what is wrong at the end is counted.
    const settled = (h: ChatHistory) => h.ready && h.net.at(-1)?.state === 'connected' && h.net.some((e) => e.at > at && e.state === 'connected');
    const kept = (u: string, now: Map<string, Array<{ instId: number; connected: boolean }>>) => {
      const list = now.get(u) ?? [];
      return list.length === 1 && list[0]!.connected && list[0]!.instId === before.get(u)![0]!.instId;
    };
    let histories: ChatHistory[] = [];
    let now = new Map<string, Array<{ instId: number; connected: boolean }>>();
    const until = nodeNow() + 15_000;
    for (;;) {
      histories = await Promise.all(followers.map((f) => tabs.history(f.page, APP_SEPARATE)));
      now = await tabs.server.instances(APP_SEPARATE, users);
      const lost = (i: number) => histories[i]!.kicks > marks[i]!.kicks || histories[i]!.notReady > marks[i]!.notReady;
      if (followers.every((f, i) => lost(i) || (settled(histories[i]!) && kept(f.user, now))) || nodeNow() > until) break;
      await sleep(50);
    }
    let handover = -Infinity;
    followers.forEach((f, i) => {
      const h = histories[i]!;
      const mark = marks[i]!;
      out.followersChecked++;
      if (!kept(f.user, now)) out.followersInstChanged++;
      if (!settled(h) || h.kicks > mark.kicks || h.notReady > mark.notReady) out.followersNotReady++;
      const back = h.net.find((e) => e.at > at && e.state === 'connected');
      if (back) handover = Math.max(handover, back.at - at);
    });
    if (Number.isFinite(handover)) out.handover.push(handover);
  }
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

// ------------------------------------------------------------------ entry

/** What {@link prepareBrowserBench} leaves for the run: the direct bundle's size, or why the run is skipped. */
export type Prepared = { directBundle: { raw: number; gzip: number } } | { skipped: string };

/**
 * Copy dist/ (snapshotDist) and build the direct bundle. `npm run bench` calls this right
 * after its build, before the server benchmark, so the browser part measures that build
 * even if someone rebuilds meanwhile; `runBrowserBench()` calls it itself otherwise.
 */
export async function prepareBrowserBench(): Promise<Prepared> {
  if (process.env.BENCH_BROWSER === '0') return { skipped: 'BENCH_BROWSER=0' };
  if (!existsSync(CHROMIUM)) return { skipped: `no Chromium at ${CHROMIUM}` };
  const needed = [...['tabchat.js', 'tabchat-worker.js'].map((f) => join(DIST, f)), BUILT_CLI];
  if (!needed.every((f) => existsSync(f))) return { skipped: `the builds are missing (${needed.join(', ')}): run "npm run build"` };
  snapshotDist();
  await buildDirectBundle();
  const bundle = readFileSync(join(BUILD_DIR, 'direct', 'tabchat-direct.js'));
  return { directBundle: { raw: bundle.length, gzip: gzipSync(bundle).length } };
}

export async function runBrowserBench(prepared?: Prepared): Promise<BrowserBenchResult> {
  const started = performance.now();
  const config = {
    tabs: TABS, modes: RUN_MODES, newTab: NEWTAB, warmup: WARMUP, settleMs: SETTLE_MS, attach: ATTACH, kicks: KICKS, fanout: FANOUT, dead: DEAD, deadLeader: DEAD_LEADER,
    resumeWindowMs: RESUME_WINDOW_MS,
  };
  const load0 = loadavg()[0]!;
  const ready = prepared ?? (await prepareBrowserBench());
  if ('skipped' in ready) {
    return {
      chromium: '', config, loadAvg: { start: load0, end: loadavg()[0]! }, directBundle: { raw: NaN, gzip: NaN }, heapBlankPage: NaN, runs: [], seconds: 0,
      skipped: ready.skipped,
    };
  }
  const { directBundle } = ready;
  const server = await startServer();
  let browser: Browser | null = null;
  const onSignal = () => {
    void (async () => {
      await browser?.close().catch(() => {});
      await server.stop();
      process.exit(130);
    })();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
    // Warm the REST path (first fetch opens the keep-alive connection).
    await server.online(APP_SEPARATE, ['warmup']);
    const blankCtx = await browser.newContext();
    const blank = await blankCtx.newPage();
    await blank.goto(`${server.httpUrl}/bench/blank.html`);
    const heapBlankPage = await pageHeap(blank);
    await blankCtx.close();

    const runs: ModeResult[] = [];
    for (const [i, n] of TABS.entries()) {
      // Rotate which mode goes first, so none always gets the colder browser.
      const order: Mode[] = RUN_MODES.map((_, j) => RUN_MODES[(i + j) % RUN_MODES.length]!);
      for (const mode of order) {
        const r = await runMode(browser, server, mode, n);
        if (r.failed) console.log(`browser bench: ${mode} ${n} tab(s) FAILED: ${r.failed}`);
        else console.log(
          `browser bench: ${mode} ${n} tab(s): sockets ${r.sockets}, new tab p50 ${r.newTabReady.p50.toFixed(1)} ms, ` +
            `kick p50 ${r.kick.p50.toFixed(1)} ms, fan-out p50 ${r.fanoutLast.p50.toFixed(1)} ms, dead p50 ${r.deadClose.p50.toFixed(0)} ms ` +
            (r.deadLeader ? `dead leader p50 close ${r.deadLeader.close.p50.toFixed(0)} / crash ${r.deadLeader.crash.p50.toFixed(0)} ms ` : '') +
            `(${r.seconds.toFixed(1)} s${r.errors.length ? `, ${r.errors.length} errors` : ''})`,
        );
        runs.push(r);
      }
    }
    return {
      chromium: browser.version(), config, loadAvg: { start: load0, end: loadavg()[0]! }, directBundle, heapBlankPage, runs, seconds: (performance.now() - started) / 1000,
    };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await browser?.close().catch(() => {});
    await server.stop();
  }
}

// ------------------------------------------------------------------ report

/** The design targets this benchmark reports on (it never fails on them). */
export const TARGETS = {
  socketsPerProfile: 1,
  /** Worker build: new tab login→SDK_READY p50, and at most this share of the direct baseline's p50 of the same row. */
  newTabP50Ms: 5,
  newTabVsDirect: 0.6,
  /** Leader transport, warm leader: new tab p50; "not growing": the most tabs' p50 at most this many times the fewest tabs'. */
  leaderNewTabP50Ms: 10,
  leaderNewTabGrowth: 1.25,
  kickP50Ms: 5,
  /** The kick in another tab while the first tab's JavaScript is paused (an earlier target, unchanged). */
  stalledKickP50Ms: 15,
  deadTabMs: 1000,
};

export interface TargetVerdict {
  target: string;
  met: boolean;
  detail: string;
}

const fmt = (v: number | null | undefined, d = 1) => (v === null || v === undefined || !Number.isFinite(v) ? 'n/a' : v.toFixed(d));

/**
 * Which targets the worker build met, at every measured tab count; then the same for the
 * leader-tab transport, plus its dead-leader row.
 */
export function browserTargets(r: BrowserBenchResult): TargetVerdict[] {
  return [...modeTargets(r, 'worker'), ...modeTargets(r, 'leader')];
}

function modeTargets(r: BrowserBenchResult, mode: 'worker' | 'leader'): TargetVerdict[] {
  const ws = r.runs.filter((x) => x.mode === mode);
  if (ws.length === 0) return [];
  const all = (ok: (x: ModeResult) => boolean) => ws.every((x) => !x.failed && ok(x));
  const list = (get: (x: ModeResult) => string) => ws.map((x) => `${x.tabs} tab${x.tabs === 1 ? '' : 's'}: ${get(x)}`).join(', ');
  const tag = mode === 'leader' ? ' (leader-tab transport)' : '';
  const pp = (s: Stats) => `${fmt(s.p50, 0)} / ${fmt(s.p99, 0)} ms`;
  /** The direct baseline of the same run and tab count. */
  const direct = (x: ModeResult) => r.runs.find((d) => d.mode === 'direct' && d.tabs === x.tabs && !d.failed);
  const vsDirect = (x: ModeResult, get: (m: ModeResult) => Stats) => {
    const d = direct(x);
    return d ? get(x).p50 / get(d).p50 : NaN;
  };
  const withDirect = (x: ModeResult, get: (m: ModeResult) => Stats) => {
    const d = direct(x);
    return `${fmt(get(x).p50)} ms (direct baseline ${d ? `${fmt(get(d).p50)} ms, ratio ${fmt(vsDirect(x, get), 2)}×` : 'n/a'})`;
  };
  const newTab: TargetVerdict = mode === 'worker'
    ? {
        target: `new-tab login→SDK_READY p50 < ${TARGETS.newTabP50Ms} ms (worker build, at ${ws.map((x) => x.tabs).join(', ')} tabs), at most ${TARGETS.newTabVsDirect}× the direct baseline's p50 of the same row`,
        met: all((x) => x.newTabReady.p50 < TARGETS.newTabP50Ms && vsDirect(x, (m) => m.newTabReady) <= TARGETS.newTabVsDirect),
        detail: list((x) => withDirect(x, (m) => m.newTabReady)),
      }
    : (() => {
        const first = ws[0]!;
        const last = ws[ws.length - 1]!;
        const growth = last.newTabReady.p50 / first.newTabReady.p50;
        return {
          target: `new-tab login→SDK_READY p50 < ${TARGETS.leaderNewTabP50Ms} ms with a warm leader${tag}, not growing with the tab count (${last.tabs} tabs at most ${TARGETS.leaderNewTabGrowth}× ${first.tabs})`,
          met: all((x) => x.newTabReady.p50 < TARGETS.leaderNewTabP50Ms) && growth <= TARGETS.leaderNewTabGrowth,
          detail: `${list((x) => withDirect(x, (m) => m.newTabReady))}; ${last.tabs} vs ${first.tabs} tab(s): ${fmt(growth, 2)}×`,
        };
      })();
  const verdicts: TargetVerdict[] = [
    {
      target: `1 socket per browser profile at any tab count${tag}`,
      met: all((x) => x.sockets === TARGETS.socketsPerProfile),
      detail: list((x) => `${fmt(x.sockets, 0)} socket(s)`),
    },
    newTab,
    {
      target: `REST kick→KICKED_OUT p50 < ${TARGETS.kickP50Ms} ms${tag}`,
      met: all((x) => x.kick.p50 < TARGETS.kickP50Ms),
      detail: list((x) => withDirect(x, (m) => m.kick)),
    },
    {
      target: `REST kick→KICKED_OUT p50 < ${TARGETS.stalledKickP50Ms} ms in another tab while the first tab${mode === 'leader' ? ' (the leader)' : ''} is paused${tag}`,
      met: all((x) => x.stalledKick.p50 < TARGETS.stalledKickP50Ms),
      detail: list((x) => `${fmt(x.stalledKick.p50)} / ${fmt(x.stalledKick.p99)} ms`),
    },
    {
      target: `dead ${mode === 'leader' ? 'follower ' : ''}tab released within 1 s (p50 of closed and of crashed tabs, none timed out; p50 / p99 shown)${tag}`,
      met: all((x) => x.deadTimedOut === 0 && x.deadClose.p50 < TARGETS.deadTabMs && x.deadCrash.p50 < TARGETS.deadTabMs),
      detail: list((x) => `close ${pp(x.deadClose)}, crash ${pp(x.deadCrash)}`),
    },
  ];
  if (mode === 'leader') {
    verdicts.push({
      target:
        'dead LEADER tab: its instance released within 1 s (p50 of closed and of crashed leader tabs, none timed out; p50 / p99 shown), ' +
        'every follower ready again on the new leader with the same instance',
      met: all((x) => !!x.deadLeader && x.deadLeader.timedOut === 0 && x.deadLeader.close.p50 < TARGETS.deadTabMs && x.deadLeader.crash.p50 < TARGETS.deadTabMs &&
        x.deadLeader.followersInstChanged === 0 && x.deadLeader.followersNotReady === 0),
      detail: list((x) => x.deadLeader
        ? `close ${pp(x.deadLeader.close)}, crash ${pp(x.deadLeader.crash)}, ${x.deadLeader.overTarget} of ${x.deadLeader.close.n + x.deadLeader.crash.n} over 1 s, ${x.deadLeader.timedOut} timed out, ` +
          `followers kept ${x.deadLeader.followersChecked - x.deadLeader.followersInstChanged} / ${x.deadLeader.followersChecked} instances, ${x.deadLeader.followersNotReady} not ready`
        : 'not measured'),
    });
  }
  return verdicts;
}

export function browserTables(r: BrowserBenchResult): string {
  if (r.skipped) return `Skipped: ${r.skipped}.`;
  const f = fmt;
  const kb = (v: number | null) => (v === null || !Number.isFinite(v) ? 'n/a' : (v / 1024).toFixed(0));
  const ratio = (w: number | null, d: number | null) => {
    if (w === null || d === null || !Number.isFinite(w) || !Number.isFinite(d) || d === 0) return 'n/a';
    const q = w / d;
    return q >= 0.1 ? `${q.toFixed(2)}×` : `${q.toPrecision(2)}× (1/${(1 / q).toFixed(0)})`;
  };
  const pp = (s: Stats) => `${f(s.p50)} / ${f(s.p99)}`;
  const pp0 = (s: Stats) => `${f(s.p50, 0)} / ${f(s.p99, 0)}`;
  const pairs = r.config.tabs.map((n) => ({
    n,
    w: r.runs.find((x) => x.tabs === n && x.mode === 'worker'),
    d: r.runs.find((x) => x.tabs === n && x.mode === 'direct'),
  })).filter((p): p is { n: number; w: ModeResult; d: ModeResult } => !!p.w && !!p.d);
  const c = r.config;
  const lines: string[] = [];
  const p = (...xs: string[]) => lines.push(...xs);

  p(
    `**worker** = the real \`dist/tabchat.js\` + \`dist/tabchat-worker.js\` (build ${r.runs.find((x) => x.workerBuild)?.workerBuild ?? 'n/a'}; one SharedWorker per profile holds the socket). ` +
      `**direct** (baseline, same run) = the same chat object (\`src/client/chat.ts\`) over \`SessionEngine\` + \`DirectBackend\` with the page's own WebSocket, ` +
      `one socket per tab, no worker (bench/pages/direct-entry.ts, built with vite at bench time: ${r.directBundle.gzip} B gzip, not shipped). ` +
      `**leader** (tables further down) = the same drop-in build with \`transport: 'leader'\` forced (bench/pages/leader.html): the tab that wins the Web Lock election starts a dedicated worker that runs the hub and holds the socket, the other tabs reach that hub over BroadcastChannel. ` +
      `Chromium ${r.chromium} headless; tabs = pages of one BrowserContext (a fresh context, hence a fresh worker or election, per row and mode); the built server CLI on this machine. ` +
      `Latencies: p50 / p99 in ms (p99 of ${c.newTab} / ${c.kicks} / ${c.fanout} samples is about their maximum); ratio = worker ÷ direct (of the p50). ` +
      `1-min load average ${f(r.loadAvg.start, 1)} at the start, ${f(r.loadAvg.end, 1)} at the end, at most ${f(Math.max(r.loadAvg.end, ...r.runs.map((x) => x.loadAvg)), 1)} after a row ` +
      `(2 cores, shared with other work: absolute times are noisy, compare within a row).`,
    '',
    '| tabs | server sockets worker | direct | ratio | new tab login→SDK_READY worker | direct | ratio | REST kick→KICKED_OUT worker | direct | ratio | user kick → last of N tabs worker | direct | ratio |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const { n, w, d } of pairs) {
    p(
      `| ${n} | ${f(w.sockets, 0)} | ${f(d.sockets, 0)} | ${ratio(w.sockets, d.sockets)} | ${pp(w.newTabReady)} | ${pp(d.newTabReady)} | ${ratio(w.newTabReady.p50, d.newTabReady.p50)} | ` +
        `${pp(w.kick)} | ${pp(d.kick)} | ${ratio(w.kick.p50, d.kick.p50)} | ${pp(w.fanoutLast)} | ${pp(d.fanoutLast)} | ${ratio(w.fanoutLast.p50, d.fanoutLast.p50)} |`,
    );
  }
  p(
    '',
    `- *sockets*: \`tabchat_connections\` from /metrics with all N tabs logged in (each tab its own instance, \`tabs: 'separate'\`).`,
    `- *new tab*: a page opened while the N tabs are logged in; its first call, \`create()\` + \`login()\` in one task ${c.settleMs > 0 ? `${c.settleMs} ms after load` : 'right after load'}; from just before \`login()\` to the SDK_READY handler (so it includes attaching the tab to the worker, or opening the tab's own socket). ${c.newTab} tabs per row after ${c.warmup} uncounted ones, fresh userIDs, each closed after.`,
    `- *REST kick*: Node timestamp just before the \`im_open_login_svc/kick\` POST → KICKED_OUT handler in the tab, round-robin over the N tabs (the kicked tab logs in again).`,
    `- *user kick*: one user logged in in all N tabs (worker: \`tabs: 'shared'\`, one server instance; direct: N instances of the user); REST kick → the LAST tab's KICKED_OUT.`,
    '',
    `Breakdown of the new-tab figure: *resolved* = \`login()\` → its promise resolved (SDK_READY follows on the next task, a MessageChannel message: src/core/next-task.ts). ` +
      `*attach* (worker only, ${c.attach} other new tabs per row) = \`TabChat.getWorkerState()\` as the page's first call: what is left of the attach the drop-in script started as it loaded (SharedWorker connect, tab Web Lock, \`register\`) + one command; then *login after attach* = \`login()\` → SDK_READY in that attached tab. ` +
      `*second chat* = right after the new-tab login, a second chat (another SDKAppID, fresh user) in the same tab: the same login from a warm page already attached to the worker (direct: the page opens a second socket).`,
    '',
    `New tab → \`getConversationList()\`: a page opened while the N tabs are logged in, logging in as the user of the first tab (who has one conversation; \`tabs: 'separate'\`, its own instance), then \`getConversationList()\` right after SDK_READY. ` +
      `*total* = just before \`login()\` → the list resolved; *list* = the \`getConversationList()\` call alone; *convList requests* = the server's \`tabchat_conversation_requests_total{op="convList"}\` per new tab (worker, leader: the hub's per-user cache answers, goal 0; direct: each tab fetches its own). ${c.newTab} tabs per row after ${c.warmup} uncounted ones.`,
    '',
    '| tabs | total worker | leader | direct | ratio worker/direct | list worker | leader | direct | ratio | convList requests per new tab worker | leader | direct |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const { n, w, d } of pairs) {
    const l = r.runs.find((x) => x.tabs === n && x.mode === 'leader');
    const req = (m: ModeResult | undefined) => (m && Number.isFinite(m.newTabList.requestsPerTab) ? f(m.newTabList.requestsPerTab, 2) : 'n/a');
    p(
      `| ${n} | ${pp(w.newTabList.total)} | ${l ? pp(l.newTabList.total) : 'n/a'} | ${pp(d.newTabList.total)} | ${ratio(w.newTabList.total.p50, d.newTabList.total.p50)} | ` +
        `${pp(w.newTabList.list)} | ${l ? pp(l.newTabList.list) : 'n/a'} | ${pp(d.newTabList.list)} | ${ratio(w.newTabList.list.p50, d.newTabList.list.p50)} | ${req(w)} | ${req(l)} | ${req(d)} |`,
    );
  }
  p(
    '',
    '| tabs | new tab login→resolved worker | direct | attach (worker) | login after attach (worker) | second chat login→SDK_READY worker | direct | ratio | user kick → first of N tabs worker | direct |',
    '|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const { n, w, d } of pairs) {
    p(
      `| ${n} | ${pp(w.newTabResolved)} | ${pp(d.newTabResolved)} | ${w.attach ? pp(w.attach) : 'n/a'} | ${w.loginAfterAttach ? pp(w.loginAfterAttach) : 'n/a'} | ` +
        `${pp(w.secondChatReady)} | ${pp(d.secondChatReady)} | ${ratio(w.secondChatReady.p50, d.secondChatReady.p50)} | ${pp(w.fanoutFirst)} | ${pp(d.fanoutFirst)} |`,
    );
  }
  p(
    '',
    `JS heap used after forced GC (CDP \`HeapProfiler.collectGarbage\` ×2 + \`Runtime.getHeapUsage\` on each page target; the SharedWorker's through a browser-level CDP session), KB. ` +
      `Median over the N tabs with all of them logged in; each tab has its own renderer process, hence its own V8 heap (renderer processes counted with CDP \`SystemInfo.getProcessInfo\`). A blank page of the same server: ${kb(r.heapBlankPage)} KB. ` +
      `*worker incl. share* = tab heap + SharedWorker heap ÷ N.`,
    '',
    '| tabs | heap per tab worker | direct | ratio | SharedWorker heap | worker incl. share | direct | ratio | all N tabs worker (+ SharedWorker) | direct | renderer processes worker / direct |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  );
  for (const { n, w, d } of pairs) {
    const incl = w.heapWorker === null ? NaN : w.heapPerTab + w.heapWorker / n;
    const sumW = w.heapTabs.reduce((a, b) => a + b, 0) + (w.heapWorker ?? NaN);
    const sumD = d.heapTabs.reduce((a, b) => a + b, 0);
    p(
      `| ${n} | ${kb(w.heapPerTab)} | ${kb(d.heapPerTab)} | ${ratio(w.heapPerTab, d.heapPerTab)} | ${kb(w.heapWorker)} | ${kb(incl)} | ${kb(d.heapPerTab)} | ${ratio(incl, d.heapPerTab)} | ` +
        `${kb(sumW)} | ${kb(sumD)} | ${w.rendererProcesses ?? 'n/a'} / ${d.rendererProcesses ?? 'n/a'} |`,
    );
  }
  p(
    '',
    `Dead tab → its instance leaves \`query_online_status\` (polled from Node every ~10 ms), ms, p50 / p99 over ${c.dead} closed and ${c.dead} crashed tabs per row (each its own user, opened while the N tabs are logged in): ` +
      `\`page.close()\` (pagehide fires; the worker build sends \`bye\`) and a renderer crash (CDP \`Page.crash\`: no pagehide; the worker learns it from the tab's Web Lock). ` +
      `The direct baseline has no liveness of its own: the server keeps a dropped socket's instance for its resume window (${c.resumeWindowMs} ms, the default).`,
    '',
    '| tabs | closed tab worker | direct | ratio | crashed tab worker | direct | ratio | timed out (worker / direct) |',
    '|---|---|---|---|---|---|---|---|',
  );
  for (const { n, w, d } of pairs) {
    p(
      `| ${n} | ${pp0(w.deadClose)} | ${pp0(d.deadClose)} | ${ratio(w.deadClose.p50, d.deadClose.p50)} | ${pp0(w.deadCrash)} | ${pp0(d.deadCrash)} | ${ratio(w.deadCrash.p50, d.deadCrash.p50)} | ${w.deadTimedOut} / ${d.deadTimedOut} |`,
    );
  }

  const trios = r.config.tabs.map((n) => ({
    n,
    l: r.runs.find((x) => x.tabs === n && x.mode === 'leader'),
    w: r.runs.find((x) => x.tabs === n && x.mode === 'worker'),
    d: r.runs.find((x) => x.tabs === n && x.mode === 'direct'),
  })).filter((t): t is { n: number; l: ModeResult; w: ModeResult | undefined; d: ModeResult } => !!t.l && !!t.d);
  if (trios.length > 0) {
    const ppw = (w: ModeResult | undefined, get: (x: ModeResult) => Stats) => (w ? pp(get(w)) : 'n/a');
    p(
      '',
      `**Leader-tab transport** (\`transport: 'leader'\`, the fallback for browsers without SharedWorker; build ${r.runs.find((x) => x.mode === 'leader' && x.workerBuild)?.workerBuild ?? 'n/a'}): ` +
        `the same rows, measured the same way; the first tab of each row wins the election (checked: it holds the lock \`tabchat:leader:<build>\`) and the other tabs are followers. ` +
        `The worker figures of the same run are repeated for comparison; ratio = leader ÷ direct (of the p50).`,
      '',
      '| tabs | server sockets leader | direct | ratio | new tab login→SDK_READY leader | worker | direct | ratio | REST kick→KICKED_OUT leader | worker | direct | ratio | user kick → last of N tabs leader | worker | direct | ratio |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const { n, l, w, d } of trios) {
      p(
        `| ${n} | ${f(l.sockets, 0)} | ${f(d.sockets, 0)} | ${ratio(l.sockets, d.sockets)} | ${pp(l.newTabReady)} | ${ppw(w, (x) => x.newTabReady)} | ${pp(d.newTabReady)} | ${ratio(l.newTabReady.p50, d.newTabReady.p50)} | ` +
          `${pp(l.kick)} | ${ppw(w, (x) => x.kick)} | ${pp(d.kick)} | ${ratio(l.kick.p50, d.kick.p50)} | ` +
          `${pp(l.fanoutLast)} | ${ppw(w, (x) => x.fanoutLast)} | ${pp(d.fanoutLast)} | ${ratio(l.fanoutLast.p50, d.fanoutLast.p50)} |`,
      );
    }
    p(
      '',
      `Breakdown, as for the worker: *attach* = \`create()\` + \`TabChat.getWorkerState()\` as the page's first calls (loading \`tabchat-worker.js\` into the page, joining the election, finding the leader, tab Web Lock, \`register\` + one command over BroadcastChannel). ` +
        `JS heap after forced GC, KB: the hub runs in the leader tab's dedicated worker, whose heap is shown apart (*hub worker*); *follower* = median over the other N − 1 tabs.`,
      '',
      '| tabs | attach (leader) | worker | login after attach (leader) | worker | second chat login→SDK_READY leader | direct | ratio | heap leader tab | hub worker | follower tab | direct tab | worker tab + SharedWorker |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const { n, l, w, d } of trios) {
      const statOr = (s: Stats | null | undefined) => (s ? pp(s) : 'n/a');
      p(
        `| ${n} | ${statOr(l.attach)} | ${statOr(w?.attach)} | ${statOr(l.loginAfterAttach)} | ${statOr(w?.loginAfterAttach)} | ` +
          `${pp(l.secondChatReady)} | ${pp(d.secondChatReady)} | ${ratio(l.secondChatReady.p50, d.secondChatReady.p50)} | ` +
          `${kb(l.heapTabs[0] ?? NaN)} | ${kb(l.heapWorker)} | ${kb(median(l.heapTabs.slice(1)))} | ${kb(d.heapPerTab)} | ${w ? `${kb(w.heapPerTab)} + ${kb(w.heapWorker)}` : 'n/a'} |`,
      );
    }
    p(
      '',
      `**A stalled leader**: REST kick → KICKED_OUT in a tab, measured as above, while the FIRST tab's JavaScript is paused (CDP \`Debugger.pause\`, what an \`alert()\`, a long task or a debugger does to a page): ` +
        `with the leader transport that tab is the leader, whose hub runs in its dedicated worker; with the SharedWorker it is the tab whose renderer started the worker; direct tabs share nothing. ` +
        `${c.kicks} kicks per row, round-robin over the other tabs (each kicked tab logs in again meanwhile; with 1 tab, one more tab is opened to be kicked). The unpaused figures of the same rows beside them.`,
      '',
      '| tabs | first tab paused: kick→KICKED_OUT leader | worker | direct | ratio leader ÷ worker | unpaused: leader | worker | direct |',
      '|---|---|---|---|---|---|---|---|',
    );
    for (const { n, l, w, d } of trios) {
      p(
        `| ${n} | ${pp(l.stalledKick)} | ${ppw(w, (x) => x.stalledKick)} | ${pp(d.stalledKick)} | ${w ? ratio(l.stalledKick.p50, w.stalledKick.p50) : 'n/a'} | ` +
          `${pp(l.kick)} | ${ppw(w, (x) => x.kick)} | ${pp(d.kick)} |`,
      );
    }
    p(
      '',
      `Dead tabs with the leader transport, ms, p50 / p99. *Follower tab*: ${c.dead} closed and ${c.dead} crashed tabs opened after the N tabs, as in the table above (the leader's hub learns it from \`bye\` or the tab's Web Lock). ` +
        `*Leader tab*: ${c.deadLeader} closed and ${c.deadLeader} crashed leaders per row, one at a time: first a new tab logs in (so N tabs remain and a follower is always there), then the leader (the oldest tab) dies → its own instance leaves \`query_online_status\`. ` +
        `The next tab in the lock queue becomes leader, starts a hub, resumes the followers' instances and releases the dead leader's (an orphan of the dead run). ` +
        `*handover* = kill → the last follower's NET_STATE_CHANGE back to \`connected\` (page clocks, closed and crashed together). ` +
        `*followers kept* = after each handover (waiting up to 15 s), followers whose instance is still the one it was before (same InstId, connected) and that are ready without having seen SDK_NOT_READY or KICKED_OUT, summed over the samples; ` +
        `a follower that lost its session is closed and replaced by a new tab before the next sample (*replaced*). *over 1 s* = dead leaders (closed and crashed) whose instance took longer than the target. ` +
        `Baseline: the direct tab closed / crashed (no hub: the server keeps the instance for its resume window).`,
      '',
      '| tabs | closed follower leader | direct | ratio | crashed follower leader | direct | ratio | closed LEADER tab | direct | ratio | crashed LEADER tab | direct | ratio | LEADER over 1 s | handover | followers kept (instance / ready) | replaced | timed out (followers / leaders / direct) |',
      '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const { n, l, d } of trios) {
      const dl = l.deadLeader;
      p(
        `| ${n} | ${pp0(l.deadClose)} | ${pp0(d.deadClose)} | ${ratio(l.deadClose.p50, d.deadClose.p50)} | ${pp0(l.deadCrash)} | ${pp0(d.deadCrash)} | ${ratio(l.deadCrash.p50, d.deadCrash.p50)} | ` +
          (dl
            ? `${pp0(dl.close)} | ${pp0(d.deadClose)} | ${ratio(dl.close.p50, d.deadClose.p50)} | ${pp0(dl.crash)} | ${pp0(d.deadCrash)} | ${ratio(dl.crash.p50, d.deadCrash.p50)} | ` +
              `${dl.overTarget} of ${dl.close.n + dl.crash.n} | ${pp0(dl.handover)} | ` +
              `${dl.followersChecked - dl.followersInstChanged} / ${dl.followersChecked - dl.followersNotReady} of ${dl.followersChecked} | ${dl.tabsReplaced} | `
            : 'n/a | | | n/a | | | n/a | n/a | n/a | n/a | ') +
          `${l.deadTimedOut} / ${dl?.timedOut ?? 'n/a'} / ${d.deadTimedOut} |`,
      );
    }
    const notOldest = trios.reduce((sum, t) => sum + (t.l.deadLeader?.leaderNotOldest ?? 0), 0);
    if (notOldest > 0) p('', `In ${notOldest} dead-leader sample(s) the leader was not the oldest tab.`);
  }
  p('', 'Targets (worker build, then the leader-tab transport, at every tab count; reported, never enforced):', '');
  for (const t of browserTargets(r)) p(`- ${t.target}: ${t.met ? '**met**' : '**NOT met**'} (${t.detail}).`);
  const failed = r.runs.filter((x) => x.failed);
  if (failed.length) {
    p('', 'Failed runs (their figures are n/a):', '');
    for (const x of failed) p(`- ${x.mode}, ${x.tabs} tab(s): ${x.failed}`);
  }
  const offs = r.runs.filter((x) => !x.failed).map((x) => x.clockOffset);
  const errs = r.runs.flatMap((x) => x.errors);
  p(
    '',
    `Clock: the pages timestamp with \`performance.timeOrigin + performance.now()\`; Node takes the same expression just before the REST call (both are Unix-epoch ms from this machine's clock). ` +
      `The page − Node offset, estimated NTP-style per page (the smallest of 15 \`page.evaluate\` round trips), had median ${f(median(offs.map((o) => o.median)), 2)} ms and largest |offset| ${f(Math.max(...offs.map((o) => o.maxAbs)), 2)} ms ` +
      `(smallest round trip ${f(Math.min(...offs.map((o) => o.minRtt)), 2)} ms); it is not subtracted. ` +
      `Console / chat / worker errors during the run: ${errs.length}${errs.length ? ` (first: ${errs[0]!.slice(0, 200)})` : ''}. The browser part took ${f(r.seconds, 0)} s.`,
  );
  return lines.join('\n');
}

// `tsx bench/browser-bench.ts` runs only this benchmark.
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const r = await runBrowserBench();
  console.log(JSON.stringify(r, null, 2));
  console.log(browserTables(r));
}
