/**
 * A follower's link to the leader's hub (worker/leader-link.ts): how it tells a stalled hub
 * (its tab frozen with its worker) from a slow command, what its calls do meanwhile, and how
 * it recovers. A fake leader answers on the link's channel; the clock is node:test's mock
 * (setTimeout and Date), so "the hub did not answer within the bound" is exact, never a sleep.
 */
import { afterEach, beforeEach, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE } from '../../src/protocol/codes.js';
import type { ErrorData } from '../../src/protocol/data.js';
import type { HubApi, RpcMessage, RpcMethod } from '../../src/protocol/hub-protocol.js';
import { ChatError } from '../../src/core/errors.js';
import { PONG_WAIT_MS, PROBE_AFTER_MS, RemoteLink } from '../../worker/leader-link.js';

const EPOCH = 'leader-epoch';
const TAB = 'follower-tab';

/**
 * The leader's side of the channel: answers pings, and requests unless their method is held
 * back; while `frozen` it takes nothing in, and catches up, in order, when it thaws.
 */
class FakeLeader {
  frozen = false;
  readonly held = new Set<RpcMethod>();
  readonly pings: string[] = [];
  readonly waiting: Array<Extract<RpcMessage, { kind: 'req' }>> = [];
  private readonly inbox: RpcMessage[] = [];
  link!: RemoteLink;

  receive(message: RpcMessage): void {
    if (this.frozen) {
      this.inbox.push(message);
      return;
    }
    queueMicrotask(() => this.handle(message));
  }

  thaw(): void {
    this.frozen = false;
    for (const message of this.inbox.splice(0)) this.handle(message);
  }

  /** Answer a request held back. */
  answer(method: RpcMethod, value: unknown): void {
    const index = this.waiting.findIndex((req) => req.method === method);
    assert.ok(index >= 0, `a ${method} request waits`);
    const [req] = this.waiting.splice(index, 1);
    this.link.receive({ kind: 'res', id: req!.id, to: req!.from, epoch: EPOCH, value });
  }

  private handle(message: RpcMessage): void {
    if (message.kind === 'ping') {
      this.pings.push(message.id);
      this.link.receive({ kind: 'pong', id: message.id, to: message.from, epoch: EPOCH });
    } else if (message.kind === 'req') {
      if (this.held.has(message.method)) this.waiting.push(message);
      else this.link.receive({ kind: 'res', id: message.id, to: message.from, epoch: EPOCH, value: { ok: true, value: message.method } });
    }
  }
}

let leader: FakeLeader;
let link: RemoteLink;
let closed: RemoteLink[];
let stalls: Array<ErrorData | null>;

beforeEach(() => {
  mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 1_000_000 });
  leader = new FakeLeader();
  closed = [];
  stalls = [];
  let next = 1;
  link = new RemoteLink({
    tabId: TAB,
    epoch: EPOCH,
    post: (message) => leader.receive(message),
    locks: null,
    nextId: () => `${TAB}:${next++}`,
    onClose: (l) => closed.push(l),
  });
  leader.link = link;
  link.watch((stall) => stalls.push(stall));
});

afterEach(() => {
  link.close();
  mock.timers.reset();
});

/** Let promise callbacks and queued microtasks run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/** Advance the mock clock by `ms`, then settle. */
async function tick(ms: number): Promise<void> {
  mock.timers.tick(ms);
  await settle();
}

/** The outcome of `promise` so far. */
function track<T>(promise: Promise<T>): { done: boolean; value?: T; error?: ChatError } {
  const out: { done: boolean; value?: T; error?: ChatError } = { done: false };
  promise.then((value) => Object.assign(out, { done: true, value }), (error: ChatError) => Object.assign(out, { done: true, error }));
  return out;
}

const spec = { chatId: `${TAB}/1`, server: 'ws://x/ws', sdkAppId: 1, tabs: 'separate' as const };
const login = (api: HubApi) => api.login(TAB, spec, { userID: 'u', userSig: 's' });

test('an answered command never pings the leader', async () => {
  const state = track(link.api.getState());
  await settle();
  assert.deepEqual(state, { done: true, value: { ok: true, value: 'getState' } });
  await tick(PROBE_AFTER_MS + PONG_WAIT_MS);
  assert.deepEqual(leader.pings, []);
  assert.equal(stalls.length, 0);
});

test('a slow command is not a stall: the leader answers the pings, the command its answer', async () => {
  leader.held.add('login');
  const reply = track(login(link.api));
  await settle();
  assert.equal(leader.waiting.length, 1);
  await tick(PROBE_AFTER_MS);
  assert.equal(leader.pings.length, 1, 'pinged once the command waited PROBE_AFTER_MS');
  // The hub runs: one ping per PROBE_AFTER_MS while the command waits, never a stall.
  for (let i = 0; i < 5; i++) await tick(PROBE_AFTER_MS);
  assert.equal(leader.pings.length, 6);
  assert.equal(stalls.length, 0);
  assert.equal(reply.done, false);
  leader.answer('login', { ok: true, value: 'logged in' });
  await settle();
  assert.deepEqual(reply, { done: true, value: { ok: true, value: 'logged in' } });
  await tick(5 * PROBE_AFTER_MS);
  assert.equal(leader.pings.length, 6, 'nothing waits: no more pings');
});

test('a silent leader: 9009 after the bound, sends and reads fail, a login waits, new calls fail at once; the first answer ends it', async () => {
  leader.frozen = true;
  const send = track(link.api.sendText(TAB, spec.chatId, { clientMsgId: 'm1', to: 'v', text: 'hi' }, 30_000));
  const waitingLogin = track(login(link.api));
  await tick(PROBE_AFTER_MS);
  assert.equal(stalls.length, 0, 'a ping is out, not answered yet');
  await tick(PONG_WAIT_MS - 1);
  assert.equal(stalls.length, 0);
  await tick(1);
  // Bound reached: the hub is stalled.
  assert.equal(stalls.length, 1);
  assert.equal(stalls[0]!.code, CODE.HUB_UNRESPONSIVE);
  assert.equal(link.stall?.code, CODE.HUB_UNRESPONSIVE);
  assert.equal(send.done, true);
  assert.equal(send.error?.code, CODE.HUB_UNRESPONSIVE, 'the send does not hang');
  assert.equal(waitingLogin.done, false, 'a login the hub may still carry out keeps waiting');
  // New calls are not queued on a hub that does not run.
  const state = track(link.api.getState());
  await settle();
  assert.equal(state.error?.code, CODE.HUB_UNRESPONSIVE);
  // Still stalled: it keeps pinging, every PONG_WAIT_MS, and reports the stall once.
  await tick(3 * PONG_WAIT_MS);
  assert.equal(stalls.length, 1);

  // The leader runs again: it answers what it got, in order; the first answer ends the stall.
  leader.thaw();
  await settle();
  assert.deepEqual(stalls.slice(1), [null]);
  assert.equal(link.stall, null);
  assert.deepEqual(waitingLogin, { done: true, value: { ok: true, value: 'login' } }, 'the login it held is answered');
  const after = track(link.api.getState());
  await settle();
  assert.deepEqual(after, { done: true, value: { ok: true, value: 'getState' } });
  // The pings of the stall were answered too; nothing waits, nothing pings.
  const pings = leader.pings.length;
  await tick(5 * PONG_WAIT_MS);
  assert.equal(leader.pings.length, pings);
  assert.equal(stalls.length, 2);
});

test('a ping timer that fired late (this tab was throttled or frozen) proves nothing: ping again', async () => {
  leader.frozen = true;
  void link.api.getState().catch(() => {});
  await tick(PROBE_AFTER_MS);
  // The tab itself was frozen for a long while: its timer comes far past its time.
  await tick(10 * PONG_WAIT_MS);
  assert.equal(stalls.length, 0, 'no verdict from a late timer');
  // The leader answers the new ping: no stall at all.
  leader.thaw();
  await settle();
  assert.equal(stalls.length, 0);
});

test('close: waiting calls reject 9008, new ones too, no more pings', async () => {
  leader.held.add('login');
  const waiting = track(login(link.api));
  await settle();
  link.close();
  await settle();
  assert.equal(waiting.error?.code, CODE.WORKER_GONE);
  assert.deepEqual(closed, [link]);
  const later = track(link.api.getState());
  await settle();
  assert.equal(later.error?.code, CODE.WORKER_GONE);
  await tick(5 * PONG_WAIT_MS);
  assert.deepEqual(leader.pings, []);
});

test('answers of another leader run are not this link\'s', async () => {
  leader.held.add('getState');
  const state = track(link.api.getState());
  await settle();
  const [req] = leader.waiting;
  link.receive({ kind: 'res', id: req!.id, to: TAB, epoch: 'another-epoch', value: 'wrong' });
  await settle();
  assert.equal(state.done, false);
  leader.answer('getState', 'right');
  await settle();
  assert.deepEqual(state, { done: true, value: 'right' });
});
