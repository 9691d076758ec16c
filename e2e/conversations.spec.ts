/**
 * Conversations in Chromium, on both transports (SharedWorker and leader tab): the demo's
 * story — two tabs as alice, bob sends from another browser, both badges rise, a read in one
 * tab clears both, with one TOTAL_UNREAD_MESSAGE_COUNT_UPDATED per change in each tab; a tab
 * opened later gets the list from the worker's cache without a server request; `tabs:
 * 'shared'` agrees with separate mode; and another device of alice (another profile) clears
 * with the read too.
 */
import { APP, expect, readyTab, test, type Tab } from './fixtures.js';

async function total(tab: Tab, app: number): Promise<number> {
  return (await tab.h('call', app, 'getTotalUnreadMessageCount', [])).value as number;
}

async function unread(tab: Tab, app: number, conversationID: string): Promise<number | undefined> {
  const res = await tab.h('call', app, 'getConversationList', []);
  expect(res.ok, JSON.stringify(res)).toBe(true);
  return (res.value.data.conversationList as Array<{ conversationID: string; unreadCount: number }>).find((c) => c.conversationID === conversationID)?.unreadCount;
}

async function totalEvents(tab: Tab, app: number): Promise<number[]> {
  return (await tab.events(app)).filter((e) => e.name === 'onTotalUnreadMessageCountUpdated').map((e) => e.data as number);
}

async function send(tab: Tab, app: number, to: string, text: string): Promise<void> {
  const res = await tab.h('send', app, { to, text });
  expect(res, JSON.stringify(res)).toMatchObject({ ok: true });
}

async function conversationRequests(httpUrl: string, op: string): Promise<number> {
  const text = await (await fetch(`${httpUrl}/metrics`)).text();
  const match = new RegExp(`^tabchat_conversation_requests_total\\{[^}]*op="${op}"[^}]*\\} (\\d+)`, 'm').exec(text);
  return Number(match?.[1] ?? 0);
}

test('two tabs as alice: badges rise on both, a read in one clears both (one event per change); a later tab gets the list from the worker', async ({ newContext, openTab, uid, server }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const a1 = await readyTab(openTab, APP.many, alice);
  const a2 = await readyTab(openTab, APP.many, alice);
  const other = await newContext();
  try {
    const b = await readyTab(openTab, APP.many, bob, { ctx: other });
    for (const text of ['one', 'two', 'three']) await send(b, APP.many, alice, text);
    for (const a of [a1, a2]) {
      await expect.poll(() => total(a, APP.many)).toBe(3);
      expect(await unread(a, APP.many, `C2C${bob}`)).toBe(3);
    }
    const history = await a1.h('call', APP.many, 'getMessageList', [{ conversationID: `C2C${bob}` }]);
    expect(history.value.data.messageList.map((m: { payload: { text: string } }) => m.payload.text)).toEqual(['one', 'two', 'three']);
    expect(history.value.data.isCompleted).toBe(true);

    expect(await a2.h('call', APP.many, 'setMessageRead', [{ conversationID: `C2C${bob}` }])).toEqual({ ok: true, value: { code: 0, data: {} } });
    for (const a of [a1, a2]) {
      await expect.poll(() => total(a, APP.many)).toBe(0);
      expect(await unread(a, APP.many, `C2C${bob}`)).toBe(0);
      const events = await totalEvents(a, APP.many);
      expect(events.at(-1)).toBe(0);
      expect(events.filter((v) => v === 0)).toHaveLength(1);
      for (let i = 1; i < events.length; i++) expect(events[i], events.join(',')).not.toBe(events[i - 1]);
    }
    await expect.poll(async () => (await b.events(APP.many)).filter((e) => e.name === 'onMessageReadByPeer').length).toBe(1);

    // A tab opened later: its list comes from the worker's cache, no convList request.
    const before = await conversationRequests(server.httpUrl, 'convList');
    expect(before, 'the first tabs loaded the list once').toBeGreaterThan(0);
    const a3 = await readyTab(openTab, APP.many, alice);
    expect(await unread(a3, APP.many, `C2C${bob}`)).toBe(0);
    expect((await a3.h('call', APP.many, 'getConversationList', [])).value.data.conversationList).toHaveLength(1);
    expect(await conversationRequests(server.httpUrl, 'convList')).toBe(before);
  } finally {
    await other.close();
  }
});

test("tabs: 'shared' and every device: two shared tabs and alice's other profile agree; a read on the other device clears all", async ({ newContext, openTab, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const s1 = await readyTab(openTab, APP.many, alice, { create: { tabs: 'shared' } });
  const s2 = await readyTab(openTab, APP.many, alice, { create: { tabs: 'shared' } });
  const device = await newContext();
  const bobCtx = await newContext();
  try {
    const d = await readyTab(openTab, APP.many, alice, { ctx: device });
    const b = await readyTab(openTab, APP.many, bob, { ctx: bobCtx });
    await send(b, APP.many, alice, 'hi');
    await send(b, APP.many, alice, 'there');
    for (const tab of [s1, s2, d]) await expect.poll(() => total(tab, APP.many)).toBe(2);
    await d.h('call', APP.many, 'setMessageRead', [{ conversationID: `C2C${bob}` }]);
    for (const tab of [s1, s2, d]) {
      await expect.poll(() => total(tab, APP.many)).toBe(0);
      expect(await totalEvents(tab, APP.many)).toEqual([1, 2, 0].slice((await totalEvents(tab, APP.many))[0] === 2 ? 1 : 0));
    }
    const bad = await s1.h('call', APP.many, 'getMessageList', [{ conversationID: 'GROUP1' }]);
    expect(bad).toMatchObject({ ok: false, code: 9043 });
  } finally {
    await device.close();
    await bobCtx.close();
  }
});
