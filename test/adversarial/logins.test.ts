/**
 * Attacks on logins (issue items 1, 6 and 11): strangers' failures never lock out a correct
 * UserSig (REST admin or user, from any address); brute force still meets 70050; a flood of
 * successful logins with one UserSig is rate-limited per user and per address, and its log
 * lines are sampled; "login refused" lines carry the address and the user, never the UserSig.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Writable } from 'node:stream';
import { CODE } from '../../src/protocol/codes.js';
import { createLogger } from '../../server/log.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** POST a REST command as the admin from `localAddress`; resolves the parsed body. */
function restFrom(ts: TestServer, localAddress: string, command: string, body: unknown, userSig = ts.sig(ts.adminIdentifier)): Promise<any> {
  const q = new URLSearchParams({ sdkappid: String(ts.sdkAppId), identifier: ts.adminIdentifier, usersig: userSig, random: '1', contenttype: 'json' });
  return new Promise((resolve, reject) => {
    const req = request(`${ts.httpUrl}/v4/${command}?${q}`, { method: 'POST', localAddress, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve(JSON.parse(text)));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** A logger whose JSON lines land in `lines`. */
function capture(lines: any[]) {
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line));
      done();
    },
  });
  return createLogger('info', 'test', out);
}

test('no lockout by strangers: 10+ bad admin logins from one address; the admin UserSig works from another (REST) and the victim logs in', async (t) => {
  const ts = await startTestServer();
  t.after(() => ts.close());
  const attacker = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  const codes: number[] = [];
  for (let i = 0; i < 40; i++) codes.push((await attacker.login(ts.sdkAppId, 'administrator', ts.sig('administrator', { key: 'guess' }))).code);
  for (let i = 0; i < 40; i++) {
    const r = await restFrom(ts, '127.0.0.2', 'openim/query_online_status', { To_Account: ['alice'] }, ts.sig('administrator', { key: `guess${i}` }));
    codes.push(r.ErrorCode);
  }
  // Brute force still meets the limit: past the budget, the attacker learns nothing but 70050.
  assert.ok(codes.includes(CODE.LOGIN_RATE_LIMITED), `brute force throttled: ${[...new Set(codes)]}`);
  assert.equal(codes.at(-1), CODE.LOGIN_RATE_LIMITED);
  const rest = await restFrom(ts, '127.0.0.1', 'openim/query_online_status', { To_Account: ['alice'] });
  assert.equal(rest.ErrorCode, 0, `the valid admin UserSig from another address: ${JSON.stringify(rest)}`);
  const sameAddress = await restFrom(ts, '127.0.0.2', 'openim/query_online_status', { To_Account: ['alice'] });
  assert.equal(sameAddress.ErrorCode, 0, `a correct UserSig is never refused for failures: ${JSON.stringify(sameAddress)}`);
  const victim = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.1' });
  for (let i = 0; i < 15; i++) await attacker.login(ts.sdkAppId, 'victim', ts.sig('victim', { key: 'guess' }));
  const login = await victim.login(ts.sdkAppId, 'victim', ts.sig('victim'));
  assert.equal(login.ok, true, JSON.stringify(login));
  attacker.close();
  victim.close();
});

test('successful-login flood: one UserSig from 30 connections is rate-limited per user; others still log in; log lines sampled', async (t) => {
  const lines: any[] = [];
  const ts = await startTestServer({ maxInstancesPerPlatform: 1000 }, { logger: capture(lines), rateLimits: { loginsPerUser: 50, framesPerSecond: 1000 } });
  t.after(() => ts.close());
  const sig = ts.sig('flood');
  const conns = await Promise.all(Array.from({ length: 30 }, () => RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2', record: false })));
  t.after(() => conns.forEach((c) => c.terminate()));
  const results = await Promise.all(conns.flatMap((c) => Array.from({ length: 20 }, () => c.login(ts.sdkAppId, 'flood', sig))));
  const ok = results.filter((r) => r.ok).length;
  const limited = results.filter((r) => r.code === CODE.LOGIN_RATE_LIMITED);
  assert.ok(ok <= 50, `${ok} of 600 logins accepted (loginsPerUser 50)`);
  const userCap = results.filter((r) => r.code === CODE.USER_CONNECTION_LIMIT).length;
  assert.equal(ok + limited.length + userCap, 600, 'every other login refused: 70050 (user rate) or 9042 (connections per user)');
  assert.ok(limited.length > 0);
  assert.match(limited[0].message, /too many logins of this user/);
  const bystander = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  assert.equal((await bystander.login(ts.sdkAppId, 'calm', ts.sig('calm'))).ok, true, 'another user from the same address');
  bystander.close();
  // Sampled: a few lines per key, not one per attempt.
  const loginLines = lines.filter((l) => l.msg === 'login' && l.userID === 'flood').length;
  const refusedLines = lines.filter((l) => l.msg === 'login refused' && l.userID === 'flood').length;
  assert.ok(loginLines <= 5, `${loginLines} "login" lines for ${ok} logins`);
  assert.ok(refusedLines <= 5, `${refusedLines} "login refused" lines for ${limited.length} refusals`);
  ts.server.context.sampler.flush();
  const summary = lines.find((l) => l.msg === 'login refused (repeated)');
  assert.ok(summary && summary.suppressed > 0, 'the summary line counts what was not logged');
});

test('login attempts per address are rate-limited (loginsPerIp); another address is not', async (t) => {
  const ts = await startTestServer({}, { rateLimits: { loginsPerIp: 20, framesPerSecond: 1000 } });
  t.after(() => ts.close());
  const flood = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  const codes = [];
  for (let i = 0; i < 30; i++) codes.push((await flood.login(ts.sdkAppId, `u${i}`, ts.sig(`u${i}`))).code ?? 0);
  assert.equal(codes.filter((c) => c === 0).length, 20);
  assert.equal(codes.filter((c) => c === CODE.LOGIN_RATE_LIMITED).length, 10);
  const other = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.3' });
  assert.equal((await other.login(ts.sdkAppId, 'v', ts.sig('v'))).ok, true);
  flood.close();
  other.close();
});

test('traceability: "login refused" names the address and the user, never the UserSig', async (t) => {
  const lines: any[] = [];
  const ts = await startTestServer({}, { logger: capture(lines) });
  t.after(() => ts.close());
  const c = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.4' });
  const badSig = ts.sig('mallory', { key: 'guess' });
  await c.login(ts.sdkAppId, 'mallory', badSig);
  c.close();
  const line = lines.find((l) => l.msg === 'login refused');
  assert.ok(line, 'a "login refused" line');
  assert.equal(line.ip, '127.0.0.4');
  assert.equal(line.userID, 'mallory');
  assert.equal(line.code, CODE.USERSIG_BAD_SIGNATURE);
  assert.ok(!JSON.stringify(lines).includes(badSig), 'the UserSig is in no line');
});
