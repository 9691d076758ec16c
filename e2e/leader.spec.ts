/**
 * The leader-tab fallback: in a browser without SharedWorker (deleted by an init script, as
 * in Chrome for Android < 148 or Samsung Internet), one tab elected with Web Locks hosts the
 * hub and the single socket; the others talk to it over BroadcastChannel. When the leader
 * goes, the next tab takes over and every surviving session is resumed silently.
 */
import type { BrowserContext } from '@playwright/test';
import { APP, expect, expectOnlineCount, readyTab, test, type Tab } from './fixtures.js';

async function sdkStates(tab: Tab, sdkAppId: number): Promise<string[]> {
  return (await tab.events(sdkAppId)).filter((e) => e.name !== 'netStateChange').map((e) => (e.name === 'kickedOut' ? `kickedOut:${e.data.type}` : e.name));
}

async function withoutSharedWorker(context: BrowserContext): Promise<void> {
  await context.addInitScript(() => { delete (globalThis as { SharedWorker?: unknown }).SharedWorker; });
}

test('without SharedWorker a leader tab carries every tab on one socket', async ({ context, openTab, server, uid }) => {
  await withoutSharedWorker(context);
  const user = uid();
  const a1 = await readyTab(openTab, APP.limit1, user);
  expect(await a1.page.evaluate(() => typeof (globalThis as { SharedWorker?: unknown }).SharedWorker)).toBe('undefined');
  const state = (await a1.h('workerState')).value;
  expect(state.name).toMatch(/^leader:tabchat:p1:/);
  expect(state.sockets).toBe(1);
  // The a1/a2 semantics hold: limit 1, the second tab kicks the first.
  const a2 = await readyTab(openTab, APP.limit1, user);
  await expect.poll(() => sdkStates(a1, APP.limit1)).toEqual(['sdkStateReady', 'kickedOut:multipleAccount', 'sdkStateNotReady']);
  expect(await sdkStates(a2, APP.limit1)).toEqual(['sdkStateReady']);
  expect((await a2.h('workerState')).value.epoch).toBe(state.epoch);
  const other = uid('other');
  const b = await readyTab(openTab, APP.limit1, other);
  await expect.poll(() => server.connections()).toBe(1);
  expect((await b.h('workerState')).value.instances).toHaveLength(2);
  // A follower that closes is released at once (its tab lock), on the socket that stays.
  const started = Date.now();
  await b.page.close();
  await expectOnlineCount(server, APP.limit1, other, 0, started);
});

test('when the leader tab closes the next one leads and the sessions survive silently', async ({ context, openTab, server, uid }) => {
  await withoutSharedWorker(context);
  const user = uid();
  const leader = await readyTab(openTab, APP.many, user);
  const f1 = await readyTab(openTab, APP.many, user);
  const f2 = await readyTab(openTab, APP.many, user);
  const before = (await f1.h('workerState')).value;
  const [leaderInst] = await server.onlineInstances(APP.many, user).then((list) => list.map((d) => d.InstId));
  expect(leaderInst).toBeDefined();
  const started = Date.now();
  await leader.page.close();
  // The old leader's own instance leaves at once; the followers' instances stay (same instIds).
  await expectOnlineCount(server, APP.many, user, 2, started);
  await expect.poll(async () => {
    const state = await f2.h('workerState');
    if (!state.ok || state.value.epoch === before.epoch) return 'old leader';
    return Object.values(state.value.chats).map((c: any) => c.phase).join(',');
  }).toBe('ready,ready');
  for (const tab of [f1, f2]) {
    expect(await tab.h('isReady', APP.many)).toBe(true);
    expect(await sdkStates(tab, APP.many)).toEqual(['sdkStateReady']);
  }
  expect((await f1.h('workerState')).value.name).toMatch(/^leader:/);
  await expect.poll(() => server.connections()).toBe(1);
  // Commands and events go through the new leader.
  await server.rest(APP.many, 'im_open_login_svc/kick', { UserID: user });
  for (const tab of [f1, f2]) {
    await expect.poll(() => sdkStates(tab, APP.many)).toEqual(['sdkStateReady', 'kickedOut:REST_API_Kick', 'sdkStateNotReady']);
  }
});

test("transport 'leader' can be forced where SharedWorker exists", async ({ openTab, uid }) => {
  const user = uid();
  const a1 = await readyTab(openTab, APP.limit2, user, { create: { transport: 'leader' } });
  const a2 = await readyTab(openTab, APP.limit2, user, { create: { transport: 'leader' } });
  const state = (await a2.h('workerState')).value;
  expect(state.name).toMatch(/^leader:/);
  expect(state.instances).toHaveLength(2);
  expect((await a1.h('logout', APP.limit2)).ok).toBe(true);
  expect(await a2.h('isReady', APP.limit2)).toBe(true);
});

test('a crashed leader tab: the next tab leads, releases its instance and keeps the others', async ({ context, openTab, server, uid }) => {
  await withoutSharedWorker(context);
  const user = uid();
  const leader = await readyTab(openTab, APP.many, user);
  const follower = await readyTab(openTab, APP.many, user);
  expect(await server.onlineInstances(APP.many, user)).toHaveLength(2);
  const cdp = await context.newCDPSession(leader.page);
  const started = Date.now();
  cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
  await expectOnlineCount(server, APP.many, user, 1, started);
  await leader.page.close();
  await expect.poll(async () => {
    const state = await follower.h('workerState');
    return state.ok ? Object.values(state.value.chats).map((c: any) => c.phase) : state.code;
  }).toEqual(['ready']);
  expect(await sdkStates(follower, APP.many)).toEqual(['sdkStateReady']);
});
