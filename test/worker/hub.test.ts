/**
 * The hub's message path on its own (worker/hub.ts), with a fake host and a fake engine:
 * envelopes addressed to the instance key, the bounded per-instance buffer a resyncing tab
 * pulls from (`register` with `after`), the gap report when the buffer no longer reaches
 * back far enough, and the logout semantics of a tab that goes away (queued messages kept).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILD, HUB_VERSION, type ChatSpec, type Envelope, type MessagesEnvelope } from '../../src/protocol/hub-protocol.js';
import type { NetState, OutgoingText } from '../../src/protocol/data.js';
import type { InstanceEvents, LoginParams, SessionHandle } from '../../src/core/types.js';
import type { WireMessage } from '../../src/protocol/frames.js';
import { Hub, type HubEngine, type HubHost } from '../../worker/hub.js';
import { BUFFER_MAX_MESSAGES } from '../../worker/message-buffer.js';

class FakeEngine implements HubEngine {
  readonly events: InstanceEvents[] = [];
  readonly logouts: Array<{ keepQueued: boolean }> = [];
  readonly sent: OutgoingText[] = [];
  netState: NetState = 'connected';
  private nextInstId = 1;

  async login(params: LoginParams, events: InstanceEvents) {
    this.events.push(events);
    const handle: SessionHandle = { instId: this.nextInstId++, token: 't', userID: params.userID, sdkAppId: params.sdkAppId, platform: params.platform, lastSeq: 0 };
    return { handle, result: { instId: handle.instId, userID: params.userID, serverTime: Date.now(), expireAt: 0 } };
  }
  resume(params: LoginParams, _saved: { instId: number; token: string }, events: InstanceEvents) {
    return this.login(params, events);
  }
  async logout(_handle: SessionHandle, options: { keepQueued?: boolean } = {}) {
    this.logouts.push({ keepQueued: options.keepQueued === true });
  }
  async send(handle: SessionHandle, message: OutgoingText): Promise<WireMessage> {
    this.sent.push(message);
    return { id: `id-${message.clientMsgId}`, seq: 1, flow: 'out', from: handle.userID, to: message.to, text: message.text, time: Date.now(), clientMsgId: message.clientMsgId };
  }
  async conversation(): Promise<unknown> {
    return { conversations: [], total: 0 };
  }
  getServerTime() {
    return Date.now();
  }
  onNetState() {
    return () => {};
  }
  close() {}
}

function setup() {
  const engine = new FakeEngine();
  const posted: Envelope[] = [];
  /** Which tab each envelope was posted to, in order. */
  const delivered: Array<{ tabId: string; envelope: Envelope }> = [];
  const forgotten: string[] = [];
  const gone = new Map<string, () => void>();
  const host: HubHost = {
    epoch: 'epoch-1',
    workerLock: 'lock',
    name: 'test',
    createEngine: () => engine,
    deliver: (tabId, envelope) => {
      posted.push(envelope);
      delivered.push({ tabId, envelope });
    },
    forgetTab: (tabId) => forgotten.push(tabId),
    watchTab: (tabId, onGone) => {
      gone.set(tabId, onGone);
      return () => gone.delete(tabId);
    },
    socketStats: () => ({ open: 1, opened: 1 }),
    persist: () => {},
    releaseOrphan: async () => {},
    dropRun: async () => {},
    log: { debug() {}, info() {}, warn() {}, error() {} },
  };
  return { hub: new Hub(host), engine, posted, delivered, forgotten, gone };
}

const spec = (chatId: string): ChatSpec => ({ chatId, server: 'ws://server/ws', sdkAppId: 1, tabs: 'separate' });
const register = (tabId: string, after?: { epoch: string; seq: number }) => ({ tabId, build: BUILD, hubVersion: HUB_VERSION, resume: [], ...(after ? { after } : {}) });

function message(seq: number): WireMessage {
  return { id: `m${seq}`, seq, flow: 'in', from: 'bob', to: 'alice', text: `text ${seq}`, time: 0 };
}

test('messages go out addressed to the instance; a resync gets what followed its position', async () => {
  const { hub, engine, posted } = setup();
  const login = await hub.login('tab1', spec('tab1/1'), { userID: 'alice', userSig: 'sig' });
  assert.ok(login.ok);
  const events = engine.events[0]!;
  assert.equal(events.reportOwn, true, 'the hub asks for own sends (it tells its chats apart)');
  for (let seq = 1; seq <= 3; seq++) events.onMessages!([message(seq)]);
  const envelopes = posted.filter((e): e is MessagesEnvelope => e.type === 'messages');
  assert.deepEqual(envelopes.map((e) => [e.target, e.messages[0]!.seq]), [['chat|tab1/1', 1], ['chat|tab1/1', 2], ['chat|tab1/1', 3]]);

  // The tab applied the first envelope only: its resync brings the two others, in order.
  const snapshot = await hub.register(register('tab1', { epoch: 'epoch-1', seq: envelopes[0]!.seq }));
  assert.ok(snapshot.ok);
  assert.deepEqual(snapshot.value.messages.map((e) => e.messages[0]!.seq), [2, 3]);
  assert.deepEqual(snapshot.value.gaps, []);
  // Another tab, or a first register, gets none of them.
  const other = await hub.register(register('tab2', { epoch: 'epoch-1', seq: 0 }));
  assert.ok(other.ok);
  assert.deepEqual(other.value.messages, []);
  // A tab coming from a dead worker (another epoch) gets all of this epoch's.
  const fromDead = await hub.register(register('tab1', { epoch: 'epoch-0', seq: 99 }));
  assert.ok(fromDead.ok);
  assert.equal(fromDead.value.messages.length, 3);
});

test(`the buffer keeps the last ${BUFFER_MAX_MESSAGES} messages; a resync from before them reports a gap`, async () => {
  const { hub, engine } = setup();
  await hub.login('tab1', spec('tab1/1'), { userID: 'alice', userSig: 'sig' });
  const events = engine.events[0]!;
  const total = BUFFER_MAX_MESSAGES + 20;
  for (let seq = 1; seq <= total; seq++) events.onMessages!([message(seq)]);
  const snapshot = await hub.register(register('tab1', { epoch: 'epoch-1', seq: 0 }));
  assert.ok(snapshot.ok);
  const seqs = snapshot.value.messages.map((e) => e.messages[0]!.seq);
  assert.equal(seqs.length, BUFFER_MAX_MESSAGES);
  assert.equal(seqs[seqs.length - 1], total);
  assert.deepEqual(snapshot.value.gaps, ['chat|tab1/1']);
});

test('a tab that goes away leaves its queued messages in the outbox; logout and destroy drop them', async () => {
  const { hub, engine, gone } = setup();
  await hub.login('tab1', spec('tab1/1'), { userID: 'alice', userSig: 'sig' });
  await hub.login('tab1', spec('tab1/2'), { userID: 'bob', userSig: 'sig' });
  await hub.login('tab2', spec('tab2/1'), { userID: 'carol', userSig: 'sig' });
  const sent = await hub.sendText('tab1', 'tab1/1', { clientMsgId: 'c1', to: 'bob', text: 'hi' }, 1_000);
  assert.ok(sent.ok);
  assert.deepEqual(engine.sent.map((m) => m.clientMsgId), ['c1']);
  const refused = await hub.sendText('tab2', 'tab1/1', { clientMsgId: 'c2', to: 'bob', text: 'hi' }, 1_000);
  assert.ok(!refused.ok && refused.error.code === 2024, 'only the chat of its own tab');
  await hub.logout('tab1', 'tab1/1');
  await hub.forget('tab1', 'tab1/2');
  assert.deepEqual(engine.logouts, [{ keepQueued: false }, { keepQueued: false }]);
  gone.get('tab2')!();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(engine.logouts[2], { keepQueued: true });
});

test('a register that crosses a take-over of the same chat waits for its outcome (never answers loggingIn)', async () => {
  const { hub, engine } = setup();
  // The server answers the resume only when the test says so.
  let answer!: () => void;
  const answered = new Promise<void>((resolve) => { answer = resolve; });
  const resumed: number[] = [];
  engine.resume = async (params, saved, events) => {
    resumed.push(saved.instId);
    await answered;
    return engine.login(params, events);
  };
  const resume = { ...spec('tab1/1'), userID: 'alice', userSig: 'sig', instId: 7, token: 'tok' };
  // The first register starts the take-over; a second one (say a resync the new leader
  // answered, then the take-over register) arrives while the resume is still in flight.
  const first = hub.register({ ...register('tab1'), resume: [resume] });
  const second = hub.register({ ...register('tab1'), resume: [resume] });
  let secondDone = false;
  void second.then(() => { secondDone = true; });
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(secondDone, false, 'the second register waits for the take-over');
  answer();
  for (const reply of [await first, await second]) {
    assert.ok(reply.ok);
    assert.equal(reply.value.chats['tab1/1']!.phase, 'ready');
  }
  assert.deepEqual(resumed, [7], 'one take-over');
});

test('envelopes go only to the tabs they concern, each with the seq of that tab\'s previous one', async () => {
  const { hub, engine, delivered, forgotten, gone } = setup();
  // Three tabs: tab1 and tab2 share one instance (shared mode), tab3 has its own.
  const shared = (chatId: string): ChatSpec => ({ ...spec(chatId), tabs: 'shared' });
  await hub.login('tab1', shared('tab1/1'), { userID: 'alice', userSig: 'sig' });
  await hub.login('tab2', shared('tab2/1'), { userID: 'alice', userSig: 'sig' });
  await hub.login('tab3', spec('tab3/1'), { userID: 'carol', userSig: 'sig' });
  const alice = engine.events[0]!;
  const carol = engine.events[1]!;
  assert.equal(engine.events.length, 2, 'one instance for alice, one for carol');
  delivered.length = 0;

  carol.onMessages!([message(1)]);
  alice.onMessages!([message(1)]);
  carol.onMessages!([message(2)]);
  const to = (tabId: string) => delivered.filter((d) => d.tabId === tabId).map((d) => d.envelope);
  assert.deepEqual(to('tab3').map((e) => e.target), ['chat|tab3/1', 'chat|tab3/1'], 'tab3 gets its own instance\'s envelopes only');
  assert.deepEqual(to('tab1').map((e) => e.target), ['shared|ws://server/ws|1|alice']);
  assert.deepEqual(to('tab2').map((e) => e.target), ['shared|ws://server/ws|1|alice']);
  // The same seq for both tabs of the shared instance; `prev` chains each tab's own stream.
  assert.equal(to('tab1')[0]!.seq, to('tab2')[0]!.seq);
  const [c1, c2] = to('tab3');
  assert.equal(c2!.prev, c1!.seq, 'tab3\'s second envelope points at its first, across the one it did not get');
  assert.ok(c2!.seq > to('tab1')[0]!.seq && to('tab1')[0]!.seq > c1!.seq);

  // A kick of the shared instance reaches both of its tabs, not tab3.
  delivered.length = 0;
  alice.onKicked!('multipleAccount');
  assert.deepEqual(delivered.map((d) => [d.tabId, d.envelope.type]).sort(), [['tab1', 'kicked'], ['tab2', 'kicked']]);

  // A gone tab gets nothing more, and its channel is closed.
  gone.get('tab3')!();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert.deepEqual(forgotten, ['tab3']);
  delivered.length = 0;
  carol.onMessages!([message(3)]);
  assert.deepEqual(delivered, []);
});
