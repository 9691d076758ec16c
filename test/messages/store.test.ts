/**
 * The message stores on their own: the same contract for `memory` and `sqlite` (gap-free
 * seqs per user, idempotency, one entry for a message to oneself, pages, acks), and what
 * only sqlite promises: data survives a restart, one server per file, schema versions.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { StoreClosedError, StoreUnavailableError, type MessageStore, type NewMessage } from '../../server/store.js';
import { openStore } from '../../server/store-open.js';
import { SQLITE_SCHEMA_VERSION, SqliteStore } from '../../server/store-sqlite.js';
import { SQLITE_WAL_AUTOCHECKPOINT, SQLITE_WAL_SIZE_LIMIT, openSqliteFile } from '../../server/store-sqlite-schema.js';
import { newMessageId } from '../../server/messages.js';
import { isGapless, sqliteFileFailingOnCommit, tempDir } from './util.js';

const APP = 1400000001;
let counter = 0;

function message(from: string, to: string, clientMsgId = `c${++counter}`, text = `text ${counter}`): NewMessage {
  return { id: `id-${++counter}`, sdkAppId: APP, from, to, clientMsgId, text, time: 1_700_000_000_000 + counter };
}

async function mailbox(store: MessageStore, userID: string, sdkAppId = APP) {
  return (await store.read(sdkAppId, userID, 0, 10_000)).entries;
}

const KINDS: Array<[string, (t: TestContext) => Promise<MessageStore>]> = [
  ['memory', async () => openStore('memory')],
  ['sqlite', async (t) => openStore(`sqlite:${join(tempDir(t), 'store.db')}`)],
  // The benchmark's baseline (the previous design, on the main thread) keeps the same contract.
  ['sqlite (storeBatch.baseline)', async (t) => openStore(`sqlite:${join(tempDir(t), 'store.db')}`, { maxMessages: 256, maxWaitMs: 0, baseline: true })],
];

for (const [kind, open] of KINDS) {
  describe(`${kind} store`, () => {
    test('seqs are 1, 2, 3 … per user without gaps, with interleaved senders; each message has one seq per mailbox', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const plan: Array<[string, string]> = [];
      for (let i = 0; i < 40; i++) plan.push([['alice', 'carol', 'bob'][i % 3]!, ['bob', 'bob', 'alice'][i % 3]!]);
      const stored = [];
      for (const [from, to] of plan) stored.push((await store.send(message(from, to))).message);
      for (const user of ['alice', 'bob', 'carol']) {
        const entries = await mailbox(store, user);
        assert.ok(isGapless(entries.map((e) => e.seq)), `${user}: ${entries.map((e) => e.seq).join(',')}`);
        assert.equal(await store.head(APP, user), entries.length);
        for (const e of entries) {
          assert.equal(e.flow, e.message.from === user ? 'out' : 'in');
          assert.equal(e.seq, e.flow === 'out' ? e.message.fromSeq : e.message.toSeq);
        }
      }
      assert.equal((await mailbox(store, 'bob')).length, 40, 'bob: 27 in + 13 out');
      assert.deepEqual((await mailbox(store, 'bob')).map((e) => e.message.id), stored.map((m) => m.id), 'bob is in every message, in order');
      assert.deepEqual(await mailbox(store, 'bob', APP + 1), [], 'apps are separate');
    });

    test('idempotent per (app, sender, clientMsgId): a retry returns the stored message and stores nothing', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const first = await store.send(message('alice', 'bob', 'same', 'one'));
      assert.equal(first.created, true);
      const again = await store.send({ ...message('alice', 'bob', 'same', 'a different text'), id: 'other-id' });
      assert.equal(again.created, false);
      assert.deepEqual(again.message, first.message);
      assert.equal(await store.head(APP, 'bob'), 1);
      const otherSender = await store.send(message('carol', 'bob', 'same'));
      assert.equal(otherSender.created, true, 'another sender may use the same clientMsgId');
      assert.equal(otherSender.message.toSeq, 2);
    });

    test('a message to oneself takes one entry (flow out)', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const { message: m } = await store.send(message('alice', 'alice'));
      assert.equal(m.fromSeq, 1);
      assert.equal(m.toSeq, 1);
      const entries = await mailbox(store, 'alice');
      assert.deepEqual(entries.map((e) => [e.seq, e.flow]), [[1, 'out']]);
    });

    test('pages: limit and more; acks keep the highest value and clamp to the head', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      for (let i = 0; i < 5; i++) await store.send(message('alice', 'bob'));
      const page = await store.read(APP, 'bob', 1, 3);
      assert.deepEqual(page.entries.map((e) => e.seq), [2, 3, 4]);
      assert.equal(page.more, true);
      assert.equal(page.head, 5, 'the head comes with the page');
      const last = await store.read(APP, 'bob', 4, 3);
      assert.deepEqual(last.entries.map((e) => e.seq), [5]);
      assert.equal(last.more, false);
      assert.deepEqual(await store.read(APP, 'bob', 5, 3), { entries: [], more: false, head: 5 }, 'an empty page still has the head');
      assert.deepEqual(await store.read(APP, 'nobody', 0, 3), { entries: [], more: false, head: 0 });
      assert.equal(await store.acked(APP, 'bob'), 0);
      assert.equal(await store.ack(APP, 'bob', 3), 3);
      assert.equal(await store.ack(APP, 'bob', 2), 2);
      assert.equal(await store.acked(APP, 'bob'), 3, 'never goes back');
      assert.equal(await store.ack(APP, 'bob', 99), 5, 'clamped to the head');
      assert.equal(await store.acked(APP, 'bob'), 5);
      assert.equal(await store.ack(APP, 'nobody', 7), 0, 'an empty mailbox stays at 0');
    });

    test('sends issued together are stored in call order without gaps; a duplicate among them is stored once', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const sends = [];
      for (let i = 0; i < 30; i++) sends.push(store.send(message(i % 2 ? 'alice' : 'carol', 'bob', `k${i}`, `t${i}`)));
      sends.push(store.send({ ...message('alice', 'bob', 'k1', 'a retry with another text'), id: 'retry-id' }));
      const results = await Promise.all(sends);
      assert.deepEqual(results.map((r) => r.created), [...Array(30).fill(true), false]);
      assert.deepEqual(results[30]!.message, results[1]!.message, 'the duplicate answers with the stored message');
      assert.deepEqual(results.slice(0, 30).map((r) => r.message.toSeq), Array.from({ length: 30 }, (_, i) => i + 1), 'call order');
      const bob = await mailbox(store, 'bob');
      assert.deepEqual(bob.map((e) => e.message.text), Array.from({ length: 30 }, (_, i) => `t${i}`));
      assert.ok(isGapless((await mailbox(store, 'alice')).map((e) => e.seq)));
    });

    test('calls after close reject with StoreClosedError', async (t) => {
      const store = await open(t);
      await store.close();
      await assert.rejects(store.send(message('alice', 'bob')), StoreClosedError);
      await assert.rejects(store.read(APP, 'bob', 0, 1), StoreClosedError);
    });
  });
}

describe('sqlite only', () => {
  test('a restart keeps messages, seqs, acks and idempotency', async (t) => {
    const path = join(tempDir(t), 'nested', 'dir', 'restart.db');
    const first = await SqliteStore.open(path);
    const sent = [];
    for (let i = 0; i < 10; i++) sent.push((await first.send(message('alice', 'bob', `k${i}`))).message);
    await first.ack(APP, 'bob', 4);
    await first.close();

    const second = await SqliteStore.open(path);
    t.after(() => second.close());
    assert.deepEqual((await mailbox(second, 'bob')).map((e) => e.message), sent);
    assert.equal(await second.acked(APP, 'bob'), 4);
    const retry = await second.send(message('alice', 'bob', 'k3'));
    assert.equal(retry.created, false);
    assert.deepEqual(retry.message, sent[3]);
    const next = await second.send(message('alice', 'bob'));
    assert.equal(next.message.toSeq, 11, 'seqs continue after the restart');
    assert.equal(next.message.fromSeq, 11);
  });

  test('one server per file: a second open while the first holds it fails clearly', async (t) => {
    const path = join(tempDir(t), 'locked.db');
    const holder = await SqliteStore.open(path);
    t.after(() => holder.close());
    await assert.rejects(SqliteStore.open(path), /in use by another process/);
  });

  test('a file from a newer schema is refused; the current schema is recorded', async (t) => {
    const dir = tempDir(t);
    const current = await SqliteStore.open(join(dir, 'current.db'));
    await current.close();
    const check = new Database(join(dir, 'current.db'));
    assert.equal(check.pragma('user_version', { simple: true }), SQLITE_SCHEMA_VERSION);
    assert.equal(check.pragma('journal_mode', { simple: true }), 'wal');
    check.close();

    const future = new Database(join(dir, 'future.db'));
    future.pragma(`user_version = ${SQLITE_SCHEMA_VERSION + 1}`);
    future.close();
    await assert.rejects(SqliteStore.open(join(dir, 'future.db')), new RegExp(`schema version ${SQLITE_SCHEMA_VERSION + 1}.*upgrade tabchat`));
  });

  test('the file is opened durable (WAL, synchronous=FULL) with the documented checkpoint interval and WAL size cap', (t) => {
    const db = openSqliteFile(join(tempDir(t), 'pragmas.db'));
    t.after(() => db.close());
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('synchronous', { simple: true }), 2); // FULL
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), SQLITE_WAL_AUTOCHECKPOINT);
    assert.equal(db.pragma('journal_size_limit', { simple: true }), SQLITE_WAL_SIZE_LIMIT);
    assert.equal(db.pragma('locking_mode', { simple: true }), 'exclusive');
  });

  test('group commit: a send is acknowledged only once its batch committed; a batch commits when it holds maxMessages', async (t) => {
    const store = await SqliteStore.open(join(tempDir(t), 'batch.db'), { maxMessages: 3, maxWaitMs: 60_000 });
    t.after(() => store.close());
    const settled: string[] = [];
    const first = [store.send(message('alice', 'bob', 'a')), store.send(message('carol', 'bob', 'b'))];
    for (const [i, p] of first.entries()) void p.then(() => settled.push(`send ${i}`));
    await new Promise((resolve) => setImmediate(resolve)); // a full event-loop turn
    assert.deepEqual(settled, [], 'not acknowledged while the batch is open');
    assert.equal(await store.head(APP, 'bob'), 0, 'and not stored either');
    const third = await store.send(message('alice', 'bob', 'c'));
    const results = await Promise.all(first);
    assert.deepEqual([...results, third].map((r) => r.message.toSeq), [1, 2, 3]);
    assert.equal(await store.head(APP, 'bob'), 3);
  });

  test('close commits the sends still queued', async (t) => {
    const path = join(tempDir(t), 'close.db');
    const store = await SqliteStore.open(path, { maxMessages: 100, maxWaitMs: 60_000 });
    const pending = [store.send(message('alice', 'bob', 'x')), store.send(message('alice', 'bob', 'y'))];
    await store.close();
    assert.deepEqual((await Promise.all(pending)).map((r) => r.created), [true, true]);
    const again = await SqliteStore.open(path);
    t.after(() => again.close());
    assert.equal(await again.head(APP, 'bob'), 2);
  });

  test('a send that fails on its own is rolled back alone; the rest of its batch is stored without gaps', async (t) => {
    const path = join(tempDir(t), 'one-fails.db');
    await (await SqliteStore.open(path)).close();
    const raw = new Database(path);
    raw.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'refuse me'
              BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END`);
    raw.close();
    const store = await SqliteStore.open(path);
    t.after(() => store.close());
    const outcomes = await Promise.allSettled([
      store.send(message('alice', 'bob', 'a', 'one')),
      store.send(message('alice', 'bob', 'b', 'refuse me')),
      store.send(message('alice', 'bob', 'c', 'three')),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /refused by the test trigger/);
    const bob = await mailbox(store, 'bob');
    assert.deepEqual(bob.map((e) => [e.seq, e.message.text]), [[1, 'one'], [2, 'three']]);
    assert.deepEqual((await mailbox(store, 'alice')).map((e) => e.seq), [1, 2]);
  });

  test('a batch whose commit fails rejects every send of it and stores none; the next batch goes on without gaps', async (t) => {
    const path = join(tempDir(t), 'commit-fails.db');
    await sqliteFileFailingOnCommit(path);
    const store = await SqliteStore.open(path);
    t.after(() => store.close());
    const outcomes = await Promise.allSettled([
      store.send(message('alice', 'bob', 'a', 'one')),
      store.send(message('carol', 'bob', 'b', 'fail the commit')),
      store.send(message('alice', 'bob', 'a', 'one again (a duplicate in the batch)')),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'rejected', 'rejected']);
    for (const o of outcomes) assert.match(String((o as PromiseRejectedResult).reason), /FOREIGN KEY/);
    for (const user of ['alice', 'bob', 'carol']) assert.equal(await store.head(APP, user), 0, `${user}: nothing stored`);
    const retry = await store.send(message('alice', 'bob', 'a', 'one'));
    assert.equal(retry.created, true, 'the retry stores it (nothing of the failed batch was kept)');
    assert.equal(retry.message.toSeq, 1);
    assert.equal(retry.message.fromSeq, 1);
  });

  test('acks share the sends\' group commit: sends and acks of one turn are one batch, applied in call order', async (t) => {
    const store = await SqliteStore.open(join(tempDir(t), 'acks.db'));
    t.after(() => store.close());
    await store.send(message('alice', 'bob', 'a'));
    const before = { ...store.stats };
    const [second, ackedTwo, third, ackedBeyond] = await Promise.all([
      store.send(message('alice', 'bob', 'b')),
      store.ack(APP, 'bob', 2), // after the send above, in the same transaction: 2 is the head
      store.send(message('alice', 'bob', 'c')),
      store.ack(APP, 'bob', 99), // clamped to the head, 3
    ]);
    assert.equal(second.message.toSeq, 2);
    assert.equal(third.message.toSeq, 3);
    assert.deepEqual([ackedTwo, ackedBeyond], [2, 3]);
    assert.deepEqual({ batches: store.stats.batches - before.batches, writes: store.stats.writes - before.writes }, { batches: 1, writes: 4 });
    assert.equal(await store.acked(APP, 'bob'), 3);
  });

  test('a batch without failures takes no savepoints; one with a failing write is redone with savepoints (counted)', async (t) => {
    const path = join(tempDir(t), 'retried.db');
    await (await SqliteStore.open(path)).close();
    const raw = new Database(path);
    raw.exec(`CREATE TRIGGER refuse BEFORE INSERT ON messages WHEN NEW.text = 'refuse me'
              BEGIN SELECT RAISE(ABORT, 'refused by the test trigger'); END`);
    raw.close();
    const store = await SqliteStore.open(path);
    t.after(() => store.close());
    await Promise.all([store.send(message('alice', 'bob', 'a', 'one')), store.send(message('alice', 'bob', 'b', 'two'))]);
    assert.equal(store.stats.retried, 0);
    const outcomes = await Promise.allSettled([store.send(message('alice', 'bob', 'c', 'refuse me')), store.ack(APP, 'bob', 2)]);
    assert.deepEqual(outcomes.map((o) => o.status), ['rejected', 'fulfilled']);
    assert.equal(store.stats.retried, 1);
    assert.equal(await store.acked(APP, 'bob'), 2, 'the ack of the redone batch is stored');
  });

  test('a writer thread that dies makes the later calls fail with StoreUnavailableError (9031); the file keeps what was committed', async (t) => {
    const path = join(tempDir(t), 'dead-writer.db');
    const store = await SqliteStore.open(path);
    t.after(() => store.close());
    await store.send(message('alice', 'bob', 'kept'));
    const worker = (store as unknown as { worker: { terminate(): Promise<number> } }).worker;
    await worker.terminate();
    await assert.rejects(store.read(APP, 'bob', 0, 10), StoreUnavailableError);
    await assert.rejects(store.send(message('alice', 'bob')), StoreUnavailableError);
    await assert.rejects(store.ack(APP, 'bob', 1), StoreUnavailableError);
    await store.close();
    const again = await SqliteStore.open(path);
    t.after(() => again.close());
    assert.deepEqual((await again.read(APP, 'bob', 0, 10)).entries.map((e) => e.message.clientMsgId), ['kept']);
  });

  test('openStore: "sqlite:" needs a path; an unreachable postgres fails clearly without leaking the password', async () => {
    await assert.rejects(openStore('sqlite:'), /needs a file path/);
    await assert.rejects(openStore('postgres://user:secret@db/chat'), (err: Error) => /not available/.test(err.message) && !err.message.includes('secret'));
  });
});

test('message ids are UUIDv7 and increase, also past 4,096 in one millisecond and when the clock goes back', () => {
  const base = 4_000_000_000_000; // ahead of any id this process made before
  const ids: string[] = [];
  for (let i = 0; i < 6000; i++) ids.push(newMessageId(base + Math.floor(i / 4500)));
  ids.push(newMessageId(base - 60_000)); // the clock went back
  for (const id of ids) assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.ok(ids.every((id, i) => i === 0 || id > ids[i - 1]!), 'strictly increasing');
  assert.equal(new Set(ids).size, ids.length);
  const ms = base.toString(16).padStart(12, '0');
  assert.equal(ids[0]!.slice(0, 13), `${ms.slice(0, 8)}-${ms.slice(8)}`, 'the time comes first');
});
