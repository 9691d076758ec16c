/**
 * One chat in one tab: ready ordering, repeat login, 2025, refusals, the not-ready gate,
 * destroy, the create() rules and the builds (drop-in IIFE and ESM).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { APP, ROOT, expect, readyTab, test } from './fixtures.js';

test('login resolves before SDK_READY, then the tab is ready on one shared socket', async ({ openTab, server, uid, noSharedWorker }) => {
  const user = uid();
  const tab = await openTab();
  expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
  const login = await tab.h('login', APP.limit1, user);
  expect(login.ok, JSON.stringify(login)).toBe(true);
  expect(login.value.readyInThen).toBe(false);
  expect(login.value.response.code).toBe(0);
  expect(login.value.response.data).toMatchObject({ actionStatus: 'OK', errorCode: 0, errorInfo: '' });
  expect(login.value.response.data.repeatLogin).toBeUndefined();
  await expect.poll(() => tab.h('isReady', APP.limit1)).toBe(true);
  expect((await tab.names(APP.limit1)).filter((n) => n !== 'netStateChange')).toEqual(['sdkStateReady']);
  await expect.poll(async () => (await tab.events(APP.limit1)).filter((e) => e.name === 'netStateChange').map((e) => e.data.state).pop())
    .toBe('connected');
  expect(await tab.h('loginUser', APP.limit1)).toBe(user);
  const time = await tab.h('serverTime', APP.limit1);
  expect(time.ok).toBe(true);
  expect(Math.abs(time.value - Date.now())).toBeLessThan(5_000);
  const online = await server.onlineInstances(APP.limit1, user);
  expect(online).toHaveLength(1);
  expect(online[0]).toMatchObject({ Platform: 'Web', InstId: login.value.response.data.instanceID });
  const state = await tab.h('workerState');
  expect(state.ok).toBe(true);
  expect(state.value).toMatchObject({ sockets: 1, socketsOpened: 1 });
  expect(state.value.instances).toHaveLength(1);
  expect(state.value.name).toMatch(noSharedWorker ? /^leader:tabchat:p1:/ : /^tabchat:p1:/);
});

test('a second login while logged in resolves repeatLogin without a new SDK_READY', async ({ openTab, uid }) => {
  const tab = await readyTab(openTab, APP.limit1, uid());
  const again = await tab.h('login', APP.limit1, await tab.h('loginUser', APP.limit1));
  expect(again.ok).toBe(true);
  expect(again.value.response.data.repeatLogin).toBe(true);
  expect(again.value.readyInThen).toBe(true);
  // A spurious SDK_READY would be scheduled before the logout below starts.
  expect((await tab.h('logout', APP.limit1)).ok).toBe(true);
  expect((await tab.names(APP.limit1)).filter((n) => n.startsWith('sdkState'))).toEqual(['sdkStateReady', 'sdkStateNotReady']);
});

test('a login while another is in flight rejects 2025', async ({ openTab, uid }) => {
  const tab = await openTab();
  await tab.h('create', { SDKAppID: APP.limit1 });
  const [first, second] = await tab.h('doubleLogin', APP.limit1, uid());
  expect(first.ok).toBe(true);
  expect(second).toMatchObject({ ok: false, code: 2025 });
  await expect.poll(() => tab.h('isReady', APP.limit1)).toBe(true);
});

test('gated calls before ready reject with the not-ready reason and emit ERROR', async ({ openTab, uid, server }) => {
  const tab = await openTab();
  await tab.h('create', { SDKAppID: APP.limit1 });
  // create() attaches the page to its hub at once (no call of its own needed), yet opens no
  // socket to the server before a login; a page that only created a chat leaves nothing when it closes.
  const idle = await openTab();
  await idle.h('create', { SDKAppID: APP.limit1 });
  const other = await openTab();
  await expect.poll(async () => (await other.h('workerState')).value.tabs.length).toBe(3);
  expect((await other.h('workerState')).value).toMatchObject({ sockets: 0, socketsOpened: 0 });
  await expect.poll(() => server.connections()).toBe(0);
  await idle.page.close();
  await expect.poll(async () => (await other.h('workerState')).value.tabs.length).toBe(2);
  expect(await server.connections()).toBe(0);
  const before = await tab.h('serverTime', APP.limit1);
  expect(before).toMatchObject({ ok: false, code: 2024 });
  expect(before.message).toContain('getServerTime');
  const errors = (await tab.events(APP.limit1)).filter((e) => e.name === 'error');
  expect(errors).toHaveLength(1);
  expect(errors[0]!.data.code).toBe(2024);
  // Bad arguments throw synchronously.
  const bad = await tab.h('call', APP.limit1, 'login', [{ userID: '' }]);
  expect(bad).toMatchObject({ ok: false, isError: true, message: 'Params validate failed.' });
  // A refused login rejects with the server code; the reason becomes 3001.
  const user = uid();
  const refused = await tab.h('login', APP.limit1, user, { userSig: server.sig(APP.limit1, `${user}-other`) });
  expect(refused).toMatchObject({ ok: false, code: 70013 });
  expect(await tab.h('serverTime', APP.limit1)).toMatchObject({ ok: false, code: 3001 });
  // logout when not logged in rejects 2024.
  expect(await tab.h('logout', APP.limit1)).toMatchObject({ ok: false, code: 2024 });
  expect(await server.onlineInstances(APP.limit1, user)).toHaveLength(0);
});

test('destroy logs out, releases the instance and drops it from the create() cache', async ({ openTab, server, uid }) => {
  const user = uid();
  const tab = await readyTab(openTab, APP.limit1, user);
  expect(await tab.h('create', { SDKAppID: String(APP.limit1) })).toEqual({ ok: true, value: 'same' });
  const destroyed = await tab.h('destroy', APP.limit1);
  expect(destroyed).toEqual({ ok: true, value: { code: 0, data: {} } });
  expect(await tab.names(APP.limit1)).toContain('sdkStateNotReady');
  expect(await server.onlineInstances(APP.limit1, user)).toHaveLength(0);
  // A new instance after destroy; destroying it while logged out rejects 2024 but still cleans up.
  expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
  expect(await tab.h('destroy', APP.limit1)).toMatchObject({ ok: false, code: 2024 });
  expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
  const chats = await tab.h('workerState');
  expect(Object.values(chats.value.chats)).toHaveLength(0);
});

test.describe('create() rules', () => {
  test.use({ allowConsoleErrors: [/SDKAppID must be a number/] });

  test('SDKAppID, workerUrl and transport are checked at create()', async ({ openTab }) => {
    const tab = await openTab();
    expect(await tab.h('create', { SDKAppID: 'abc' })).toEqual({ ok: true, value: null });
    expect(await tab.h('create', { SDKAppID: String(APP.limit2) })).toEqual({ ok: true, value: 'new' });
    expect(await tab.h('create', { SDKAppID: APP.limit2 })).toEqual({ ok: true, value: 'same' });
    const crossOrigin = await tab.h('create', { SDKAppID: APP.limit1, workerUrl: 'https://cdn.example.com/tabchat-worker.js' });
    expect(crossOrigin).toMatchObject({ ok: false, code: 9013 });
    expect(crossOrigin.message).toContain('same-origin');
    expect(await tab.h('create', { SDKAppID: APP.limit1, tabs: 'all' })).toMatchObject({ ok: false, message: 'Params validate failed.' });
    expect(await tab.h('create', { SDKAppID: APP.limit1, transport: 'pigeon' })).toMatchObject({ ok: false, message: 'Params validate failed.' });
  });
});

test('a worker from another build is refused with 9012', async ({ openTab, server, uid }) => {
  const worker = readFileSync(join(ROOT, 'dist', 'tabchat-worker.js'), 'utf8');
  const build = /\b\d+\.\d+\.\d+\+[0-9a-f]{10}\b/.exec(worker)?.[0];
  expect(build, 'build id in dist/tabchat-worker.js').toBeTruthy();
  writeFileSync(join(server.tmpDir, 'other-build-worker.js'), worker.split(build!).join('0.0.1+0000000000'));
  const tab = await openTab();
  await tab.h('create', { SDKAppID: APP.limit1, workerUrl: '/e2e-tmp/other-build-worker.js' });
  const login = await tab.h('login', APP.limit1, uid());
  expect(login).toMatchObject({ ok: false, code: 9012 });
  expect(login.message).toContain(build);
});

test('the ESM build works and derives the server from import.meta.url', async ({ openTab, uid, server }) => {
  const user = uid();
  const tab = await openTab({ path: '/e2e/esm.html' });
  expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
  expect((await tab.h('login', APP.limit1, user)).ok).toBe(true);
  await expect.poll(() => tab.h('isReady', APP.limit1)).toBe(true);
  expect(await server.onlineInstances(APP.limit1, user)).toHaveLength(1);
});

test('a tab that logs in on a socket another tab already connected learns the net state once', async ({ openTab, uid }) => {
  const first = await readyTab(openTab, APP.many, uid());
  await expect.poll(async () => (await first.events(APP.many)).filter((e) => e.name === 'netStateChange').map((e) => e.data.state).pop())
    .toBe('connected');
  // Same profile, socket already open: no transition happens on it, yet the chat must learn
  // `connected` once, before its login resolves (docs/client-api.md, "Order").
  const second = await readyTab(openTab, APP.many, uid());
  const events = await second.events(APP.many);
  expect(events.filter((e) => e.name === 'netStateChange').map((e) => e.data.state)).toEqual(['connected']);
  expect(events.map((e) => e.name)).toEqual(['netStateChange', 'sdkStateReady']);
  // A re-login after a logout announces nothing new: the last state this chat announced is
  // still `connected`.
  expect((await second.h('logout', APP.many)).ok).toBe(true);
  expect((await second.h('login', APP.many, uid())).ok).toBe(true);
  await expect.poll(() => second.h('isReady', APP.many)).toBe(true);
  expect((await second.events(APP.many)).filter((e) => e.name === 'netStateChange').map((e) => e.data.state)).toEqual(['connected']);
});
