/**
 * Behaviour a reference application relies on, against a real server (Node entry):
 * `setLogLevel` ignores bad values, `destroy()` emits SDK_DESTROY `{SDKAppID}` after
 * SDK_NOT_READY, a refused login shows no NET_STATE_CHANGE, `logout({allTabs: true})` is a
 * plain logout in Node, and the reference's message options are accepted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES, harness, rejection, until } from '../client/util.js';

test('setLogLevel ignores a value outside 0–4 (with a warning) and keeps the level', async (t) => {
  const h = await harness(t);
  const { chat } = h.chat();
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (...args: unknown[]) => warnings.push(args.join(' ')));
  chat.setLogLevel(2);
  for (const bad of [7, -1, 1.5, '2', undefined]) assert.doesNotThrow(() => chat.setLogLevel(bad as never));
  assert.equal(warnings.filter((w) => w.includes('setLogLevel(')).length, 5);
  chat.setLogLevel(4);
  chat.setLogLevel(99); // level 4 prints nothing, not even the warning
  assert.equal(warnings.length, 5);
});

test('destroy() when logged in: SDK_NOT_READY, then SDK_DESTROY {SDKAppID}, then it resolves', async (t) => {
  const h = await harness(t);
  const { chat, rec } = await h.ready('alice');
  let settledAfter: string[] = [];
  await chat.destroy().then(() => { settledAfter = rec.names(); });
  const names = rec.names().filter((n) => n !== EVENT.NET_STATE_CHANGE);
  assert.deepEqual(names.slice(-2), [EVENT.SDK_NOT_READY, EVENT.SDK_DESTROY]);
  assert.ok(settledAfter.includes(EVENT.SDK_DESTROY), 'SDK_DESTROY before destroy() settles');
  const destroyEvent = rec.events.find((e) => e.name === EVENT.SDK_DESTROY)!;
  assert.equal(destroyEvent.name, 'sdkDestroy');
  assert.deepEqual(destroyEvent.data, { SDKAppID: h.server.sdkAppId });
});

test('destroy() when not logged in: rejects 2024, still emits SDK_DESTROY (no SDK_NOT_READY)', async (t) => {
  const h = await harness(t);
  const { chat, rec } = h.chat();
  const err = await rejection(chat.destroy());
  assert.equal(err.code, 2024);
  assert.deepEqual(rec.names(), [EVENT.SDK_DESTROY]);
});

test('a refused login shows no NET_STATE_CHANGE; the next good login shows connecting, connected', async (t) => {
  const h = await harness(t, {}, { rateLimits: { loginFailuresPerIp: 1000, loginFailuresPerUser: 1000 } });
  const { chat, rec } = h.chat();
  for (let i = 0; i < 3; i++) {
    const err = await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice', { key: 'another key' }) }));
    assert.equal(err.code, 70009);
  }
  // The engine released each socket: the server holds none, and the chat showed nothing.
  await until(() => h.server.server.context.connections.size === 0, 5000, 'the server holds no connection');
  assert.deepEqual(rec.names(), []);
  await chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
  const states = rec.events.filter((e) => e.name === EVENT.NET_STATE_CHANGE).map((e) => (e.data as { state: string }).state);
  assert.deepEqual(states, [TYPES.NET_STATE_CONNECTING, TYPES.NET_STATE_CONNECTED], 'announced before login() resolved');
});

test('logout({allTabs: true}) in Node is this chat\'s logout: SDK_NOT_READY, other instances untouched', async (t) => {
  const h = await harness(t, { maxInstancesPerPlatform: 2 });
  const a1 = await h.ready('alice');
  const a2 = await h.ready('alice');
  const res = await a1.chat.logout({ allTabs: true });
  assert.deepEqual(res, { code: 0, data: {} });
  assert.equal(a1.chat.isReady(), false);
  assert.equal(a2.chat.isReady(), true);
  assert.deepEqual((await h.online('alice')).map((d) => d.InstId), [a2.instanceID]);
  assert.throws(() => a2.chat.logout('all' as never), { message: 'Params validate failed.' });
});

test('createTextMessage accepts the reference options: priority and cloudCustomData kept on the message, the rest ignored', async (t) => {
  const h = await harness(t);
  const { chat } = await h.ready('alice');
  const message = chat.createTextMessage({
    to: 'bob',
    conversationType: TYPES.CONV_C2C,
    payload: { text: 'hi' },
    priority: TYPES.MSG_PRIORITY_HIGH,
    cloudCustomData: '{"k":1}',
    needReadReceipt: true,
    receiverList: ['bob'],
  });
  assert.equal(message.priority, 'High');
  assert.equal(message.cloudCustomData, '{"k":1}');
  assert.equal(message.type, TYPES.MSG_TEXT);
  assert.equal(message.isPeerRead, false);
  const res = await chat.sendMessage(message, { onlineUserOnly: true });
  assert.equal(res.data.message.status, 'success');
  assert.throws(() => chat.createTextMessage({ to: 'bob', conversationType: 'C2C', payload: { text: 'x' }, priority: 1 as never }), {
    message: 'Params validate failed.',
  });
});
