/**
 * Wire protocol at the frame level (docs/protocol.md): handshake, request/result, malformed
 * input, connection limits and close codes. Real server, real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import { PROTOCOL_VERSION, type ErrorFrame, type PongFrame, type WelcomeFrame } from '../../src/protocol/frames.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { framesOf } from './util.js';

async function server(t: { after(fn: () => Promise<void>): void }, ...args: Parameters<typeof startTestServer>): Promise<TestServer> {
  const ts = await startTestServer(...args);
  t.after(() => ts.close());
  return ts;
}

test('hello → welcome with version, server time, heartbeat, resume window and node', async (t) => {
  const ts = await server(t, {}, { heartbeatMs: 1234, resumeWindowMs: 4321 });
  const before = Date.now();
  const c = await RawClient.connect(ts.wsUrl, { hello: false });
  c.sendJson({ type: 'hello', v: PROTOCOL_VERSION, client: 'protocol-test/1.0' });
  const w = await c.waitFor<WelcomeFrame>((f) => f.type === 'welcome');
  assert.deepEqual(Object.keys(w).sort(), ['heartbeatMs', 'node', 'resumeWindowMs', 'serverTime', 'type', 'v']);
  assert.equal(w.v, PROTOCOL_VERSION);
  assert.equal(w.heartbeatMs, 1234);
  assert.equal(w.resumeWindowMs, 4321);
  assert.equal(w.node, 'test');
  assert.ok(w.serverTime >= before && w.serverTime <= Date.now(), 'serverTime is now');
  c.close();
});

test('protocol version mismatch: error 9002 naming both versions, then close 4500', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl, { hello: false });
  c.sendJson({ type: 'hello', v: PROTOCOL_VERSION + 1, client: 'future' });
  const closed = await c.waitClosed();
  assert.equal(closed.code, CLOSE.PROTOCOL_VERSION);
  const errors = framesOf(c.frames, 'error');
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, CODE.PROTOCOL_VERSION_MISMATCH);
  assert.match(errors[0]!.message, new RegExp(`\\b${PROTOCOL_VERSION + 1}\\b`));
  assert.match(errors[0]!.message, new RegExp(`\\b${PROTOCOL_VERSION}\\b`));
  assert.equal(framesOf(c.frames, 'welcome').length, 0);
});

test('frames before hello: 9003 as a result when the frame had an id, as an error frame otherwise', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl, { hello: false });
  c.sendJson({ type: 'time', id: 5 });
  const r = await c.waitFor((f) => f.type === 'result' && f.id === 5);
  assert.deepEqual({ ...r, message: undefined }, { type: 'result', id: 5, ok: false, code: CODE.HELLO_REQUIRED, message: undefined });
  c.sendJson({ type: 'login', id: 6, sdkAppId: ts.sdkAppId, userID: 'alice', userSig: ts.sig('alice'), platform: 'Web' });
  const r6 = await c.waitFor((f) => f.type === 'result' && f.id === 6);
  assert.equal(r6.type === 'result' && !r6.ok && r6.code, CODE.HELLO_REQUIRED);
  c.sendJson({ type: 'ping' });
  const e = await c.waitFor<ErrorFrame>((f) => f.type === 'error');
  assert.equal(e.code, CODE.HELLO_REQUIRED);
  assert.equal(framesOf(c.frames, 'pong').length, 0, 'no pong before hello');
  // Nothing was logged in, and the connection still accepts hello.
  assert.equal(ts.server.context.engine.local.size, 0);
  c.sendJson({ type: 'hello', v: PROTOCOL_VERSION });
  await c.waitFor((f) => f.type === 'welcome');
  const time = await c.request({ type: 'time' });
  assert.equal(time.ok, true);
  c.close();
});

test('malformed JSON, non-objects and unknown types get error 9001 and the connection stays usable', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl);
  const bad = ['not json', '{"type":"time",', '[]', '42', 'null', '"time"', '{"type":"nope"}', '{"type":"time"}', '{"type":"time","id":-1}'];
  for (const raw of bad) c.send(raw);
  await c.waitFor(() => framesOf(c.frames, 'error').length === bad.length, 5000, `${bad.length} error frames`);
  for (const e of framesOf(c.frames, 'error')) assert.equal(e.code, CODE.BAD_FRAME);
  // With a usable id, the refusal is the request's result.
  c.sendJson({ type: 'nope', id: 77 });
  c.sendJson({ type: 'logout', id: 78 });
  c.sendJson({ type: 'resume', id: 79, instId: 1 });
  c.sendJson({ id: 80 });
  for (const id of [77, 78, 79, 80]) {
    const r = await c.waitFor((f) => f.type === 'result' && f.id === id);
    assert.equal(r.type === 'result' && !r.ok && r.code, CODE.BAD_FRAME, `result ${id}`);
  }
  const time = await c.request({ type: 'time' });
  assert.equal(time.ok, true);
  assert.equal(c.closed, null);
  assert.deepEqual(c.garbage, []);
  c.close();
});

test('20 malformed frames are tolerated; the 21st closes with 4501', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl);
  for (let i = 0; i < 20; i++) c.send(`garbage ${i}`);
  const time = await c.request({ type: 'time' });
  assert.equal(time.ok, true, 'still open after 20');
  assert.equal(framesOf(c.frames, 'error').length, 20);
  c.send('garbage 21');
  const closed = await c.waitClosed();
  assert.equal(closed.code, CLOSE.PROTOCOL_VIOLATION);
});

test('frames the client sent after a closing offence are ignored (no phantom login)', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 });
  const victim = await RawClient.connect(ts.wsUrl);
  const v = await victim.login(ts.sdkAppId, 'ghost', ts.sig('ghost'));
  assert.equal(v.ok, true);
  const offences: Array<[string, number, (c: RawClient) => void, boolean]> = [
    ['21 malformed frames', CLOSE.PROTOCOL_VIOLATION, (c) => { for (let i = 0; i < 21; i++) c.send('bad'); }, true],
    ['a binary frame', CLOSE.UNSUPPORTED_DATA, (c) => c.send(Buffer.from('x')), true],
    ['a wrong protocol version, then a right one', CLOSE.PROTOCOL_VERSION, (c) => {
      c.sendJson({ type: 'hello', v: PROTOCOL_VERSION + 1 });
      c.sendJson({ type: 'hello', v: PROTOCOL_VERSION });
    }, false],
  ];
  for (const [what, code, offend, greet] of offences) {
    const c = await RawClient.connect(ts.wsUrl, { hello: greet });
    offend(c);
    // Pipelined right behind the offence, before the server's close frame can arrive.
    c.sendJson({ type: 'login', id: 1, sdkAppId: ts.sdkAppId, userID: 'ghost', userSig: ts.sig('ghost'), platform: 'Web' });
    assert.equal((await c.waitClosed()).code, code, what);
    assert.equal(c.frames.filter((f) => f.type === 'result').length, 0, `${what}: the login was not answered`);
    // Settle: the victim's connection has seen everything the server did so far.
    assert.equal((await victim.request({ type: 'time' })).ok, true);
    assert.deepEqual(victim.kicks(), [], `${what}: a phantom login kicked the real instance`);
    assert.deepEqual(ts.server.context.engine.local.instancesOf(ts.sdkAppId, 'ghost').map((i) => i.instId), [v.data.instId], what);
  }
  victim.close();
});

test('a binary frame closes with 1003', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl);
  c.send(Buffer.from(JSON.stringify({ type: 'time', id: 1 })));
  const closed = await c.waitClosed();
  assert.equal(closed.code, CLOSE.UNSUPPORTED_DATA);
  assert.equal(framesOf(c.frames, 'result').length, 0, 'the binary frame was not processed');
});

test('a frame over maxPayloadBytes closes with 1009; one just under is processed', async (t) => {
  const ts = await server(t, {}, { maxPayloadBytes: 1024 });
  const c = await RawClient.connect(ts.wsUrl);
  const fits = JSON.stringify({ type: 'time', id: 9, pad: 'x'.repeat(990) });
  assert.ok(fits.length <= 1024);
  c.send(fits);
  const r = await c.waitFor((f) => f.type === 'result' && f.id === 9);
  assert.equal(r.type === 'result' && r.ok, true);
  c.send(JSON.stringify({ type: 'time', id: 10, pad: 'x'.repeat(1100) }));
  const closed = await c.waitClosed();
  assert.equal(closed.code, CLOSE.MESSAGE_TOO_BIG);
  assert.equal(c.frames.filter((f) => f.type === 'result' && f.id === 10).length, 0);
});

test('no hello in time: close 4002; a client that said hello is not closed', async (t) => {
  const ts = await server(t, {}, { helloTimeoutMs: 200 });
  const greeted = await RawClient.connect(ts.wsUrl);
  const started = Date.now();
  const silent = await RawClient.connect(ts.wsUrl, { hello: false });
  const closed = await silent.waitClosed(3000);
  assert.equal(closed.code, CLOSE.HELLO_TIMEOUT);
  assert.ok(Date.now() - started >= 150, 'not before the timeout');
  // `greeted` connected earlier, so its hello timer would have fired by now.
  assert.equal(greeted.closed, null);
  assert.equal((await greeted.request({ type: 'time' })).ok, true);
  greeted.close();
});

test('per-connection frame rate: a burst over the limit gets 9006 and close 4003; a slow client is fine', async (t) => {
  const ts = await server(t, {}, { rateLimits: { framesPerSecond: 5 } });
  const calm = await RawClient.connect(ts.wsUrl);
  for (let i = 0; i < 5; i++) calm.sendJson({ type: 'ping' });
  await calm.waitFor(() => framesOf(calm.frames, 'pong').length === 5, 5000, '5 pongs');
  const noisy = await RawClient.connect(ts.wsUrl);
  for (let i = 0; i < 40; i++) noisy.sendJson({ type: 'ping' });
  const closed = await noisy.waitClosed();
  assert.equal(closed.code, CLOSE.FRAME_RATE);
  assert.ok(framesOf(noisy.frames, 'error').some((e) => e.code === CODE.FRAME_RATE_LIMITED), 'error 9006 before the close');
  assert.ok(framesOf(noisy.frames, 'pong').length < 40, 'not every ping was answered');
  assert.equal(calm.closed, null, 'the limit is per connection');
  assert.equal((await calm.request({ type: 'time' })).ok, true);
  calm.close();
});

test('ping → pong with serverTime; time → result with serverTime', async (t) => {
  const ts = await server(t);
  const c = await RawClient.connect(ts.wsUrl);
  const before = Date.now();
  c.sendJson({ type: 'ping' });
  const pong = await c.waitFor<PongFrame>((f) => f.type === 'pong');
  assert.deepEqual(Object.keys(pong).sort(), ['serverTime', 'type']);
  assert.ok(pong.serverTime >= before && pong.serverTime <= Date.now());
  const time = await c.request({ type: 'time' });
  assert.equal(time.ok, true);
  assert.ok(time.data.serverTime >= before && time.data.serverTime <= Date.now());
  c.close();
});

test('logout of an instId this connection does not hold: 9004 (and the owner keeps it)', async (t) => {
  const ts = await server(t);
  const a = await RawClient.connect(ts.wsUrl);
  const b = await RawClient.connect(ts.wsUrl);
  const unknown = await a.request({ type: 'logout', instId: 424242 });
  assert.deepEqual([unknown.ok, unknown.code], [false, CODE.UNKNOWN_INSTANCE]);
  const login = await a.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.equal(login.ok, true);
  const foreign = await b.request({ type: 'logout', instId: login.data.instId });
  assert.deepEqual([foreign.ok, foreign.code], [false, CODE.UNKNOWN_INSTANCE]);
  assert.ok(ts.server.context.engine.local.get(login.data.instId), 'still logged in');
  const own = await a.request({ type: 'logout', instId: login.data.instId });
  assert.deepEqual([own.ok, own.data], [true, {}]);
  const again = await a.request({ type: 'logout', instId: login.data.instId });
  assert.equal(again.code, CODE.UNKNOWN_INSTANCE, 'logout twice');
  assert.equal(ts.server.context.engine.local.size, 0);
  a.close();
  b.close();
});

test('idle connections: no instance for idleTimeoutMs → close 4004; a connection with an instance stays', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 1 }, { idleTimeoutMs: 200 });
  const holder = await RawClient.connect(ts.wsUrl);
  const login = await holder.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.equal(login.ok, true);
  const started = Date.now();
  const idle = await RawClient.connect(ts.wsUrl);
  assert.equal((await idle.waitClosed(3000)).code, CLOSE.IDLE);
  assert.ok(Date.now() - started >= 150, 'not before idleTimeoutMs');
  assert.equal(holder.closed, null, 'a connection carrying an instance is not idle');
  assert.equal((await holder.request({ type: 'time' })).ok, true);
  // Losing its last instance (here by a kick) makes it idle.
  const other = await RawClient.connect(ts.wsUrl);
  const second = await other.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  assert.equal(second.ok, true);
  await holder.waitFor((f) => f.type === 'kick');
  assert.equal((await holder.waitClosed(3000)).code, CLOSE.IDLE);
  // And so does a logout of the last one.
  assert.equal((await other.request({ type: 'logout', instId: second.data.instId })).ok, true);
  assert.equal((await other.waitClosed(3000)).code, CLOSE.IDLE);
});

test('maxConnections: an upgrade beyond the limit gets HTTP 503; a freed slot is reusable', async (t) => {
  // From three addresses: one address may never hold every slot (rateLimits.connectionsPerIp).
  const ts = await server(t, {}, { maxConnections: 2 });
  const a = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.1' });
  const b = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2' });
  await assert.rejects(RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.3' }), /503/);
  a.close();
  await a.waitClosed();
  await until(() => ts.server.context.connections.size === 1, 3000, 'server saw the close');
  const c = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.3' });
  assert.equal((await c.request({ type: 'time' })).ok, true);
  b.close();
  c.close();
});

test('an upgrade on another path than /ws is refused', async (t) => {
  const ts = await server(t);
  await assert.rejects(RawClient.connect(ts.wsUrl.replace(/\/ws$/, '/nope')), /404/);
});
