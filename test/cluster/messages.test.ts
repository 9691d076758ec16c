/**
 * Messages in a cluster, with the Postgres store: the store contract on a real Postgres
 * (gap-free seqs and idempotency also when two nodes write at once), a few hundred messages
 * crossing nodes with no loss, and Postgres going away and coming back.
 */
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import TabChat, { type Chat, type Message } from '../../src/node/index.js';
import { CODE } from '../../src/protocol/codes.js';
import type { MessageStore, NewMessage } from '../../server/store.js';
import { openStore } from '../../server/store-open.js';
import { ConfigError, validateConfig } from '../../server/config.js';
import { startTestServer } from '../helpers/server.js';
import { POSTGRES_SCHEMA_VERSION, PostgresStore } from '../../server/store-postgres.js';
import { FAST_LIVENESS, RawClient, sharedServices, startCluster, until, type TestCluster } from './util.js';

const APP = 1400000001;
let counter = 0;
function message(from: string, to: string, clientMsgId = `c${++counter}`, text = `text ${counter}`): NewMessage {
  return { id: `id-${randomBytes(6).toString('hex')}`, sdkAppId: APP, from, to, clientMsgId, text, time: 1_700_000_000_000 + ++counter };
}

async function freshStore(t: TestContext): Promise<{ url: string; open: () => Promise<MessageStore> }> {
  const { pg: server } = await sharedServices();
  const url = await server.createDatabase(`s${++counter}_${randomBytes(3).toString('hex')}`);
  const opened: MessageStore[] = [];
  t.after(() => Promise.allSettled(opened.map((s) => s.close())));
  return {
    url,
    open: async () => {
      const s = await openStore(url);
      opened.push(s);
      return s;
    },
  };
}

const isGapless = (seqs: number[]) => seqs.every((s, i) => s === i + 1);

describe('postgres store', () => {
  test('the store contract: gap-free seqs per user, one entry for a message to oneself, pages, acks, idempotency', async (t) => {
    const { open } = await freshStore(t);
    const store = await open();
    assert.equal(store.kind, 'postgres');
    for (let i = 0; i < 30; i++) await store.send(message(['alice', 'carol', 'bob'][i % 3]!, ['bob', 'bob', 'alice'][i % 3]!));
    for (const user of ['alice', 'bob', 'carol']) {
      const { entries } = await store.read(APP, user, 0, 1000);
      assert.ok(isGapless(entries.map((e) => e.seq)), user);
      assert.equal(await store.head(APP, user), entries.length);
      for (const e of entries) assert.equal(e.seq, e.flow === 'out' ? e.message.fromSeq : e.message.toSeq);
    }
    const self = await store.send(message('dave', 'dave'));
    assert.deepEqual([self.message.fromSeq, self.message.toSeq], [1, 1]);
    assert.deepEqual((await store.read(APP, 'dave', 0, 10)).entries.map((e) => [e.seq, e.flow]), [[1, 'out']]);
    const first = await store.send(message('erin', 'bob', 'same', 'one'));
    const again = await store.send({ ...message('erin', 'bob', 'same', 'other'), id: 'another-id' });
    assert.deepEqual([first.created, again.created], [true, false]);
    assert.deepEqual(again.message, first.message);
    const page = await store.read(APP, 'bob', 1, 3);
    assert.deepEqual([page.entries.map((e) => e.seq), page.more], [[2, 3, 4], true]);
    // Page and head come from one statement (one snapshot), also when the page is empty.
    const head = await store.head(APP, 'bob');
    assert.equal(page.head, head);
    assert.deepEqual(await store.read(APP, 'bob', head, 3), { entries: [], more: false, head });
    assert.deepEqual(await store.read(APP, 'nobody', 0, 3), { entries: [], more: false, head: 0 });
    assert.equal(await store.ack(APP, 'bob', 3), 3);
    assert.equal(await store.ack(APP, 'bob', 2), 2);
    assert.equal(await store.acked(APP, 'bob'), 3);
    assert.equal(await store.ack(APP, 'bob', 10_000), await store.head(APP, 'bob'));
    assert.equal(await store.ack(APP, 'nobody', 5), 0);
  });

  test('two nodes writing at once: A→B and B→A in parallel stay gap-free (no deadlock); a clientMsgId raced on both is stored once', async (t) => {
    const { open } = await freshStore(t);
    const [s1, s2] = [await open(), await open()];
    const sends: Array<Promise<unknown>> = [];
    for (let i = 0; i < 100; i++) {
      sends.push(s1.send(message('ann', 'ben')));
      sends.push(s2.send(message('ben', 'ann')));
      sends.push((i % 2 ? s1 : s2).send(message('cat', i % 3 ? 'ann' : 'ben')));
    }
    await Promise.all(sends);
    for (const user of ['ann', 'ben', 'cat']) {
      const { entries } = await s1.read(APP, user, 0, 1000);
      assert.ok(isGapless(entries.map((e) => e.seq)), `${user}: ${entries.length} entries`);
    }
    assert.equal(await s2.head(APP, 'cat'), 100);
    const raced = await Promise.all([s1.send(message('ann', 'ben', 'race-1')), s2.send(message('ann', 'ben', 'race-1'))]);
    assert.deepEqual(raced.map((r) => r.created).sort(), [false, true]);
    assert.equal(raced[0]!.message.id, raced[1]!.message.id);
  });

  test('batched sends: sends of a turn are one statement per node; with three nodes batching at once every mailbox stays gap-free, in each node\'s call order; a duplicate inside a batch is stored once', async (t) => {
    const { open } = await freshStore(t);
    const nodes = [await open(), await open(), await open()] as PostgresStore[];
    const users = ['u1', 'u2', 'u3', 'u4', 'u5'];
    const sends: Array<Promise<{ message: { from: string; to: string; clientMsgId: string; fromSeq: number; toSeq: number }; created: boolean }>> = [];
    for (let i = 0; i < 600; i++) {
      const node = nodes[i % 3]!;
      sends.push(node.send(message(users[i % 5]!, users[(i * 7 + 1) % 5]!, `b${i}`)));
    }
    const dup = [nodes[0]!.send(message('u1', 'u2', 'dup-in-batch')), nodes[0]!.send(message('u1', 'u2', 'dup-in-batch'))];
    const results = await Promise.all(sends);
    const [d1, d2] = await Promise.all(dup);
    assert.deepEqual([d1!.created, d2!.created], [true, false]);
    assert.deepEqual(d2!.message, d1!.message);
    const batches = nodes.reduce((n, s) => n + s.stats.batches, 0);
    assert.ok(batches < 60, `602 sends in ${batches} batch statements`);
    assert.equal(nodes.reduce((n, s) => n + s.stats.retried, 0), 0);
    for (const user of users) {
      const { entries } = await nodes[0]!.read(APP, user, 0, 10_000);
      assert.ok(isGapless(entries.map((e) => e.seq)), `${user}: ${entries.length} entries without gaps`);
      for (const e of entries) assert.equal(e.seq, e.flow === 'out' ? e.message.fromSeq : e.message.toSeq);
    }
    // A node's sends of one sender keep their call order in the sender's mailbox.
    for (const [n] of nodes.entries()) {
      const mine = results.filter((_, i) => i % 3 === n && results[i]!.message.from === 'u1').map((r) => r.message.fromSeq);
      assert.deepEqual(mine, [...mine].sort((a, b) => a - b), `node ${n}: u1's seqs in call order`);
    }
    assert.equal(results.filter((r) => r.created).length, 600);
    // Acks of a turn are one statement too: each answers min(seq, head); the position keeps the highest.
    const head = await nodes[1]!.head(APP, 'u2');
    const acks = await Promise.all([nodes[1]!.ack(APP, 'u2', 5), nodes[1]!.ack(APP, 'u2', 3), nodes[1]!.ack(APP, 'u2', head + 100), nodes[1]!.ack(APP, 'nobody', 4), nodes[1]!.ack(APP, 'u3', 1)]);
    assert.deepEqual(acks, [5, 3, head, 0, 1]);
    assert.equal(await nodes[0]!.acked(APP, 'u2'), head);
    assert.equal(await nodes[0]!.acked(APP, 'u3'), 1);
  });

  test('batched sends: a message the database refuses fails alone (the batch is run again one by one); the others are stored without gaps', async (t) => {
    const { url, open } = await freshStore(t);
    const store = (await open()) as PostgresStore;
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
                          IF NEW.text = 'refuse me' THEN RAISE EXCEPTION 'refused by the test trigger'; END IF; RETURN NEW; END $$;
                        CREATE TRIGGER refuse BEFORE INSERT ON tabchat_messages FOR EACH ROW EXECUTE FUNCTION refuse()`);
    await client.end();
    const outcomes = await Promise.allSettled([
      store.send(message('alice', 'bob', 'a', 'one')),
      store.send(message('alice', 'bob', 'b', 'refuse me')),
      store.send(message('alice', 'bob', 'c', 'three')),
    ]);
    assert.deepEqual(outcomes.map((o) => o.status), ['fulfilled', 'rejected', 'fulfilled']);
    assert.match(String((outcomes[1] as PromiseRejectedResult).reason), /refused by the test trigger/);
    assert.equal(store.stats.retried, 1);
    const bob = (await store.read(APP, 'bob', 0, 10)).entries;
    assert.deepEqual(bob.map((e) => [e.seq, e.message.text]), [[1, 'one'], [2, 'three']]);
  });

  test('a restart keeps everything; a database of a newer schema is refused; an unreachable one fails without leaking the password', async (t) => {
    const { url, open } = await freshStore(t);
    const first = await open();
    const m = await first.send(message('alice', 'bob', 'k1'));
    await first.ack(APP, 'bob', 1);
    await first.close();
    const second = await open();
    assert.deepEqual((await second.read(APP, 'bob', 0, 10)).entries.map((e) => e.message), [m.message]);
    assert.equal(await second.acked(APP, 'bob'), 1);
    assert.equal((await second.send(message('alice', 'bob', 'k1'))).created, false);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    await client.query('UPDATE tabchat_schema SET version = $1', [POSTGRES_SCHEMA_VERSION + 1]);
    await client.end();
    await assert.rejects(PostgresStore.open(url), new RegExp(`schema version ${POSTGRES_SCHEMA_VERSION + 1}.*upgrade tabchat`));
    await assert.rejects(
      openStore('postgres://postgres:hunter2@127.0.0.1:1/nothing'),
      (err: Error) => /not available/.test(err.message) && !err.message.includes('hunter2'),
    );
  });
});

/** A Node SDK chat on `wsUrl`, destroyed after the test. */
async function chatOn(t: TestContext, c: TestCluster, wsUrl: string, userID: string): Promise<{ chat: Chat; inbox: Message[] }> {
  const chat = TabChat.create({ SDKAppID: c.sdkAppId, server: wsUrl })!;
  chat.setLogLevel(3);
  t.after(() => chat.destroy().catch(() => undefined));
  const inbox: Message[] = [];
  chat.on(TabChat.EVENT.MESSAGE_RECEIVED, (e) => inbox.push(...(e.data as Message[])));
  const ready = new Promise((r) => chat.on(TabChat.EVENT.SDK_READY, r));
  await chat.login({ userID, userSig: c.sig(userID) });
  await ready;
  return { chat, inbox };
}

test('300 messages from senders on nodes 1 and 3 to a user on node 2 and node 3: none lost, none twice, ids match', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 }, { rateLimits: { framesPerSecond: 5_000 } });
  const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
  const alice = await chatOn(t, c, n1.wsUrl, 'alice');
  const carol = await chatOn(t, c, n3.wsUrl, 'carol');
  const bob2 = await chatOn(t, c, n2.wsUrl, 'bob');
  const bob3 = await chatOn(t, c, n3.wsUrl, 'bob');
  const sent: Message[] = [];
  await Promise.all(
    Array.from({ length: 300 }, (_, i) => {
      const from = i % 3 === 0 ? carol : alice;
      const m = from.chat.createTextMessage({ to: 'bob', conversationType: 'C2C', payload: { text: `m${i}` } });
      sent.push(m);
      return from.chat.sendMessage(m);
    }),
  );
  const ids = new Set(sent.map((m) => m.ID));
  assert.equal(ids.size, 300);
  for (const [name, bob] of [['bob on node 2', bob2], ['bob on node 3', bob3]] as const) {
    await until(() => bob.inbox.length >= 300, 15_000, `${name}: 300 messages (got ${bob.inbox.length})`);
    assert.equal(bob.inbox.length, 300, `${name}: none twice`);
    assert.deepEqual(new Set(bob.inbox.map((m) => m.ID)), ids, `${name}: exactly the ids the senders got back`);
    assert.ok(isGapless(bob.inbox.map((m) => m.sequence)), `${name}: seqs 1..300 in order`);
  }
  // Most of them were pushed across nodes, not only read by sync.
  const delivered = async (node: typeof n2) =>
    (await node.server.context.metrics.messagesDelivered.get()).values.find((v) => v.labels.via === 'push')?.value ?? 0;
  assert.ok((await delivered(n2)) > 150, `node 2 pushed ${await delivered(n2)}`);
});

test('Postgres down: sends fail fast with 9031, sessions stay up, nothing acknowledged is lost; everything works again once it is back', async (t) => {
  const c = await startCluster(t, {}, { nodes: 2 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const a = await RawClient.connect(n1.wsUrl);
  const b = await RawClient.connect(n2.wsUrl);
  t.after(() => [a, b].forEach((x) => x.close()));
  const alice = (await a.login(c.sdkAppId, 'alice', c.sig('alice'))).data.instId as number;
  const bob = (await b.login(c.sdkAppId, 'bob', c.sig('bob'))).data.instId as number;
  const send = (clientMsgId: string, text: string) => a.request({ type: 'send', instId: alice, clientMsgId, to: 'bob', text });
  const before = await send('before', 'stored before');
  assert.equal(before.ok, true);
  await b.waitFor((f) => f.type === 'msg', 3000, 'push before the outage');

  const { pg: server } = c.services;
  await server.stop('immediate');
  let restarted = false;
  t.after(async () => {
    if (!restarted) await server.start();
  });
  const started = Date.now();
  const down = await send('during', 'sent while the store is down');
  assert.deepEqual([down.ok, down.code], [false, CODE.STORE_UNAVAILABLE], JSON.stringify(down));
  assert.ok(Date.now() - started < 4_000, `failed fast (${Date.now() - started} ms)`);
  const newcomer = await RawClient.connect(n2.wsUrl);
  t.after(() => newcomer.close());
  const refused = await newcomer.login(c.sdkAppId, 'carol', c.sig('carol'));
  assert.deepEqual([refused.ok, refused.code], [false, CODE.STORE_UNAVAILABLE], 'a login needs the mailbox position');
  // The sessions are still up.
  assert.equal((await a.request({ type: 'time' })).ok, true);
  assert.equal((await b.request({ type: 'time' })).ok, true);
  assert.equal(a.closed, null);

  await server.start();
  restarted = true;
  // The client re-sends with the same clientMsgId: stored once, delivered once.
  const retried = await until(async () => {
    const r = await send('during', 'sent while the store is down');
    return r.ok ? r : null;
  }, 10_000, 'send accepted again');
  assert.equal(retried.data.message.seq, 2);
  const again = await send('during', 'sent while the store is down');
  assert.equal(again.data.message.id, retried.data.message.id, 'idempotent');
  await b.waitFor((f) => f.type === 'msg' && (f as { message: { text: string } }).message.text === 'sent while the store is down', 3000);
  const sync = await b.request({ type: 'sync', instId: bob, afterSeq: 0 });
  assert.deepEqual(sync.data.messages.map((m: { text: string }) => m.text), ['stored before', 'sent while the store is down']);
  assert.ok((await newcomer.login(c.sdkAppId, 'carol', c.sig('carol'))).ok);
});

test('a single node (no redis) on the postgres store; config validation of cluster keys', async (t) => {
  const { url } = await freshStore(t);
  const ts = await startTestServer({}, { store: url });
  t.after(() => ts.close());
  const a = await RawClient.connect(ts.wsUrl);
  t.after(() => a.close());
  const alice = await a.login(ts.sdkAppId, 'alice', ts.sig('alice'));
  const sent = await a.request({ type: 'send', instId: alice.data.instId, clientMsgId: 'x1', to: 'bob', text: 'hello' });
  assert.deepEqual([sent.ok, sent.data.message.seq], [true, 1]);
  assert.equal(ts.server.context.engine.kind, 'memory');
  assert.equal(ts.server.context.store.kind, 'postgres');
  const apps = [{ sdkAppId: 1, secretKey: 'k' }];
  // redis with a local store (the default sqlite one included) passes validation: a lone node
  // may run so; the check against live nodes happens at start (below).
  for (const store of ['memory', 'sqlite:./x.db', undefined]) {
    assert.doesNotThrow(() => validateConfig({ apps, redis: 'redis://127.0.0.1:6379', ...(store ? { store } : {}) }));
  }
  assert.throws(() => validateConfig({ apps, redis: 'http://x', store: url }), /redis:\/\//);
  assert.throws(() => validateConfig({ apps, nodeHeartbeatMs: 1000, nodeTimeoutMs: 1500 }), /at least twice/);
  assert.equal(validateConfig({ apps, redis: 'redis://127.0.0.1:6379', store: url }).redisPrefix, 'tabchat:');
});

test('redis with a local store: a lone node starts, a second node next to it is refused', async (t) => {
  const svc = await sharedServices();
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-local-store-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const prefix = `lone-${randomBytes(3).toString('hex')}:`;
  const first = await startTestServer({}, { ...FAST_LIVENESS, store: `sqlite:${join(dir, 'a.db')}`, redis: svc.redis.url, redisPrefix: prefix, node: 'lone1' });
  t.after(() => first.close());
  const a = await RawClient.connect(first.wsUrl);
  t.after(() => a.close());
  assert.ok((await a.login(first.sdkAppId, 'alice', first.sig('alice'))).ok);
  await assert.rejects(
    startTestServer({}, { ...FAST_LIVENESS, store: `sqlite:${join(dir, 'b.db')}`, redis: svc.redis.url, redisPrefix: prefix, node: 'lone2' }),
    /node\(s\) lone1 are live on the same Redis: give every node the same postgres:\/\/ store/,
  );
});
