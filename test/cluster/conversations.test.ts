/**
 * Conversations in a cluster (Redis + Postgres): alice on two nodes, bob on a third. Unread
 * counts rise on both of alice's instances, a read on node 1 clears node 2 (the `conv` push
 * routed through Redis), bob's node gets the read receipt, a delete on node 2 reaches
 * node 1, and a randomized schedule of sends, resends, reads and deletes ends with every
 * instance's counts equal to the store's.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import TabChat, { type Chat } from '../../src/node/index.js';
import { Rng } from '../helpers/rng.js';
import { startCluster, until, type TestCluster } from './util.js';
import { openStore } from '../../server/store-open.js';

async function chatOn(t: TestContext, c: TestCluster, url: string, userID: string): Promise<Chat> {
  const chat = TabChat.create({ SDKAppID: c.sdkAppId, server: url });
  chat.setLogLevel(4);
  t.after(() => chat.destroy().catch(() => undefined));
  const ready = new Promise((resolve) => chat.on(TabChat.EVENT.SDK_READY, resolve));
  await chat.login({ userID, userSig: c.sig(userID) });
  await ready;
  return chat;
}

function countTotals(chat: Chat): number[] {
  const seen: number[] = [];
  chat.on(TabChat.EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED, (e: { data: number }) => seen.push(e.data));
  return seen;
}

test('read on node 1 clears node 2; the receipt reaches bob on node 3; delete on node 2 reaches node 1', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 });
  const [n1, n2, n3] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0], (typeof c.nodes)[0]];
  const a1 = await chatOn(t, c, n1.wsUrl, 'alice');
  const a2 = await chatOn(t, c, n2.wsUrl, 'alice');
  const bob = await chatOn(t, c, n3.wsUrl, 'bob');
  const totals1 = countTotals(a1);
  const totals2 = countTotals(a2);
  const receipts: unknown[] = [];
  bob.on(TabChat.EVENT.MESSAGE_READ_BY_PEER, (e: { data: unknown[] }) => receipts.push(...e.data));
  for (const text of ['one', 'two']) await bob.sendMessage(bob.createTextMessage({ to: 'alice', conversationType: 'C2C', payload: { text } }));
  for (const a of [a1, a2]) await until(() => a.getTotalUnreadMessageCount() === 2, 10_000, 'total 2');
  await a1.setMessageRead({ conversationID: 'C2Cbob' });
  await until(() => a2.getTotalUnreadMessageCount() === 0, 10_000, 'node 2 cleared by the read on node 1');
  await until(() => receipts.length === 1, 10_000, 'receipt on node 3');
  assert.deepEqual(totals1, [1, 2, 0]);
  assert.deepEqual(totals2, [1, 2, 0]);
  await a2.deleteConversation('C2Cbob');
  await until(async () => (await a1.getConversationList()).data.conversationList.length === 0, 10_000, 'delete reached node 1');
});

test('randomized schedule across nodes: every instance ends with the store’s counts', async (t) => {
  const seed = Number(process.env.TABCHAT_CONV_SEED ?? Date.now() % 100_000);
  t.diagnostic(`seed ${seed} (TABCHAT_CONV_SEED)`);
  const rng = new Rng(seed);
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 });
  const users = ['u1', 'u2', 'u3'];
  const chats = new Map<string, Chat[]>();
  for (const [i, user] of users.entries()) {
    chats.set(user, [await chatOn(t, c, c.nodes[i % 3]!.wsUrl, user), await chatOn(t, c, c.nodes[(i + 1) % 3]!.wsUrl, user)]);
  }
  const sentMessages: Array<{ from: string; message: ReturnType<Chat['createTextMessage']> }> = [];
  for (let step = 0; step < 60; step++) {
    const user = rng.pick(users);
    const chat = rng.pick(chats.get(user)!);
    const peer = rng.pick(users.filter((u) => u !== user));
    const r = rng.next();
    if (r < 0.55) {
      const message = chat.createTextMessage({ to: peer, conversationType: 'C2C', payload: { text: `s${step}` } });
      await chat.sendMessage(message);
      sentMessages.push({ from: user, message });
    } else if (r < 0.65 && sentMessages.length > 0) {
      const { from, message } = rng.pick(sentMessages);
      await chats.get(from)![0]!.sendMessage(message); // a resend of a stored message: stored once
    } else if (r < 0.9) await chat.setMessageRead({ conversationID: `C2C${peer}` }).catch(() => undefined);
    else await chat.deleteConversation(`C2C${peer}`).catch(() => undefined);
  }
  const store = await openStore(c.store);
  t.after(() => store.close());
  for (const user of users) {
    const expected = await store.conversations.total(c.sdkAppId, user);
    for (const [i, chat] of chats.get(user)!.entries()) {
      await until(() => chat.getTotalUnreadMessageCount() === expected, 15_000, `${user}#${i}: total ${expected} (has ${chat.getTotalUnreadMessageCount()})`);
      const list = (await chat.getConversationList()).data.conversationList;
      for (const conv of list) {
        const row = await store.conversations.get(c.sdkAppId, user, conv.conversationID.slice(3));
        assert.equal(conv.unreadCount, row?.unread, `${user}#${i} ${conv.conversationID}`);
        assert.ok(conv.unreadCount >= 0);
      }
    }
  }
});
