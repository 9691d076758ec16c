/**
 * The session engine's message API on its own, against the real server: the pluggable
 * outbox (a queued message survives the engine that queued it and is sent by the next one,
 * exactly once), cancelSend, and the mailbox position a host hands to `resume()`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryOutbox, newClientMsgId } from '../../src/core/outbox.js';
import type { InstanceEvents } from '../../src/core/types.js';
import { CODE } from '../../src/protocol/codes.js';
import type { WireMessage } from '../../src/protocol/frames.js';
import { startTestServer } from '../helpers/server.js';
import { until } from '../helpers/raw-client.js';
import { engine, params, rejection, server } from './util.js';

/** Instance callbacks that record received messages. */
function recorder(): InstanceEvents & { received: WireMessage[] } {
  const received: WireMessage[] = [];
  return { received, onKicked() {}, onLost() {}, onMessages: (messages) => received.push(...messages) };
}

test('a queued message outlives its engine: the next engine on the same outbox sends it, exactly once', async (t) => {
  const ts = await server(t);
  const outbox = new MemoryOutbox();
  const bob = recorder();
  const bobEngine = engine(t, ts);
  await bobEngine.login(params(ts, 'bob'), bob);

  // The first engine queues a message it cannot send yet (1 frame/s, the first token is used).
  const first = engine(t, ts, { outbox, framesPerSecond: 1 });
  const { handle } = await first.login(params(ts, 'alice'), recorder());
  const sent = await first.send(handle, { clientMsgId: newClientMsgId(), to: 'bob', text: 'sent by the first engine' });
  const pending = rejection(first.send(handle, { clientMsgId: newClientMsgId(), to: 'bob', text: 'left in the outbox' }));
  await until(() => outbox.size === 1, 2000, 'the second message in the outbox');
  first.close(); // e.g. the SharedWorker went away
  assert.equal((await pending).code, CODE.DESTROYED);
  assert.equal(outbox.size, 1, 'close() keeps the entry for the next engine');

  const second = engine(t, ts, { outbox });
  await second.login(params(ts, 'alice'), recorder());
  await until(() => bob.received.length === 2, 5000, 'bob got both');
  await until(() => outbox.size === 0, 5000, 'the outbox emptied');
  assert.deepEqual(bob.received.map((m) => m.text), ['sent by the first engine', 'left in the outbox']);
  assert.equal(bob.received[0]?.id, sent.id);
  assert.equal((await ts.server.context.metrics.messagesStored.get()).values[0]?.value, 2);
});

test('cancelSend drops a queued message (9023) but not one already on its way; logout drops the rest', async (t) => {
  const ts = await server(t);
  const bob = recorder();
  await engine(t, ts).login(params(ts, 'bob'), bob);
  const outbox = new MemoryOutbox();
  const alice = engine(t, ts, { outbox, framesPerSecond: 1 });
  const { handle } = await alice.login(params(ts, 'alice'), recorder());

  const goes = alice.send(handle, { clientMsgId: 'goes', to: 'bob', text: 'goes' });
  const cancelled = rejection(alice.send(handle, { clientMsgId: 'cancelled', to: 'bob', text: 'cancelled' }));
  const dropped = rejection(alice.send(handle, { clientMsgId: 'dropped', to: 'bob', text: 'dropped by logout' }));
  await until(() => outbox.size === 3, 2000, 'three queued');
  assert.equal(await alice.cancelSend(handle, 'goes'), false, 'already on its way');
  assert.equal(await alice.cancelSend(handle, 'cancelled'), true);
  assert.equal(await alice.cancelSend(handle, 'unknown'), false);
  assert.equal((await cancelled).code, CODE.MSG_CANCELLED);
  await goes;
  await alice.logout(handle);
  const err = await dropped;
  assert.equal(err.code, CODE.MSG_CANCELLED);
  assert.equal(err.data.cause, CODE.LOGGED_OUT);
  assert.equal(outbox.size, 0);
  await until(() => bob.received.length === 1, 5000, 'bob got one message');
  assert.deepEqual(bob.received.map((m) => m.text), ['goes']);
});

test('invalid messages fail at once with their codes and queue nothing', async (t) => {
  const ts = await server(t);
  const outbox = new MemoryOutbox();
  const alice = engine(t, ts, { outbox });
  const { handle } = await alice.login(params(ts, 'alice'), recorder());
  const cases: Array<[Partial<{ clientMsgId: string; to: string; text: string }>, number]> = [
    [{ to: '' }, CODE.MSG_INVALID_RECIPIENT],
    [{ text: '' }, CODE.MSG_TEXT_EMPTY],
    [{ text: 'x'.repeat(12 * 1024 + 1) }, CODE.MSG_TOO_LONG],
    // 12 KB of control characters: valid text, but JSON escapes it to a frame over 64 KiB.
    [{ text: '\u0001'.repeat(12 * 1024) }, CODE.MSG_TOO_LONG],
    [{ clientMsgId: '' }, CODE.INVALID_PARAMETER],
  ];
  for (const [patch, code] of cases) {
    const err = await rejection(alice.send(handle, { clientMsgId: newClientMsgId(), to: 'bob', text: 'ok', ...patch }));
    assert.equal(err.code, code, JSON.stringify(patch).slice(0, 60));
  }
  assert.equal(outbox.size, 0);
  await alice.logout(handle);
  assert.equal((await rejection(alice.send(handle, { clientMsgId: 'late', to: 'bob', text: 'x' }))).code, CODE.USER_NOT_LOGGED_IN);
});

test('the handle exposes the mailbox position; resume() with it delivers nothing twice', async (t) => {
  const ts = await server(t);
  const alice = engine(t, ts);
  const { handle: aliceHandle } = await alice.login(params(ts, 'alice'), recorder());
  const bob = recorder();
  const first = engine(t, ts);
  const { handle } = await first.login(params(ts, 'bob'), bob);
  for (let i = 0; i < 3; i++) await alice.send(aliceHandle, { clientMsgId: newClientMsgId(), to: 'bob', text: `m${i}` });
  await until(() => handle.lastSeq === 3, 5000, 'bob at seq 3');
  const saved = { instId: handle.instId, token: handle.token, lastSeq: handle.lastSeq };
  first.close(); // the instance stays on the server for the resume window

  await alice.send(aliceHandle, { clientMsgId: newClientMsgId(), to: 'bob', text: 'm3' });
  const bob2 = recorder();
  const second = engine(t, ts);
  const { handle: taken } = await second.resume(params(ts, 'bob'), saved, bob2);
  assert.equal(taken.instId, saved.instId, 'a silent resume');
  await until(() => bob2.received.length === 1, 5000, 'the message sent meanwhile');
  await alice.send(aliceHandle, { clientMsgId: newClientMsgId(), to: 'bob', text: 'm4' });
  await until(() => bob2.received.length === 2, 5000, 'a live one');
  assert.deepEqual(bob2.received.map((m) => [m.seq, m.text]), [[4, 'm3'], [5, 'm4']]);
});

test('a burst of 3,000 sends from one instance: each stored once, in the order sent, after the adopted outbox entries', async (t) => {
  const ts = await startTestServer({}, { rateLimits: { framesPerSecond: 1_000_000 } });
  t.after(() => ts.close());
  const outbox = new MemoryOutbox();
  // Two entries an earlier session left in the outbox: adopted at login, they go first.
  for (const [i, text] of ['left 1', 'left 2'].entries()) {
    await outbox.put({ clientMsgId: `left-${i}`, sdkAppId: ts.sdkAppId, from: 'alice', to: 'bob', text, queuedAt: i });
  }
  const bob = recorder();
  await engine(t, ts).login(params(ts, 'bob'), bob);
  const alice = engine(t, ts, { outbox, framesPerSecond: 1_000_000 });
  const { handle } = await alice.login(params(ts, 'alice'), recorder());
  await until(() => bob.received.length === 2, 5000, 'the adopted entries delivered');
  const TOTAL = 3000;
  const ids = Array.from({ length: TOTAL }, () => newClientMsgId());
  const sends = ids.map((clientMsgId, i) => alice.send(handle, { clientMsgId, to: 'bob', text: `burst ${i}` }));
  sends.push(alice.send(handle, { clientMsgId: ids[7]!, to: 'bob', text: 'burst 7' })); // the same message again: one send
  const results = await Promise.all(sends);
  assert.deepEqual(results[TOTAL], results[7], 'the second send of the same clientMsgId settles with the same message');
  await until(() => bob.received.length >= TOTAL + 2, 20_000, `bob got ${TOTAL + 2}`);
  assert.deepEqual(bob.received.map((m) => m.text), ['left 1', 'left 2', ...ids.map((_, i) => `burst ${i}`)]);
  assert.deepEqual(bob.received.map((m) => m.seq), Array.from({ length: TOTAL + 2 }, (_, i) => i + 1));
  await until(() => outbox.size === 0, 5000, 'the outbox emptied');
});
