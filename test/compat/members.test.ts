/**
 * Every member of the reference SDK's chat instance (listed from its typings at test time)
 * exists on a tabchat chat, and none of them throws a TypeError: those tabchat does not
 * implement reject with 9015 NOT_IMPLEMENTED and a message naming the member;
 * `registerPlugin` accepts the upload plugin with one warning.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import TabChat, { type Chat } from '../../src/node/index.js';
import { CONVERSATION_MEMBERS, referenceMembers } from './reference.js';

const members = referenceMembers();
const server = 'ws://127.0.0.1:1/ws';
/** Members tabchat implements (the rest of the reference's list must reject 9015). */
const IMPLEMENTED = [
  'login', 'logout', 'getLoginUser', 'getServerTime', 'isReady', 'destroy', 'on', 'off', 'registerPlugin', 'setLogLevel',
  'createTextMessage', 'sendMessage', 'resendMessage', ...CONVERSATION_MEMBERS,
];

function newChat(t: { after(fn: () => unknown): void }): Chat {
  const chat = TabChat.create({ SDKAppID: 1400000001, server });
  t.after(() => chat.destroy().catch(() => undefined));
  return chat;
}

test('the reference typings list the members the suite expects', () => {
  assert.ok(members.length >= 140, `only ${members.length} members parsed`);
  for (const name of [...IMPLEMENTED, 'callExperimentalAPI']) assert.ok(members.includes(name), name);
});

test('every reference member exists on a chat', (t) => {
  const chat = newChat(t) as unknown as Record<string, unknown>;
  const missing = members.filter((name) => typeof chat[name] !== 'function');
  assert.deepEqual(missing, []);
});

test('every unimplemented member returns a rejected Promise: 9015, named in the message; never a throw, never unhandled', async (t) => {
  const chat = newChat(t) as unknown as Record<string, (...args: unknown[]) => unknown>;
  const errors: unknown[][] = [];
  t.mock.method(console, 'error', (...args: unknown[]) => errors.push(args));
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  t.after(() => process.off('unhandledRejection', onUnhandled));
  const unimplemented = members.filter((name) => !IMPLEMENTED.includes(name));
  assert.ok(unimplemented.includes('callExperimentalAPI'));
  const wrong: string[] = [];
  for (const name of unimplemented) {
    const result = chat[name]!({ to: 'bob', conversationType: 'C2C', payload: {} }, () => {}, () => {});
    assert.ok(result instanceof Promise, `${name} returns a Promise`);
    const err = await result.then(
      () => null,
      (e: { code: number; message: string; data: { member?: string } }) => e,
    );
    if (!err || err.code !== 9015 || !err.message.startsWith(`${name} is not implemented`) || err.data.member !== name) wrong.push(name);
  }
  assert.deepEqual(wrong, []);
  // Called again: rejects again, logged once per member and chat.
  const again = await (chat.callExperimentalAPI!('key', {}) as Promise<unknown>).catch((e: { code: number }) => e.code);
  assert.equal(again, 9015);
  assert.equal(errors.length, unimplemented.length);
  // A never-awaited call (a `void` listener, a factory) is not an unhandled rejection.
  chat.addSignalingListener!('newInvitationReceived', () => {});
  chat.createImageMessage!({});
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(unhandled, []);
});

test('registerPlugin accepts the upload plugin with one warning; a non-object throws Params validate failed', (t) => {
  const chat = newChat(t);
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (...args: unknown[]) => warnings.push(args.join(' ')));
  class TIMUploadPlugin {
    static getVersion(): string {
      return '1.3.0';
    }
  }
  chat.registerPlugin({ 'tim-upload-plugin': TIMUploadPlugin });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]!, /registerPlugin: upload plugins tim-upload-plugin ignored/);
  assert.throws(() => chat.registerPlugin(null as never), { message: 'Params validate failed.' });
});

test('the reference create() options are accepted: proxyServer stands in for server, the others warned once and ignored', (t) => {
  const warnings: string[] = [];
  t.mock.method(console, 'warn', (...args: unknown[]) => warnings.push(args.join(' ')));
  const viaProxy = TabChat.create({ SDKAppID: 1400000001, proxyServer: server } as never) as Chat | null;
  assert.ok(viaProxy);
  t.after(() => viaProxy.destroy().catch(() => undefined));
  const options = { SDKAppID: 1400000001, server, scene: 'chat-uikit', fileUploadProxy: 'https://up.example', unlimitedAVChatRoom: true };
  const a = TabChat.create(options);
  const b = TabChat.create(options);
  t.after(() => Promise.allSettled([a.destroy(), b.destroy()]));
  const ignored = warnings.filter((w) => /create: option \w+ is accepted and ignored/.test(w));
  assert.deepEqual(ignored.map((w) => /option (\w+)/.exec(w)![1]).sort(), ['fileUploadProxy', 'scene', 'unlimitedAVChatRoom']);
  assert.throws(() => TabChat.create({ SDKAppID: 1 } as never), { message: 'Params validate failed.' });
});
