/**
 * REST (Tencent-compatible, always HTTP 200 with ActionStatus/ErrorCode/ErrorInfo) and the
 * other HTTP routes: /healthz, /metrics, /dev/usersig and the static file routes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { generateUserSig } from '../../server/usersig.js';
import { getMetrics, metricValue, onlineDetail, onlineIds, rawHttp } from './util.js';

const DISABLED_APP = 1400000002;

async function server(t: { after(fn: () => Promise<void>): void }, ...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const ts = await startTestServer(...args);
  t.after(() => ts.close());
  return ts;
}

interface RestCall {
  method?: string;
  /** Query parameters; `null` removes a default one. */
  query?: Record<string, string | null>;
  body?: string;
  command?: string;
}

/** A REST call with full control; asserts the envelope and returns the body. */
async function call(ts: TestServer, c: RestCall): Promise<any> {
  const q: Record<string, string | null> = {
    sdkappid: String(ts.sdkAppId),
    identifier: ts.adminIdentifier,
    usersig: ts.sig(ts.adminIdentifier),
    random: String(Math.floor(Math.random() * 4294967295)),
    contenttype: 'json',
    ...c.query,
  };
  const params = new URLSearchParams(Object.entries(q).filter((e): e is [string, string] => e[1] !== null));
  const method = c.method ?? 'POST';
  const res = await fetch(`${ts.httpUrl}/v4/${c.command ?? 'openim/query_online_status'}?${params}`, {
    method,
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: c.body ?? '{"To_Account":["alice"]}' }),
  });
  assert.equal(res.status, 200, 'REST is always HTTP 200');
  assert.match(res.headers.get('content-type') ?? '', /^application\/json/);
  const body = (await res.json()) as any;
  assert.equal(typeof body.ErrorCode, 'number');
  assert.equal(typeof body.ErrorInfo, 'string');
  assert.equal(body.ActionStatus, body.ErrorCode === 0 ? 'OK' : 'FAIL');
  return body;
}

async function fails(ts: TestServer, c: RestCall, code: number, what: string): Promise<any> {
  const body = await call(ts, c);
  assert.equal(body.ErrorCode, code, `${what}: ${JSON.stringify(body)}`);
  assert.ok(body.ErrorInfo.length > 0, `${what}: ErrorInfo`);
  return body;
}

test('REST refusals: method, command, query auth, admin, signature, body', async (t) => {
  const disabledKey = randomBytes(16).toString('hex');
  const ts = await server(t, {}, { extraApps: [{ sdkAppId: DISABLED_APP, secretKey: disabledKey, enabled: false }] });
  await fails(ts, { method: 'GET' }, CODE.REST_HTTP_PARSE, 'GET');
  await fails(ts, { method: 'PUT' }, CODE.REST_HTTP_PARSE, 'PUT');
  await fails(ts, { command: 'openim/no_such_command' }, CODE.REST_BAD_URL, 'unknown command');
  await fails(ts, { command: 'constructor' }, CODE.REST_BAD_URL, 'prototype name as command');
  await fails(ts, { command: '__proto__' }, CODE.REST_BAD_URL, '__proto__ as command');
  await fails(ts, { query: { sdkappid: null } }, CODE.REST_SDKAPPID_MISSING, 'missing sdkappid');
  await fails(ts, { query: { sdkappid: '' } }, CODE.REST_SDKAPPID_MISSING, 'empty sdkappid');
  await fails(ts, { query: { sdkappid: 'abc' } }, CODE.REST_SDKAPPID_INVALID, 'non-numeric sdkappid');
  await fails(ts, { query: { sdkappid: '-1' } }, CODE.REST_SDKAPPID_INVALID, 'negative sdkappid');
  await fails(ts, { query: { sdkappid: '14000000011400000001' } }, CODE.REST_SDKAPPID_INVALID, 'overlong sdkappid');
  await fails(ts, { query: { sdkappid: '1400009999' } }, CODE.SDKAPPID_NOT_FOUND, 'unknown app');
  await fails(
    ts,
    { query: { sdkappid: String(DISABLED_APP), usersig: generateUserSig({ sdkAppId: DISABLED_APP, key: disabledKey, identifier: 'administrator' }) } },
    CODE.SERVICE_DISABLED,
    'disabled app',
  );
  await fails(ts, { query: { identifier: null } }, CODE.REST_BAD_IDENTIFIER, 'missing identifier');
  await fails(ts, { query: { usersig: null } }, CODE.REST_BAD_USERSIG, 'missing usersig');
  await fails(ts, { query: { identifier: 'alice', usersig: ts.sig('alice') } }, CODE.REST_NEEDS_ADMIN, 'non-admin identifier with its own valid sig');
  await fails(ts, { query: { usersig: ts.sig(ts.adminIdentifier, { key: 'wrong key' }) } }, CODE.USERSIG_BAD_SIGNATURE, 'bad admin sig');
  await fails(ts, { query: { usersig: 'garbage' } }, CODE.USERSIG_UNPARSABLE, 'garbage admin sig');
  await fails(ts, { query: { usersig: ts.sig('alice') } }, CODE.USERSIG_USERID_MISMATCH, 'admin identifier with a user sig');
  await fails(ts, { body: '{"To_Account":' }, CODE.REST_JSON_PARSE, 'invalid JSON');
  await fails(ts, { body: 'not json' }, CODE.REST_JSON_PARSE, 'text body');
  for (const body of ['[]', '"x"', '1', 'null', 'true']) await fails(ts, { body }, CODE.REST_JSON_PARSE, `non-object JSON ${body}`);
  await fails(ts, { body: JSON.stringify({ To_Account: ['alice'], pad: 'x'.repeat(70_000) }) }, CODE.REST_HTTP_PARSE, 'body over maxBodyBytes');
  // After all those refusals, a correct call works (they did not reach the per-IP limit of 30).
  const ok = await call(ts, {});
  assert.equal(ok.ErrorCode, 0);
  // An empty body means {} (the reference requires "{}" but tolerating "" is harmless).
  await fails(ts, { body: '' }, CODE.REST_INVALID_PARAMS, 'empty body = {} without To_Account');
});

test('body over maxBodyBytes is refused with 60002 at a small limit, and a body at the limit is accepted', async (t) => {
  const ts = await server(t, {}, { maxBodyBytes: 1024 });
  const base = JSON.stringify({ To_Account: ['alice'], pad: '' });
  const exact = JSON.stringify({ To_Account: ['alice'], pad: 'x'.repeat(1024 - base.length) });
  assert.equal(exact.length, 1024);
  assert.equal((await call(ts, { body: exact })).ErrorCode, 0);
  await fails(ts, { body: exact + ' ' }, CODE.REST_HTTP_PARSE, '1025 bytes');
  // A much larger body (beyond what the server drains) must not crash anything.
  await fetch(`${ts.httpUrl}/v4/openim/query_online_status?sdkappid=${ts.sdkAppId}&identifier=administrator&usersig=${ts.sig('administrator')}`, {
    method: 'POST',
    body: 'x'.repeat(1024 * 64),
  }).then(
    async (res) => assert.equal(((await res.json()) as any).ErrorCode, CODE.REST_HTTP_PARSE),
    () => undefined, // a reset connection is acceptable for an abusive body
  );
  assert.equal((await call(ts, {})).ErrorCode, 0, 'server still serves');
});

test('kick: UserID validation (70402) and success envelope', async (t) => {
  const ts = await server(t);
  const command = 'im_open_login_svc/kick';
  await fails(ts, { command, body: '{}' }, CODE.REST_INVALID_PARAMS, 'no UserID');
  await fails(ts, { command, body: '{"UserID":""}' }, CODE.REST_INVALID_PARAMS, 'empty UserID');
  await fails(ts, { command, body: '{"UserID":42}' }, CODE.REST_INVALID_PARAMS, 'numeric UserID');
  await fails(ts, { command, body: JSON.stringify({ UserID: 'u'.repeat(129) }) }, CODE.REST_INVALID_PARAMS, 'long UserID');
  assert.deepEqual(await call(ts, { command, body: '{"UserID":"nobody"}' }), { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '' });
});

test('query_online_status: validation, ErrorList for non-strings, Detail matching the instances', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 2 });
  for (const To_Account of ['alice', [], Array.from({ length: 501 }, (_, i) => `u${i}`), null, { 0: 'alice' }]) {
    await fails(ts, { body: JSON.stringify({ To_Account }) }, CODE.REST_INVALID_PARAMS, `To_Account ${JSON.stringify(To_Account).slice(0, 30)}`);
  }
  await fails(ts, { body: '{}' }, CODE.REST_INVALID_PARAMS, 'no To_Account');
  const max = await call(ts, { body: JSON.stringify({ To_Account: Array.from({ length: 500 }, (_, i) => `u${i}`) }) });
  assert.equal(max.ErrorCode, 0);
  assert.equal(max.QueryResult.length, 500);

  const c1 = await RawClient.connect(ts.wsUrl);
  const c2 = await RawClient.connect(ts.wsUrl);
  const web = await c1.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web');
  const android = await c2.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Android');
  const web2 = await c2.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web');
  assert.ok(web.ok && android.ok && web2.ok);
  const r = await call(ts, { body: JSON.stringify({ To_Account: ['alice', 'bob', 7, '', { x: 1 }], IsNeedDetail: 1 }) });
  assert.equal(r.ErrorCode, 0);
  assert.deepEqual(r.ErrorList, [
    { To_Account: 7, ErrorCode: CODE.REST_ACCOUNT_NOT_STRING },
    { To_Account: '', ErrorCode: CODE.REST_ACCOUNT_NOT_STRING },
    { To_Account: { x: 1 }, ErrorCode: CODE.REST_ACCOUNT_NOT_STRING },
  ]);
  assert.equal(r.QueryResult.length, 2);
  const [alice, bob] = r.QueryResult;
  assert.deepEqual(bob, { To_Account: 'bob', Status: 'Offline', Detail: [] });
  assert.equal(alice.To_Account, 'alice');
  assert.equal(alice.Status, 'Online');
  const detail = alice.Detail.map((d: any) => ({ Platform: d.Platform, Status: d.Status, InstId: d.InstId }));
  assert.deepEqual(
    detail.sort((a: any, b: any) => a.InstId - b.InstId),
    [
      { Platform: 'Web', Status: 'Online', InstId: web.data.instId },
      { Platform: 'Android', Status: 'Online', InstId: android.data.instId },
      { Platform: 'Web', Status: 'Online', InstId: web2.data.instId },
    ].sort((a, b) => a.InstId - b.InstId),
  );
  // LoginOrder: the user's logins numbered in the order they happened (a1, a2, a3).
  assert.deepEqual(
    alice.Detail.map((d: any) => [d.InstId, d.LoginOrder]),
    [[web.data.instId, 1], [android.data.instId, 2], [web2.data.instId, 3]],
  );
  // Without IsNeedDetail there is no Detail.
  const plain = await call(ts, { body: JSON.stringify({ To_Account: ['alice'] }) });
  assert.deepEqual(plain.QueryResult, [{ To_Account: 'alice', Status: 'Online' }]);
  // After a logout the entry disappears.
  assert.equal((await c1.request({ type: 'logout', instId: web.data.instId })).ok, true);
  assert.deepEqual(await onlineIds(ts, 'alice'), [android.data.instId, web2.data.instId].sort((a, b) => a - b));
  // A later login is number 4, not a reuse of the number that left.
  const web3 = await c1.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web');
  assert.ok(web3.ok);
  const after = await call(ts, { body: JSON.stringify({ To_Account: ['alice'], IsNeedDetail: 1 }) });
  assert.deepEqual(after.QueryResult[0].Detail.map((d: any) => d.LoginOrder), [2, 3, 4]);
  c1.close();
  c2.close();
});

test('login settings: get, invalid values (70402, unchanged), and a change is effective for the very next login', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1, loginPolicy: 'multi' });
  const get = () => ts.rest('tabchat_admin/get_login_settings', {});
  assert.deepEqual(await get(), { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '', MaxInstancesPerPlatform: 1, LoginPolicy: 'multi' });
  const command = 'tabchat_admin/set_login_settings';
  for (const body of [
    { MaxInstancesPerPlatform: 0 },
    { MaxInstancesPerPlatform: 1001 },
    { MaxInstancesPerPlatform: 1.5 },
    { MaxInstancesPerPlatform: '2' },
    { MaxInstancesPerPlatform: null },
    { LoginPolicy: 'quad' },
    { LoginPolicy: 'Single' },
    { LoginPolicy: 2 },
    { MaxInstancesPerPlatform: 2, LoginPolicy: 'nope' },
  ]) {
    await fails(ts, { command, body: JSON.stringify(body) }, CODE.REST_INVALID_PARAMS, JSON.stringify(body));
  }
  assert.deepEqual(await get(), { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '', MaxInstancesPerPlatform: 1, LoginPolicy: 'multi' }, 'unchanged');

  // Limit 1 → 2: the second Web login no longer kicks.
  const set = await ts.setLoginSettings({ MaxInstancesPerPlatform: 2 });
  assert.deepEqual([set.ErrorCode, set.MaxInstancesPerPlatform, set.LoginPolicy], [0, 2, 'multi']);
  const a = await RawClient.connect(ts.wsUrl);
  const b = await RawClient.connect(ts.wsUrl);
  const w1 = await a.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  const w2 = await b.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.ok(w1.ok && w2.ok);
  assert.deepEqual([...a.kicks(), ...b.kicks()], []);
  // multi → single: the very next Android login kicks both Web instances.
  assert.equal((await ts.setLoginSettings({ LoginPolicy: 'single' })).LoginPolicy, 'single');
  assert.deepEqual(await get(), { ActionStatus: 'OK', ErrorCode: 0, ErrorInfo: '', MaxInstancesPerPlatform: 2, LoginPolicy: 'single' });
  const android = await a.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Android');
  assert.equal(android.ok, true);
  await a.waitFor((f) => f.type === 'kick' && f.instId === w1.data.instId && f.reason === 'multipleDevice');
  await b.waitFor((f) => f.type === 'kick' && f.instId === w2.data.instId && f.reason === 'multipleDevice');
  assert.deepEqual(await onlineIds(ts, 'alice'), [android.data.instId]);
  a.close();
  b.close();
});

test('get_stats reports node, connections, instances per platform and the settings', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 3, loginPolicy: 'dual' });
  const a = await RawClient.connect(ts.wsUrl);
  const b = await RawClient.connect(ts.wsUrl);
  assert.ok((await a.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web')).ok);
  assert.ok((await a.login(ts.sdkAppId, 'bob', ts.sig('bob'), 'Web')).ok);
  assert.ok((await b.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Mac')).ok);
  const s = await ts.rest('tabchat_admin/get_stats', {});
  assert.deepEqual(s, {
    ActionStatus: 'OK',
    ErrorCode: 0,
    ErrorInfo: '',
    Node: 'test',
    Connections: 2,
    InstancesTotal: 3,
    Instances: { Web: 2, Mac: 1 },
    MaxInstancesPerPlatform: 3,
    LoginPolicy: 'dual',
  });
  a.close();
  b.close();
});

test('/healthz answers 200 JSON', async (t) => {
  const ts = await server(t);
  const res = await fetch(`${ts.httpUrl}/healthz`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: 'ok', node: 'test' });
});

test('/metrics: connections, instances per platform, login / kick / REST counters follow the traffic', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 });
  const m0 = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m0, 'tabchat_connections'), 0);
  for (const p of ['Web', 'Android', 'iPhone', 'iPad', 'Windows', 'Mac', 'Linux']) {
    assert.equal(metricValue(m0, 'tabchat_instances', { platform: p }), 0, `${p} starts at 0`);
  }
  const a = await RawClient.connect(ts.wsUrl);
  const b = await RawClient.connect(ts.wsUrl);
  const idle = await RawClient.connect(ts.wsUrl);
  const alice = await a.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web');
  const bob = await b.login(ts.sdkAppId, 'bob', ts.sig('bob'), 'Web');
  const carol = await b.login(ts.sdkAppId, 'carol', ts.sig('carol'), 'Android');
  assert.ok(alice.ok && bob.ok && carol.ok);
  const refused = await a.login(ts.sdkAppId, 'dave', ts.sig('dave', { key: 'wrong' }));
  assert.equal(refused.code, CODE.USERSIG_BAD_SIGNATURE);
  const m1 = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m1, 'tabchat_connections'), 3);
  assert.equal(metricValue(m1, 'tabchat_instances', { platform: 'Web' }), 2);
  assert.equal(metricValue(m1, 'tabchat_instances', { platform: 'Android' }), 1);
  assert.equal(metricValue(m1, 'tabchat_instances', { platform: 'iPhone' }), 0);
  assert.equal(metricValue(m1, 'tabchat_instances', { platform: 'Web', node: 'test' }), 2, 'node label');
  assert.equal(metricValue(m1, 'tabchat_logins_total', { result: 'ok' }), 3);
  assert.equal(metricValue(m1, 'tabchat_logins_total', { result: String(CODE.USERSIG_BAD_SIGNATURE) }), 1);
  // A kick (limit 1) and a logout.
  const alice2 = await idle.login(ts.sdkAppId, 'alice', ts.sig('alice'), 'Web');
  assert.ok(alice2.ok);
  await a.waitFor((f) => f.type === 'kick');
  assert.equal((await b.request({ type: 'logout', instId: bob.data.instId })).ok, true);
  a.close();
  await until(async () => metricValue(await getMetrics(ts.httpUrl), 'tabchat_connections') === 2, 3000, 'connections 2');
  const m2 = await getMetrics(ts.httpUrl);
  assert.equal(metricValue(m2, 'tabchat_instances', { platform: 'Web' }), 1, 'alice2 only');
  assert.equal(metricValue(m2, 'tabchat_instances', { platform: 'Android' }), 1);
  assert.equal(metricValue(m2, 'tabchat_logins_total', { result: 'ok' }), 4);
  assert.equal(metricValue(m2, 'tabchat_kicks_total', { type: 'multipleAccount' }), 1);
  await ts.rest('openim/query_online_status', { To_Account: ['alice'] });
  const m3 = await getMetrics(ts.httpUrl);
  assert.ok((metricValue(m3, 'tabchat_rest_requests_total', { command: 'openim/query_online_status', code: '0' }) ?? 0) >= 1);
  b.close();
  idle.close();
  await until(async () => metricValue(await getMetrics(ts.httpUrl), 'tabchat_connections') === 0, 3000, 'connections 0');
});

test('/dev/usersig is 404 unless devUserSig is on', async (t) => {
  const ts = await server(t);
  const res = await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=${ts.sdkAppId}&userID=alice`);
  assert.equal(res.status, 404);
  assert.doesNotMatch(await res.text(), /eJ/);
});

test('/dev/usersig (devUserSig on) returns a UserSig that logs in; validates its parameters', async (t) => {
  const ts = await server(t, {}, { devUserSig: true });
  const res = await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=${ts.sdkAppId}&userID=alice`);
  assert.equal(res.status, 200);
  const body = (await res.json()) as any;
  assert.equal(body.userID, 'alice');
  assert.equal(body.sdkAppId, ts.sdkAppId);
  const c = await RawClient.connect(ts.wsUrl);
  const r = await c.login(ts.sdkAppId, 'alice', body.userSig);
  assert.equal(r.ok, true, JSON.stringify(r));
  assert.equal((await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=1400009999&userID=alice`)).status, 404);
  assert.equal((await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=${ts.sdkAppId}&userID=`)).status, 400);
  assert.equal((await fetch(`${ts.httpUrl}/dev/usersig?sdkappid=${ts.sdkAppId}&userID=a&expire=0`)).status, 400);
  c.close();
});

test('static routes never serve files outside their directories (path traversal)', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'tabchat-static-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const SECRET = `secret-${randomBytes(8).toString('hex')}`;
  writeFileSync(join(base, 'secret.txt'), SECRET);
  mkdirSync(join(base, 'public'));
  writeFileSync(join(base, 'public', 'hello.txt'), 'hello static');
  const ts = await server(t, {}, { static: { '/files/': join(base, 'public') } });

  const ok = await rawHttp(ts.httpUrl, '/files/hello.txt');
  assert.deepEqual(ok, { status: 200, body: 'hello static' }, 'the route works');

  const attempts = [
    '/..%2f..%2fpackage.json',
    '/%2e%2e/package.json',
    '/%2e%2e/%2e%2e/package.json',
    '/%2e%2e%2fpackage.json',
    '/..%2fpackage.json',
    '/..%5c..%5cpackage.json',
    '/esm/..%2f..%2fpackage.json',
    '/esm/%2e%2e/%2e%2e/package.json',
    '/files/..%2fsecret.txt',
    '/files/%2e%2e/secret.txt',
    '/files/%2e%2e%2fsecret.txt',
    '/files/..%252fsecret.txt',
    '/files/....//secret.txt',
    '/files/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd',
    '/files/%2fetc%2fpasswd',
    '/files//etc/passwd',
    '/files/hello.txt%00.js',
    '/files/..%c0%af..%c0%afsecret.txt',
    '/files/%',
  ];
  for (const path of attempts) {
    const res = await rawHttp(ts.httpUrl, path);
    assert.ok(!res.body.includes(SECRET), `${path} leaked the secret`);
    assert.ok(!res.body.includes('"name": "tabchat"'), `${path} served package.json`);
    assert.ok(!res.body.includes('root:'), `${path} served /etc/passwd`);
    assert.ok([400, 404].includes(res.status), `${path}: status ${res.status}`);
  }
});

test('HTTP routes: unknown path 404, /ws without upgrade 426, non-GET on a page 405', async (t) => {
  const ts = await server(t);
  assert.equal((await rawHttp(ts.httpUrl, '/no/such/file')).status, 404);
  assert.equal((await rawHttp(ts.httpUrl, '/ws')).status, 426);
  assert.equal((await rawHttp(ts.httpUrl, '/metrics', 'POST')).status, 405);
  const detail = await onlineDetail(ts, 'nobody');
  assert.deepEqual(detail, []);
});
