/**
 * Conversations through the chat API (Node instances, real server, sqlite store): the
 * reference shapes of getConversationList / getMessageList, unread counts that agree on
 * every instance of a user ("every device": separate instances, one per device), one
 * TOTAL_UNREAD_MESSAGE_COUNT_UPDATED per change, read receipts, delete, history that
 * survives a restart, bad input with its codes and nothing leaked across users.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Chat, ChatEvent } from '../../src/node/index.js';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient } from '../helpers/raw-client.js';
import { EVENT, harness, rejection, say, tempDir, until } from './util.js';

function totals(events: ChatEvent[]): number[] {
  return events.filter((e) => e.name === EVENT.TOTAL_UNREAD_MESSAGE_COUNT_UPDATED).map((e) => e.data as number);
}

async function unreadOf(chat: Chat, conversationID: string): Promise<number | undefined> {
  const { data } = await chat.getConversationList();
  return data.conversationList.find((c) => c.conversationID === conversationID)?.unreadCount;
}

describe('conversations', () => {
  test('two devices of alice: unread rises on both, a read on one clears both, one TOTAL_UNREAD event per change; bob learns the read', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 }, { store: `sqlite:${join(tempDir(t), 'chat.db')}` });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    const b = await h.ready('bob');
    const sent = [await say(b.chat, 'alice', 'one'), await say(b.chat, 'alice', 'two'), await say(b.chat, 'alice', 'three')];
    for (const a of [a1, a2]) await until(() => a.chat.getTotalUnreadMessageCount() === 3, 5000, 'total 3');
    for (const a of [a1, a2]) {
      const list = await a.chat.getConversationList();
      assert.equal(list.code, 0);
      const [conv] = list.data.conversationList;
      assert.ok(conv);
      assert.equal(conv.conversationID, 'C2Cbob');
      assert.equal(conv.type, 'C2C');
      assert.equal(conv.unreadCount, 3);
      assert.equal(conv.lastMessage.messageForShow, 'three');
      assert.equal(conv.lastMessage.fromAccount, 'bob');
      assert.equal(conv.lastMessage.type, 'TIMTextElem');
      assert.deepEqual(conv.lastMessage.payload, { text: 'three' });
      assert.equal(conv.lastMessage.lastSequence, 3);
      assert.equal(conv.lastMessage.lastTime, sent[2]!.time);
      assert.deepEqual(totals(a.rec.events), [1, 2, 3], 'one event per new total');
    }
    assert.equal(b.chat.getTotalUnreadMessageCount(), 0, 'the sender has nothing unread');

    const readByPeer = until(() => b.rec.events.find((e) => e.name === EVENT.MESSAGE_READ_BY_PEER), 5000, 'MESSAGE_READ_BY_PEER');
    assert.deepEqual(await a1.chat.setMessageRead({ conversationID: 'C2Cbob' }), { code: 0, data: {} });
    for (const a of [a1, a2]) {
      await until(() => a.chat.getTotalUnreadMessageCount() === 0, 5000, 'total 0');
      assert.equal(await unreadOf(a.chat, 'C2Cbob'), 0);
      assert.deepEqual(totals(a.rec.events), [1, 2, 3, 0]);
    }
    const receipt = (await readByPeer)!.data as Array<{ ID: string; conversationID: string; isPeerRead: boolean }>;
    assert.deepEqual(receipt.map((r) => [r.ID, r.conversationID, r.isPeerRead]), [[sent[2]!.ID, 'C2Calice', true]]);
    const bobHistory = await b.chat.getMessageList({ conversationID: 'C2Calice' });
    assert.deepEqual(bobHistory.data.messageList.map((m) => m.isPeerRead), [true, true, true]);

    // Reading again changes nothing: no new event anywhere.
    await a2.chat.setMessageRead({ conversationID: 'C2Cbob' });
    await say(b.chat, 'alice', 'four');
    for (const a of [a1, a2]) {
      await until(() => a.chat.getTotalUnreadMessageCount() === 1, 5000, 'total 1');
      assert.deepEqual(totals(a.rec.events), [1, 2, 3, 0, 1]);
    }

    // A later device logs in: the list and total are right from the start.
    const a3 = await h.ready('alice', {});
    assert.equal(await unreadOf(a3.chat, 'C2Cbob'), 1);
    await until(() => a3.chat.getTotalUnreadMessageCount() === 1, 5000, 'a3 total');
  });

  test('getMessageList: the newest page first, 15 per page, oldest first within a page, nextReqMessageID / isCompleted; history survives a restart', async (t) => {
    // Room for the re-logins after the restart beside the new chat (no kicks between them).
    const h = await harness(t, { maxInstancesPerPlatform: 4 }, { store: `sqlite:${join(tempDir(t), 'chat.db')}` });
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const ids: string[] = [];
    for (let i = 0; i < 33; i++) ids.push((await say(i % 4 === 0 ? a.chat : b.chat, i % 4 === 0 ? 'bob' : 'alice', `m${i}`)).ID);
    await say(a.chat, 'carol', 'elsewhere');

    const pages: string[][] = [];
    let next: string | undefined;
    for (;;) {
      const res = await a.chat.getMessageList(next === undefined ? { conversationID: 'C2Cbob' } : { conversationID: 'C2Cbob', nextReqMessageID: next });
      assert.equal(res.code, 0);
      const list = res.data.messageList;
      pages.push(list.map((m) => m.ID));
      const seqs = list.map((m) => m.sequence);
      assert.deepEqual(seqs, [...seqs].sort((x, y) => x - y), 'oldest first within a page');
      for (const m of list) assert.equal(m.conversationID, 'C2Cbob');
      assert.equal(res.data.nextReqMessageID, list[0]?.ID ?? '');
      if (res.data.isCompleted) break;
      next = res.data.nextReqMessageID;
    }
    assert.deepEqual(pages.map((p) => p.length), [15, 15, 3]);
    assert.deepEqual(pages.reverse().flat(), ids);

    await h.server.restart();
    const again = await h.ready('alice');
    const newest = await again.chat.getMessageList({ conversationID: 'C2Cbob' });
    assert.deepEqual(newest.data.messageList.map((m) => m.ID), ids.slice(-15), 'history survives the restart');
  });

  test('bad input: malformed ids 9043, unknown conversation 9044, cursors of another conversation or user 9045, absurd page sizes 9046; nothing leaks', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const c = await h.ready('carol');
    const secret = await say(b.chat, 'carol', 'between bob and carol');
    const mine = await say(b.chat, 'alice', 'for alice');

    for (const conversationID of ['bob', 'GROUPx', 'C2C', `C2C${'x'.repeat(200)}`]) {
      assert.equal((await rejection(a.chat.getMessageList({ conversationID }))).code, CODE.INVALID_CONVERSATION_ID, conversationID);
      assert.equal((await rejection(a.chat.setMessageRead({ conversationID }))).code, CODE.INVALID_CONVERSATION_ID, conversationID);
    }
    assert.equal((await rejection(a.chat.setMessageRead({ conversationID: 'C2Cnobody' }))).code, CODE.CONVERSATION_NOT_FOUND);
    assert.equal((await rejection(a.chat.deleteConversation('C2Cnobody'))).code, CODE.CONVERSATION_NOT_FOUND);
    // A conversation alice is not part of reads as hers with that peer: empty, never bob's.
    const other = await a.chat.getMessageList({ conversationID: 'C2Ccarol' });
    assert.deepEqual(other.data.messageList, []);
    assert.equal(other.data.isCompleted, true);
    // Cursors: another user's message, a message of another conversation, unknown.
    for (const cursor of [secret.ID, 'no-such-message']) {
      const err = await rejection(a.chat.getMessageList({ conversationID: 'C2Cbob', nextReqMessageID: cursor }));
      assert.equal(err.code, CODE.INVALID_PAGE_CURSOR, cursor);
      assert.ok(!err.message.includes('between bob and carol'));
    }
    await say(a.chat, 'dave', 'to dave');
    const daveMsg = (await a.chat.getMessageList({ conversationID: 'C2Cdave' })).data.messageList[0]!;
    assert.equal((await rejection(a.chat.getMessageList({ conversationID: 'C2Cbob', nextReqMessageID: daveMsg.ID }))).code, CODE.INVALID_PAGE_CURSOR);
    assert.deepEqual((await c.chat.getConversationList()).data.conversationList.map((x) => x.conversationID), ['C2Cbob']);
    assert.equal((await a.chat.getMessageList({ conversationID: 'C2Cbob' })).data.messageList[0]?.ID, mine.ID);

    // Absurd page sizes on the wire (the API always asks for 15).
    const raw = await RawClient.connect(h.server.wsUrl);
    t.after(() => raw.close());
    const login = (await raw.login(h.server.sdkAppId, "alice", h.server.sig("alice"))).data;
    for (const limit of [0, -1, 101, 1e9, 1.5, 'x']) {
      const reply = await raw.request({ type: 'history', instId: login.instId, peer: 'bob', limit });
      assert.equal(reply.ok, false);
      assert.equal(reply.code, CODE.INVALID_PAGE_SIZE, `limit ${String(limit)}`);
    }
    const ok = await raw.request({ type: 'history', instId: login.instId, peer: 'bob', limit: 100 });
    assert.equal(ok.ok, true);
  });

  test('deleteConversation: gone from every instance of the user and from the history, back with the next message', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    const b = await h.ready('bob');
    await say(b.chat, 'alice', 'old');
    for (const a of [a1, a2]) await until(() => a.chat.getTotalUnreadMessageCount() === 1, 5000, 'total 1');
    assert.deepEqual(await a1.chat.deleteConversation('C2Cbob'), { code: 0, data: { conversationID: 'C2Cbob' } });
    for (const a of [a1, a2]) {
      await until(() => a.chat.getTotalUnreadMessageCount() === 0, 5000, 'total 0');
      assert.deepEqual((await a.chat.getConversationList()).data.conversationList, []);
    }
    assert.deepEqual((await a2.chat.getMessageList({ conversationID: 'C2Cbob' })).data.messageList, []);
    await say(b.chat, 'alice', 'new');
    await until(async () => (await unreadOf(a2.chat, 'C2Cbob')) === 1, 5000, 'back with unread 1');
    assert.deepEqual((await a1.chat.getMessageList({ conversationID: 'C2Cbob' })).data.messageList.map((m) => m.payload.text), ['new']);
  });
});
