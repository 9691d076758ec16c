/**
 * Messages that are never lost: a server restart in the middle of a burst (sqlite store),
 * a socket cut while sending, a send that times out while the server is down, a gap in
 * the pushed sequence, and a memory store that restarted empty. Real server, real sockets;
 * waits poll or listen, never sleep.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Message } from '../../src/node/index.js';
import { CODE } from '../../src/protocol/codes.js';
import { Inbox, harness, isGapless, rejection, say, tempDir, text, until } from './util.js';

/** The ids of `messages`, checking there are no duplicates. */
function uniqueIds(messages: Message[]): Set<string> {
  const ids = new Set(messages.map((m) => m.ID));
  assert.equal(ids.size, messages.length, 'no message twice');
  return ids;
}

describe('server restart', () => {
  test('in the middle of a burst of 1,000 messages: none lost, none duplicated, in order; sends issued during the restart complete after the reconnect', async (t) => {
    const store = `sqlite:${join(tempDir(t), 'tabchat.db')}`;
    const h = await harness(t, {}, { store, rateLimits: { framesPerSecond: 20_000 } });
    // 300 sends/s: the restart lands while most of the first 700 are still queued or in flight.
    const a = await h.ready('alice', { framesPerSecond: 300 });
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);

    const TOTAL = 1000;
    const FIRST = 700;
    const sends: Array<Promise<unknown>> = [];
    const sent: Message[] = [];
    const send = (i: number) => {
      const message = text(a.chat, 'bob', `burst ${i}`);
      sent.push(message);
      sends.push(a.chat.sendMessage(message));
    };
    for (let i = 0; i < FIRST; i++) send(i);

    // Restart once bob has seen part of the burst; the rest are sent while the server is down.
    await inbox.waitCount(150);
    let storedBeforeRestart = 0;
    const oldMetrics = h.server.server.context.metrics;
    await h.server.restart(async () => {
      storedBeforeRestart = sent.filter((m) => m.status === 'success').length;
      for (let i = FIRST; i < TOTAL; i++) send(i);
    });
    assert.ok(storedBeforeRestart < TOTAL, `the restart came in the middle (${storedBeforeRestart} stored before it)`);

    await Promise.all(sends);
    assert.ok(sent.every((m) => m.status === 'success'));
    const sentIds = uniqueIds(sent);
    assert.equal(sentIds.size, TOTAL);

    await inbox.waitCount(TOTAL, 20_000);
    // A sentinel after the burst: anything duplicated would have arrived before it.
    await say(a.chat, 'bob', 'sentinel');
    await inbox.waitText('sentinel');
    const burst = inbox.messages.slice(0, -1);
    assert.equal(burst.length, TOTAL, 'bob got 1,000 messages');
    assert.deepEqual(uniqueIds(burst), sentIds, 'exactly the ids alice got back');
    assert.deepEqual(burst.map((m) => m.payload.text), Array.from({ length: TOTAL }, (_, i) => `burst ${i}`), 'in the order sent');
    assert.ok(isGapless(burst.map((m) => m.sequence)), 'bob’s seqs are 1..1000');
    assert.ok(isGapless(sent.map((m) => m.sequence)), 'alice’s seqs are 1..1000');
    const storedBy = async (metrics: typeof oldMetrics) => (await metrics.messagesStored.get()).values[0]?.value ?? 0;
    const [before, after] = [await storedBy(oldMetrics), await storedBy(h.server.server.context.metrics)];
    assert.ok(before > 0 && before < FIRST, `the old server stored part of the first ${FIRST} (${before})`);
    assert.equal(before + after, TOTAL + 1, 'each message stored once (plus the sentinel)');
  });

  test('a send that times out while the server is down rejects 9022, stays queued, and is delivered once after the restart', async (t) => {
    const store = `sqlite:${join(tempDir(t), 'tabchat.db')}`;
    const h = await harness(t, {}, { store });
    const a = await h.ready('alice', { sendTimeoutMs: 300 });
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    const message = text(a.chat, 'bob', 'patient');
    await h.server.restart(async () => {
      const err = await rejection(a.chat.sendMessage(message));
      assert.equal(err.code, CODE.MSG_SEND_TIMEOUT);
      assert.equal(err.data.message, message);
      assert.equal(message.status, 'fail');
    });
    const delivered = await inbox.waitText('patient');
    // Sending it again waits for (or finds) the same message: no duplicate.
    const again = await a.chat.sendMessage(message);
    assert.equal(again.data.message.ID, delivered.ID);
    assert.equal(message.status, 'success');
    assert.equal(message.isResend, true);
    await say(a.chat, 'bob', 'sentinel');
    await inbox.waitText('sentinel');
    assert.deepEqual(inbox.texts(), ['patient', 'sentinel']);
  });

  test('memory store: a client whose position is beyond the restarted (empty) mailbox still gets the new messages', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    for (let i = 0; i < 3; i++) await say(a.chat, 'bob', `old ${i}`);
    await inbox.waitCount(3);
    await h.server.restart();
    await until(() => a.chat.isReady() && b.chat.isReady(), 10_000, 'both back');
    // Alice’s queue waits for her re-login; bob’s sync finds head 0 < his position 3 and starts over.
    await say(a.chat, 'bob', 'new 0');
    await say(a.chat, 'bob', 'new 1');
    await inbox.waitText('new 1');
    assert.deepEqual(inbox.texts(), ['old 0', 'old 1', 'old 2', 'new 0', 'new 1']);
  });
});

describe('connection loss', () => {
  test('socket cut while sending: queued and in-flight messages are delivered after the reconnect, exactly once', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    const sends: Array<Promise<unknown>> = [];
    const sent: Message[] = [];
    const send = (i: number) => {
      const message = text(a.chat, 'bob', `cut ${i}`);
      sent.push(message);
      sends.push(a.chat.sendMessage(message));
    };
    for (let i = 0; i < 60; i++) send(i);
    await inbox.waitCount(5);
    h.server.dropConnections();
    for (let i = 60; i < 120; i++) send(i);
    await Promise.all(sends);
    await say(a.chat, 'bob', 'sentinel');
    await inbox.waitText('sentinel');
    const got = inbox.messages.slice(0, -1);
    assert.deepEqual(uniqueIds(got), uniqueIds(sent));
    assert.deepEqual(got.map((m) => m.payload.text), Array.from({ length: 120 }, (_, i) => `cut ${i}`));
    assert.equal((await h.server.server.context.metrics.messagesStored.get()).values[0]?.value, 121, 'stored exactly once each');
  });

  test('a gap in the pushed sequence is filled by a sync: nothing missing, nothing twice, in order', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    await say(a.chat, 'bob', 'first');
    await inbox.waitText('first');
    // Stored without a push (as an import would): bob's next push skips a seq.
    await h.server.server.context.store.send({
      id: 'imported-1',
      sdkAppId: h.server.sdkAppId,
      from: 'carol',
      to: 'bob',
      clientMsgId: 'import-1',
      text: 'imported',
      time: Date.now(),
    });
    await say(a.chat, 'bob', 'after the gap');
    await inbox.waitText('after the gap');
    await say(a.chat, 'bob', 'sentinel');
    await inbox.waitText('sentinel');
    assert.deepEqual(inbox.texts(), ['first', 'imported', 'after the gap', 'sentinel']);
    assert.deepEqual(inbox.messages.map((m) => m.sequence), [1, 2, 3, 4]);
    assert.equal(inbox.messages[1]?.from, 'carol');
    assert.equal(inbox.messages[1]?.conversationID, 'C2Ccarol');
  });
});
