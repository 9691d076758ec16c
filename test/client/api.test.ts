/**
 * The chat API object against a real server: login/ready ordering, repeat and concurrent
 * logins, the not-ready gate, argument checks, logout, destroy, events, create() options,
 * and every server refusal surfacing with its code.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import TabChat, { ChatError } from '../../src/node/index.js';
import { EVENT, TYPES, harness, rejection, until } from './util.js';

describe('constants', () => {
  // Every EVENT / TYPES / TSignaling constant is compared with the reference package in
  // test/compat/constants.test.ts; here, the ones this suite relies on, and VERSION.
  test('the events and types the API emits have the reference values; VERSION is the package version', () => {
    assert.equal(TabChat.EVENT.SDK_READY, 'sdkStateReady');
    assert.equal(TabChat.EVENT.SDK_NOT_READY, 'sdkStateNotReady');
    assert.equal(TabChat.EVENT.SDK_DESTROY, 'sdkDestroy');
    assert.equal(TabChat.EVENT.KICKED_OUT, 'kickedOut');
    assert.equal(TabChat.EVENT.NET_STATE_CHANGE, 'netStateChange');
    assert.equal(TabChat.EVENT.ERROR, 'error');
    assert.equal(TabChat.EVENT.MESSAGE_RECEIVED, 'onMessageReceived');
    assert.equal(TabChat.TYPES.KICKED_OUT_MULT_ACCOUNT, 'multipleAccount');
    assert.equal(TabChat.TYPES.NET_STATE_CONNECTED, 'connected');
    assert.equal(TabChat.TYPES.CONV_C2C, 'C2C');
    assert.equal(TabChat.TYPES.MSG_TEXT, 'TIMTextElem');
    assert.ok(Object.isFrozen(TabChat.EVENT) && Object.isFrozen(TabChat.TYPES));
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(TabChat.VERSION, pkg.version);
  });
});

describe('create()', () => {
  const server = 'ws://127.0.0.1:1/ws';

  test('every call returns a new instance; a numeric string SDKAppID is accepted', (t) => {
    const a = TabChat.create({ SDKAppID: 1400000001, server });
    const b = TabChat.create({ SDKAppID: '1400000001', server });
    assert.ok(a && b);
    assert.notEqual(a, b);
    t.after(() => Promise.allSettled([a.destroy(), b.destroy()]));
  });

  test('a non-numeric SDKAppID returns null', (t) => {
    t.mock.method(console, 'error', () => undefined);
    assert.equal(TabChat.create({ SDKAppID: 'abc', server }), null);
    assert.equal(TabChat.create({ SDKAppID: undefined as unknown as number, server }), null);
  });

  test('server is required, platform and origin are validated', () => {
    const invalid: unknown[] = [
      undefined,
      { SDKAppID: 1 },
      { SDKAppID: 1, server: 'http://127.0.0.1/ws' },
      { SDKAppID: 1, server: 'not a url' },
      { SDKAppID: 1, server, platform: 'Nokia' },
      { SDKAppID: 1, server, origin: 42 },
    ];
    for (const options of invalid) {
      assert.throws(() => TabChat.create(options as never), { message: 'Params validate failed.' }, JSON.stringify(options));
    }
  });
});

describe('login', () => {
  test('resolves before SDK_READY, which fires on a later macrotask', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    const order: string[] = [];
    chat.on(EVENT.SDK_READY, () => order.push(`SDK_READY ready=${chat.isReady()}`));
    const res = await chat.login({ userID: 'alice', userSig: h.server.sig('alice') }).then((r) => {
      order.push(`then ready=${chat.isReady()}`);
      return r;
    });
    assert.equal(res.code, 0);
    assert.equal(res.data.actionStatus, 'OK');
    assert.equal(res.data.errorCode, 0);
    assert.equal(res.data.errorInfo, '');
    assert.equal(res.data.repeatLogin, undefined);
    assert.equal(typeof res.data.instanceID, 'number');
    assert.equal(chat.getLoginUser(), 'alice');
    await rec.waitFor(EVENT.SDK_READY);
    assert.deepEqual(order, ['then ready=false', 'SDK_READY ready=true']);
    assert.equal(chat.isReady(), true);
    assert.deepEqual((await h.online('alice')).map((d) => d.InstId), [res.data.instanceID]);
  });

  test('again while logged in resolves repeatLogin without a new SDK_READY', async (t) => {
    const h = await harness(t);
    const { chat, rec } = await h.ready('alice');
    const res = await chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
    assert.equal(res.code, 0);
    assert.equal(res.data.repeatLogin, true);
    assert.ok(res.data.errorInfo.length > 0);
    assert.equal((await h.online('alice')).length, 1); // a REST round trip: a stray SDK_READY would be recorded by now
    assert.deepEqual(rec.names().filter((n) => n === EVENT.SDK_READY), [EVENT.SDK_READY]);
  });

  test('while another login is in flight rejects 2025', async (t) => {
    const h = await harness(t);
    const { chat } = h.chat();
    const first = chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
    const second = await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }));
    assert.ok(second instanceof ChatError);
    assert.equal(second.code, 2025);
    assert.equal((await first).code, 0);
  });

  test('bad arguments throw Params validate failed synchronously', (t) => {
    const chat = TabChat.create({ SDKAppID: 1400000001, server: 'ws://127.0.0.1:1/ws' })!;
    t.after(() => chat.destroy().catch(() => undefined));
    const bad: unknown[] = [undefined, null, {}, { userID: 'a' }, { userSig: 's' }, { userID: '', userSig: 's' }, { userID: 1, userSig: 's' }];
    for (const options of bad) {
      assert.throws(() => chat.login(options as never), { message: 'Params validate failed.' }, JSON.stringify(options));
    }
    const handler = () => undefined;
    assert.throws(() => chat.on(123 as never, handler), { message: 'Params validate failed.' });
    assert.throws(() => chat.on(EVENT.ERROR, 'nope' as never), { message: 'Params validate failed.' });
    assert.throws(() => chat.off('', handler), { message: 'Params validate failed.' });
  });
});

describe('server refusals reject with the server code; the reason becomes 3001', () => {
  test('70001, 70003, 70009, 70013, 70014, 70020', async (t) => {
    const h = await harness(t, {}, { rateLimits: { loginFailuresPerIp: 1000, loginFailuresPerUser: 1000 } });
    const now = Math.floor(Date.now() / 1000);
    const cases: Array<[number, string, string, number?]> = [
      [70001, 'alice', h.server.sig('alice', { time: now - 100, expire: 10 })],
      [70003, 'alice', 'not-a-usersig'],
      [70009, 'alice', h.server.sig('alice', { key: 'another key' })],
      [70013, 'alice', h.server.sig('bob')],
      [70014, 'alice', h.server.sig('alice', { sdkAppId: h.server.sdkAppId + 1 })],
      [70020, 'alice', h.server.sig('alice', { sdkAppId: 1400009999 }), 1400009999],
    ];
    for (const [code, userID, userSig, sdkAppId] of cases) {
      const { chat, rec } = h.chat(sdkAppId ? { SDKAppID: sdkAppId } : {});
      const err = await rejection(chat.login({ userID, userSig }));
      assert.ok(err instanceof ChatError, `${code}: a ChatError`);
      assert.equal(err.code, code);
      assert.equal(typeof err.message, 'string');
      assert.ok(err.message.length > 0);
      assert.equal(typeof err.data, 'object');
      assert.equal(chat.isReady(), false);
      assert.equal(chat.getLoginUser(), '');
      assert.equal((await rejection(Promise.resolve().then(() => chat.getServerTime()))).code, 3001, `${code}: reason 3001`);
      assert.ok(!rec.names().includes(EVENT.SDK_READY));
    }
  });

  test('60020 when the app is disabled', async (t) => {
    const h = await harness(t, { enabled: false });
    const { chat } = h.chat();
    const err = await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }));
    assert.equal(err.code, 60020);
  });

  test('2801 naming the origin rule when the origin is not allowed, promptly', async (t) => {
    const h = await harness(t, { allowedOrigins: ['https://good.example'] });
    const { chat } = h.chat({ origin: 'https://evil.example' });
    const started = Date.now();
    const err = await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }));
    assert.equal(err.code, 2801);
    assert.match(err.message, /origin/i);
    assert.ok(Date.now() - started < 2000);
    const good = h.chat({ origin: 'https://good.example' });
    assert.equal((await good.chat.login({ userID: 'alice', userSig: h.server.sig('alice') })).code, 0);
  });

  test('an unreachable server rejects 2800 promptly', async (t) => {
    const chat = TabChat.create({ SDKAppID: 1400000001, server: 'ws://127.0.0.1:1/ws' })!;
    chat.setLogLevel(4);
    t.after(() => chat.destroy().catch(() => undefined));
    const err = await rejection(chat.login({ userID: 'alice', userSig: 'x' }));
    assert.equal(err.code, 2800);
  });
});

describe('not-ready gate', () => {
  test('a refusal of a value-returning call is not an unhandled rejection; awaiting it still rejects', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    t.after(() => process.off('unhandledRejection', onUnhandled));
    // Used as values, never awaited: what application code does with these three.
    chat.createTextMessage({ to: 'bob', conversationType: TYPES.CONV_C2C, payload: { text: 'hi' } });
    chat.getServerTime();
    chat.once(EVENT.SDK_READY, () => {});
    const sent = chat.sendMessage({} as never); // a Promise API: rejects like any other
    await rejection(sent);
    // Unhandled rejections are reported after the microtask queue drains: two macrotask turns.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandled, []);
    assert.deepEqual(rec.events.map((e) => (e.data as { code: number }).code), [2024, 2024, 2024, 2024]);
    const err = await rejection(chat.createTextMessage({ to: 'bob', conversationType: TYPES.CONV_C2C, payload: { text: 'hi' } }) as unknown as Promise<unknown>);
    assert.equal((err as ChatError).code, 2024);
    assert.match((err as ChatError).message, /\| createTextMessage \| SDK not ready$/);
  });

  test('gated calls reject with the current reason, a 3-part message, and emit ERROR', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    const expectGate = async (reason: number, reasonText: RegExp) => {
      rec.clear();
      const err = await rejection(Promise.resolve().then(() => chat.getServerTime()));
      assert.ok(err instanceof ChatError);
      assert.equal(err.code, reason);
      const parts = err.message.split(' | ');
      assert.equal(parts.length, 3, err.message);
      assert.match(parts[0]!, reasonText);
      assert.equal(parts[1], 'getServerTime');
      assert.equal(parts[2], 'SDK not ready');
      assert.deepEqual(rec.events, [{ name: EVENT.ERROR, data: { code: reason, message: err.message } }]);
    };
    await expectGate(2024, /not logged in/);
    const login = chat.login({ userID: 'alice', userSig: h.server.sig('alice') });
    await expectGate(3000, /login in progress/);
    await login;
    await rec.waitFor(EVENT.SDK_READY);
    const time = chat.getServerTime();
    assert.equal(typeof time, 'number');
    assert.ok(Math.abs(time - Date.now()) < 5000);
    await chat.logout();
    await expectGate(3005, /logged out/);
  });

  test('once is gated; whitelisted calls work before ready', async (t) => {
    const h = await harness(t);
    const { chat } = h.chat();
    const handler = () => undefined;
    const refused = chat.once(EVENT.SDK_READY, handler) as unknown as Promise<never>;
    assert.equal((await rejection(refused)).code, 2024);
    assert.equal(chat.isReady(), false);
    assert.equal(chat.getLoginUser(), '');
    chat.on(EVENT.NET_STATE_CHANGE, handler);
    chat.off(EVENT.NET_STATE_CHANGE, handler);
    chat.setLogLevel(3);
  });
});

describe('events', () => {
  test('EventEmitter3 semantics: {name, data}, duplicate on, one off removes all, once, exceptions caught', async (t) => {
    const h = await harness(t);
    const { chat, rec } = await h.ready('alice');
    chat.setLogLevel(4); // the throwing handler below would log a CallbackError
    const calls: string[] = [];
    const twice = (e: { name: string }) => calls.push(`twice:${e.name}`);
    chat.on(EVENT.ERROR, () => {
      throw new Error('handler bug');
    });
    chat.on(EVENT.ERROR, twice);
    chat.on(EVENT.ERROR, twice);
    const ctx = { tag: 'ctx' };
    chat.once(
      EVENT.ERROR,
      function (this: typeof ctx, e) {
        calls.push(`once:${this.tag}:${e.data.code}`);
      },
      ctx,
    );
    await chat.logout();
    await rejection(Promise.resolve().then(() => chat.getServerTime())); // emits ERROR
    assert.deepEqual(calls, ['twice:error', 'twice:error', 'once:ctx:3005']);
    calls.length = 0;
    chat.off(EVENT.ERROR, twice);
    await rejection(Promise.resolve().then(() => chat.getServerTime()));
    assert.deepEqual(calls, []);
    assert.deepEqual(rec.events.at(-1), { name: EVENT.ERROR, data: { code: 3005, message: 'logged out | getServerTime | SDK not ready' } });
  });
});

describe('logout', () => {
  test('rejects 2024 when not logged in, without events', async (t) => {
    const h = await harness(t);
    const { chat, rec } = h.chat();
    const err = await rejection(chat.logout());
    assert.ok(err instanceof ChatError);
    assert.equal(err.code, 2024);
    assert.deepEqual(rec.events, []);
  });

  test('emits SDK_NOT_READY before resolving {code: 0, data: {}}; the server releases the instance', async (t) => {
    const h = await harness(t);
    const { chat, rec } = await h.ready('alice');
    const order: string[] = [];
    chat.on(EVENT.SDK_NOT_READY, () => order.push(`SDK_NOT_READY ready=${chat.isReady()}`));
    const res = await chat.logout();
    order.push('resolved');
    assert.deepEqual(res, { code: 0, data: {} });
    assert.deepEqual(order, ['SDK_NOT_READY ready=false', 'resolved']);
    assert.equal(chat.getLoginUser(), '');
    assert.deepEqual(await h.online('alice'), []);
    // The socket closes after the last instance left: NET_STATE_CHANGE follows SDK_NOT_READY.
    const disconnected = (e: { name: string; data: unknown }) =>
      e.name === EVENT.NET_STATE_CHANGE && (e.data as { state: string }).state === TYPES.NET_STATE_DISCONNECTED;
    await until(() => rec.events.some(disconnected), 5000, 'NET_STATE_CHANGE disconnected');
    assert.ok(rec.events.findIndex((e) => e.name === EVENT.SDK_NOT_READY) < rec.events.findIndex(disconnected));
  });

  test('login again after logout works (account switch without awaiting logout)', async (t) => {
    const h = await harness(t);
    const { chat, rec } = await h.ready('alice');
    rec.clear();
    void chat.logout();
    const res = await chat.login({ userID: 'bob', userSig: h.server.sig('bob') });
    assert.equal(res.data.repeatLogin, undefined);
    await rec.waitFor(EVENT.SDK_READY);
    assert.equal(chat.getLoginUser(), 'bob');
    const names = rec.names().filter((n) => n !== EVENT.NET_STATE_CHANGE);
    assert.deepEqual(names, [EVENT.SDK_NOT_READY, EVENT.SDK_READY]);
  });
});

describe('destroy', () => {
  test('logs out, releases the socket, and the instance cannot log in again', async (t) => {
    const h = await harness(t);
    const { chat, rec } = await h.ready('alice');
    const res = await chat.destroy();
    assert.deepEqual(res, { code: 0, data: {} });
    assert.ok(rec.names().includes(EVENT.SDK_NOT_READY));
    assert.deepEqual(await h.online('alice'), []);
    const err = await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }));
    assert.equal(err.code, 9011);
  });

  test('rejects 2024 when not logged in, but still cleans up', async (t) => {
    const h = await harness(t);
    const { chat } = h.chat();
    const err = await rejection(chat.destroy());
    assert.equal(err.code, 2024);
    assert.equal((await rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }))).code, 9011);
  });

  test('during a login: the login settles, nothing stays online', async (t) => {
    const h = await harness(t);
    const { chat } = h.chat();
    const login = rejection(chat.login({ userID: 'alice', userSig: h.server.sig('alice') }));
    assert.equal((await rejection(chat.destroy())).code, 2024);
    assert.equal((await login).code, 9011);
    assert.deepEqual(await h.online('alice'), []);
  });
});
