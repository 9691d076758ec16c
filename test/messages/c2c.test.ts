/**
 * C2C text messages through the chat API (Node instances, real server): A→B, the Message
 * fields the reference SDK defines (docs/client-api.md "Messages"), who gets
 * MESSAGE_RECEIVED (the recipient and the sender's OTHER instances, never the sending
 * instance), offline delivery after login, the not-ready gate and the argument checks and
 * refusal codes of createTextMessage / sendMessage.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ChatError } from '../../src/node/index.js';
import { CODE } from '../../src/protocol/codes.js';
import { EVENT, Inbox, harness, isGapless, rejection, say, text } from './util.js';

describe('A → B', () => {
  test('the recipient gets MESSAGE_RECEIVED with the reference Message fields; the sender resolves {code: 0, data: {message}}', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    const before = Math.floor(Date.now() / 1000);

    const message = text(a.chat, 'bob', 'hello bob 👋 你好');
    assert.equal(message.status, 'unSend');
    assert.equal(message.flow, 'out');
    assert.equal(message.from, 'alice');
    assert.equal(message.type, 'TIMTextElem');
    const res = await a.chat.sendMessage(message);
    assert.equal(res.code, 0);
    assert.equal(res.data.message, message, 'resolves with the same Message object');
    assert.equal(message.status, 'success');
    assert.equal(message.sequence, 1, 'first message in alice’s mailbox');
    assert.equal(message.conversationID, 'C2Cbob');

    const [received] = await inbox.waitCount(1);
    assert.ok(received);
    assert.equal(received.ID, message.ID, 'one server id on both sides');
    assert.equal(received.type, 'TIMTextElem');
    assert.deepEqual(received.payload, { text: 'hello bob 👋 你好' });
    assert.equal(received.conversationID, 'C2Calice');
    assert.equal(received.conversationType, 'C2C');
    assert.equal(received.to, 'bob');
    assert.equal(received.from, 'alice');
    assert.equal(received.flow, 'in');
    assert.equal(received.status, 'success');
    assert.equal(received.sequence, 1, 'first message in bob’s mailbox');
    assert.equal(received.isRead, false);
    assert.equal(received.isRevoked, false);
    assert.ok(received.time >= before && received.time <= Math.ceil(Date.now() / 1000), `time ${received.time} is now, in seconds`);
    assert.equal(received.time, message.time);
  });

  test('the sender’s other instance receives it (flow out); the sending instance gets no MESSAGE_RECEIVED', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox1 = new Inbox(a1.chat);
    const inbox2 = new Inbox(a2.chat);
    const inboxB = new Inbox(b.chat);

    const sent = await say(a1.chat, 'bob', 'from a1');
    const [copy] = await inbox2.waitCount(1);
    assert.ok(copy);
    assert.equal(copy.ID, sent.ID);
    assert.equal(copy.flow, 'out');
    assert.equal(copy.conversationID, 'C2Cbob');
    assert.equal(copy.sequence, sent.sequence, 'same seq: both instances read alice’s mailbox');
    await inboxB.waitText('from a1');

    // Bob answers; once a1 has that, everything for a1 before it has arrived too.
    await say(b.chat, 'alice', 'from bob');
    await inbox1.waitText('from bob');
    assert.deepEqual(inbox1.texts(), ['from bob'], 'a1 never got its own message');
    await inbox2.waitText('from bob');
    assert.deepEqual(inbox2.texts(), ['from a1', 'from bob']);
    assert.deepEqual(inboxB.texts(), ['from a1']);
  });

  test('a message to oneself reaches the other instances once (flow out), not the sender', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    const inbox1 = new Inbox(a1.chat);
    const inbox2 = new Inbox(a2.chat);
    const note = await say(a1.chat, 'alice', 'note to self');
    const [copy] = await inbox2.waitCount(1);
    assert.equal(copy?.ID, note.ID);
    assert.equal(copy?.flow, 'out');
    await say(a2.chat, 'alice', 'second note');
    await inbox1.waitText('second note');
    assert.deepEqual(inbox1.texts(), ['second note']);
    assert.deepEqual(inbox2.texts(), ['note to self']);
  });
});

describe('offline delivery', () => {
  test('a recipient that logs in later gets everything sent meanwhile, in order, after SDK_READY; its next login only what is new', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    for (let i = 0; i < 30; i++) await say(a.chat, 'bob', `m${i}`);

    const b = h.chat();
    const inbox = new Inbox(b.chat);
    await b.chat.login({ userID: 'bob', userSig: h.server.sig('bob') });
    await inbox.waitCount(30);
    assert.deepEqual(inbox.texts(), Array.from({ length: 30 }, (_, i) => `m${i}`));
    assert.ok(isGapless(inbox.messages.map((m) => m.sequence)), 'seqs 1..30');
    const names = b.rec.names().filter((n) => n === EVENT.SDK_READY || n === EVENT.MESSAGE_RECEIVED);
    assert.equal(names[0], EVENT.SDK_READY, 'messages come after SDK_READY');
    await b.chat.logout();

    for (let i = 30; i < 35; i++) await say(a.chat, 'bob', `m${i}`);
    const b2 = h.chat();
    const inbox2 = new Inbox(b2.chat);
    await b2.chat.login({ userID: 'bob', userSig: h.server.sig('bob') });
    await inbox2.waitCount(5);
    // A sentinel sent now arrives after anything older would have.
    await say(a.chat, 'bob', 'sentinel');
    await inbox2.waitText('sentinel');
    assert.deepEqual(inbox2.texts(), ['m30', 'm31', 'm32', 'm33', 'm34', 'sentinel']);
  });
});

describe('createTextMessage / sendMessage', () => {
  test('gated before SDK_READY: createTextMessage and sendMessage reject with the not-ready reason and emit ERROR', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    const created = chat.createTextMessage({ to: 'bob', conversationType: 'C2C', payload: { text: 'x' } }) as unknown as Promise<unknown>;
    const err = await rejection(created);
    assert.equal(err.code, CODE.USER_NOT_LOGGED_IN);
    assert.match(err.message, /createTextMessage/);
    assert.deepEqual(rec.events.at(-1), { name: EVENT.ERROR, data: { code: CODE.USER_NOT_LOGGED_IN, message: err.message } });

    const a = await h.ready('alice');
    const message = text(a.chat, 'bob', 'later');
    await a.chat.logout();
    const refused = await rejection(a.chat.sendMessage(message));
    assert.equal(refused.code, CODE.LOGGED_OUT);
    assert.match(refused.message, /sendMessage/);
  });

  test('bad arguments throw Params validate failed synchronously', async (t) => {
    const h = await harness(t);
    const { chat } = await h.ready('alice');
    const bad: unknown[] = [
      undefined,
      {},
      { to: '', conversationType: 'C2C', payload: { text: 'x' } },
      { to: 7, conversationType: 'C2C', payload: { text: 'x' } },
      { to: 'bob', payload: { text: 'x' } },
      { to: 'bob', conversationType: 'C2C' },
      { to: 'bob', conversationType: 'C2C', payload: {} },
      { to: 'bob', conversationType: 'C2C', payload: { text: 42 } },
    ];
    for (const options of bad) {
      assert.throws(() => chat.createTextMessage(options as never), { message: 'Params validate failed.' }, JSON.stringify(options));
    }
  });

  test('refusals: 2105 not a message, 2106 conversationType, 9021 / 9020 / 80002 invalid — status fail, data.message; nothing is sent', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);

    for (const notMessage of [undefined, {}, { to: 'bob', payload: { text: 'x' } }]) {
      const err = await rejection(a.chat.sendMessage(notMessage as never));
      assert.equal(err.code, CODE.MSG_INSTANCE_REQUIRED);
      assert.ok(err instanceof ChatError);
    }

    const cases: Array<[string, { to: string; conversationType: string; text: string }]> = [
      ['2106', { to: 'bob', conversationType: 'GROUP', text: 'x' }],
      ['9021', { to: 'b'.repeat(129), conversationType: 'C2C', text: 'x' }],
      ['9020', { to: 'bob', conversationType: 'C2C', text: '' }],
      ['80002', { to: 'bob', conversationType: 'C2C', text: '你'.repeat(4096) + 'x' }],
    ];
    for (const [code, o] of cases) {
      const message = a.chat.createTextMessage({ to: o.to, conversationType: o.conversationType, payload: { text: o.text } });
      const err = await rejection(a.chat.sendMessage(message));
      assert.equal(String(err.code), code);
      assert.equal(err.data.message, message, `${code}: data.message is the message`);
      assert.equal(message.status, 'fail');
    }

    // Exactly 12 KB of UTF-8 is fine, and a failed message can be fixed and sent again.
    const limit = await say(a.chat, 'bob', '你'.repeat(4096));
    assert.equal(limit.status, 'success');
    await inbox.waitCount(1);
    assert.equal(inbox.messages[0]?.payload.text.length, 4096);
    assert.equal(inbox.messages.length, 1, 'none of the refused messages reached bob');
  });

  test('sending the same Message object again never duplicates it', async (t) => {
    const h = await harness(t);
    const a = await h.ready('alice');
    const b = await h.ready('bob');
    const inbox = new Inbox(b.chat);
    const message = text(a.chat, 'bob', 'once');
    const [first, second] = await Promise.all([a.chat.sendMessage(message), a.chat.sendMessage(message)]);
    assert.equal(first.data.message.ID, second.data.message.ID);
    const third = await a.chat.sendMessage(message);
    assert.equal(third.data.message.ID, first.data.message.ID);
    await say(a.chat, 'bob', 'sentinel');
    await inbox.waitText('sentinel');
    assert.deepEqual(inbox.texts(), ['once', 'sentinel']);
    const { metrics } = h.server.server.context;
    assert.equal((await metrics.messagesStored.get()).values[0]?.value, 2, 'stored once (plus the sentinel)');
    assert.equal((await metrics.messagesDuplicate.get()).values[0]?.value, 1, 'the later resend was answered from the store');
  });
});
