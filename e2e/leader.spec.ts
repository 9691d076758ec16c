/**
 * The leader-tab fallback: in a browser without SharedWorker (deleted by an init script, as
 * in Chrome for Android < 148 or Samsung Internet), one tab elected with Web Locks hosts the
 * hub and the single socket; the others talk to it over BroadcastChannel. When the leader
 * goes, the next tab takes over and every surviving session is resumed silently.
 */
import { APP, expect, expectOnlineCount, readyTab, sdkStates, test, withoutSharedWorker, type Tab } from './fixtures.js';
import { holdsLeaderLock } from './page-lifecycle.js';

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

// Regressions of the leader handover, found by the browser bench (dead leader rows):
// - a crashed renderer releases its locks one by one, so the next leader could start while
//   the dead leader's life lock still looked held; it skipped that run and the crashed tab's
//   instance stayed online for the whole resume window. Made deterministic here: a page of
//   the profile queues for the leader's life lock before the crash and keeps it until the
//   new leader runs (standing for a renderer slow to let it go);
// - a follower that had not yet noticed the crash sent a resync register to the dead leader,
//   the new leader answered it, and that take-over crossed the follower's own: ERROR 9008
//   "could not take over the session (phase loggingIn)", SDK_NOT_READY, while the new hub
//   held the instance. A race of a few milliseconds (its parts are tested on their own
//   below and in test/worker/hub.test.ts); the rounds give it chances to happen.
test('leaders crashed one after another: each one\'s instance leaves at once, every follower stays ready with its InstId', async ({ context, openTab, server, uid }) => {
  test.setTimeout(120_000);
  await withoutSharedWorker(context);
  const CRASHES = 5;
  const FOLLOWERS = 2;
  const holder = await openTab(); // no chat: never leads
  const tabs: Array<{ tab: Tab; user: string }> = [];
  const addTab = async () => {
    const user = uid();
    tabs.push({ tab: await readyTab(openTab, APP.many, user), user });
  };
  for (let i = 0; i <= FOLLOWERS; i++) await addTab();
  for (let round = 0; round < CRASHES; round++) {
    let index = -1;
    for (let i = 0; i < tabs.length && index < 0; i++) if (await holdsLeaderLock(tabs[i]!.tab.page)) index = i;
    expect(index, 'one tab holds the leader lock').toBeGreaterThanOrEqual(0);
    const [leader] = tabs.splice(index, 1);
    const oldEpoch: string = (await tabs[0]!.tab.h('workerState')).value.epoch;
    const instIds = new Map<string, number[]>();
    for (const { user } of tabs) instIds.set(user, (await server.onlineInstances(APP.many, user)).map((d) => d.InstId));
    for (const ids of instIds.values()) expect(ids).toHaveLength(1);

    // The holder queues (exclusive, behind the followers' watches) for the leader's life lock.
    const lifeLock = `tabchat:worker:${oldEpoch}`;
    await holder.page.evaluate((name) => {
      void navigator.locks.request(name, () => new Promise<void>((resolve) => { (window as any).releaseLifeLock = resolve; }));
    }, lifeLock);
    await expect.poll(() => holder.page.evaluate(async (name) => ((await navigator.locks.query()).pending ?? []).some((l) => l.name === name), lifeLock)).toBe(true);

    const cdp = await context.newCDPSession(leader!.tab.page);
    cdp.send('Page.crash').catch(() => {}); // never answers: the renderer is gone
    // Every follower's chat is taken over by the new leader's hub, and the tab agrees.
    await expect.poll(async () => {
      const state = await tabs[0]!.tab.h('workerState');
      if (!state.ok || state.value.epoch === oldEpoch) return 'old leader';
      return Object.values(state.value.chats).filter((c: any) => c.phase === 'ready').length;
    }).toBe(tabs.length);
    await leader!.tab.page.close();
    // The new leader runs, and the dead one's life lock is still held: now let it go.
    expect(await holder.page.evaluate(async (name) => ((await navigator.locks.query()).held ?? []).some((l) => l.name === name), lifeLock)).toBe(true);
    const started = Date.now();
    await holder.page.evaluate(() => (window as any).releaseLifeLock());
    // Released by the new leader (an orphan of the dead run), not by the end of the resume window.
    await expectOnlineCount(server, APP.many, leader!.user, 0, started);

    for (const { tab, user } of tabs) {
      expect(await tab.h('isReady', APP.many), `round ${round}: ${user} ready`).toBe(true);
      expect(await sdkStates(tab, APP.many), `round ${round}: ${user} events`).toEqual(['sdkStateReady']);
      expect((await server.onlineInstances(APP.many, user)).map((d) => d.InstId), `round ${round}: ${user} instance`).toEqual(instIds.get(user));
    }
    await addTab();
  }
  // A late SDK_NOT_READY of the last round would show here.
  for (const { tab } of tabs) expect(await sdkStates(tab, APP.many)).toEqual(['sdkStateReady']);
});

test('a leader answers only the requests addressed to its own epoch', async ({ context, openTab, uid }) => {
  await withoutSharedWorker(context);
  await readyTab(openTab, APP.many, uid());
  const follower = await readyTab(openTab, APP.many, uid());
  const { build, epoch } = (await follower.h('workerState')).value;
  // A request meant for a dead leader, then one for this leader, from the same sender: the
  // channel keeps their order, and so does the leader's answering, so had the first one been
  // answered its answer would have come first. Commands go on the hubs' channel, answers
  // come on the sender's own.
  const answers = await follower.page.evaluate(([build, epoch]) => new Promise<string[]>((resolve) => {
    const channel = new BroadcastChannel(`tabchat:rpc:${build}:tab:e2e-probe`);
    const hubs = new BroadcastChannel(`tabchat:rpc:${build}:hub`);
    const got: string[] = [];
    channel.onmessage = (event) => {
      if (event.data?.kind !== 'res' || event.data.to !== 'e2e-probe') return;
      got.push(event.data.id);
      if (event.data.id === 'for-this') {
        channel.close();
        resolve(got);
      }
    };
    hubs.postMessage({ kind: 'req', id: 'for-dead', from: 'e2e-probe', epoch: 'dead-epoch', method: 'getState', args: [] });
    hubs.postMessage({ kind: 'req', id: 'for-this', from: 'e2e-probe', epoch, method: 'getState', args: [] });
    hubs.close();
  }), [build, epoch] as const);
  expect(answers).toEqual(['for-this']);
});
