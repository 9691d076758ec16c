/**
 * Login instances end to end (docs/protocol.md "Instances, limits and policy"): per-platform limits,
 * login policies, several instances per connection, UserSig expiry, REST kick and
 * revocation, resume, the heartbeat sweep and graceful shutdown.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import type { KickFrame, Platform } from '../../src/protocol/frames.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { getMetrics, metricValue, nowSec, onlineDetail, onlineIds } from './util.js';

async function server(t: { after(fn: () => Promise<void>): void }, ...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const ts = await startTestServer(...args);
  t.after(() => ts.close());
  return ts;
}

/** Connect, log in, return the client and its instId. */
async function loggedIn(ts: TestServer, userID: string, platform: Platform = 'Web'): Promise<{ c: RawClient; instId: number; token: string }> {
  const c = await RawClient.connect(ts.wsUrl);
  const r = await c.login(ts.sdkAppId, userID, ts.sig(userID), platform);
  assert.equal(r.ok, true, `login ${userID}/${platform}: ${JSON.stringify(r)}`);
  return { c, instId: r.data.instId, token: r.data.token };
}

const sorted = (ids: number[]) => [...ids].sort((a, b) => a - b);
const waitKick = (c: RawClient, instId: number) => c.waitFor<KickFrame>((f) => f.type === 'kick' && f.instId === instId, 5000, `kick of ${instId}`);
const kicksOf = (...clients: RawClient[]) => clients.flatMap((c) => c.kicks());

test('limit 2: a3 kicks a1 (multipleAccount), a2 untouched; a kicked instance cannot log out', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 });
  const a1 = await loggedIn(ts, 'alice');
  const a2 = await loggedIn(ts, 'alice');
  assert.deepEqual(kicksOf(a1.c, a2.c), []);
  const a3 = await loggedIn(ts, 'alice');
  const kick = await waitKick(a1.c, a1.instId);
  assert.deepEqual(kick, { type: 'kick', instId: a1.instId, reason: 'multipleAccount' });
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([a2.instId, a3.instId]));
  assert.deepEqual(kicksOf(a2.c, a3.c), []);
  assert.equal(a1.c.kicks().length, 1);
  const logout = await a1.c.request({ type: 'logout', instId: a1.instId });
  assert.equal(logout.code, CODE.UNKNOWN_INSTANCE);
  // The kicked connection itself stays open and usable.
  assert.equal((await a1.c.request({ type: 'time' })).ok, true);
  for (const x of [a1, a2, a3]) x.c.close();
});

test('limit 2: a1 logout frees only a1; the next login then kicks nobody', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 });
  const a1 = await loggedIn(ts, 'alice');
  const a2 = await loggedIn(ts, 'alice');
  const out = await a1.c.request({ type: 'logout', instId: a1.instId });
  assert.equal(out.ok, true);
  assert.deepEqual(await onlineIds(ts, 'alice'), [a2.instId]);
  const a3 = await loggedIn(ts, 'alice');
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([a2.instId, a3.instId]));
  assert.deepEqual(kicksOf(a1.c, a2.c, a3.c), []);
  // Proof that nothing is in flight: a fourth login now does kick a2 (the oldest).
  const a4 = await loggedIn(ts, 'alice');
  await waitKick(a2.c, a2.instId);
  assert.deepEqual(kicksOf(a1.c, a3.c, a4.c), []);
  for (const x of [a1, a2, a3, a4]) x.c.close();
});

test('limit 1: the second login kicks the first (multipleAccount); other users and platforms are unaffected', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 });
  const bob = await loggedIn(ts, 'bob');
  const androidA = await loggedIn(ts, 'alice', 'Android');
  const first = await loggedIn(ts, 'alice');
  const second = await loggedIn(ts, 'alice');
  assert.equal((await waitKick(first.c, first.instId)).reason, 'multipleAccount');
  assert.deepEqual(kicksOf(bob.c, androidA.c, second.c), []);
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([androidA.instId, second.instId]));
  for (const x of [bob, androidA, first, second]) x.c.close();
});

test('policy single: an Android login kicks Web with multipleDevice', async (t) => {
  const ts = await server(t, { loginPolicy: 'single' });
  const web = await loggedIn(ts, 'alice', 'Web');
  const android = await loggedIn(ts, 'alice', 'Android');
  assert.equal((await waitKick(web.c, web.instId)).reason, 'multipleDevice');
  assert.deepEqual(await onlineIds(ts, 'alice'), [android.instId]);
  // And back: Web kicks Android.
  const web2 = await loggedIn(ts, 'alice', 'Web');
  assert.equal((await waitKick(android.c, android.instId)).reason, 'multipleDevice');
  assert.deepEqual(await onlineIds(ts, 'alice'), [web2.instId]);
  for (const x of [web, android, web2]) x.c.close();
});

test('policy dual: Android + Web coexist; iPhone kicks Android; Web is never kicked by non-Web', async (t) => {
  const ts = await server(t, { loginPolicy: 'dual' });
  const android = await loggedIn(ts, 'alice', 'Android');
  const web = await loggedIn(ts, 'alice', 'Web');
  assert.deepEqual(kicksOf(android.c, web.c), []);
  const iphone = await loggedIn(ts, 'alice', 'iPhone');
  assert.equal((await waitKick(android.c, android.instId)).reason, 'multipleDevice');
  const windows = await loggedIn(ts, 'alice', 'Windows');
  assert.equal((await waitKick(iphone.c, iphone.instId)).reason, 'multipleDevice');
  const linux = await loggedIn(ts, 'alice', 'Linux');
  assert.equal((await waitKick(windows.c, windows.instId)).reason, 'multipleDevice');
  assert.deepEqual(web.c.kicks(), [], 'Web survived every non-Web login');
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([web.instId, linux.instId]));
  for (const x of [android, web, iphone, windows, linux]) x.c.close();
});

test('policy triple: Android + Windows + Web coexist; iPad kicks Android; Mac kicks Windows', async (t) => {
  const ts = await server(t, { loginPolicy: 'triple' });
  const android = await loggedIn(ts, 'alice', 'Android');
  const windows = await loggedIn(ts, 'alice', 'Windows');
  const web = await loggedIn(ts, 'alice', 'Web');
  assert.deepEqual(kicksOf(android.c, windows.c, web.c), []);
  const ipad = await loggedIn(ts, 'alice', 'iPad');
  assert.equal((await waitKick(android.c, android.instId)).reason, 'multipleDevice');
  assert.deepEqual(windows.c.kicks(), [], 'a mobile login leaves desktop alone');
  const mac = await loggedIn(ts, 'alice', 'Mac');
  assert.equal((await waitKick(windows.c, windows.instId)).reason, 'multipleDevice');
  assert.deepEqual(ipad.c.kicks(), [], 'a desktop login leaves mobile alone');
  assert.deepEqual(web.c.kicks(), []);
  const detail = await onlineDetail(ts, 'alice');
  assert.deepEqual(detail.map((d) => d.Platform).sort(), ['Mac', 'Web', 'iPad']);
  for (const x of [android, windows, web, ipad, mac]) x.c.close();
});

test('policy multi: all 7 platforms coexist', async (t) => {
  const ts = await server(t, { loginPolicy: 'multi' });
  const platforms: Platform[] = ['Web', 'Android', 'iPhone', 'iPad', 'Windows', 'Mac', 'Linux'];
  const all = [];
  for (const p of platforms) all.push(await loggedIn(ts, 'alice', p));
  const detail = await onlineDetail(ts, 'alice');
  assert.deepEqual(detail.map((d) => d.Platform).sort(), [...platforms].sort());
  assert.deepEqual(kicksOf(...all.map((x) => x.c)), []);
  for (const x of all) x.c.close();
});

test('several instances on one connection are addressed by instId; a kick of one leaves the others', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 });
  const c = await RawClient.connect(ts.wsUrl);
  const alice = await c.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  const bob = await c.login(ts.sdkAppId, 'bob', ts.sig('bob'));
  const aliceAndroid = await c.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Android');
  assert.ok(alice.ok && bob.ok && aliceAndroid.ok);
  const ids = [alice.data.instId, bob.data.instId, aliceAndroid.data.instId];
  assert.equal(new Set(ids).size, 3, 'distinct instIds');
  const other = await loggedIn(ts, 'alice', 'Web');
  const kick = await waitKick(c, alice.data.instId);
  assert.equal(kick.reason, 'multipleAccount');
  assert.equal(c.kicks().length, 1, 'only that instance was kicked');
  // The others are still held by this connection.
  assert.equal((await c.request({ type: 'logout', instId: bob.data.instId })).ok, true);
  assert.equal((await c.request({ type: 'logout', instId: alice.data.instId })).code, CODE.UNKNOWN_INSTANCE);
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([aliceAndroid.data.instId, other.instId]));
  assert.deepEqual(await onlineIds(ts, 'bob'), []);
  c.close();
  other.c.close();
});

test('UserSig expiry: the instance is kicked with userSigExpired when its UserSig expires', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl);
  const bystander = await loggedIn(ts, 'bob');
  // Valid through second time+1, so the kick comes 1–2 s from now.
  const time = nowSec();
  const r = await c.login(ts.sdkAppId, 'alice', ts.sig('alice', { time, expire: 1 }));
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.data.expireAt, (time + 2) * 1000);
  const kick = await c.waitFor<KickFrame>((f) => f.type === 'kick', 4000, 'userSigExpired kick');
  assert.ok(Date.now() >= r.data.expireAt - 50, `kick not before expireAt (${Date.now() - r.data.expireAt} ms)`);
  assert.deepEqual(kick, { type: 'kick', instId: r.data.instId, reason: 'userSigExpired' });
  assert.deepEqual(await onlineIds(ts, 'alice'), []);
  assert.deepEqual(bystander.c.kicks(), []);
  const m = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m, 'tabchat_kicks_total', { type: 'userSigExpired' }), 1);
  c.close();
  bystander.c.close();
});

test('REST kick: every instance of the user gets REST_API_Kick; older UserSigs are refused with 70052, later ones accepted', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 });
  const oldTime = nowSec() - 5;
  const web1 = await loggedIn(ts, 'alice', 'Web');
  const web2 = await loggedIn(ts, 'alice', 'Web');
  const android = await loggedIn(ts, 'alice', 'Android');
  const bob = await loggedIn(ts, 'bob', 'Web');
  const r = await ts.rest('im_open_login_svc/kick', { UserID: 'alice' });
  assert.deepEqual(r, { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' });
  for (const x of [web1, web2, android]) assert.equal((await waitKick(x.c, x.instId)).reason, 'REST_API_Kick');
  assert.deepEqual(await onlineIds(ts, 'alice'), []);
  assert.deepEqual(bob.c.kicks(), []);
  assert.deepEqual(await onlineIds(ts, 'bob'), [bob.instId]);
  const c = await RawClient.connect(ts.wsUrl);
  const refused = await c.login(ts.sdkAppId, 'alice', ts.sig('alice', { time: oldTime }));
  assert.deepEqual([refused.ok, refused.code], [false, CODE.USERSIG_REVOKED]);
  const later = await c.login(ts.sdkAppId, 'alice', ts.sig('alice', { time: nowSec() + 1 }));
  assert.equal(later.ok, true, JSON.stringify(later));
  // bob's old UserSigs are not revoked.
  assert.equal((await c.login(ts.sdkAppId, 'bob', ts.sig('bob', { time: oldTime }))).ok, true);
  const m = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m, 'tabchat_kicks_total', { type: 'REST_API_Kick' }), 3);
  for (const x of [web1, web2, android, bob]) x.c.close();
  c.close();
});

test('resume within the window: same instId, nobody kicked, no new login', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 }, { resumeWindowMs: 5000 });
  const other = await loggedIn(ts, 'alice');
  const a = await loggedIn(ts, 'alice');
  const loginsBefore = metricValue(await getMetrics(ts.httpUrl), 'tabchat_logins_total', { result: 'ok' });
  assert.equal(loginsBefore, 2);
  a.c.terminate();
  // The server keeps the instance, detached.
  await until(async () => (await onlineDetail(ts, 'alice')).some((d) => d.InstId === a.instId && d.Connected === false), 3000, 'detached');
  const b = await RawClient.connect(ts.wsUrl);
  const r = await b.request({ type: 'resume', instId: a.instId, token: a.token });
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal(r.data.instId, a.instId);
  assert.ok(typeof r.data.serverTime === 'number');
  assert.deepEqual(kicksOf(other.c, b), []);
  assert.deepEqual(await onlineIds(ts, 'alice'), sorted([other.instId, a.instId]));
  assert.ok((await onlineDetail(ts, 'alice')).every((d) => d.Connected === true));
  const m = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m, 'tabchat_logins_total', { result: 'ok' }), loginsBefore, 'resume is not a login');
  assert.equal(metricValue(m, 'tabchat_resumes_total', { result: 'ok' }), 1);
  // The new connection now holds it.
  assert.equal((await b.request({ type: 'logout', instId: a.instId })).ok, true);
  assert.deepEqual(await onlineIds(ts, 'alice'), [other.instId]);
  other.c.close();
  b.close();
});

test('resume after a server-side drop (dropConnections) keeps the login order', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 }, { resumeWindowMs: 5000 });
  const a1 = await loggedIn(ts, 'alice');
  const a2 = await loggedIn(ts, 'alice');
  ts.dropConnections();
  await a1.c.waitClosed();
  await a2.c.waitClosed();
  const n1 = await RawClient.connect(ts.wsUrl);
  const n2 = await RawClient.connect(ts.wsUrl);
  // Resume in reverse order: order must still be by login.
  assert.equal((await n2.request({ type: 'resume', instId: a2.instId, token: a2.token })).ok, true);
  assert.equal((await n1.request({ type: 'resume', instId: a1.instId, token: a1.token })).ok, true);
  assert.deepEqual(kicksOf(n1, n2), []);
  const a3 = await loggedIn(ts, 'alice');
  assert.equal((await waitKick(n1, a1.instId)).reason, 'multipleAccount', 'the oldest login is kicked first');
  assert.deepEqual(n2.kicks(), []);
  for (const c of [n1, n2, a3.c]) c.close();
});

test('resume with a wrong token: 9005, and the right token still works afterwards', async (t) => {
  const ts = await server(t, {}, { resumeWindowMs: 5000 });
  const a = await loggedIn(ts, 'alice');
  a.c.terminate();
  const b = await RawClient.connect(ts.wsUrl);
  const wrong = await b.request({ type: 'resume', instId: a.instId, token: a.token.slice(0, -1) + (a.token.endsWith('A') ? 'B' : 'A') });
  assert.deepEqual([wrong.ok, wrong.code], [false, CODE.RESUME_FAILED]);
  const unknown = await b.request({ type: 'resume', instId: a.instId + 1000, token: a.token });
  assert.deepEqual([unknown.ok, unknown.code], [false, CODE.RESUME_FAILED]);
  const right = await b.request({ type: 'resume', instId: a.instId, token: a.token });
  assert.equal(right.ok, true);
  // A logged-out instance cannot be resumed (and reports no kick).
  assert.equal((await b.request({ type: 'logout', instId: a.instId })).ok, true);
  const gone = await b.request({ type: 'resume', instId: a.instId, token: a.token });
  assert.deepEqual([gone.ok, gone.code, gone.data], [false, CODE.RESUME_FAILED, undefined]);
  b.close();
});

test('resume after the window: 9005 and the instance is gone', async (t) => {
  const ts = await server(t, {}, { resumeWindowMs: 300 });
  const a = await loggedIn(ts, 'alice');
  const dropped = Date.now();
  a.c.terminate();
  await until(async () => (await onlineIds(ts, 'alice')).length === 0, 3000, 'instance released');
  assert.ok(Date.now() - dropped >= 250, 'not released before the window');
  const b = await RawClient.connect(ts.wsUrl);
  const r = await b.request({ type: 'resume', instId: a.instId, token: a.token });
  assert.deepEqual([r.ok, r.code], [false, CODE.RESUME_FAILED]);
  assert.equal(r.data, undefined, 'no kick type: it was released, not kicked');
  b.close();
});

test('kicked while detached: resume answers 3003 with data.kickType multipleAccount', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 }, { resumeWindowMs: 5000 });
  const a1 = await loggedIn(ts, 'alice');
  a1.c.terminate();
  await until(async () => (await onlineDetail(ts, 'alice')).some((d) => d.Connected === false), 3000, 'detached');
  const a2 = await loggedIn(ts, 'alice');
  const c = await RawClient.connect(ts.wsUrl);
  const r = await c.request({ type: 'resume', instId: a1.instId, token: a1.token });
  assert.equal(r.ok, false);
  assert.equal(r.code, CODE.KICKED_OUT_MULT_ACCOUNT);
  assert.deepEqual(r.data, { kickType: 'multipleAccount' });
  assert.deepEqual(await onlineIds(ts, 'alice'), [a2.instId]);
  assert.deepEqual(a2.c.kicks(), []);
  c.close();
  a2.c.close();
});

test('kicked while detached, for every kind of kick: resume answers 3002 / 3003 / 3004 / 3006 with data.kickType', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1, loginPolicy: 'single' }, { resumeWindowMs: 10_000 });
  const detached = async (userID: string, sig?: string) => {
    const c = await RawClient.connect(ts.wsUrl);
    const r = await c.login(ts.sdkAppId, userID, sig ?? ts.sig(userID));
    assert.equal(r.ok, true, JSON.stringify(r));
    c.terminate();
    await until(async () => (await onlineDetail(ts, userID)).some((d) => d.InstId === r.data.instId && d.Connected === false), 3000, `${userID} detached`);
    return { instId: r.data.instId as number, token: r.data.token as string, expireAt: r.data.expireAt as number };
  };
  // Started first: its UserSig expires 1–2 s from now while it is detached.
  const expiring = await detached('dora', ts.sig('dora', { time: nowSec(), expire: 1 }));
  const account = await detached('alice');
  const device = await detached('bob');
  const rest = await detached('carol');
  const others = [await loggedIn(ts, 'alice', 'Web'), await loggedIn(ts, 'bob', 'Android')];
  assert.equal((await ts.rest('im_open_login_svc/kick', { UserID: 'carol' })).ErrorCode, 0);
  await until(async () => (await onlineIds(ts, 'dora')).length === 0, 4000, 'dora expired');
  assert.ok(Date.now() >= expiring.expireAt - 50);
  const c = await RawClient.connect(ts.wsUrl);
  const cases: Array<[typeof account, number, string]> = [
    [account, CODE.KICKED_OUT_MULT_ACCOUNT, 'multipleAccount'],
    [device, CODE.KICKED_OUT_MULT_DEVICE, 'multipleDevice'],
    [rest, CODE.KICKED_OUT_REST_API, 'REST_API_Kick'],
    [expiring, CODE.KICKED_OUT_USERSIG_EXPIRED, 'userSigExpired'],
  ];
  for (const [inst, code, kickType] of cases) {
    const r = await c.request({ type: 'resume', instId: inst.instId, token: inst.token });
    assert.deepEqual({ ok: r.ok, code: r.code, data: r.data }, { ok: false, code, data: { kickType } }, kickType);
  }
  assert.deepEqual(kicksOf(...others.map((o) => o.c)), []);
  for (const o of others) o.c.close();
  c.close();
});

test('heartbeat sweep terminates a client that does not answer pings; a live client stays', async (t) => {
  const ts = await server(t, {}, { heartbeatMs: 200, resumeWindowMs: 5000 });
  const live = await RawClient.connect(ts.wsUrl);
  const started = Date.now();
  const dead = await RawClient.connect(ts.wsUrl, { autoPong: false });
  const r = await dead.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.equal(r.ok, true);
  const closed = await dead.waitClosed(3000);
  assert.equal(closed.code, 1006, 'terminated without a close frame');
  assert.ok(Date.now() - started >= 150, 'not before a ping went unanswered');
  // `live` connected first and has been through the same sweeps.
  assert.equal(live.closed, null);
  assert.equal((await live.request({ type: 'time' })).ok, true);
  // The dead client's instance is detached, not lost: it can be resumed.
  const again = await RawClient.connect(ts.wsUrl);
  assert.equal((await again.request({ type: 'resume', instId: r.data.instId, token: r.data.token })).ok, true);
  live.close();
  again.close();
});

test('graceful close: server.close() sends close 4000 to every client and refuses new ones', async () => {
  const ts = await startTestServer({}, { shutdownGraceMs: 3000 });
  const a = await loggedIn(ts, 'alice');
  const idle = await RawClient.connect(ts.wsUrl);
  const unGreeted = await RawClient.connect(ts.wsUrl, { hello: false });
  const closing = ts.close();
  for (const c of [a.c, idle, unGreeted]) assert.equal((await c.waitClosed()).code, CLOSE.SHUTDOWN);
  await closing;
  await assert.rejects(RawClient.connect(ts.wsUrl));
});
