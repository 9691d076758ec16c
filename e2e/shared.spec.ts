/**
 * `tabs: 'shared'`: tabs of one browser profile logged in as the same user share ONE server
 * instance. Opening tabs never kicks and never consumes quota; logout in one tab affects only
 * that tab's API state; the instance is released when its last tab leaves; a kick of the
 * instance reaches every tab attached to it.
 */
import { APP, expect, expectOnlineCount, readyTab, sdkStates, test, type Tab } from './fixtures.js';

const SHARED = { create: { tabs: 'shared' } };

test('shared tabs use one instance; logout is per tab; the last tab out releases it', async ({ openTab, server, uid }) => {
  const user = uid();
  const tabs: Tab[] = [];
  for (let i = 0; i < 3; i++) tabs.push(await readyTab(openTab, APP.shared, user, SHARED));
  const [t1, t2, t3] = tabs as [Tab, Tab, Tab];
  // Limit 1 per platform, yet nobody was kicked: one instance for the three tabs.
  const online = await server.onlineInstances(APP.shared, user);
  expect(online).toHaveLength(1);
  for (const tab of tabs) expect(await sdkStates(tab, APP.shared)).toEqual(['sdkStateReady']);
  const state = (await t1.h('workerState')).value;
  expect(state.instances).toHaveLength(1);
  expect(state.instances[0].members).toHaveLength(3);
  expect(state.instances[0].instId).toBe(online[0]!.InstId);

  // Logout in t1: only t1's API state changes; the instance stays for t2 and t3.
  expect((await t1.h('logout', APP.shared)).ok).toBe(true);
  expect(await sdkStates(t1, APP.shared)).toEqual(['sdkStateReady', 'sdkStateNotReady']);
  expect(await t2.h('isReady', APP.shared)).toBe(true);
  expect(await t3.h('isReady', APP.shared)).toBe(true);
  expect((await server.onlineInstances(APP.shared, user)).map((d) => d.InstId)).toEqual([online[0]!.InstId]);

  // Closing t2 keeps it for t3; closing t3 (the last) releases it at once.
  await t2.page.close();
  await expect.poll(async () => (await t3.h('workerState')).value.instances[0]?.members.length).toBe(1);
  expect(await server.onlineInstances(APP.shared, user)).toHaveLength(1);
  const started = Date.now();
  await t3.page.close();
  await expectOnlineCount(server, APP.shared, user, 0, started);
});

test('a kick of the shared instance reaches every tab attached to it', async ({ newContext, openTab, server, uid }) => {
  const user = uid();
  const t1 = await readyTab(openTab, APP.shared, user, SHARED);
  const t2 = await readyTab(openTab, APP.shared, user, SHARED);
  const other = await newContext();
  try {
    // Another browser profile logs in as the same user: limit 1 kicks the shared instance.
    const elsewhere = await readyTab(openTab, APP.shared, user, { ...SHARED, ctx: other });
    for (const tab of [t1, t2]) {
      await expect.poll(() => sdkStates(tab, APP.shared)).toEqual(['sdkStateReady', 'kickedOut:multipleAccount', 'sdkStateNotReady']);
    }
    expect(await sdkStates(elsewhere, APP.shared)).toEqual(['sdkStateReady']);
    // A kicked tab logs in again only when asked: then it joins a new shared instance.
    expect((await t1.h('login', APP.shared, user)).ok).toBe(true);
    await expect.poll(() => sdkStates(elsewhere, APP.shared)).toEqual(['sdkStateReady', 'kickedOut:multipleAccount', 'sdkStateNotReady']);
    expect((await t2.h('login', APP.shared, user)).ok).toBe(true);
    await expect.poll(() => t2.h('isReady', APP.shared)).toBe(true);
    expect(await server.onlineInstances(APP.shared, user)).toHaveLength(1);
    // REST kick: every tab of the shared instance.
    await server.rest(APP.shared, 'im_open_login_svc/kick', { UserID: user });
    for (const tab of [t1, t2]) {
      await expect.poll(async () => (await sdkStates(tab, APP.shared)).slice(-2)).toEqual(['kickedOut:REST_API_Kick', 'sdkStateNotReady']);
    }
  } finally {
    await other.close();
  }
});

test('shared and separate chats of one user coexist: separate tabs still count', async ({ openTab, server, uid }) => {
  const user = uid();
  const shared1 = await readyTab(openTab, APP.limit2, user, SHARED);
  const shared2 = await readyTab(openTab, APP.limit2, user, SHARED);
  expect(await server.onlineInstances(APP.limit2, user)).toHaveLength(1);
  const separate = await readyTab(openTab, APP.limit2, user);
  expect(await server.onlineInstances(APP.limit2, user)).toHaveLength(2);
  for (const tab of [shared1, shared2]) expect(await sdkStates(tab, APP.limit2)).toEqual(['sdkStateReady']);
  expect(await sdkStates(separate, APP.limit2)).toEqual(['sdkStateReady']);
});
