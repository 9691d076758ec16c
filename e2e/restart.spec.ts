/**
 * The chat server is killed (SIGKILL: no goodbye) and restarted on the same port while tabs
 * are logged in and sending. Its instance registry was in memory, so every resume is refused
 * and the hub logs the sessions in again, silently: the tabs end up ready, nobody sees
 * KICKED_OUT or SDK_NOT_READY, and what the server acknowledged (sqlite) is delivered exactly
 * once. A UserSig that expired meanwhile ends in KICKED_OUT userSigExpired, not in a loop.
 */
import { expect, test, type Tab } from './fixtures.js';
import { RESTART_APP, startRestartableServer, tabOpener } from './server-control.js';

async function sdkStates(tab: Tab): Promise<string[]> {
  return (await tab.events(RESTART_APP)).filter((e) => e.name.startsWith('sdkState') || e.name === 'kickedOut')
    .map((e) => (e.name === 'kickedOut' ? `kickedOut:${e.data.type}` : e.name));
}

async function login(tab: Tab, user: string, options: Record<string, unknown> = {}): Promise<void> {
  expect(await tab.h('create', { SDKAppID: RESTART_APP })).toEqual({ ok: true, value: 'new' });
  const res = await tab.h('login', RESTART_APP, user, options);
  expect(res.ok, JSON.stringify(res)).toBe(true);
  await expect.poll(() => tab.h('isReady', RESTART_APP)).toBe(true);
}

test('server SIGKILLed and restarted under load: tabs ready again silently, acknowledged messages once', async ({ context, newContext, uid }) => {
  const srv = await startRestartableServer();
  const { openTab, assertNoProblems } = tabOpener(srv, context);
  const other = await newContext();
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const senders: Tab[] = [];
    for (let i = 0; i < 3; i++) {
      const tab = await openTab();
      await login(tab, alice);
      senders.push(tab);
    }
    const b = await openTab({ ctx: other });
    await login(b, bob);
    const before = (await srv.onlineInstances(alice)).map((d) => d.InstId);
    expect(before).toHaveLength(3);

    // Bursts from every tab; the server dies in the middle of them.
    for (const [i, tab] of senders.entries()) {
      await tab.h('startSendMany', RESTART_APP, bob, Array.from({ length: 15 }, (_, k) => `t${i}-${k}`));
    }
    await srv.stop('SIGKILL');
    for (const [i, tab] of senders.entries()) {
      await tab.h('startSendMany', RESTART_APP, bob, Array.from({ length: 5 }, (_, k) => `t${i}-down-${k}`));
    }
    await srv.start();

    // Every tab is ready again on a new instance (the old ones died with the registry).
    await expect.poll(async () => (await srv.onlineInstances(alice)).length, { timeout: 30_000 }).toBe(3);
    await expect.poll(async () => (await srv.onlineInstances(bob)).length, { timeout: 30_000 }).toBe(1);
    for (const tab of [...senders, b]) {
      await expect.poll(() => tab.h('isReady', RESTART_APP)).toBe(true);
      expect(await sdkStates(tab)).toEqual(['sdkStateReady']);
    }
    // Every send settles; each one the server acknowledged reaches bob exactly once.
    const acked: string[] = [];
    for (const tab of senders) {
      await expect.poll(async () => (await tab.h('sendResults')).every((r: { done: boolean }) => r.done), { timeout: 40_000 }).toBe(true);
      for (const r of await tab.h('sendResults')) if (r.ok) acked.push(r.value.text);
    }
    expect(acked.length).toBeGreaterThan(0);
    await senders[0]!.h('send', RESTART_APP, { to: bob, text: 'fence' });
    const bobTexts = async () => (await b.h('received', RESTART_APP)).map((m: { text: string }) => m.text);
    await expect.poll(async () => (await bobTexts()).includes('fence'), { timeout: 20_000 }).toBe(true);
    const got = await bobTexts();
    expect(got.length, 'a message delivered twice').toBe(new Set(got).size);
    expect(acked.filter((t) => !got.includes(t))).toEqual([]);
  } finally {
    try {
      await other.close();
    } finally {
      await srv.close(); // also when closing the context fails: never leak the server process
    }
  }
  assertNoProblems();
});

test('a UserSig that expired while the server was down ends in KICKED_OUT userSigExpired, once', async ({ context, uid }) => {
  const srv = await startRestartableServer();
  const { openTab, assertNoProblems } = tabOpener(srv, context);
  try {
    const user = uid();
    const tab = await openTab();
    const issued = Math.floor(Date.now() / 1000);
    await login(tab, user, { userSig: srv.sig(user, { expire: 4 }) });
    await srv.stop('SIGKILL');
    // Down until the UserSig has expired (the server is what measures it).
    await expect.poll(() => Math.floor(Date.now() / 1000) > issued + 5, { timeout: 10_000, intervals: [250] }).toBe(true);
    await srv.start();
    await expect.poll(() => sdkStates(tab), { timeout: 20_000 }).toEqual(['sdkStateReady', 'kickedOut:userSigExpired', 'sdkStateNotReady']);
    expect(await srv.onlineInstances(user)).toHaveLength(0);
    // Not a loop: the chat stays out, nothing logs it in again.
    const state = (await tab.h('workerState')).value;
    expect(Object.values(state.chats).map((c: any) => c.phase)).toEqual(['kicked']);
    expect(await tab.h('serverTime', RESTART_APP)).toMatchObject({ ok: false, code: 3004 });
    expect(await srv.onlineInstances(user)).toHaveLength(0);
  } finally {
    await srv.close();
  }
  assertNoProblems();
});
