/**
 * Group commit of the sqlite store through the real server: sends of many connections share
 * transactions, yet every acknowledged message is stored once, per-user seqs stay gap-free
 * and in the order each connection sent; a batch whose commit fails answers every sender in
 * it with a code and acknowledges (and delivers) none of them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CODE } from '../../src/protocol/codes.js';
import type { MsgFrame, SyncResultData } from '../../src/protocol/frames.js';
import { ConfigError, validateConfig } from '../../server/config.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { isGapless, sqliteFileFailingOnCommit, tempDir } from './util.js';

interface Session {
  client: RawClient;
  instId: number;
}

async function login(ts: TestServer, userID: string): Promise<Session> {
  const client = await RawClient.connect(ts.wsUrl);
  const r = await client.login(ts.sdkAppId, userID, ts.sig(userID));
  assert.equal(r.ok, true, JSON.stringify(r));
  return { client, instId: r.data.instId };
}

function send(s: Session, clientMsgId: string, to: string, text: string): Promise<any> {
  return s.client.request({ type: 'send', instId: s.instId, clientMsgId, to, text });
}

function pushes(s: Session): MsgFrame[] {
  return s.client.frames.filter((f): f is MsgFrame => f.type === 'msg');
}

test('a burst from many connections: each message stored once, seqs gap-free and in each sender’s order', async (t) => {
  const ts = await startTestServer({}, { store: `sqlite:${join(tempDir(t), 'burst.db')}` });
  t.after(() => ts.close());
  const bob = await login(ts, 'bob');
  const senders = await Promise.all(Array.from({ length: 12 }, (_, i) => login(ts, `sender${i}`)));
  const PER_SENDER = 15;
  // Every frame goes out at once; a retry of each sender's third message rides along.
  const results = await Promise.all(
    senders.map((s, i) =>
      Promise.all([
        ...Array.from({ length: PER_SENDER }, (_, k) => send(s, `m${k}`, 'bob', `${i}:${k}`)),
        send(s, 'm2', 'bob', `${i}:2`),
      ]),
    ),
  );
  for (const [i, rs] of results.entries()) {
    assert.ok(rs.every((r) => r.ok), JSON.stringify(rs.find((r) => !r.ok)));
    const seqs = rs.slice(0, PER_SENDER).map((r) => r.data.message.seq);
    assert.deepEqual(seqs, Array.from({ length: PER_SENDER }, (_, k) => k + 1), `sender${i}: its own mailbox in send order`);
    assert.deepEqual(rs[PER_SENDER].data.message, rs[2].data.message, `sender${i}: the retry answers with the stored message`);
  }
  const total = senders.length * PER_SENDER;
  await until(() => pushes(bob).length >= total, 10_000, `${total} pushes to bob`);
  const sync = await bob.client.request({ type: 'sync', instId: bob.instId, afterSeq: 0, limit: 500 });
  const page = sync.data as SyncResultData;
  assert.equal(page.messages.length, total, 'stored once each');
  assert.ok(isGapless(page.messages.map((m) => m.seq)));
  assert.equal(pushes(bob).length, total, 'pushed once each');
  for (let i = 0; i < senders.length; i++) {
    const texts = page.messages.filter((m) => m.from === `sender${i}`).map((m) => m.text);
    assert.deepEqual(texts, Array.from({ length: PER_SENDER }, (_, k) => `${i}:${k}`), `sender${i}: bob's mailbox keeps the send order`);
  }
});

test('a batch whose commit fails: every sender in it gets 9099, nothing is acknowledged, stored or delivered; retries succeed', async (t) => {
  const path = join(tempDir(t), 'failing.db');
  await sqliteFileFailingOnCommit(path);
  // Batches of exactly three (the wait bound is never what commits here).
  const ts = await startTestServer({}, { store: `sqlite:${path}`, storeBatch: { maxMessages: 3, maxWaitMs: 10_000 } });
  t.after(() => ts.close());
  const bob = await login(ts, 'bob');
  const [alice, carol, dave] = await Promise.all(['alice', 'carol', 'dave'].map((u) => login(ts, u)));
  const failed = await Promise.all([send(alice!, 'a1', 'bob', 'one'), send(carol!, 'c1', 'bob', 'fail the commit'), send(dave!, 'd1', 'bob', 'three')]);
  for (const r of failed) {
    assert.equal(r.ok, false, JSON.stringify(r));
    assert.equal(r.code, CODE.SERVER_INTERNAL);
  }
  const head = await bob.client.request({ type: 'sync', instId: bob.instId, afterSeq: 0 });
  assert.equal(head.data.head, 0, 'nothing stored');
  const retried = await Promise.all([send(alice!, 'a1', 'bob', 'one'), send(carol!, 'c2', 'bob', 'two'), send(dave!, 'd1', 'bob', 'three')]);
  assert.ok(retried.every((r) => r.ok && r.data.message.seq === 1), JSON.stringify(retried));
  await until(() => pushes(bob).length >= 3, 5000, 'three pushes to bob');
  assert.deepEqual(pushes(bob).map((f) => f.message.seq).sort(), [1, 2, 3], 'only the retried batch was delivered, gap-free');
  assert.deepEqual(pushes(bob).map((f) => f.message.text).sort(), ['one', 'three', 'two']);
});

test('config storeBatch: defaults, and clear errors for bad values', () => {
  const apps = [{ sdkAppId: 1, secretKey: 'k' }];
  assert.deepEqual(validateConfig({ apps }).storeBatch, { maxMessages: 256, maxWaitMs: 0 });
  assert.deepEqual(validateConfig({ apps, storeBatch: { maxWaitMs: 2 } }).storeBatch, { maxMessages: 256, maxWaitMs: 2 });
  const bad: Array<[unknown, RegExp]> = [
    [[], /storeBatch must be an object/],
    [{ maxMessages: 0 }, /storeBatch\.maxMessages must be an integer between 1 and 10000 \(got 0\)/],
    [{ maxMessages: 2.5 }, /storeBatch\.maxMessages must be an integer/],
    [{ maxWaitMs: -1 }, /storeBatch\.maxWaitMs must be an integer between 0 and 10000/],
    [{ maxWaitMs: '5' }, /storeBatch\.maxWaitMs must be an integer between 0 and 10000 \(got "5"\)/],
  ];
  for (const [storeBatch, message] of bad) assert.throws(() => validateConfig({ apps, storeBatch }), (err: Error) => err instanceof ConfigError && message.test(err.message));
});
