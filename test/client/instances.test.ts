/**
 * Instances, limits and kicks as applications see them (docs/client-api.md "Kicks"):
 * KICKED_OUT {type} then SDK_NOT_READY, the not-ready reason of each kick, and kicked
 * instances staying out.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EVENT, TYPES, harness, rejection, until, type Recorder } from './util.js';
import type { Chat } from '../../src/node/index.js';

/** Assert that `rec` saw exactly KICKED_OUT {type} then SDK_NOT_READY, and the gate uses `reason`. */
async function assertKicked(chat: Chat, rec: Recorder, type: string, reason: number): Promise<void> {
  await rec.waitFor(EVENT.SDK_NOT_READY);
  const names = rec.names().filter((n) => n !== EVENT.NET_STATE_CHANGE);
  assert.deepEqual(names, [EVENT.KICKED_OUT, EVENT.SDK_NOT_READY]);
  assert.deepEqual(rec.events.find((e) => e.name === EVENT.KICKED_OUT)?.data, { type });
  assert.equal(chat.isReady(), false);
  assert.equal(chat.getLoginUser(), '');
  assert.equal((await rejection(Promise.resolve().then(() => chat.getServerTime()))).code, reason);
}

/** Lifecycle events only (not NET_STATE_CHANGE). */
function lifecycle(rec: Recorder): string[] {
  return rec.names().filter((n) => n !== EVENT.NET_STATE_CHANGE);
}

describe('instance limit per platform (multipleAccount)', () => {
  test('limit 2: a3 kicks a1 (the oldest); a2 is unaffected', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    a1.rec.clear();
    a2.rec.clear();
    const a3 = await h.ready('alice');
    await assertKicked(a1.chat, a1.rec, TYPES.KICKED_OUT_MULT_ACCOUNT, 3003);
    assert.deepEqual(lifecycle(a2.rec), []);
    assert.equal(a2.chat.isReady(), true);
    assert.deepEqual((await h.online('alice')).map((d) => d.InstId).sort(), [a2.instanceID, a3.instanceID].sort());
    // The kicked instance is not logged in any more.
    assert.equal((await rejection(a1.chat.logout())).code, 2024);
  });

  test('limit 2: a1.logout() takes only a1 offline', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const a1 = await h.ready('alice');
    const a2 = await h.ready('alice');
    await a1.chat.logout();
    assert.equal(a2.chat.isReady(), true);
    assert.deepEqual(lifecycle(a2.rec), [EVENT.SDK_READY]);
    assert.deepEqual((await h.online('alice')).map((d) => d.InstId), [a2.instanceID]);
  });

  test('limit 1 (default): a second instance kicks the first', async (t) => {
    const h = await harness(t);
    const a1 = await h.ready('alice');
    a1.rec.clear();
    await h.ready('alice');
    await assertKicked(a1.chat, a1.rec, TYPES.KICKED_OUT_MULT_ACCOUNT, 3003);
  });
});

describe('login policy across platforms (multipleDevice)', () => {
  test('single: a login on Android kicks the Web instance', async (t) => {
    const h = await harness(t, { loginPolicy: 'single' });
    const web = await h.ready('alice');
    web.rec.clear();
    await h.ready('alice', { platform: 'Android' });
    await assertKicked(web.chat, web.rec, TYPES.KICKED_OUT_MULT_DEVICE, 3002);
  });

  test('dual: iPhone kicks Android, Web stays', async (t) => {
    const h = await harness(t, { loginPolicy: 'dual' });
    const web = await h.ready('alice');
    const android = await h.ready('alice', { platform: 'Android' });
    android.rec.clear();
    await h.ready('alice', { platform: 'iPhone' });
    await assertKicked(android.chat, android.rec, TYPES.KICKED_OUT_MULT_DEVICE, 3002);
    assert.equal(web.chat.isReady(), true);
    assert.deepEqual((await h.online('alice')).map((d) => d.Platform).sort(), ['Web', 'iPhone']);
  });

  test('triple: a second mobile kicks the first; desktop and Web stay', async (t) => {
    const h = await harness(t, { loginPolicy: 'triple' });
    const web = await h.ready('alice');
    const windows = await h.ready('alice', { platform: 'Windows' });
    const android = await h.ready('alice', { platform: 'Android' });
    android.rec.clear();
    await h.ready('alice', { platform: 'iPad' });
    await assertKicked(android.chat, android.rec, TYPES.KICKED_OUT_MULT_DEVICE, 3002);
    assert.equal(web.chat.isReady(), true);
    assert.equal(windows.chat.isReady(), true);
  });

  test('multi: every platform at once', async (t) => {
    const h = await harness(t, { loginPolicy: 'multi' });
    const all = [await h.ready('alice'), await h.ready('alice', { platform: 'Android' }), await h.ready('alice', { platform: 'Mac' })];
    assert.equal((await h.online('alice')).length, 3);
    for (const { chat, rec } of all) {
      assert.equal(chat.isReady(), true);
      assert.ok(!rec.names().includes(EVENT.KICKED_OUT));
    }
  });
});

describe('UserSig expiry and REST kick', () => {
  test('an instance whose UserSig expires is kicked with userSigExpired', async (t) => {
    const h = await harness(t);
    const now = Math.floor(Date.now() / 1000);
    const a1 = await h.ready('alice', { userSig: h.server.sig('alice', { time: now, expire: 2 }) });
    a1.rec.clear();
    await a1.rec.waitFor(EVENT.SDK_NOT_READY, 5000);
    await assertKicked(a1.chat, a1.rec, TYPES.KICKED_OUT_USERSIG_EXPIRED, 3004);
  });

  test('REST kick: REST_API_Kick, old UserSigs refused with 70052, a newer one accepted', async (t) => {
    const h = await harness(t, { maxInstancesPerPlatform: 2 });
    const oldSig = h.server.sig('alice', { time: Math.floor(Date.now() / 1000) - 5 });
    const a1 = await h.ready('alice', { userSig: oldSig });
    const a2 = await h.ready('alice', { userSig: oldSig });
    a1.rec.clear();
    a2.rec.clear();
    const reply = await h.server.rest('im_open_login_svc/kick', { UserID: 'alice' });
    assert.equal(reply.ErrorCode, 0);
    await assertKicked(a1.chat, a1.rec, TYPES.KICKED_OUT_REST_API, 3006);
    await assertKicked(a2.chat, a2.rec, TYPES.KICKED_OUT_REST_API, 3006);
    const refused = await rejection(a1.chat.login({ userID: 'alice', userSig: oldSig }));
    assert.equal(refused.code, 70052);
    assert.equal((await rejection(Promise.resolve().then(() => a1.chat.getServerTime()))).code, 3001);
    const newSig = h.server.sig('alice', { time: Math.floor(Date.now() / 1000) + 1 });
    assert.equal((await a1.chat.login({ userID: 'alice', userSig: newSig })).code, 0);
    await a1.rec.waitFor(EVENT.SDK_READY);
  });
});

describe('a kicked instance never logs itself back in', () => {
  test('after a kick its socket closes; a reconnect of the others does not bring it back', async (t) => {
    const h = await harness(t);
    const a1 = await h.ready('alice');
    a1.rec.clear();
    const a2 = await h.ready('alice');
    await a1.rec.waitFor(EVENT.KICKED_OUT);
    // a1 held nothing else, so its engine released the socket.
    await until(
      () => a1.rec.events.some((e) => e.name === EVENT.NET_STATE_CHANGE && (e.data as { state: string }).state === 'disconnected'),
      5000,
      'a1 disconnected',
    );
    a2.rec.clear();
    h.server.dropConnections();
    await a2.rec.waitFor(EVENT.NET_STATE_CHANGE);
    await until(
      () => a2.rec.events.some((e) => e.name === EVENT.NET_STATE_CHANGE && (e.data as { state: string }).state === 'connected'),
      5000,
      'a2 reconnected',
    );
    await until(async () => (await h.online('alice')).every((d) => d.Connected), 5000, 'a2 resumed');
    assert.deepEqual((await h.online('alice')).map((d) => d.InstId), [a2.instanceID]);
    assert.deepEqual(lifecycle(a2.rec), []);
    assert.deepEqual(lifecycle(a1.rec), [EVENT.KICKED_OUT, EVENT.SDK_NOT_READY]);
    assert.equal(a1.chat.isReady(), false);
  });
});
