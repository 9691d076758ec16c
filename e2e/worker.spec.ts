/**
 * The SharedWorker itself: killed by the browser (CDP `Target.closeTarget` on the
 * `shared_worker` target), its tabs start a new one and take their instances over silently
 * (same instIds, no KICKED_OUT, no SDK_NOT_READY); commands and events keep working.
 *
 * Chromium only (tag @chromium-only): the kill goes through CDP, and Firefox offers no other
 * way to end a SharedWorker while its tabs live (WebDriver BiDi lists no shared workers, and a
 * test has no other handle on one). Firefox does not run these three; the
 * path they exercise (the tabs see the hub's life lock released and start a new hub) is the
 * Web Locks code every engine runs, and the leader project's takeover tests (leader.spec.ts,
 * Chromium) exercise it for a hub that dies with its tab.
 */
import { createServer, type Socket } from 'node:net';
import { APP, expect, killSharedWorker, readyTab, sdkStates, sharedWorkerTargets, test, type Tab } from './fixtures.js';

test('pages of one context share one worker; killing it is survived silently', { tag: '@chromium-only' }, async ({ openTab, server, uid }) => {
  const user = uid();
  const a1 = await readyTab(openTab, APP.limit2, user);
  const a2 = await readyTab(openTab, APP.limit2, user);
  expect(await sharedWorkerTargets(a1.page)).toHaveLength(1);
  const before = (await a1.h('workerState')).value;
  expect((await a2.h('workerState')).value.epoch).toBe(before.epoch);
  const instIds = (await server.onlineInstances(APP.limit2, user)).map((d) => d.InstId).sort();
  expect(instIds).toHaveLength(2);

  await killSharedWorker(a1.page);

  // Both tabs notice (worker life lock), start a new worker and resume their instances.
  await expect.poll(async () => {
    const state = await a2.h('workerState');
    if (!state.ok || state.value.epoch === before.epoch) return 'old worker';
    return Object.values(state.value.chats).map((c: any) => c.phase).join(',');
  }).toBe('ready,ready');
  const after = (await a1.h('workerState')).value;
  expect(after.epoch).not.toBe(before.epoch);
  expect(after.sockets).toBe(1);
  expect((await server.onlineInstances(APP.limit2, user)).map((d) => d.InstId).sort()).toEqual(instIds);
  for (const tab of [a1, a2]) {
    expect(await tab.h('isReady', APP.limit2)).toBe(true);
    expect(await sdkStates(tab, APP.limit2)).toEqual(['sdkStateReady']);
    expect((await tab.h('serverTime', APP.limit2)).ok).toBe(true);
  }
  await expect.poll(() => server.connections()).toBe(1);

  // Commands and events go through the new worker.
  expect((await a1.h('logout', APP.limit2)).ok).toBe(true);
  expect(await server.onlineInstances(APP.limit2, user)).toHaveLength(1);
  await server.rest(APP.limit2, 'im_open_login_svc/kick', { UserID: user });
  await expect.poll(() => sdkStates(a2, APP.limit2)).toEqual(['sdkStateReady', 'kickedOut:REST_API_Kick', 'sdkStateNotReady']);
  expect(await sdkStates(a1, APP.limit2)).toEqual(['sdkStateReady', 'sdkStateNotReady']);
});

test('a tab opened after a worker restart joins the new worker', { tag: '@chromium-only' }, async ({ openTab, uid }) => {
  const user = uid();
  const a1 = await readyTab(openTab, APP.limit2, user);
  const epoch = (await a1.h('workerState')).value.epoch;
  await killSharedWorker(a1.page);
  await expect.poll(async () => (await a1.h('workerState')).value?.epoch).not.toBe(epoch);
  const a2 = await readyTab(openTab, APP.limit2, user);
  const state = (await a2.h('workerState')).value;
  expect(state.epoch).toBe((await a1.h('workerState')).value.epoch);
  expect(state.instances).toHaveLength(2);
  expect(await sdkStates(a1, APP.limit2)).toEqual(['sdkStateReady']);
});

test('a command pending when the worker dies is rejected with 9008', { tag: '@chromium-only' }, async ({ openTab, uid }) => {
  // A "chat server" that accepts TCP connections and never answers: the login stays pending.
  const sockets: Socket[] = [];
  const silent = createServer((socket) => { sockets.push(socket); });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const port = (silent.address() as { port: number }).port;
  try {
    const tab = await openTab();
    await tab.h('create', { SDKAppID: APP.limit1, server: `ws://127.0.0.1:${port}/ws` });
    const login = tab.h('login', APP.limit1, uid());
    await expect.poll(async () => Object.values((await tab.h('workerState')).value.chats).map((c: any) => c.phase)).toEqual(['loggingIn']);
    await killSharedWorker(tab.page);
    // 9008 comes from the worker's life lock; the login's own timeout (15 s) would reject
    // with 2801, so the code alone shows which path answered.
    expect(await login).toMatchObject({ ok: false, code: 9008 });
    expect(await tab.h('serverTime', APP.limit1)).toMatchObject({ ok: false, code: 3001 });
  } finally {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});
