/**
 * A tab in the background gets its events when they happen, not when a throttled timer lets
 * it: SDK_READY (one task after the login promise resolved, the reference's order),
 * MESSAGE_RECEIVED and KICKED_OUT. Browsers hold a hidden tab's timers back (Firefox: at
 * least 1 s each; Chrome: aligned to 1 s, once a minute after five minutes hidden); the SDK
 * delivers events on a MessageChannel task instead (src/core/next-task.ts), which no
 * throttling delays.
 *
 * The hidden tab is real: Firefox opens a link Ctrl+clicked in a visible tab as a background
 * tab of the same window (`visibilityState` "hidden"). The `firefox` project gives Firefox its
 * stock timer throttling back (Playwright's profile turns it off), and each test first checks
 * that the tab's timers really are held back: otherwise it would prove nothing.
 *
 * The bound, THROTTLE_MS, is the throttle's: a delivery that waited for a throttled timer
 * arrives at least that late. It is not a performance target (bench/ measures latency).
 *
 * Chromium: skipped. Headless Chromium shows every page as visible and runs its timers
 * unthrottled, a background tab included (a Ctrl+click, or a target created with
 * `background: true`, measured on the test machine), and so did a headed Chromium under
 * Xvfb driven by Playwright (its Ctrl+clicked tab reported "visible", throttling flags
 * removed); a page made to look hidden by script (e2e/page-lifecycle.ts `hidePage`) is not
 * throttled either, so the test could not fail there.
 */
import type { Page } from '@playwright/test';
import { APP, expect, loginReady, readyTab, sdkStates, test, watchPageErrors, type Tab } from './fixtures.js';

/** Firefox's minimum delay of a timer in a background tab (dom.min_background_timeout_value). */
const THROTTLE_MS = 1000;

test.skip(({ browserName }) => browserName !== 'firefox', 'needs a real background tab with throttled timers: headless Chromium keeps every page visible and unthrottled');

/**
 * Open the harness in a background tab: Ctrl+click, in the visible tab `opener`, a link to it.
 * Checks the new tab is hidden while `opener` stays visible.
 */
async function openBackgroundTab(opener: Tab, problems: string[]): Promise<Tab> {
  await opener.page.evaluate(() => {
    const link = document.createElement('a');
    link.id = 'open-background';
    link.href = '/e2e/index.html';
    link.target = '_blank';
    link.textContent = 'open in the background';
    document.body.append(link);
  });
  const [page] = await Promise.all([
    opener.page.context().waitForEvent('page'),
    opener.page.click('#open-background', { modifiers: ['Control'] }),
  ]);
  watchPageErrors(page, problems);
  await page.waitForFunction(() => typeof (window as any).h === 'object');
  expect(await page.evaluate(() => document.visibilityState), 'the Ctrl+clicked tab is in the background').toBe('hidden');
  expect(await opener.page.evaluate(() => document.visibilityState), 'the opener stays in front').toBe('visible');
  return harnessTab(page);
}

function harnessTab(page: Page): Tab {
  return {
    page,
    h: (method, ...args) => page.evaluate(([m, a]) => (window as any).h[m as string](...(a as unknown[])), [method, args] as const),
    names: (sdkAppId) => page.evaluate((id) => (window as any).h.names(id), sdkAppId),
    events: (sdkAppId) => page.evaluate((id) => (window as any).h.events.filter((e: any) => e.sdkAppId === id), sdkAppId),
  };
}

/**
 * The delays of three chained `setTimeout(0)` in `page`: the throttle, seen from the page. The
 * tests require the slowest at THROTTLE_MS or more, else the tab is not throttled and the
 * test would prove nothing.
 */
async function timerDelays(page: Page): Promise<number[]> {
  return page.evaluate(async () => {
    const delays: number[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      await new Promise((resolve) => setTimeout(resolve, 0));
      delays.push(Math.round(performance.now() - started));
    }
    return delays;
  });
}

async function expectThrottled(page: Page): Promise<void> {
  const delays = await timerDelays(page);
  expect(Math.max(...delays), `timers of the background tab are throttled (delays ${delays.join(', ')} ms)`).toBeGreaterThanOrEqual(THROTTLE_MS * 0.95);
}

test('a background tab: its login resolves, then SDK_READY comes on the next task, not after the timer throttle', async ({ openTab, uid }) => {
  const problems: string[] = [];
  const opener = await openTab();
  const hidden = await openBackgroundTab(opener, problems);
  await expectThrottled(hidden.page);

  expect(await hidden.h('create', { SDKAppID: APP.many })).toEqual({ ok: true, value: 'new' });
  const userID = uid();
  const userSig = await hidden.h<string>('sig', APP.many, userID);
  // In the page: the order of the login's continuation and SDK_READY, and the time between.
  const result = await hidden.page.evaluate(async ({ sdkAppId, userSig: sig, userID }) => {
    const TabChat = (window as any).TabChat;
    const chat = TabChat.create({ SDKAppID: sdkAppId });
    const order: string[] = [];
    let resolvedAt = 0;
    let readyAt = 0;
    const ready = new Promise<void>((resolve) => {
      chat.on(TabChat.EVENT.SDK_READY, () => {
        readyAt = performance.now();
        order.push('SDK_READY');
        resolve();
      });
    });
    await chat.login({ userID, userSig: sig });
    resolvedAt = performance.now();
    order.push('login resolved');
    await ready;
    return { order, gapMs: readyAt - resolvedAt, visibility: document.visibilityState };
  }, { sdkAppId: APP.many, userSig, userID });

  expect(result.visibility).toBe('hidden');
  expect(result.order).toEqual(['login resolved', 'SDK_READY']);
  expect(result.gapMs, `SDK_READY ${Math.round(result.gapMs)} ms after the login resolved`).toBeLessThan(THROTTLE_MS);
  // Still throttled afterwards: the tab stayed in the background all along.
  await expectThrottled(hidden.page);
  expect(problems).toEqual([]);
});

test('a background tab gets MESSAGE_RECEIVED and KICKED_OUT as they happen, in order', async ({ openTab, newContext, server, uid }) => {
  const problems: string[] = [];
  const alice = uid('alice');
  const bob = uid('bob');
  const opener = await openTab();
  const hidden = await openBackgroundTab(opener, problems);
  await expectThrottled(hidden.page);
  await loginReady(hidden, APP.limit1, alice);

  const other = await newContext();
  try {
    // A message from bob (another profile, a visible tab) to the background tab.
    const sender = await readyTab(openTab, APP.limit1, bob, { ctx: other });
    const sent = await sender.h('send', APP.limit1, { to: alice, text: 'to the background' });
    expect(sent.ok, JSON.stringify(sent)).toBe(true);
    const sentAt = Date.now();
    await expect.poll(async () => (await hidden.events(APP.limit1)).filter((e) => e.name === 'onMessageReceived').length).toBe(1);
    const message = (await hidden.events(APP.limit1)).find((e) => e.name === 'onMessageReceived')!;
    expect(message.data.map((m: any) => m.payload.text)).toEqual(['to the background']);
    expect(message.at - sentAt, 'MESSAGE_RECEIVED after the send resolved').toBeLessThan(THROTTLE_MS);

    // A second login of alice (limit 1) in a visible tab of the opener's window kicks the background tab.
    const kicker = await openTab();
    expect(await kicker.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
    const login = await kicker.h('login', APP.limit1, alice);
    expect(login.ok, JSON.stringify(login)).toBe(true);
    const loggedInAt = Date.now();
    await expect.poll(async () => (await sdkStates(hidden, APP.limit1)).filter((name) => name !== 'onMessageReceived' && !/conversation|unread/i.test(name)))
      .toEqual(['sdkStateReady', 'kickedOut:multipleAccount', 'sdkStateNotReady']);
    const kicked = (await hidden.events(APP.limit1)).find((e) => e.name === 'kickedOut')!;
    expect(kicked.at - loggedInAt, 'KICKED_OUT after the other login resolved').toBeLessThan(THROTTLE_MS);
    expect(await hidden.page.evaluate(() => document.visibilityState)).toBe('hidden');
    expect((await server.onlineInstances(APP.limit1, alice)).length).toBe(1);
  } finally {
    await other.close();
  }
  expect(problems).toEqual([]);
});
