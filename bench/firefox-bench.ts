/**
 * Firefox rows of the browser benchmark: the same two figures as the Chromium tables, by the
 * same method (bench/browser-bench.ts `Tabs`, the same bench pages, server and dist snapshot),
 * in Debian's stock Firefox ESR driven by Playwright over WebDriver BiDi (e2e/bin/
 * firefox-bidi.mjs, as the e2e `firefox` project), each beside its direct baseline measured
 * in the same Firefox in the same run:
 *
 *  - new-tab login → SDK_READY while N tabs are logged in (warm worker; the page's first
 *    call, right after load);
 *  - REST kick → KICKED_OUT in the kicked tab, round-robin over the N tabs (the kicked tab
 *    logs in again).
 *
 * Modes: worker (the drop-in build, one SharedWorker) and direct (one WebSocket per tab).
 * Firefox has no CDP, so the heap, crash and paused-tab rows stay Chromium's.
 * Env: BENCH_FIREFOX=0 skips it, FIREFOX_PATH (default /usr/bin/firefox-esr),
 * BENCH_FIREFOX_TABS (default 5), BENCH_FIREFOX_NEWTAB (20, after 2 uncounted),
 * BENCH_FIREFOX_KICKS (20). Needs `prepareBrowserBench()` first (the dist snapshot).
 */
import { existsSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { firefox, type Browser } from '@playwright/test';
import { APP_SEPARATE, Tabs, startServer, waitFor, type Server } from './browser-bench.js';
import { stats, type Stats } from './server-bench.js';

const here = dirname(fileURLToPath(import.meta.url));
const SHIM = join(here, '..', 'e2e', 'bin', 'firefox-bidi.mjs');
const FIREFOX = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
const envInt = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isFinite(v) && v >= 0 ? Math.floor(v) : dflt;
};
const TABS = Math.max(1, envInt('BENCH_FIREFOX_TABS', 5));
const NEWTAB = envInt('BENCH_FIREFOX_NEWTAB', 20);
const WARMUP = 2;
const KICKS = envInt('BENCH_FIREFOX_KICKS', 20);
const nodeNow = () => performance.timeOrigin + performance.now();

type FirefoxMode = 'worker' | 'direct';

export interface FirefoxRow {
  mode: FirefoxMode;
  tabs: number;
  /** Server sockets with the N tabs logged in. */
  sockets: number;
  newTabReady: Stats;
  kick: Stats;
  loadAvg: number;
  seconds: number;
  errors: string[];
  failed?: string;
}

export interface FirefoxBenchResult {
  firefox: string;
  config: { tabs: number; newTab: number; warmup: number; kicks: number };
  loadAvg: { start: number; end: number };
  rows: FirefoxRow[];
  seconds: number;
  skipped?: string;
}

async function runRow(browser: Browser, server: Server, mode: FirefoxMode): Promise<FirefoxRow> {
  const started = performance.now();
  await waitFor('0 server connections before the row', () => server.connections(), (c) => c === 0, 20_000, 100);
  const ctx = await browser.newContext();
  const tabs = new Tabs(mode, ctx, server);
  const empty = stats([]);
  try {
    const users: string[] = [];
    for (let i = 0; i < TABS; i++) {
      const page = await tabs.open();
      tabs.pages.push(page);
      users.push(tabs.uid(`ff${i}`));
      await tabs.login(page, APP_SEPARATE, users[i]!, {});
    }
    const sockets = await server.connections();

    const kickSamples: number[] = [];
    for (let k = 0; k < KICKS; k++) {
      const i = k % TABS;
      const page = tabs.pages[i]!;
      let t0 = NaN;
      await server.rest(APP_SEPARATE, 'im_open_login_svc/kick', { UserID: users[i] }, (at) => (t0 = at));
      const at = await tabs.kicked(page, APP_SEPARATE);
      kickSamples.push(at - t0);
      await tabs.login(page, APP_SEPARATE, users[i]!);
    }

    const newReady: number[] = [];
    for (let k = 0; k < WARMUP + NEWTAB; k++) {
      const page = await tabs.open();
      const t = await tabs.login(page, APP_SEPARATE, tabs.uid('ffnew'), {});
      if (k >= WARMUP) newReady.push(t.ready - t.t0);
      await tabs.pageErrors(page);
      await page.close();
    }
    for (const page of tabs.pages) await tabs.pageErrors(page);
    return { mode, tabs: TABS, sockets, newTabReady: stats(newReady), kick: stats(kickSamples), loadAvg: loadavg()[0]!, seconds: (performance.now() - started) / 1000, errors: tabs.errors };
  } catch (err) {
    return {
      mode, tabs: TABS, sockets: NaN, newTabReady: empty, kick: empty, loadAvg: loadavg()[0]!, seconds: (performance.now() - started) / 1000, errors: tabs.errors,
      failed: err instanceof Error ? err.message : String(err),
    };
  } finally {
    await ctx.close().catch(() => {});
  }
}

export async function runFirefoxBench(): Promise<FirefoxBenchResult> {
  const started = nodeNow();
  const config = { tabs: TABS, newTab: NEWTAB, warmup: WARMUP, kicks: KICKS };
  const load0 = loadavg()[0]!;
  const skip = (why: string): FirefoxBenchResult => ({ firefox: '', config, loadAvg: { start: load0, end: loadavg()[0]! }, rows: [], seconds: 0, skipped: why });
  if (process.env.BENCH_FIREFOX === '0') return skip('BENCH_FIREFOX=0');
  if (!existsSync(FIREFOX)) return skip(`no Firefox at ${FIREFOX}`);
  const server = await startServer();
  let browser: Browser | null = null;
  try {
    browser = await firefox.launch({ channel: 'moz-firefox', executablePath: SHIM, headless: true, env: { ...process.env, FIREFOX_PATH: FIREFOX } });
    const rows: FirefoxRow[] = [];
    // Worker first: the colder browser goes to the product, not to the baseline.
    for (const mode of ['worker', 'direct'] as const) {
      const row = await runRow(browser, server, mode);
      console.log(
        row.failed
          ? `firefox bench: ${mode} FAILED: ${row.failed}`
          : `firefox bench: ${mode} ${row.tabs} tabs: sockets ${row.sockets}, new tab p50 ${row.newTabReady.p50.toFixed(1)} ms, kick p50 ${row.kick.p50.toFixed(1)} ms (${row.seconds.toFixed(1)} s)`,
      );
      rows.push(row);
    }
    return { firefox: browser.version(), config, loadAvg: { start: load0, end: loadavg()[0]! }, rows, seconds: (nodeNow() - started) / 1000 };
  } finally {
    await browser?.close().catch(() => {});
    await server.stop();
  }
}

/** The Firefox table (markdown), worker beside its direct baseline. */
export function firefoxTable(r: FirefoxBenchResult | { error: string }): string {
  if ('error' in r) return `The Firefox benchmark failed: ${r.error.split('\n')[0]}`;
  if (r.skipped) return `Not measured in this run (${r.skipped}).`;
  const f = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
  const ratio = (w: number, d: number) => (Number.isFinite(w) && Number.isFinite(d) && d > 0 ? `${(w / d).toFixed(2)}×` : 'n/a');
  const w = r.rows.find((x) => x.mode === 'worker');
  const d = r.rows.find((x) => x.mode === 'direct');
  const pp = (s: Stats | undefined) => (s ? `${f(s.p50)} / ${f(s.p99)}` : 'n/a');
  const c = r.config;
  const lines = [
    `Firefox ${r.firefox} (Debian firefox-esr, headless) driven by Playwright over WebDriver BiDi (e2e/bin/firefox-bidi.mjs); the same bench pages, server and dist snapshot as the Chromium rows, ` +
      `one fresh BrowserContext per row, ${c.tabs} tabs logged in. new tab: ${c.newTab} new tabs after ${c.warmup} uncounted, login right after load; REST kick: ${c.kicks} kicks round-robin over the ${c.tabs} tabs. ` +
      `p50 / p99 in ms; ratio = worker ÷ direct (of the p50). 1-min load average ${f(r.loadAvg.start)} at the start, ${f(r.loadAvg.end)} at the end (2 shared cores: compare within the row).`,
    ``,
    '| tabs | server sockets worker | direct | new tab login→SDK_READY worker | direct | ratio | REST kick→KICKED_OUT worker | direct | ratio |',
    '|---|---|---|---|---|---|---|---|---|',
    `| ${c.tabs} | ${w?.failed ? 'failed' : (w?.sockets ?? 'n/a')} | ${d?.failed ? 'failed' : (d?.sockets ?? 'n/a')} | ${pp(w?.newTabReady)} | ${pp(d?.newTabReady)} | ${ratio(w?.newTabReady.p50 ?? NaN, d?.newTabReady.p50 ?? NaN)} | ${pp(w?.kick)} | ${pp(d?.kick)} | ${ratio(w?.kick.p50 ?? NaN, d?.kick.p50 ?? NaN)} |`,
  ];
  for (const row of r.rows) {
    if (row.failed) lines.push('', `- ${row.mode}: failed (${row.failed})`);
    if (row.errors.length) lines.push('', `- ${row.mode}: ${row.errors.length} page errors, first: ${row.errors[0]}`);
  }
  return lines.join('\n');
}
