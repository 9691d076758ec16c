/**
 * Login over the WebSocket: every refusal with its code (docs/protocol.md check order),
 * origin rules, disabled apps and the login-failure rate limits (per user, per IP).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { generateUserSig } from '../../server/usersig.js';
import { getMetrics, metricValue, nowSec, onlineIds } from './util.js';

const DISABLED_APP = 1400000002;
const ORIGIN_APP = 1400000003;
const OTHER_APP = 1400000004;
const GOOD_ORIGIN = 'https://good.example';

async function server(t: { after(fn: () => Promise<void>): void }, ...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const ts = await startTestServer(...args);
  t.after(() => ts.close());
  return ts;
}

/** A server with the main app ("*" origins), a disabled app, an origin-restricted app and another app. */
async function refusalServer(t: { after(fn: () => Promise<void>): void }) {
  const keys = { disabled: randomBytes(16).toString('hex'), origin: randomBytes(16).toString('hex'), other: randomBytes(16).toString('hex') };
  const ts = await server(t, {}, {
    extraApps: [
      { sdkAppId: DISABLED_APP, secretKey: keys.disabled, enabled: false },
      { sdkAppId: ORIGIN_APP, secretKey: keys.origin, allowedOrigins: [GOOD_ORIGIN] },
      { sdkAppId: OTHER_APP, secretKey: keys.other },
    ],
  });
  return { ts, keys };
}

function login(c: RawClient, frame: Record<string, unknown>) {
  return c.request({ type: 'login', platform: 'Web', ...frame });
}

function assertRefused(r: any, code: number, what: string): void {
  assert.equal(r.type, 'result', what);
  assert.equal(r.ok, false, `${what}: expected a refusal, got ${JSON.stringify(r)}`);
  assert.equal(r.code, code, `${what}: code (message: ${r.message})`);
  assert.equal(typeof r.message, 'string', what);
  assert.ok(r.message.length > 0, `${what}: message`);
}

test('login success: result data has instId, token, userID, serverTime, expireAt', async (t) => {
  const { ts } = await refusalServer(t);
  const c = await RawClient.connect(ts.wsUrl);
  const time = nowSec();
  const before = Date.now();
  const r = await c.login(ts.sdkAppId, 'alice', ts.sig('alice', { time, expire: 3600 }));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.deepEqual(Object.keys(r.data).sort(), ['expireAt', 'instId', 'serverTime', 'token', 'userID']);
  assert.ok(Number.isInteger(r.data.instId) && r.data.instId > 0);
  assert.equal(typeof r.data.token, 'string');
  assert.ok(r.data.token.length >= 16 && r.data.token.length <= 128);
  assert.equal(r.data.userID, 'alice');
  assert.ok(r.data.serverTime >= before && r.data.serverTime <= Date.now());
  assert.equal(r.data.expireAt, (time + 3600 + 1) * 1000);
  assert.deepEqual(await onlineIds(ts, 'alice'), [r.data.instId]);
  c.close();
});

test('9010: userID too long or empty, bad platform, bad sdkAppId', async (t) => {
  const { ts } = await refusalServer(t);
  const c = await RawClient.connect(ts.wsUrl);
  const ok = { sdkAppId: ts.sdkAppId, userID: 'alice', userSig: ts.sig('alice') };
  const long = 'u'.repeat(129);
  const cases: Array<[string, Record<string, unknown>]> = [
    ['userID of 129 chars', { ...ok, userID: long, userSig: ts.sig(long) }],
    ['huge userID', { ...ok, userID: 'u'.repeat(20_000) }],
    ['empty userID', { ...ok, userID: '' }],
    ['userID not a string', { ...ok, userID: 42 }],
    ['platform unknown', { ...ok, platform: 'Windows Phone' }],
    ['platform wrong case', { ...ok, platform: 'web' }],
    ['platform missing', { ...ok, platform: undefined }],
    ['sdkAppId 0', { ...ok, sdkAppId: 0 }],
    ['sdkAppId negative', { ...ok, sdkAppId: -1400000001 }],
    ['sdkAppId fractional', { ...ok, sdkAppId: 1400000001.5 }],
    ['sdkAppId over 32 bits', { ...ok, sdkAppId: 2 ** 32 }],
    ['sdkAppId as string', { ...ok, sdkAppId: String(ts.sdkAppId) }],
  ];
  for (const [what, frame] of cases) assertRefused(await login(c, frame), CODE.INVALID_PARAMETER, what);
  // 128 characters is fine.
  const max = 'm'.repeat(128);
  assert.equal((await login(c, { ...ok, userID: max, userSig: ts.sig(max) })).ok, true, '128-char userID');
  assert.equal(c.closed, null);
  c.close();
});

test('70002 empty UserSig, 70003 unparsable or over-long UserSig', async (t) => {
  const { ts } = await refusalServer(t);
  const c = await RawClient.connect(ts.wsUrl);
  const base = { sdkAppId: ts.sdkAppId, userID: 'alice' };
  assertRefused(await login(c, { ...base, userSig: '' }), CODE.USERSIG_EMPTY, 'empty');
  assertRefused(await login(c, { ...base, userSig: undefined }), CODE.USERSIG_EMPTY, 'missing');
  assertRefused(await login(c, { ...base, userSig: 'garbage!!' }), CODE.USERSIG_UNPARSABLE, 'garbage');
  assertRefused(await login(c, { ...base, userSig: ts.sig('alice').slice(0, 40) }), CODE.USERSIG_UNPARSABLE, 'truncated');
  assertRefused(await login(c, { ...base, userSig: 'eJy' + 'A'.repeat(5000) }), CODE.USERSIG_UNPARSABLE, 'over-long');
  c.close();
});

test('70020 unknown app; 60020 disabled app (even with a valid UserSig)', async (t) => {
  const { ts, keys } = await refusalServer(t);
  const c = await RawClient.connect(ts.wsUrl);
  const unknown = await login(c, { sdkAppId: 1400009999, userID: 'alice', userSig: ts.sig('alice', { sdkAppId: 1400009999 }) });
  assertRefused(unknown, CODE.SDKAPPID_NOT_FOUND, 'unknown app');
  const sig = generateUserSig({ sdkAppId: DISABLED_APP, key: keys.disabled, identifier: 'alice' });
  assertRefused(await login(c, { sdkAppId: DISABLED_APP, userID: 'alice', userSig: sig }), CODE.SERVICE_DISABLED, 'disabled app');
  // The app checks come before decoding the UserSig.
  assertRefused(await login(c, { sdkAppId: DISABLED_APP, userID: 'alice', userSig: 'garbage' }), CODE.SERVICE_DISABLED, 'disabled + garbage');
  assertRefused(await login(c, { sdkAppId: 1400009999, userID: 'alice', userSig: 'garbage' }), CODE.SDKAPPID_NOT_FOUND, 'unknown + garbage');
  c.close();
});

test('2801: an origin outside allowedOrigins is refused promptly with a message naming the rule; the allowed origin works', async (t) => {
  const { ts, keys } = await refusalServer(t);
  const sig = (u: string) => generateUserSig({ sdkAppId: ORIGIN_APP, key: keys.origin, identifier: u });
  const evil = await RawClient.connect(ts.wsUrl, { origin: 'https://evil.example' });
  const started = Date.now();
  const r = await login(evil, { sdkAppId: ORIGIN_APP, userID: 'alice', userSig: sig('alice') });
  assert.ok(Date.now() - started < 2000, 'prompt');
  assertRefused(r, CODE.NETWORK_TIMEOUT, 'evil origin');
  assert.match(r.message, /https:\/\/evil\.example/);
  assert.match(r.message, /allowedOrigins/);
  // No Origin header at all (a non-browser client) needs "*".
  const none = await RawClient.connect(ts.wsUrl);
  assertRefused(await login(none, { sdkAppId: ORIGIN_APP, userID: 'alice', userSig: sig('alice') }), CODE.NETWORK_TIMEOUT, 'no origin');
  // The origin check comes before the UserSig.
  assertRefused(await login(evil, { sdkAppId: ORIGIN_APP, userID: 'alice', userSig: 'garbage' }), CODE.NETWORK_TIMEOUT, 'evil + garbage');
  const good = await RawClient.connect(ts.wsUrl, { origin: GOOD_ORIGIN });
  const ok = await login(good, { sdkAppId: ORIGIN_APP, userID: 'alice', userSig: sig('alice') });
  assert.equal(ok.ok, true, JSON.stringify(ok));
  // The "*" app accepts any origin.
  assert.equal((await evil.login(ts.sdkAppId, 'bob', ts.sig('bob'))).ok, true);
  for (const c of [evil, none, good]) c.close();
});

test('70013 userID mismatch, 70014 sdkappid mismatch, 70009 bad signature, 70001 expired', async (t) => {
  const { ts, keys } = await refusalServer(t);
  const c = await RawClient.connect(ts.wsUrl);
  const app = ts.sdkAppId;
  assertRefused(await c.login(app, 'alice', ts.sig('bob')), CODE.USERSIG_USERID_MISMATCH, 'sig of bob');
  assertRefused(await c.login(app, 'alice', ts.sig('alice', { sdkAppId: OTHER_APP })), CODE.USERSIG_SDKAPPID_MISMATCH, 'sig for other app, our key');
  assertRefused(
    await c.login(app, 'alice', generateUserSig({ sdkAppId: OTHER_APP, key: keys.other, identifier: 'alice' })),
    CODE.USERSIG_SDKAPPID_MISMATCH,
    'a valid sig of the other app',
  );
  assertRefused(await c.login(app, 'alice', ts.sig('alice', { key: keys.other })), CODE.USERSIG_BAD_SIGNATURE, 'other key');
  assertRefused(await c.login(app, 'alice', ts.sig('alice', { key: ts.secretKey + ' ' })), CODE.USERSIG_BAD_SIGNATURE, 'key plus a space');
  assertRefused(await c.login(app, 'alice', ts.sig('alice', { time: nowSec() - 1000, expire: 10 })), CODE.USERSIG_EXPIRED, 'expired');
  assert.deepEqual(await onlineIds(ts, 'alice'), []);
  // None of these counted as a login; the failures did.
  const m = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m, 'tabchat_logins_total', { result: 'ok' }) ?? 0, 0);
  assert.equal(metricValue(m, 'tabchat_logins_total', { result: String(CODE.USERSIG_SDKAPPID_MISMATCH) }), 2);
  assert.equal(metricValue(m, 'tabchat_logins_total', { result: String(CODE.USERSIG_BAD_SIGNATURE) }), 2);
  // A correct login still works after all that (below the default limits).
  assert.equal((await c.login(app, 'alice', ts.sig('alice'))).ok, true);
  c.close();
});

test('70050 per user and address: past the budget, bad UserSigs get 70050; a correct one still logs in, and other users are untouched', async (t) => {
  const ts = await server(t, {}, { rateLimits: { loginFailuresPerUser: 3, loginFailuresPerIp: 1000 } });
  const c = await RawClient.connect(ts.wsUrl);
  for (let i = 0; i < 3; i++) assertRefused(await c.login(ts.sdkAppId, 'eve', ts.sig('eve', { key: 'wrong' })), CODE.USERSIG_BAD_SIGNATURE, `failure ${i + 1}`);
  const limited = await c.login(ts.sdkAppId, 'eve', ts.sig('eve', { key: 'wrong' }));
  assertRefused(limited, CODE.LOGIN_RATE_LIMITED, 'bad sig after 3 failures');
  assert.match(limited.message, /retry/);
  // The signature is checked first: failures never refuse a correct UserSig.
  const ok = await c.login(ts.sdkAppId, 'eve', ts.sig('eve'));
  assert.equal(ok.ok, true, JSON.stringify(ok));
  // The budget is per user and address: the same bad sigs for another user count apart.
  assertRefused(await c.login(ts.sdkAppId, 'frank', ts.sig('frank', { key: 'wrong' })), CODE.USERSIG_BAD_SIGNATURE, 'other user');
  c.close();
});

test('70050 per IP: failures from one IP turn its bad logins into 70050; its correct logins and other IPs still log in', async (t) => {
  const ts = await server(t, {}, { rateLimits: { loginFailuresPerIp: 3, loginFailuresPerUser: 1000 } });
  const attacker = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  for (let i = 0; i < 3; i++) {
    assertRefused(await attacker.login(ts.sdkAppId, `victim${i}`, ts.sig(`victim${i}`, { key: 'wrong' })), CODE.USERSIG_BAD_SIGNATURE, `failure ${i + 1}`);
  }
  assertRefused(await attacker.login(ts.sdkAppId, 'newuser', ts.sig('newuser', { key: 'wrong' })), CODE.LOGIN_RATE_LIMITED, 'bad sig from the blocked IP');
  const attacker2 = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  assertRefused(await attacker2.login(ts.sdkAppId, 'other', ts.sig('other', { key: 'wrong' })), CODE.LOGIN_RATE_LIMITED, 'new socket, same IP');
  const sameIp = await attacker2.login(ts.sdkAppId, 'newuser', ts.sig('newuser'));
  assert.equal(sameIp.ok, true, `a correct UserSig is never refused for failures: ${JSON.stringify(sameIp)}`);
  const honest = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.1' });
  assertRefused(await honest.login(ts.sdkAppId, 'x', ts.sig('x', { key: 'wrong' })), CODE.USERSIG_BAD_SIGNATURE, 'other IP keeps its own budget');
  const ok = await honest.login(ts.sdkAppId, 'newuser2', ts.sig('newuser2'));
  assert.equal(ok.ok, true, JSON.stringify(ok));
  for (const c of [attacker, attacker2, honest]) c.close();
});

test('refusals before the UserSig check do not count toward the failure limit', async (t) => {
  const ts = await server(t, {}, { rateLimits: { loginFailuresPerIp: 2, loginFailuresPerUser: 2 } });
  const c = await RawClient.connect(ts.wsUrl);
  for (let i = 0; i < 5; i++) {
    assertRefused(await c.login(1400009999, 'alice', ts.sig('alice')), CODE.SDKAPPID_NOT_FOUND, 'unknown app');
    assertRefused(await login(c, { sdkAppId: ts.sdkAppId, userID: 'alice', userSig: '' }), CODE.USERSIG_EMPTY, 'empty');
  }
  assert.equal((await c.login(ts.sdkAppId, 'alice', ts.sig('alice'))).ok, true);
  c.close();
});
