/**
 * Storage attacks (issue item 7): messages to a userID that never logs in fill its mailbox
 * only up to the quota, then the sender gets 9040; acknowledged entries make room, entries
 * nobody acknowledged are never dropped; retention deletes old messages through the time
 * index, in batches, on the memory, sqlite and postgres stores. Sync pages hold at most the
 * byte budget on every store.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CODE } from '../../src/protocol/codes.js';
import { MailboxFullError, type MessageStore, type NewMessage } from '../../server/store.js';
import { openStore } from '../../server/store-open.js';
import { RawClient } from '../helpers/raw-client.js';
import { startTestServer } from '../helpers/server.js';
import { startPostgres } from '../helpers/services.js';
import { tempDir } from '../messages/util.js';
import { getMetrics, metricValue } from './util.js';

const APP = 1400000001;
const TEXT_12K = 'x'.repeat(12 * 1024);
const QUOTA = { maxMessages: 20, maxBytes: 1024 * 1024 };
let n = 0;

function msg(from: string, to: string, time: number, text = `t${n}`): NewMessage {
  n++;
  return { id: `q-${n}-${Math.random()}`, sdkAppId: APP, from, to, clientMsgId: `c${n}`, text, time };
}

test('10,000-message flood to a user who never logged in: stored up to the quota, then 9040 to the sender (sqlite)', async (t) => {
  const dir = tempDir(t);
  const ts = await startTestServer({}, { store: `sqlite:${join(dir, 'q.db')}`, rateLimits: { framesPerSecond: 100_000 }, config: { mailbox: { maxMessages: 100, maxBytes: 1024 * 1024 } } });
  t.after(() => ts.close());
  const sender = await RawClient.connect(ts.wsUrl, { record: false });
  const me = await sender.login(ts.sdkAppId, 'spammer', ts.sig('spammer'));
  const codes: number[] = [];
  for (let i = 0; i < 300; i += 50) {
    const batch = await Promise.all(
      Array.from({ length: 50 }, (_, j) => sender.request({ type: 'send', instId: me.data.instId, clientMsgId: `s${i + j}`, to: 'absent', text: TEXT_12K })),
    );
    codes.push(...batch.map((r) => (r.ok ? 0 : r.code)));
  }
  const stored = codes.filter((c) => c === 0).length;
  assert.ok(stored <= 100, `${stored} stored (quota: 100 entries, 1 MiB)`);
  assert.ok(stored >= 80, `up to the byte quota: ${stored}`);
  assert.ok(codes.slice(stored).every((c) => c === CODE.MAILBOX_FULL), 'then every send is refused with 9040');
  assert.equal(await ts.server.context.store.head(ts.sdkAppId, 'absent'), stored);
  // The recipient logs in, reads and acknowledges: its acknowledged entries make room.
  const absent = await RawClient.connect(ts.wsUrl);
  const inst = await absent.login(ts.sdkAppId, 'absent', ts.sig('absent'));
  absent.sendJson({ type: 'ack', instId: inst.data.instId, seq: stored });
  await absent.request({ type: 'time' });
  const again = await sender.request({ type: 'send', instId: me.data.instId, clientMsgId: 'after-ack', to: 'absent', text: TEXT_12K });
  assert.equal(again.ok, true, JSON.stringify(again).slice(0, 200));
  sender.close();
  absent.close();
});

test('retention on the server: messages older than retentionSeconds are deleted by the sweep', async (t) => {
  const ts = await startTestServer({}, { config: { mailbox: { retentionSeconds: 60 } } });
  t.after(() => ts.close());
  const c = await RawClient.connect(ts.wsUrl);
  const me = await c.login(ts.sdkAppId, 'old', ts.sig('old'));
  for (let i = 0; i < 5; i++) assert.equal((await c.request({ type: 'send', instId: me.data.instId, clientMsgId: `o${i}`, to: 'bob', text: 'hi' })).ok, true);
  assert.equal(await ts.server.context.messages.sweepExpired(Date.now()), 0, 'nothing is old yet');
  assert.equal(await ts.server.context.messages.sweepExpired(Date.now() + 61_000), 5, 'a minute later all five are');
  assert.equal((await ts.server.context.store.read(ts.sdkAppId, 'bob', 0, 100)).entries.length, 0);
  assert.equal(metricValue(await getMetrics(ts.httpUrl), 'tabchat_messages_removed_total', { why: 'retention' }), 5);
  c.close();
});

const KINDS: Array<[string, (t: TestContext) => Promise<MessageStore>]> = [
  ['memory', async () => openStore('memory', undefined, QUOTA)],
  ['sqlite', async (t) => openStore(`sqlite:${join(tempDir(t), 's.db')}`, undefined, QUOTA)],
  [
    'postgres',
    async (t) => {
      const pg = await startPostgres();
      t.after(() => pg.close());
      return openStore(await pg.createDatabase('quota'), undefined, QUOTA);
    },
  ],
];

for (const [kind, open] of KINDS) {
  describe(`${kind} store: quota, retention, byte budget`, () => {
    test('quota: unacknowledged entries are never dropped; acknowledged ones make room, oldest first', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      for (let i = 0; i < QUOTA.maxMessages; i++) await store.send(msg('a', 'b', 1_000 + i));
      await assert.rejects(store.send(msg('a', 'b', 2_000)), MailboxFullError);
      assert.equal(await store.head(APP, 'b'), QUOTA.maxMessages, 'nothing stored by the refused send');
      await store.ack(APP, 'b', 5);
      for (let i = 0; i < 5; i++) await store.send(msg('a', 'b', 3_000 + i));
      await assert.rejects(store.send(msg('a', 'b', 4_000)), MailboxFullError);
      const entries = (await store.read(APP, 'b', 0, 1_000)).entries;
      assert.deepEqual(entries.map((e) => e.seq), Array.from({ length: 20 }, (_, i) => i + 6), 'seqs 1..5 (acknowledged) made room');
      // The sender's own mailbox (a) is never refused: it keeps only its quota, dropping what it acknowledged.
      await store.ack(APP, 'a', 1_000);
      assert.equal((await store.send(msg('a', 'c', 5_000))).created, true);
    });

    test('retention: removeExpired deletes old messages in batches, with both entries', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      for (let i = 0; i < 12; i++) await store.send(msg(`u${i % 3}`, 'r', 10_000 + i));
      await store.send(msg('u0', 'r', 50_000));
      assert.equal(await store.removeExpired(10_010, 4), 4);
      assert.equal(await store.removeExpired(10_010, 100), 6);
      assert.equal(await store.removeExpired(10_010, 100), 0);
      const r = (await store.read(APP, 'r', 0, 100)).entries.map((e) => e.message.time);
      assert.deepEqual(r, [10_010, 10_011, 50_000]);
      assert.equal((await store.read(APP, 'u0', 0, 100)).entries.length, 1, 'the sender entries went too (u0: 10,000 .. 10,009 gone)');
      assert.equal(await store.head(APP, 'r'), 13, 'the head never goes back');
    });

    test('a page stops at the byte budget and says more', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      for (let i = 0; i < 10; i++) await store.send(msg('s', 'big', 1_000 + i, 'y'.repeat(10_000)));
      const page = await store.read(APP, 'big', 0, 500, 35_000);
      assert.equal(page.entries.length, 3);
      assert.equal(page.more, true);
      const one = await store.read(APP, 'big', 0, 500, 10);
      assert.equal(one.entries.length, 1, 'always one entry');
      const all = await store.read(APP, 'big', 0, 500, 1_000_000);
      assert.equal(all.entries.length, 10);
      assert.equal(all.more, false);
    });
  });
}
