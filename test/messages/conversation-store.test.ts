/**
 * The conversation part of the three message stores (memory, sqlite, postgres on a real
 * private PostgreSQL): unread counts kept with the entries (resends never count twice),
 * read markers, read receipts, deletion, history pages through the pair indexes, cursors,
 * and a randomized schedule after which every count agrees with the entries.
 */
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { MessageStore, NewMessage } from '../../server/store.js';
import { openStore } from '../../server/store-open.js';
import { SqliteStore } from '../../server/store-sqlite.js';
import { startPostgres, type PostgresServer } from '../helpers/services.js';
import { Rng } from '../helpers/rng.js';
import { tempDir } from './util.js';

const APP = 1400000001;
let counter = 0;

function message(from: string, to: string, clientMsgId = `c${++counter}`): NewMessage {
  return { id: `id-${++counter}-${Math.random().toString(36).slice(2)}`, sdkAppId: APP, from, to, clientMsgId, text: `text ${counter}`, time: 1_700_000_000_000 + counter };
}

let pg: PostgresServer | undefined;
let dbCount = 0;
before(async () => {
  pg = await startPostgres();
});
after(async () => {
  await pg?.close();
});

const KINDS: Array<[string, (t: TestContext) => Promise<MessageStore>]> = [
  ['memory', async () => openStore('memory')],
  ['sqlite', async (t) => openStore(`sqlite:${join(tempDir(t), 'store.db')}`)],
  ['postgres', async () => openStore(await pg!.createDatabase(`conv${++dbCount}`))],
];

for (const [kind, open] of KINDS) {
  describe(`${kind} store: conversations`, () => {
    test('send counts unread once per message (a resend counts nothing); read clears; list ordered by activity', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const conv = store.conversations;
      const m1 = message('bob', 'alice', 'b1');
      await store.send(m1);
      await store.send({ ...m1, id: 'another-id' }); // a resend: same clientMsgId
      await store.send(message('bob', 'alice'));
      await store.send(message('carol', 'alice'));
      await store.send(message('alice', 'bob'));
      const list = await conv.list(APP, 'alice', 100);
      assert.deepEqual(list.conversations.map((c) => [c.peer, c.unread]), [['bob', 2], ['carol', 1]], 'bob last active (alice replied)');
      assert.equal(list.total, 3);
      assert.equal(list.conversations[0]!.last?.flow, 'out');
      assert.equal(list.conversations[0]!.last?.message.from, 'alice');
      const bobView = await conv.list(APP, 'bob', 100);
      assert.deepEqual(bobView.conversations.map((c) => [c.peer, c.unread]), [['alice', 1]]);

      const read = await conv.markRead(APP, 'alice', 'bob');
      assert.ok(read);
      assert.equal(read.changed, true);
      assert.equal(read.row.unread, 0);
      assert.equal(read.row.readSeq, read.row.lastSeq);
      assert.equal(read.lastIn?.from, 'bob', 'the newest message from bob is the receipt');
      assert.equal((await conv.markRead(APP, 'alice', 'bob'))?.changed, false, 'reading again changes nothing');
      assert.equal(await conv.total(APP, 'alice'), 1);
      assert.equal(await conv.markRead(APP, 'alice', 'nobody'), null);

      assert.ok(await conv.setPeerRead(APP, 'bob', 'alice', read.lastIn!.fromSeq));
      assert.equal(await conv.setPeerRead(APP, 'bob', 'alice', read.lastIn!.fromSeq), null, 'the marker only rises');
      assert.equal((await conv.get(APP, 'bob', 'alice'))?.peerReadSeq, read.lastIn!.fromSeq);
    });

    test('history: newest page first, oldest first within a page, by seq cursor; only this pair; delete hides until a new message', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const conv = store.conversations;
      const sent: string[] = [];
      for (let i = 0; i < 32; i++) {
        const from = i % 3 === 0 ? 'alice' : 'bob';
        const { message: m } = await store.send(message(from, from === 'alice' ? 'bob' : 'alice'));
        sent.push(m.id);
        await store.send(message('carol', 'alice')); // another conversation, interleaved
      }
      await store.send(message('alice', 'alice')); // a note to oneself: its own conversation
      const pages: string[][] = [];
      let beforeSeq: number | null = null;
      for (;;) {
        const page = await conv.history(APP, 'alice', 'bob', beforeSeq, 15);
        pages.push(page.entries.map((e) => e.message.id));
        const seqs = page.entries.map((e) => e.seq);
        assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'ascending within a page');
        for (const e of page.entries) assert.ok([e.message.from, e.message.to].sort().join() === 'alice,bob');
        if (!page.more) break;
        const at = await conv.locate(APP, 'alice', page.entries[0]!.message.id);
        assert.equal(at?.peer, 'bob');
        beforeSeq = at!.seq;
      }
      assert.deepEqual(pages.map((p) => p.length), [15, 15, 2]);
      assert.deepEqual(pages.reverse().flat(), sent, 'every message once, in order');
      assert.deepEqual((await conv.history(APP, 'alice', 'alice', null, 15)).entries.length, 1);
      assert.equal(await conv.locate(APP, 'dave', sent[0]!), null, "another user's message locates nowhere");
      assert.equal(await conv.locate(APP, 'alice', 'no-such-id'), null);

      assert.equal(await conv.remove(APP, 'alice', 'bob'), true);
      assert.equal(await conv.remove(APP, 'alice', 'bob'), false);
      assert.equal(await conv.get(APP, 'alice', 'bob'), null);
      assert.deepEqual((await conv.list(APP, 'alice', 100)).conversations.map((c) => c.peer), ['alice', 'carol']);
      assert.equal((await conv.history(APP, 'alice', 'bob', null, 15)).entries.length, 0);
      assert.equal((await conv.history(APP, 'bob', 'alice', null, 100)).entries.length, 32, "bob's side is untouched");
      const { message: fresh } = await store.send(message('bob', 'alice'));
      const back = await conv.get(APP, 'alice', 'bob');
      assert.equal(back?.unread, 1);
      assert.deepEqual((await conv.history(APP, 'alice', 'bob', null, 15)).entries.map((e) => e.message.id), [fresh.id]);
    });

    test('randomized schedule: every unread count equals the received entries after the read marker', async (t) => {
      const store = await open(t);
      t.after(() => store.close());
      const rng = new Rng(Number(process.env.TABCHAT_CONV_SEED ?? 4242));
      const rand = () => rng.next();
      const users = ['u1', 'u2', 'u3', 'u4'];
      const clientIds: string[] = [];
      for (let step = 0; step < 160; step++) {
        const a = users[Math.floor(rand() * users.length)]!;
        const b = users[Math.floor(rand() * users.length)]!;
        const r = rand();
        if (r < 0.55) {
          const m = message(a, b);
          clientIds.push(m.clientMsgId);
          await store.send(m);
        } else if (r < 0.7 && clientIds.length > 0) {
          await store.send(message(a, b, clientIds[Math.floor(rand() * clientIds.length)]!)); // a resend (maybe to no effect)
        } else if (r < 0.9) await store.conversations.markRead(APP, a, b);
        else await store.conversations.remove(APP, a, b);
      }
      for (const user of users) {
        const entries = (await store.read(APP, user, 0, 10_000)).entries;
        let total = 0;
        for (const peer of users) {
          const row = await store.conversations.get(APP, user, peer);
          const page = await store.conversations.history(APP, user, peer, null, 100);
          if (!row) continue;
          const expected = entries.filter((e) => e.flow === 'in' && e.message.from === peer && e.seq > row.readSeq).length;
          assert.equal(row.unread, expected, `${user} ← ${peer}`);
          assert.ok(row.unread >= 0);
          assert.equal(page.entries.at(-1)?.seq, row.lastSeq);
          total += row.unread;
        }
        assert.equal(await store.conversations.total(APP, user), total, `${user}: total`);
      }
    });
  });
}

test('sqlite: a version-2 file migrates to conversations (existing history counted as read)', async (t) => {
  const path = join(tempDir(t), 'v2.db');
  const store = await SqliteStore.open(path);
  await store.send(message('bob', 'alice'));
  await store.send(message('alice', 'bob'));
  await store.close();
  const db = new Database(path);
  db.exec('DROP TRIGGER mailbox_conversation; DROP TABLE conversations; DROP INDEX messages_by_pair; DROP INDEX messages_by_pair_in;');
  db.pragma('user_version = 2');
  db.close();
  const again = await SqliteStore.open(path);
  t.after(() => again.close());
  const list = await again.conversations.list(APP, 'alice', 10);
  assert.deepEqual(list.conversations.map((c) => [c.peer, c.unread, c.lastSeq]), [['bob', 0, 2]]);
  await again.send(message('bob', 'alice'));
  assert.equal((await again.conversations.get(APP, 'alice', 'bob'))?.unread, 1);
});

test('sqlite: history pages, cursors and the list read through indexes (no table scan)', async (t) => {
  const path = join(tempDir(t), 'plan.db');
  const store = await SqliteStore.open(path);
  await store.send(message('bob', 'alice'));
  await store.close();
  const db = new Database(path, { readonly: true });
  t.after(() => db.close());
  const plan = (sql: string) => (db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all() as Array<{ detail: string }>).map((r) => r.detail).join(' | ');
  const queries = {
    sent: `SELECT m.* FROM messages m JOIN mailbox b ON b.sdk_app_id = m.sdk_app_id AND b.user_id = m.from_user AND b.seq = m.from_seq
           WHERE m.sdk_app_id = 1 AND m.from_user = 'a' AND m.to_user = 'b' AND m.from_seq < 9 AND m.from_seq > 0 ORDER BY m.from_seq DESC LIMIT 16`,
    received: `SELECT m.* FROM messages m JOIN mailbox b ON b.sdk_app_id = m.sdk_app_id AND b.user_id = m.to_user AND b.seq = m.to_seq
           WHERE m.sdk_app_id = 1 AND m.to_user = 'a' AND m.from_user = 'b' AND m.to_seq < 9 AND m.to_seq > 0 ORDER BY m.to_seq DESC LIMIT 16`,
    list: `SELECT * FROM conversations WHERE sdk_app_id = 1 AND user_id = 'a' AND last_seq > cleared_seq ORDER BY last_seq DESC LIMIT 500`,
  };
  assert.match(plan(queries.sent), /USING INDEX messages_by_pair\b/);
  assert.match(plan(queries.received), /USING INDEX messages_by_pair_in\b/);
  assert.match(plan(queries.list), /USING (INDEX conversations_by_activity|PRIMARY KEY)/);
  for (const [name, sql] of Object.entries(queries)) assert.doesNotMatch(plan(sql), /^SCAN (m|messages|conversations)\b|\| SCAN (m|messages|conversations)\b/, name);
});
