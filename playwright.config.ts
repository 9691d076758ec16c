/**
 * Playwright e2e: real tabs (pages of one BrowserContext) against the real chat server (the
 * built CLI, started by e2e/fixtures.ts), in Debian Chromium. `npx playwright install` does
 * not work on these machines, so the system Chromium is used. Run `npm run build` first.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from '@playwright/test';

const here = dirname(fileURLToPath(import.meta.url));

/** e2e/soak.spec.ts runs only when TABCHAT_SOAK_MS is set (scripts/test.mjs sets it in CI). */
const SOAK_IGNORE = process.env.TABCHAT_SOAK_MS ? [] : ['**/soak.spec.ts'];

/**
 * The coordinator specs, run again in stock Firefox ESR (Debian's firefox-esr, not a patched
 * Playwright build) by the `firefox` project: Playwright drives it over WebDriver BiDi
 * (`channel: 'moz-firefox'`) through e2e/bin/firefox-bidi.mjs, which starts the real browser
 * (FIREFOX_PATH, default /usr/bin/firefox-esr) and answers the few emulation commands this
 * Firefox lacks. docs/architecture.md "Browser engines" says what differs between the engines.
 */
const FIREFOX_SPECS = ['login.spec.ts', 'multitab.spec.ts', 'shared.spec.ts', 'messages.spec.ts', 'restart.spec.ts', 'worker.spec.ts', 'skew.spec.ts', 'compat.spec.ts', 'hidden.spec.ts'];

export default defineConfig({
  testDir: 'e2e',
  testMatch: '**/*.spec.ts',
  timeout: 60_000,
  expect: { timeout: 10_000 },
  fullyParallel: false,
  workers: process.env.CI_E2E_WORKERS ? Number(process.env.CI_E2E_WORKERS) : 2,
  retries: 0,
  forbidOnly: true,
  reporter: [['list']],
  use: {
    browserName: 'chromium',
    headless: true,
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    },
    trace: 'retain-on-failure',
  },
  projects: [
    // The common path: one SharedWorker per browser profile.
    { name: 'sharedworker', testIgnore: SOAK_IGNORE },
    {
      // The fallback path: SharedWorker deleted by an init script in every context the tests'
      // fixtures create (e2e/fixtures.ts `noSharedWorker`), so a leader tab hosts the hub (in
      // its dedicated worker). The coordinator specs and the stall/freeze spec run again here. Not here: worker.spec.ts and the tests tagged
      // @sharedworker-only (sockets per context in multitab.spec.ts; worker kill and "next
      // worker of the profile" in messages.spec.ts), which drive the SharedWorker itself
      // through CDP `shared_worker` targets — their leader counterparts are in
      // leader.spec.ts —; specs whose contexts are not made by the fixtures (demo, cluster);
      // leader.spec.ts, which deletes SharedWorker itself and need not run twice; and the soak
      // (CI runs it once, on the SharedWorker path).
      name: 'leader',
      use: { noSharedWorker: true } as Record<string, unknown>,
      testMatch: ['login.spec.ts', 'multitab.spec.ts', 'shared.spec.ts', 'messages.spec.ts', 'conversations.spec.ts', 'restart.spec.ts', 'skew.spec.ts', 'compat.spec.ts', 'stall.spec.ts'],
      testIgnore: SOAK_IGNORE,
      grepInvert: /@sharedworker-only/,
    },
    {
      // Stock Firefox, SharedWorker path. CDP-only tests carry the @chromium-only tag and each
      // has a Firefox counterpart that checks the same property without CDP.
      name: 'firefox',
      testMatch: FIREFOX_SPECS,
      // Opening a page and every evaluate cost more over BiDi than over CDP (a new tab took
      // 2-6 s on the loaded 2-core CI machine): twice the Chromium budget.
      timeout: 120_000,
      grepInvert: /@chromium-only/,
      use: {
        browserName: 'firefox',
        channel: 'moz-firefox',
        launchOptions: {
          executablePath: join(here, 'e2e', 'bin', 'firefox-bidi.mjs'),
          // Firefox's own background-tab timer throttling, which Playwright's profile turns off
          // (e2e/hidden.spec.ts needs a hidden tab throttled as users' tabs are).
          firefoxUserPrefs: {
            'dom.min_background_timeout_value': 1000,
            'dom.min_background_timeout_value_without_budget_throttling': 1000,
            'dom.timeout.enable_budget_timer_throttling': true,
          },
        },
      },
    },
  ],
});
