/**
 * The demo page (demo/, served at `/`), driven the way a newcomer uses it: against a server
 * started like `npm start` (the CLI with `--demo`, i.e. config/demo.json, on a free port),
 * clicking the page's own buttons, opening tabs with its "Open another tab" button: the
 * limit-1 kick, the README's four clicks (limit 2, a new login kicks the oldest live one) with the
 * labels the README promises at each step, a REST kick, a text message between two browsers,
 * and the accessibility basics at phone width.
 * Screenshots of every state go to this test's folder under test-results/ (gitignored,
 * `testInfo.outputPath()`). Any console error or page error in any tab fails the test.
 */
import type { Page, TestInfo } from '@playwright/test';
import { test as base, expect, startDemoServer, watchConsoleErrors, type DemoServer } from './fixtures.js';

const test = base.extend<{ demo: DemoServer; consoleErrors: string[] }>({
  demo: async ({}, use) => {
    // One server per test: the admin panel changes login settings, which live in its memory.
    const { server, stop } = await startDemoServer();
    await use(server);
    await stop();
  },
  consoleErrors: [
    // Depends on `demo` so the server outlives this teardown: the pages are closed while it
    // still answers (else their polling logs ERR_CONNECTION_REFUSED once it stops).
    async ({ context, demo }, use) => {
      void demo;
      const problems = watchConsoleErrors(context);
      await use(problems);
      for (const page of context.pages()) await page.close();
      expect(problems, 'console errors / page errors in the demo tabs').toEqual([]);
    },
    { auto: true },
  ],
});

async function shot(page: Page, testInfo: TestInfo, name: string): Promise<void> {
  const path = testInfo.outputPath(`${name}.png`);
  await page.screenshot({ path, fullPage: true });
}

async function expectReady(tab: Page): Promise<void> {
  await expect(tab.locator('#ready')).toHaveText('ready');
  await expect(tab.locator('#reason-line')).toBeHidden();
}

async function expectNotReady(tab: Page, code: string, text: string | RegExp): Promise<void> {
  await expect(tab.locator('#ready')).toHaveText('not ready');
  await expect(tab.locator('#reason-code')).toHaveText(code);
  await expect(tab.locator('#reason-text')).toContainText(text);
}

/** Click the page's "Open another tab" button; the new tab logs in as the same user by itself. */
async function openAnotherTab(tab: Page): Promise<Page> {
  const [popup] = await Promise.all([tab.waitForEvent('popup'), tab.getByRole('button', { name: 'Open another tab' }).click()]);
  await popup.waitForLoadState('domcontentloaded');
  return popup;
}

async function onlineInstances(demo: DemoServer, userID: string): Promise<Array<{ InstId: number; Platform: string; LoginOrder: number }>> {
  const body = await demo.rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
  expect(body.ErrorCode, JSON.stringify(body)).toBe(0);
  return body.QueryResult[0].Detail;
}

test('two tabs kick with the default limit; limit 2 in Admin; a new login (a4) kicks the oldest live one (a2)', async ({ page, demo }, testInfo) => {
  test.setTimeout(120_000); // three tabs, eight full-page screenshots: slow on a busy 2-core machine
  // Tab A: the page as `npm start` serves it; log in as the preset user.
  const tabA = page;
  await tabA.goto(`${demo.httpUrl}/`);
  await expect(tabA.getByRole('heading', { level: 1, name: 'tabchat demo' })).toBeVisible();
  await expect(tabA.getByRole('note').first()).toContainText('devUserSig');
  await expectNotReady(tabA, '2024', 'not logged in');
  await expect(tabA.getByLabel('User ID', { exact: true })).toHaveValue('alice');
  await tabA.getByRole('button', { name: 'Log in', exact: true }).click();
  await expectReady(tabA);
  await expect(tabA.locator('#net')).toHaveText('connected');
  await expect(tabA.locator('#login-user')).toHaveText('alice');
  await expect(tabA.locator('#inst-id')).toHaveText(/^\d+$/);
  const firstId = Number(await tabA.locator('#inst-id').textContent());
  expect((await onlineInstances(demo, 'alice')).map((d) => d.InstId)).toEqual([firstId]);
  await expect(tabA.locator('#log')).toContainText('NET_STATE_CHANGE connecting');
  await expect(tabA.locator('#log')).toContainText('NET_STATE_CHANGE connected');
  await expect(tabA.locator('#log')).toContainText('SDK_READY');
  await expect(tabA.locator('#instances tr.mine')).toContainText(String(firstId));
  await expect(tabA.locator('#instances tr.mine')).toContainText('Web');
  await expect(tabA.locator('#order-tag')).toHaveText('a1');
  await expect(tabA.locator('#server-time')).toHaveText(/^\d{4}-\d\d-\d\d /);
  await shot(tabA, testInfo, '01-tabA-ready');

  // Tab B via "Open another tab": limit 1 per platform, so B's login kicks A.
  const tabB = await openAnotherTab(tabA);
  await expectReady(tabB);
  await expect(tabB.locator('#net')).toHaveText('connected');
  // README step 2: the new tab is the user's second login, a2 (the server's LoginOrder).
  await expect(tabB.locator('#order-tag')).toHaveText('a2');
  await expectNotReady(tabA, '3003', 'multipleAccount');
  await expect(tabA.locator('#reason-text')).toContainText('this tab was a1');
  await expect(tabA.locator('#log')).toContainText('KICKED_OUT type=multipleAccount');
  await expect(tabA.locator('#log')).toContainText('SDK_NOT_READY reason 3003');
  await expect(tabA.locator('#inst-id')).toHaveText('—');
  await expect(tabA.getByRole('button', { name: 'Send' })).toBeDisabled();
  // One instance left on the server, and both tabs share one WebSocket.
  expect(await onlineInstances(demo, 'alice')).toHaveLength(1);
  await expect(tabB.locator('#instances tr')).toHaveCount(1);
  await expect(tabB.locator('#stat-conns')).toHaveText('1');
  await expect(tabB.locator('#stat-settings')).toContainText('at most 1 per platform');
  await expect(tabB.locator('#worker')).toContainText('1 WebSocket shared by 2 tabs');
  await shot(tabA, testInfo, '02-tabA-kicked-by-tabB');
  await shot(tabB, testInfo, '03-tabB-ready');

  // The four clicks of the README: "2", "Apply", "Log in" in A, "Open another tab".
  await tabB.locator('#settings-form').getByText('2', { exact: true }).click(); // 1
  await expect(tabB.getByRole('radio', { name: '2' })).toBeChecked();
  await tabB.getByRole('button', { name: 'Apply' }).click(); // 2
  await expect(tabB.locator('#settings-result')).toContainText('at most 2 per platform');
  await expect(tabA.locator('#stat-settings')).toContainText('at most 2 per platform');
  expect((await demo.rest('tabchat_admin/get_login_settings', {})).MaxInstancesPerPlatform).toBe(2);
  await shot(tabB, testInfo, '04-tabB-admin-limit-2');

  await tabA.getByRole('button', { name: 'Log in', exact: true }).click(); // 3
  await expectReady(tabA);
  await expectReady(tabB);
  // README click 3: A is ready again as a3; B stays a2, the oldest live login.
  await expect(tabB.locator('#order-tag')).toHaveText('a2');
  await expect(tabA.locator('#order-tag')).toHaveText('a3');
  await expect(tabB.locator('#order')).toContainText('the next login over the limit kicks this tab');
  await expect(tabA.locator('#instances tr')).toHaveCount(2);
  await shot(tabA, testInfo, '05-tabA-and-tabB-ready-limit-2');

  const tabC = await openAnotherTab(tabA); // 4
  await expectReady(tabC);
  // README click 4: the new tab C is a4; the oldest live login (a2, tab B) is kicked; A stays a3.
  await expectNotReady(tabB, '3003', 'multipleAccount');
  await expect(tabB.locator('#reason-text')).toContainText('this tab was a2');
  await expect(tabB.locator('#log')).toContainText('KICKED_OUT type=multipleAccount');
  await expectReady(tabA);
  await expect(tabA.locator('#order-tag')).toHaveText('a3');
  await expect(tabC.locator('#order-tag')).toHaveText('a4');
  const online = await onlineInstances(demo, 'alice');
  expect(online.map((d) => d.LoginOrder)).toEqual([3, 4]);
  await expect(tabC.locator('#instances tr')).toHaveCount(2);
  await expect(tabC.locator('#instances tr.mine')).toBeVisible();
  await expect(tabC.locator('#stat-conns')).toHaveText('1');
  await expect(tabC.locator('#worker')).toContainText('1 WebSocket shared by 3 tabs');
  await shot(tabC, testInfo, '06-tabC-ready-as-a4');
  await shot(tabB, testInfo, '07-tabB-a2-kicked-by-tabC');

  // Admin REST kick from tab C: every instance of alice goes, with REST_API_Kick.
  await tabC.getByRole('button', { name: 'Kick', exact: true }).click();
  await expectNotReady(tabA, '3006', 'REST_API_Kick');
  await expectNotReady(tabC, '3006', 'REST_API_Kick');
  await expect(tabC.locator('#instances')).toContainText('alice is offline');
  await shot(tabC, testInfo, '08-tabC-rest-kick');
});

test('GET / serves the demo; inputs are labelled, buttons named, keyboard works, fits 375 px', async ({ page, demo, request }, testInfo) => {
  const res = await request.get(`${demo.httpUrl}/`);
  expect(res.status()).toBe(200);
  expect(res.headers()['content-type']).toContain('text/html');
  expect(await res.text()).toContain('<script src="/tabchat.js"></script>');

  await page.setViewportSize({ width: 375, height: 812 });
  await page.goto(`${demo.httpUrl}/`);
  await expect(page.locator('#stat-settings')).toContainText('per platform');
  const problems = await page.evaluate(() => {
    const out: string[] = [];
    const byIds = (ids: string | null) =>
      (ids ?? '').split(/\s+/).filter(Boolean).map((id) => document.getElementById(id)?.textContent ?? '').join(' ').trim();
    const ariaName = (el: Element) => (el.getAttribute('aria-label') ?? '').trim() || byIds(el.getAttribute('aria-labelledby'));
    for (const el of document.querySelectorAll<HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement>('input, select, textarea')) {
      if (el.type === 'hidden') continue;
      const labelled = [...(el.labels ?? [])].some((label) => label.textContent!.trim() !== '') || ariaName(el) !== '';
      if (!labelled) out.push(`no label: <${el.tagName.toLowerCase()} id="${el.id}">`);
    }
    for (const el of document.querySelectorAll('button, [role="button"], a[href]')) {
      if (!(el.textContent ?? '').trim() && !ariaName(el) && !el.getAttribute('title')) out.push(`no accessible name: ${el.outerHTML}`);
    }
    const ids = [...document.querySelectorAll('[id]')].map((el) => el.id);
    for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) out.push(`duplicate id "${id}"`);
    if (!document.documentElement.lang) out.push('<html> has no lang');
    if (!document.title) out.push('no <title>');
    if (document.querySelectorAll('h1').length !== 1) out.push('not exactly one <h1>');
    if (!document.querySelector('main')) out.push('no <main>');
    for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) out.push(`img without alt: ${img.outerHTML}`);
    return out;
  });
  expect(problems).toEqual([]);
  // Playwright's accessibility tree agrees: controls are found by role and name.
  for (const name of ['User ID', 'To (user ID)', 'Message', 'Login policy across platforms', 'Kick every instance of user (REST)']) {
    await expect(page.getByLabel(name, { exact: true })).toHaveCount(1);
  }
  for (const name of ['Log in', 'Log out', 'Destroy', 'Open another tab', 'Send', 'Clear', 'Apply', 'Kick']) {
    await expect(page.getByRole('button', { name, exact: true })).toHaveCount(1);
  }
  await expect(page.getByRole('group', { name: 'Max instances per platform' }).getByRole('radio')).toHaveCount(5);

  // Phone width: nothing scrolls sideways.
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);

  // Keyboard only: Tab to the User ID field, type, Enter logs in; focus is visible.
  await page.keyboard.press('Tab');
  await expect(page.locator('.skip')).toBeFocused();
  await expect(page.locator('.skip')).toBeInViewport();
  for (let i = 0; i < 5 && !(await page.locator('#user').evaluate((el) => el === document.activeElement)); i++) await page.keyboard.press('Tab');
  await expect(page.locator('#user')).toBeFocused();
  await page.keyboard.press('ControlOrMeta+a');
  await page.keyboard.type('carol');
  await page.keyboard.press('Enter');
  await expectReady(page);
  await expect(page.locator('#login-user')).toHaveText('carol');
  await page.keyboard.press('Tab');
  await expect(page.getByRole('button', { name: 'Log in', exact: true })).toBeFocused();
  expect(await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle)).not.toBe('none');
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
  await shot(page, testInfo, 'phone-375-ready');
});

test('two browsers: alice sends bob a text message from the demo page', async ({ browser, demo }, testInfo) => {
  // Two browser contexts = two browsers (two profiles, two workers, two sockets).
  const contexts = [await browser.newContext(), await browser.newContext()];
  const problems = contexts.map((ctx) => watchConsoleErrors(ctx));
  const [alice, bob] = await Promise.all(contexts.map((ctx) => ctx.newPage()));
  await alice!.goto(`${demo.httpUrl}/`);
  await bob!.goto(`${demo.httpUrl}/`);
  await bob!.getByLabel('User ID', { exact: true }).fill('bob');
  for (const tab of [alice!, bob!]) {
    await expect(tab.locator('#msg-panel')).toBeVisible();
    await expect(tab.locator('#msg-unavailable')).toBeHidden();
    await tab.getByRole('button', { name: 'Log in', exact: true }).click();
    await expectReady(tab);
  }
  await expect(alice!.getByLabel('To (user ID)')).toHaveValue('bob');
  await expect(bob!.getByLabel('To (user ID)')).toHaveValue('alice');

  await alice!.getByLabel('Message', { exact: true }).fill('hello bob');
  await alice!.getByRole('button', { name: 'Send' }).click();
  await expect(alice!.locator('#messages .msg-out').first()).toContainText('· sent');
  await expect(bob!.locator('#messages .msg-in').first()).toContainText('hello bob');
  await expect(bob!.locator('#messages .msg-in').first()).toContainText('alice → bob');
  await expect(bob!.locator('#log')).toContainText('MESSAGE_RECEIVED alice → bob: hello bob');

  await bob!.getByLabel('Message', { exact: true }).fill('hi alice');
  await bob!.getByRole('button', { name: 'Send' }).click();
  await expect(alice!.locator('#messages .msg-in').first()).toContainText('hi alice');
  await shot(alice!, testInfo, 'msg-1-alice');
  await shot(bob!, testInfo, 'msg-2-bob');
  for (const ctx of contexts) await ctx.close();
  expect(problems.flat(), 'console errors / page errors in the two browsers').toEqual([]);
});

test('conversations: two tabs as alice, bob sends from another browser, both badges rise; reading in one tab clears both', async ({ browser, demo }, testInfo) => {
  const contexts = [await browser.newContext(), await browser.newContext()];
  const problems = contexts.map((ctx) => watchConsoleErrors(ctx));
  const [a1, a2] = [await contexts[0]!.newPage(), await contexts[0]!.newPage()];
  const bob = await contexts[1]!.newPage();
  for (const tab of [a1, a2]) {
    await tab.goto(`${demo.httpUrl}/?tabs=shared`);
    await tab.getByRole('button', { name: 'Log in', exact: true }).click();
    await expectReady(tab);
  }
  await bob.goto(`${demo.httpUrl}/`);
  await bob.getByLabel('User ID', { exact: true }).fill('bob');
  await bob.getByRole('button', { name: 'Log in', exact: true }).click();
  await expectReady(bob);
  for (const text of ['one', 'two']) {
    await bob.getByLabel('Message', { exact: true }).fill(text);
    await bob.getByRole('button', { name: 'Send' }).click();
    await expect(bob.locator('#messages .msg-out').first()).toContainText(text);
  }
  for (const tab of [a1, a2]) {
    await expect(tab.locator('#total-unread')).toHaveText('2');
    await expect(tab.locator('#conversations [data-conversation-id="C2Cbob"]')).toContainText('bob: two');
  }
  await shot(a2, testInfo, 'conv-1-badges');
  await a1.locator('#conversations [data-conversation-id="C2Cbob"]').click();
  await expect(a1.locator('#history li')).toHaveText(['bob: one', 'bob: two']);
  for (const tab of [a1, a2]) await expect(tab.locator('#total-unread')).toBeHidden();
  await expect(bob.locator('#log')).toContainText('MESSAGE_READ_BY_PEER');
  await shot(a2, testInfo, 'conv-2-read');
  for (const ctx of contexts) await ctx.close();
  expect(problems.flat(), 'console errors / page errors').toEqual([]);
});
