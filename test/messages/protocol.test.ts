/**
 * The message frames over the raw protocol (test/helpers/raw-client.ts): idempotent send,
 * who gets `msg` pushes, `sync` positions and pages, `ack`, and every refusal code — after
 * which the server is still healthy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CODE } from '../../src/protocol/codes.js';
import { LIMITS, type MsgFrame, type ServerFrame, type SyncResultData, type WireMessage } from '../../src/protocol/frames.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

async function server(t: { after(fn: () => Promise<void>): void }, app = {}): Promise<TestServer> {
  const ts = await startTestServer(app);
  t.after(() => ts.close());
  return ts;
}

interface Session {
  client: RawClient;
  instId: number;
  token: string;
}

async function login(ts: TestServer, userID: string, client?: RawClient): Promise<Session> {
  const c = client ?? (await RawClient.connect(ts.wsUrl));
  const r = await c.login(ts.sdkAppId, userID, ts.sig(userID));
  assert.equal(r.ok, true, JSON.stringify(r));
  return { client: c, instId: r.data.instId, token: r.data.token };
}

function msgs(client: RawClient, instId?: number): WireMessage[] {
  return client.frames.filter((f): f is MsgFrame => f.type === 'msg' && (instId === undefined || f.instId === instId)).map((f) => f.message);
}

async function send(s: Session, clientMsgId: string, to: string, text: string): Promise<any> {
  return s.client.request({ type: 'send', instId: s.instId, clientMsgId, to, text });
}

test('idempotent send: the same clientMsgId twice (in a row and back to back) gives the same message, delivered once', async (t) => {
  const ts = await server(t);
  const alice = await login(ts, 'alice');
  const bob = await login(ts, 'bob');

  const first = await send(alice, 'c-1', 'bob', 'hello');
  assert.equal(first.ok, true);
  const message = first.data.message as WireMessage;
  assert.deepEqual(Object.keys(message).sort(), ['clientMsgId', 'flow', 'from', 'id', 'seq', 'text', 'time', 'to']);
  assert.equal(message.flow, 'out');
  assert.equal(message.seq, 1);
  assert.equal(message.clientMsgId, 'c-1');
  const retry = await send(alice, 'c-1', 'bob', 'hello');
  assert.deepEqual(retry.data.message, message, 'a retry gets the stored message unchanged');

  // Back to back, without waiting for the first answer.
  alice.client.sendJson({ type: 'send', id: 101, instId: alice.instId, clientMsgId: 'c-2', to: 'bob', text: 'twice' });
  alice.client.sendJson({ type: 'send', id: 102, instId: alice.instId, clientMsgId: 'c-2', to: 'bob', text: 'twice' });
  const [r1, r2] = await Promise.all([101, 102].map((id) => alice.client.waitFor((f) => f.type === 'result' && f.id === id)));
  assert.deepEqual((r1 as any).data.message, (r2 as any).data.message);

  await send(alice, 'c-3', 'bob', 'sentinel');
  await bob.client.waitFor((f) => f.type === 'msg' && f.message.text === 'sentinel');
  const got = msgs(bob.client);
  assert.deepEqual(got.map((m) => m.text), ['hello', 'twice', 'sentinel'], 'one delivery each');
  assert.deepEqual(got.map((m) => m.seq), [1, 2, 3]);
  assert.equal(got[0]?.id, message.id);
  assert.equal(got[0]?.flow, 'in');
  assert.equal(got[0]?.clientMsgId, undefined, 'the recipient does not see the sender’s idempotency key');
  assert.equal(msgs(alice.client).length, 0, 'the sending instance gets no push of its own messages');
});

test('pushes: every online instance of the recipient and the sender’s other instances, once each; detached ones catch up with sync', async (t) => {
  const ts = await server(t, { maxInstancesPerPlatform: 3 });
  const a1 = await login(ts, 'alice');
  const a2 = await login(ts, 'alice', a1.client); // same connection
  const b1 = await login(ts, 'bob');
  const b2 = await login(ts, 'bob');
  const sent = (await send(a1, 'p-1', 'bob', 'to all')).data.message as WireMessage;
  await b1.client.waitFor((f) => f.type === 'msg');
  await b2.client.waitFor((f) => f.type === 'msg');
  await a1.client.waitFor((f) => f.type === 'msg' && f.instId === a2.instId);
  assert.equal(msgs(b1.client).length, 1);
  assert.equal(msgs(b2.client).length, 1);
  assert.deepEqual(msgs(a1.client, a2.instId), [{ ...sent }], 'a2 gets the sender’s view: flow out, same seq');
  assert.equal(msgs(a1.client, a1.instId).length, 0);

  // b2's connection drops; a message meanwhile reaches b1 only; b2 resumes and syncs from seq 1.
  b2.client.terminate();
  await until(() => ts.server.context.engine.local.get(b2.instId)?.owner === null, 5000, 'b2 detached');
  await send(a1, 'p-2', 'bob', 'while away');
  await b1.client.waitFor((f) => f.type === 'msg' && f.message.text === 'while away');
  const back = await RawClient.connect(ts.wsUrl);
  const resumed = await back.request({ type: 'resume', instId: b2.instId, token: b2.token });
  assert.equal(resumed.ok, true);
  const caughtUp = (await back.request({ type: 'sync', instId: b2.instId, afterSeq: 1 })).data as SyncResultData;
  assert.deepEqual(caughtUp.messages.map((m) => m.text), ['while away']);
  assert.equal(msgs(back).length, 0, 'nothing pushed twice');
});

test('sync: from the instance’s position (new login: the user’s acknowledged position), pages with more, head, ack clamps to the head', async (t) => {
  const ts = await server(t);
  const alice = await login(ts, 'alice');
  for (let i = 1; i <= 5; i++) await send(alice, `s-${i}`, 'bob', `m${i}`);

  const bob = await login(ts, 'bob');
  const all = await bob.client.request({ type: 'sync', instId: bob.instId });
  assert.equal(all.ok, true);
  const data = all.data as SyncResultData;
  assert.equal(data.afterSeq, 0, 'never acknowledged: from the start');
  assert.equal(data.head, 5);
  assert.equal(data.more, false);
  assert.deepEqual(data.messages.map((m) => [m.seq, m.text, m.flow]), [[1, 'm1', 'in'], [2, 'm2', 'in'], [3, 'm3', 'in'], [4, 'm4', 'in'], [5, 'm5', 'in']]);

  const page = (await bob.client.request({ type: 'sync', instId: bob.instId, afterSeq: 1, limit: 2 })).data as SyncResultData;
  assert.deepEqual(page.messages.map((m) => m.seq), [2, 3]);
  assert.equal(page.more, true);

  bob.client.sendJson({ type: 'ack', instId: bob.instId, seq: 3 });
  const ping = await bob.client.request({ type: 'time' }); // acks have no answer; a later reply means it was processed
  assert.equal(ping.ok, true);
  const bob2 = await login(ts, 'bob');
  const after = (await bob2.client.request({ type: 'sync', instId: bob2.instId })).data as SyncResultData;
  assert.equal(after.afterSeq, 3, 'a new login starts at the highest acknowledged seq');
  assert.deepEqual(after.messages.map((m) => m.seq), [4, 5]);

  bob2.client.sendJson({ type: 'ack', instId: bob2.instId, seq: 999 });
  await bob2.client.request({ type: 'time' });
  const bob3 = await login(ts, 'bob');
  const clamped = (await bob3.client.request({ type: 'sync', instId: bob3.instId })).data as SyncResultData;
  assert.equal(clamped.afterSeq, 5, 'an ack beyond the head counts as the head');
  assert.deepEqual(clamped.messages, []);
  assert.equal(await ts.server.context.store.acked(ts.sdkAppId, 'bob'), 5);
});

test('refusals have their codes and leave the connection and the server healthy', async (t) => {
  const ts = await server(t);
  const fresh = await RawClient.connect(ts.wsUrl);
  const notLoggedIn = await fresh.request({ type: 'send', instId: 1, clientMsgId: 'x', to: 'bob', text: 'hi' });
  assert.equal(notLoggedIn.code, CODE.USER_NOT_LOGGED_IN, 'sending before login');
  const syncBefore = await fresh.request({ type: 'sync', instId: 1 });
  assert.equal(syncBefore.code, CODE.USER_NOT_LOGGED_IN);

  const alice = await login(ts, 'alice');
  const bob = await login(ts, 'bob');
  const cases: Array<[string, Record<string, unknown>, number]> = [
    ['empty text', { text: '' }, CODE.MSG_TEXT_EMPTY],
    ['text over 12 KB', { text: 'x'.repeat(LIMITS.maxTextBytes + 1) }, CODE.MSG_TOO_LONG],
    ['12 KB of 3-byte characters plus one byte', { text: '€'.repeat(LIMITS.maxTextBytes / 3) + 'x' }, CODE.MSG_TOO_LONG],
    ['empty to', { to: '' }, CODE.MSG_INVALID_RECIPIENT],
    ['to over 128 characters', { to: 'b'.repeat(129) }, CODE.MSG_INVALID_RECIPIENT],
    ['to not a string', { to: 42 }, CODE.MSG_INVALID_RECIPIENT],
    ['text not a string', { text: ['x'] }, CODE.BAD_FRAME],
    ['clientMsgId empty', { clientMsgId: '' }, CODE.INVALID_PARAMETER],
    ['clientMsgId over 64 characters', { clientMsgId: 'c'.repeat(65) }, CODE.INVALID_PARAMETER],
    ['unknown instance', { instId: alice.instId + 1000 }, CODE.UNKNOWN_INSTANCE],
    ['another connection’s instance', { instId: bob.instId }, CODE.UNKNOWN_INSTANCE],
  ];
  // More refusals than the 20 malformed frames that close a connection: message rules do not count.
  for (let round = 0; round < 3; round++) {
    for (const [what, patch, code] of cases) {
      const r = await alice.client.request({ type: 'send', instId: alice.instId, clientMsgId: `r-${round}-${what}`, to: 'bob', text: 'ok', ...patch });
      assert.equal(r.ok, false, what);
      assert.equal(r.code, code, `${what}: ${r.message}`);
    }
  }
  const badSync = await alice.client.request({ type: 'sync', instId: alice.instId, limit: LIMITS.maxSyncLimit + 1 });
  assert.equal(badSync.code, CODE.BAD_FRAME);
  alice.client.sendJson({ type: 'ack', instId: alice.instId + 1000, seq: 1 });
  await alice.client.waitFor((f: ServerFrame) => f.type === 'error' && f.code === CODE.UNKNOWN_INSTANCE);

  assert.equal(alice.client.closed, null, 'still connected');
  const exact = await send(alice, 'limit', 'bob', '€'.repeat(LIMITS.maxTextBytes / 3));
  assert.equal(exact.ok, true, 'exactly 12 KB is accepted');
  await until(() => msgs(bob.client).length === 1, 5000, 'bob got the one accepted message');
  assert.equal((await fetch(`${ts.httpUrl}/healthz`)).status, 200);
  const metrics = await (await fetch(`${ts.httpUrl}/metrics`)).text();
  assert.match(metrics, /tabchat_messages_rejected_total\{code="9020",node="test"\} 3/);
  assert.match(metrics, /tabchat_messages_stored_total\{node="test"\} 1/);
});
