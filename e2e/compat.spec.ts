/**
 * The drop-in script as a reference-SDK application meets it (both transports): every
 * reference constant with its value in `TabChat`, every reference member on a chat, the
 * upload plugin accepted, unimplemented members rejecting 9015; refused logins that show no
 * NET_STATE_CHANGE; and `logout({allTabs: true})`, which logs every tab of the user out.
 */
import { loadReference, referenceMembers, tableDiff } from '../test/compat/reference.js';
import { APP, expect, expectOnlineCount, readyTab, sdkStates, test } from './fixtures.js';

const SHARED = { create: { tabs: 'shared' } };

test.describe('reference members', () => {
  test.use({ allowConsoleErrors: [/is not implemented by tabchat/] });

  test('TabChat has every reference constant with its value; a chat has every reference member', async ({ openTab }) => {
    const reference = loadReference();
    const tab = await openTab();
    const tables = await tab.page.evaluate(() => {
      const T = (window as unknown as { TabChat: Record<string, Record<string, string | number>> }).TabChat;
      return { EVENT: { ...T.EVENT }, TYPES: { ...T.TYPES }, TSignaling: { ...T.TSignaling } };
    });
    for (const name of ['EVENT', 'TYPES', 'TSignaling'] as const) expect(tableDiff(tables[name]!, reference[name]), name).toEqual([]);

    expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
    const members = referenceMembers();
    const missing = await tab.page.evaluate(({ app, names }) => {
      const chat = (window as unknown as { TabChat: { create(o: object): Record<string, unknown> } }).TabChat.create({ SDKAppID: app });
      return names.filter((name) => typeof chat[name] !== 'function');
    }, { app: APP.limit1, names: members });
    expect(missing).toEqual([]);

    // Start-up calls of a reference app: no TypeError.
    const plugin = await tab.page.evaluate((app) => {
      const chat = (window as unknown as { TabChat: { create(o: object): { registerPlugin(p: object): void } } }).TabChat.create({ SDKAppID: app });
      chat.registerPlugin({ 'tim-upload-plugin': function TIMUploadPlugin() {} });
      return 'ok';
    }, APP.limit1);
    expect(plugin).toBe('ok');
    const experimental = await tab.h('call', APP.limit1, 'callExperimentalAPI', ['key', {}]);
    expect(experimental).toMatchObject({ ok: false, code: 9015, data: { member: 'callExperimentalAPI' } });
    expect(experimental.message).toContain('callExperimentalAPI is not implemented by tabchat');
    expect(await tab.h('call', APP.limit1, 'getGroupList', [])).toMatchObject({ ok: false, code: 9015 });
  });
});

test('refused logins show no NET_STATE_CHANGE; a good one shows connected before it resolves', async ({ openTab, uid }) => {
  const user = uid();
  const tab = await openTab();
  expect(await tab.h('create', { SDKAppID: APP.limit1 })).toEqual({ ok: true, value: 'new' });
  for (let i = 0; i < 2; i++) {
    expect(await tab.h('login', APP.limit1, user, { userSig: 'not-a-usersig' })).toMatchObject({ ok: false, code: 70003 });
  }
  // The hub released its socket after each refusal.
  await expect.poll(async () => (await tab.h('workerState')).value.sockets).toBe(0);
  expect(await tab.names(APP.limit1)).toEqual([]);
  expect((await tab.h('login', APP.limit1, user)).ok).toBe(true);
  await expect.poll(() => tab.h('isReady', APP.limit1)).toBe(true);
  const events = await tab.events(APP.limit1);
  expect(events.map((e) => (e.name === 'netStateChange' ? `net:${e.data.state}` : e.name))).toEqual(['net:connecting', 'net:connected', 'sdkStateReady']);
});

test('logout({allTabs: true}) in shared mode logs every tab of the user out at once', async ({ openTab, server, uid }) => {
  const user = uid();
  const t1 = await readyTab(openTab, APP.shared, user, SHARED);
  const t2 = await readyTab(openTab, APP.shared, user, SHARED);
  const t3 = await readyTab(openTab, APP.shared, user, SHARED);
  expect(await server.onlineInstances(APP.shared, user)).toHaveLength(1);
  const started = Date.now();
  expect(await t2.h('call', APP.shared, 'logout', [{ allTabs: true }])).toEqual({ ok: true, value: { code: 0, data: {} } });
  for (const tab of [t1, t2, t3]) {
    await expect.poll(() => sdkStates(tab, APP.shared)).toEqual(['sdkStateReady', 'sdkStateNotReady']);
    expect(await tab.h('isReady', APP.shared)).toBe(false);
  }
  await expectOnlineCount(server, APP.shared, user, 0, started);
  // Not ready with reason 3005 (logged out), as after a logout in the tab itself.
  expect(await gatedCall(t1)).toMatchObject({ ok: false, code: 3005 });
  // A tab logs in again only when asked.
  expect((await t1.h('login', APP.shared, user)).ok).toBe(true);
  await expect.poll(() => t1.h('isReady', APP.shared)).toBe(true);
  expect(await t3.h('isReady', APP.shared)).toBe(false);
  expect(await server.onlineInstances(APP.shared, user)).toHaveLength(1);
});

test('logout({allTabs: true}) in separate mode logs out each tab\'s own instance of the user', async ({ openTab, server, uid }) => {
  const user = uid();
  const t1 = await readyTab(openTab, APP.limit2, user);
  const t2 = await readyTab(openTab, APP.limit2, user);
  const other = await readyTab(openTab, APP.limit2, uid('other'));
  expect(await server.onlineInstances(APP.limit2, user)).toHaveLength(2);
  const started = Date.now();
  expect((await t1.h('call', APP.limit2, 'logout', [{ allTabs: true }])).ok).toBe(true);
  for (const tab of [t1, t2]) await expect.poll(() => sdkStates(tab, APP.limit2)).toEqual(['sdkStateReady', 'sdkStateNotReady']);
  await expectOnlineCount(server, APP.limit2, user, 0, started);
  expect(await sdkStates(other, APP.limit2)).toEqual(['sdkStateReady']);
});

/** A gated call in `tab`: refused with the current not-ready reason. */
function gatedCall(tab: { h(method: string, ...args: unknown[]): Promise<unknown> }): Promise<unknown> {
  return tab.h('call', APP.shared, 'sendMessage', [{}]);
}
