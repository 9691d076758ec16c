/**
 * Playwright e2e: real tabs (pages of one BrowserContext) against the real chat server (the
 * built CLI, started by e2e/fixtures.ts), in Debian Chromium. `npx playwright install` does
 * not work on these machines, so the system Chromium is used. Run `npm run build` first.
 */
import { defineConfig } from '@playwright/test';

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
});
