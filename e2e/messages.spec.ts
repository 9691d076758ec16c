/**
 * C2C text messages in the browser, through the SharedWorker (and the leader-tab fallback),
 * against the real server: delivery across tabs and profiles, flow `out` on the sender's
 * other tabs (never on the sending tab), offline recipients, `tabs: 'shared'`, validation
 * codes, and the durable outbox: a server cut, a send timeout, a closed sending tab and a
 * killed worker each end with every message stored and delivered exactly once.
 *
 * "Exactly once" is checked with a fence: after the messages under test, one more message
 * goes the same way; once it has arrived, anything delivered twice would have arrived
 * before it (every stream is ordered), so the lists are compared whole.
 */
import type { BrowserContext } from '@playwright/test';
import { APP, expect, killSharedWorker, readyTab, sharedWorkerTargets, test, withoutSharedWorker, type Tab } from './fixtures.js';
import { RESTART_APP, startRestartableServer, tabOpener } from './server-control.js';

interface Received {
  ID: string;
  text: string;
  flow: 'in' | 'out';
  from: string;
  to: string;
  sequence: number;
  conversationID: string;
}

interface SendResult {
  done: boolean;
  ok?: boolean;
  code?: number;
  value?: { ID: string; text: string; sequence: number; status: string; isResend: boolean };
  status: string | null;
  isResend: boolean | null;
}

const received = (tab: Tab, sdkAppId: number): Promise<Received[]> => tab.h('received', sdkAppId);
const texts = async (tab: Tab, sdkAppId: number): Promise<string[]> => (await received(tab, sdkAppId)).map((m) => m.text);
const sendResults = (tab: Tab): Promise<SendResult[]> => tab.h('sendResults');

async function send(tab: Tab, sdkAppId: number, to: string, text: string) {
  const res = await tab.h('send', sdkAppId, { to, text });
  expect(res, JSON.stringify(res)).toMatchObject({ ok: true, value: { status: 'success', text, to } });
  return res.value as { ID: string; sequence: number; from: string; flow: string; conversationID: string };
}

/** The NET_STATE_CHANGE states a chat reported, in order. */
async function netStates(tab: Tab, sdkAppId: number): Promise<string[]> {
  return (await tab.events(sdkAppId)).filter((e) => e.name === 'netStateChange').map((e) => e.data.state);
}

function expectTransitionsOnly(states: string[]): void {
  for (let i = 1; i < states.length; i++) expect(states[i], `NET_STATE_CHANGE ${states.join(' → ')}`).not.toBe(states[i - 1]);
}

test('A → B across tabs of one profile and across two profiles, in order, once each; the reply comes back', async ({ newContext, openTab, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const a = await readyTab(openTab, APP.many, alice);
  const b1 = await readyTab(openTab, APP.many, bob);
  const other = await newContext();
  try {
    const b2 = await readyTab(openTab, APP.many, bob, { ctx: other });
    const sent = [];
    for (const text of ['one', 'two', 'three']) sent.push(await send(a, APP.many, bob, text));
    expect(sent.map((m) => m.flow)).toEqual(['out', 'out', 'out']);
    expect(sent.map((m) => m.conversationID)).toEqual([`C2C${bob}`, `C2C${bob}`, `C2C${bob}`]);
    expect(sent[1]!.sequence).toBeGreaterThan(sent[0]!.sequence);
    expect(sent[2]!.sequence).toBeGreaterThan(sent[1]!.sequence);

    // Bob's reply is the fence for what alice sent (same server, bob's ordered mailbox).
    const back = await send(b2, APP.many, alice, 'back');
    await expect.poll(() => texts(a, APP.many)).toEqual(['back']);
    for (const b of [b1, b2]) {
      await expect.poll(() => texts(b, APP.many)).toEqual(b === b1 ? ['one', 'two', 'three', 'back'] : ['one', 'two', 'three']);
    }
    const inbox = await received(b1, APP.many);
    expect(inbox.slice(0, 3).map((m) => [m.ID, m.flow, m.from, m.to, m.conversationID])).toEqual(
      sent.map((m) => [m.ID, 'in', alice, bob, `C2C${alice}`]),
    );
    expect(inbox.map((m) => m.sequence)).toEqual([...inbox.map((m) => m.sequence)].sort((x, y) => x - y));
    // b1 is bob's other instance: it sees bob's reply as flow out; b2 (the sender) does not.
    expect(inbox[3]).toMatchObject({ ID: back.ID, flow: 'out', from: bob, to: alice, conversationID: `C2C${alice}` });
    expect((await received(b2, APP.many)).map((m) => m.ID)).toEqual(sent.map((m) => m.ID));
    const reply = (await received(a, APP.many))[0]!;
    expect(reply).toMatchObject({ ID: back.ID, flow: 'in', from: bob, conversationID: `C2C${bob}` });
  } finally {
    await other.close();
  }
});

test("the sender's other tabs get its message (flow out); the sending tab gets no MESSAGE_RECEIVED", async ({ openTab, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const a1 = await readyTab(openTab, APP.many, alice);
  const a2 = await readyTab(openTab, APP.many, alice);
  const b = await readyTab(openTab, APP.many, bob);
  const hi = await send(a1, APP.many, bob, 'hi');
  await expect.poll(() => received(a2, APP.many)).toEqual([
    expect.objectContaining({ ID: hi.ID, text: 'hi', flow: 'out', from: alice, to: bob, conversationID: `C2C${bob}`, sequence: hi.sequence }),
  ]);
  await expect.poll(() => received(b, APP.many)).toEqual([expect.objectContaining({ ID: hi.ID, flow: 'in' })]);
  // Fence: a2 sends; once a1 has that one (flow out), a1 would have had 'hi' before it.
  const fence = await send(a2, APP.many, bob, 'fence');
  await expect.poll(() => received(a1, APP.many)).toEqual([expect.objectContaining({ ID: fence.ID, text: 'fence', flow: 'out' })]);
  await expect.poll(() => texts(b, APP.many)).toEqual(['hi', 'fence']);
  expect(await texts(a2, APP.many)).toEqual(['hi']);
});

test('an offline recipient gets everything after its login, in order, once', async ({ newContext, openTab, uid }) => {
  const alice = uid('alice');
  const carol = uid('carol');
  const a = await readyTab(openTab, APP.many, alice);
  const sent = [];
  for (let i = 0; i < 5; i++) sent.push(await send(a, APP.many, carol, `m${i}`));
  const other = await newContext();
  try {
    const c = await readyTab(openTab, APP.many, carol, { ctx: other });
    await expect.poll(() => texts(c, APP.many)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    const inbox = await received(c, APP.many);
    expect(inbox.map((m) => m.ID)).toEqual(sent.map((m) => m.ID));
    expect(inbox.map((m) => m.sequence)).toEqual([1, 2, 3, 4, 5]);
    expect(new Set(inbox.map((m) => m.flow))).toEqual(new Set(['in']));
    // Nothing of it was delivered before SDK_READY or twice.
    const events = await c.events(APP.many);
    const firstMessages = events.findIndex((e) => e.name === 'onMessageReceived');
    expect(events.findIndex((e) => e.name === 'sdkStateReady')).toBeLessThan(firstMessages);
    await send(a, APP.many, carol, 'fence');
    await expect.poll(() => texts(c, APP.many)).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'fence']);
  } finally {
    await other.close();
  }
});

test("tabs: 'shared': every tab attached to the shared instance gets each message once", async ({ newContext, openTab, server, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const shared = { create: { tabs: 'shared' } };
  const t: Tab[] = [];
  for (let i = 0; i < 3; i++) t.push(await readyTab(openTab, APP.shared, alice, shared));
  const [t0, t1, t2] = t as [Tab, Tab, Tab];
  expect(await server.onlineInstances(APP.shared, alice)).toHaveLength(1);
  const other = await newContext();
  try {
    const b = await readyTab(openTab, APP.shared, bob, { ctx: other });
    for (const text of ['x1', 'x2', 'x3']) await send(b, APP.shared, alice, text);
    for (const tab of t) await expect.poll(() => texts(tab, APP.shared)).toEqual(['x1', 'x2', 'x3']);
    // t0 sends: its sibling tabs see it (flow out), t0 itself does not.
    await send(t0, APP.shared, bob, 'y');
    await send(t1, APP.shared, bob, 'z');
    await send(b, APP.shared, alice, 'w'); // the fence
    await expect.poll(() => texts(t0, APP.shared)).toEqual(['x1', 'x2', 'x3', 'z', 'w']);
    await expect.poll(() => texts(t1, APP.shared)).toEqual(['x1', 'x2', 'x3', 'y', 'w']);
    await expect.poll(() => texts(t2, APP.shared)).toEqual(['x1', 'x2', 'x3', 'y', 'z', 'w']);
    expect((await received(t2, APP.shared)).map((m) => m.flow)).toEqual(['in', 'in', 'in', 'out', 'out', 'in']);
    await expect.poll(() => texts(b, APP.shared)).toEqual(['y', 'z']);
  } finally {
    await other.close();
  }
});

test('invalid messages reject with their codes and status fail; a 12 KB text still goes', async ({ openTab, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const a = await readyTab(openTab, APP.many, alice);
  const b = await readyTab(openTab, APP.many, bob);
  expect(await a.h('call', APP.many, 'sendMessage', [{ to: bob, payload: { text: 'x' } }])).toMatchObject({ ok: false, code: 2105 });
  const cases: Array<[Record<string, string>, number]> = [
    [{ to: bob, text: 'x', conversationType: 'GROUP' }, 2106],
    [{ to: 'u'.repeat(129), text: 'x' }, 9021],
    [{ to: bob, text: '' }, 9020],
    [{ to: bob, text: 'a'.repeat(12_289) }, 80002],
    [{ to: bob, text: '中'.repeat(4_097) }, 80002],
  ];
  for (const [options, code] of cases) {
    const res = await a.h('send', APP.many, options);
    expect(res, `${JSON.stringify(options).slice(0, 60)} → ${code}`).toMatchObject({ ok: false, code, isError: true, data: { message: { status: 'fail' } } });
  }
  expect(await a.h('call', APP.many, 'createTextMessage', [{ to: '', conversationType: 'C2C', payload: { text: 'x' } }])).toMatchObject({
    ok: false,
    message: 'Params validate failed.',
  });
  // The limit itself: 4,096 CJK characters are 12,288 bytes of UTF-8.
  await send(a, APP.many, bob, '中'.repeat(4_096));
  await send(a, APP.many, bob, 'fence');
  await expect.poll(async () => (await texts(b, APP.many)).map((t) => t.length)).toEqual([4_096, 5]);
  expect(await a.h('outbox')).toEqual([]);
});

test('a tab that misses message envelopes pulls them from the worker on resync: nothing lost, nothing twice', async ({ newContext, openTab, uid }) => {
  const lossy = await newContext();
  // The page drops the next N `messages` envelopes of the worker, as a frozen tab would:
  // on its events channel, and on the port where the SharedWorker posts them.
  await lossy.addInitScript(() => {
    const scope = window as unknown as { __dropMessageEnvelopes: number; BroadcastChannel: typeof BroadcastChannel };
    scope.__dropMessageEnvelopes = 0;
    const dropped = new WeakSet<Event>();
    /** One decision per event, whatever the number of listeners it reaches. */
    const drop = (event: MessageEvent) => {
      if (dropped.has(event)) return true;
      if (event.data?.type !== 'messages' || scope.__dropMessageEnvelopes <= 0) return false;
      scope.__dropMessageEnvelopes--;
      dropped.add(event);
      return true;
    };
    const Native = scope.BroadcastChannel;
    scope.BroadcastChannel = class extends Native {
      override set onmessage(handler: ((event: MessageEvent) => void) | null) {
        super.onmessage = handler && ((event: MessageEvent) => {
          if (!drop(event)) handler.call(this, event);
        });
      }
      override get onmessage() {
        return super.onmessage;
      }
    };
    const add = MessagePort.prototype.addEventListener;
    MessagePort.prototype.addEventListener = function (this: MessagePort, type: string, listener: unknown, options?: unknown) {
      if (type !== 'message' || typeof listener !== 'function') return add.call(this, type, listener as EventListener, options as AddEventListenerOptions);
      const handler = listener as (event: MessageEvent) => void;
      return add.call(this, type, ((event: MessageEvent) => { if (!drop(event)) handler.call(this, event); }) as EventListener, options as AddEventListenerOptions);
    } as typeof MessagePort.prototype.addEventListener;
  });
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const a = await readyTab(openTab, APP.many, alice);
    const b = await readyTab(openTab, APP.many, bob, { ctx: lossy });
    await b.page.evaluate(() => { (window as unknown as { __dropMessageEnvelopes: number }).__dropMessageEnvelopes = 2; });
    await send(a, APP.many, bob, 'g1');
    await send(a, APP.many, bob, 'g2');
    await expect.poll(() => b.page.evaluate(() => (window as unknown as { __dropMessageEnvelopes: number }).__dropMessageEnvelopes)).toBe(0);
    // The next envelope shows the gap in the sequence (here the `conversations` envelope that
    // follows each message): the resync brings g1 and g2, in order, before anything later.
    await expect.poll(() => texts(b, APP.many)).toEqual(['g1', 'g2']);
    await send(a, APP.many, bob, 'g3');
    await expect.poll(() => texts(b, APP.many)).toEqual(['g1', 'g2', 'g3']);
    await send(a, APP.many, bob, 'fence');
    await expect.poll(() => texts(b, APP.many)).toEqual(['g1', 'g2', 'g3', 'fence']);
    expect((await b.events(APP.many)).filter((e) => e.name === 'error')).toEqual([]);
  } finally {
    await lossy.close();
  }
});

test('the leader-tab fallback (no SharedWorker) carries messages the same way', async ({ context, openTab, uid }) => {
  await withoutSharedWorker(context);
  const alice = uid('alice');
  const bob = uid('bob');
  const a1 = await readyTab(openTab, APP.many, alice);
  const a2 = await readyTab(openTab, APP.many, alice);
  const b = await readyTab(openTab, APP.many, bob);
  expect((await b.h('workerState')).value.name).toMatch(/^leader:/);
  // a2 is a follower: its send goes to the leader over the channel.
  const hi = await send(a2, APP.many, bob, 'hi');
  await send(b, APP.many, alice, 'fence');
  await expect.poll(() => texts(b, APP.many)).toEqual(['hi']);
  await expect.poll(() => received(a1, APP.many)).toEqual([
    expect.objectContaining({ ID: hi.ID, flow: 'out' }),
    expect.objectContaining({ text: 'fence', flow: 'in' }),
  ]);
  await expect.poll(() => texts(a2, APP.many)).toEqual(['fence']);
});

test('the server goes away in the middle of a burst: every message is stored and delivered once, in order', async ({ newContext, context, uid }) => {
  const srv = await startRestartableServer();
  const { openTab, assertNoProblems } = tabOpener(srv, context);
  const other = await newContext();
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const a = await readyTab(openTab, RESTART_APP, alice);
    const b = await readyTab(openTab, RESTART_APP, bob, { ctx: other });
    const burst = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await a.h('startSendMany', RESTART_APP, bob, burst.slice(0, 10));
    await srv.stop('SIGKILL'); // no goodbye: some sends are stored, some in flight, some not sent yet
    await expect.poll(async () => (await netStates(a, RESTART_APP)).at(-1)).toBe('connecting');
    await a.h('startSendMany', RESTART_APP, bob, burst.slice(10)); // queued while the server is down
    await srv.start();
    await expect.poll(async () => (await sendResults(a)).filter((r) => r.done).length, { timeout: 30_000 }).toBe(20);
    const results = await sendResults(a);
    expect(results.map((r) => r.ok)).toEqual(burst.map(() => true));
    expect(new Set(results.map((r) => r.value!.ID)).size).toBe(20);
    await send(a, RESTART_APP, bob, 'fence');
    await expect.poll(() => texts(b, RESTART_APP), { timeout: 20_000 }).toEqual([...burst, 'fence']);
    expect((await received(b, RESTART_APP)).slice(0, 20).map((m) => m.ID)).toEqual(results.map((r) => r.value!.ID));
    expect(await a.h('outbox')).toEqual([]);
    expect(await texts(a, RESTART_APP)).toEqual([]);
    const states = await netStates(a, RESTART_APP);
    expectTransitionsOnly(states);
    expect(states.slice(-2)).toEqual(['connecting', 'connected']);
    expect(await a.h('isReady', RESTART_APP)).toBe(true);
  } finally {
    await other.close();
    await srv.close();
  }
  assertNoProblems();
});

test('a send times out (9022) while the server is down, stays queued, and is delivered once when it returns', async ({ newContext, context, uid }) => {
  const srv = await startRestartableServer();
  const { openTab, assertNoProblems } = tabOpener(srv, context);
  const other = await newContext();
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const a = await readyTab(openTab, RESTART_APP, alice, { create: { sendTimeoutMs: 1_500 } });
    const b = await readyTab(openTab, RESTART_APP, bob, { ctx: other });
    await srv.stop();
    const [index] = await a.h('startSendMany', RESTART_APP, bob, ['late']);
    // The tab's 1.5 s sendTimeoutMs, not the 30 s default: the poll gives up long before that.
    await expect.poll(async () => (await sendResults(a))[index], { timeout: 10_000 }).toMatchObject({ done: true, ok: false, code: 9022, status: 'fail' });
    expect(await a.h('outbox')).toEqual([expect.objectContaining({ from: alice, to: bob, text: 'late' })]);
    await srv.start();
    await expect.poll(() => texts(b, RESTART_APP), { timeout: 20_000 }).toEqual(['late']);
    await expect.poll(() => a.h('outbox')).toEqual([]);
    // Sending the same Message again returns the stored message: no second one.
    const again = await a.h('resend', index);
    await expect.poll(async () => (await sendResults(a))[again]).toMatchObject({ done: true, ok: true, isResend: true, status: 'success' });
    const id = (await sendResults(a))[again]!.value!.ID;
    expect((await received(b, RESTART_APP))[0]!.ID).toBe(id);
    await send(a, RESTART_APP, bob, 'fence');
    await expect.poll(() => texts(b, RESTART_APP)).toEqual(['late', 'fence']);
  } finally {
    await other.close();
    await srv.close();
  }
  assertNoProblems();
});

// Chromium only: it waits for the worker's end through CDP `shared_worker` targets, which
// Firefox does not expose (WebDriver BiDi lists no shared workers); Firefox runs the
// closed-tab outbox property through the tab that stays (the next test but one).
test('a message queued by a tab that closed is sent by the next worker of the profile, once', { tag: ['@sharedworker-only', '@chromium-only'] }, async ({ newContext, uid }) => {
  const srv = await startRestartableServer();
  const profile = await newContext();
  const other = await newContext();
  const { openTab, assertNoProblems } = tabOpener(srv, profile);
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const a = await readyTab(openTab, RESTART_APP, alice);
    const b = await readyTab(openTab, RESTART_APP, bob, { ctx: other });
    const blank = await profile.newPage(); // keeps the profile open, starts no worker
    await srv.stop();
    await a.h('startSendMany', RESTART_APP, bob, ['from a closed tab']);
    await expect.poll(() => a.h('outbox')).toEqual([expect.objectContaining({ text: 'from a closed tab' })]);
    await a.page.close();
    await expect.poll(async () => (await sharedWorkerTargets(blank)).length).toBe(0); // the worker is gone
    await srv.start();
    // A new tab of the user: a new worker, whose login adopts the outbox entry.
    const a2 = await readyTab(openTab, RESTART_APP, alice);
    await expect.poll(() => texts(b, RESTART_APP), { timeout: 20_000 }).toEqual(['from a closed tab']);
    // Nobody else would ever show it on alice's side: the adopting tab gets it as flow out.
    await expect.poll(() => received(a2, RESTART_APP)).toEqual([expect.objectContaining({ text: 'from a closed tab', flow: 'out', to: bob })]);
    await expect.poll(() => a2.h('outbox')).toEqual([]);
    await send(a2, RESTART_APP, bob, 'fence');
    await expect.poll(() => texts(b, RESTART_APP)).toEqual(['from a closed tab', 'fence']);
    expect(await texts(a2, RESTART_APP)).toEqual(['from a closed tab']);
  } finally {
    await profile.close();
    await other.close();
    await srv.close();
  }
  assertNoProblems();
});

test("a message queued by a closed tab is sent by the user's tab that stays, when the server returns", async ({ newContext, context, uid, noSharedWorker }) => {
  const srv = await startRestartableServer();
  const { openTab, assertNoProblems } = tabOpener(srv, context);
  const other = await newContext();
  try {
    const alice = uid('alice');
    const bob = uid('bob');
    const a1 = await readyTab(openTab, RESTART_APP, alice);
    const a2 = await readyTab(openTab, RESTART_APP, alice);
    const b = await readyTab(openTab, RESTART_APP, bob, { ctx: other });
    await srv.stop();
    await a1.h('startSendMany', RESTART_APP, bob, ['kept']);
    await expect.poll(() => a2.h('outbox')).toEqual([expect.objectContaining({ text: 'kept' })]);
    await a1.page.close();
    if (noSharedWorker) {
      // a1 was the leader: its hub died with it, and a2's new hub takes a2's session over
      // once the server answers again (it keeps trying for 10 s), adopting the outbox.
      await srv.start();
      await expect.poll(async () => (await a2.h('workerState')).value?.tabs.length).toBe(1);
    } else {
      await expect.poll(async () => (await a2.h('workerState')).value?.tabs.length).toBe(1);
      expect(await a2.h('outbox')).toHaveLength(1); // a closed tab is not a logout: nothing dropped
      await srv.start();
    }
    await expect.poll(() => texts(b, RESTART_APP), { timeout: 20_000 }).toEqual(['kept']);
    await expect.poll(() => received(a2, RESTART_APP)).toEqual([expect.objectContaining({ text: 'kept', flow: 'out' })]);
    await expect.poll(() => a2.h('outbox')).toEqual([]);
    await send(a2, RESTART_APP, bob, 'fence');
    await expect.poll(() => texts(b, RESTART_APP)).toEqual(['kept', 'fence']);
  } finally {
    await other.close();
    await srv.close();
  }
  assertNoProblems();
});

// Chromium only: the worker is killed through CDP; a Firefox test has no handle to end a
// SharedWorker while its tabs live (WebDriver BiDi lists no shared workers).
test('the worker is killed during a burst of sends: the sends complete in the new worker, each message once', { tag: ['@sharedworker-only', '@chromium-only'] }, async ({ newContext, openTab, uid }) => {
  const alice = uid('alice');
  const bob = uid('bob');
  const a = await readyTab(openTab, APP.many, alice);
  const other = await newContext();
  try {
    const b = await readyTab(openTab, APP.many, bob, { ctx: other });
    const epoch = (await a.h('workerState')).value.epoch;
    const burst = Array.from({ length: 10 }, (_, i) => `k${i}`);
    await a.h('startSendMany', APP.many, bob, burst);
    await killSharedWorker(a.page);
    await expect.poll(async () => (await sendResults(a)).filter((r) => r.done).length, { timeout: 30_000 }).toBe(10);
    const results = await sendResults(a);
    expect(results.map((r) => r.ok), JSON.stringify(results.map((r) => r.code))).toEqual(burst.map(() => true));
    expect((await a.h('workerState')).value.epoch).not.toBe(epoch);
    await send(a, APP.many, bob, 'fence');
    await expect.poll(async () => (await texts(b, APP.many)).length).toBe(11);
    const inbox = await texts(b, APP.many);
    expect(inbox[10]).toBe('fence');
    expect([...inbox.slice(0, 10)].sort()).toEqual([...burst].sort());
    expect((await received(b, APP.many)).slice(0, 10).map((m) => m.ID).sort()).toEqual(results.map((r) => r.value!.ID).sort());
    expect(await a.h('outbox')).toEqual([]);
    // Its own messages never come back to the sending tab, not even from the new worker.
    await send(b, APP.many, alice, 'back');
    await expect.poll(() => texts(a, APP.many)).toEqual(['back']);
    expect(await a.h('isReady', APP.many)).toBe(true);
    expectTransitionsOnly(await netStates(a, APP.many));
  } finally {
    await other.close();
  }
});
