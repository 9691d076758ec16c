/**
 * Failures of a cluster: a node killed for real (a separate `tabchat-server` process,
 * SIGKILL), and Redis killed and restarted empty while the nodes keep running.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import TabChat, { type Chat, type Message } from '../../src/node/index.js';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import { RawClient, onlineIds, rest, startCluster, startProcessNode, until, type TestCluster } from './util.js';
import type { TestContext } from 'node:test';

test('a node killed mid-run: its instances are released within the node timeout, its moved instance survives, live ones are untouched', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 3 }, { nodes: 2 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const doomed = await startProcessNode(t, c, 'node3');
  const live1 = await RawClient.connect(n1.wsUrl);
  const live2 = await RawClient.connect(n2.wsUrl);
  const onDoomed = await RawClient.connect(doomed.wsUrl);
  const mover = await RawClient.connect(doomed.wsUrl);
  t.after(() => [live1, live2, onDoomed, mover].forEach((x) => x.close()));
  const l1 = await live1.login(c.sdkAppId, 'alice', c.sig('alice'));
  const l2 = await live2.login(c.sdkAppId, 'alice', c.sig('alice'), 'Android');
  const d1 = await onDoomed.login(c.sdkAppId, 'alice', c.sig('alice'));
  const d2 = await onDoomed.login(c.sdkAppId, 'dora', c.sig('dora'));
  const m1 = await mover.login(c.sdkAppId, 'mo', c.sig('mo'));
  assert.ok([l1, l2, d1, d2, m1].every((r) => r.ok));
  assert.deepEqual((await onlineIds(c, n1.httpUrl, 'alice')).length, 3);

  await doomed.kill();
  const killedAt = Date.now();
  // The client of "mo" reconnects at once (through the load balancer) to node 2 and resumes:
  // Redis still has the instance, so it moves instead of being lost.
  const moved = await RawClient.connect(n2.wsUrl);
  t.after(() => moved.close());
  const resumed = await moved.request({ type: 'resume', instId: m1.data.instId, token: m1.data.token });
  assert.equal(resumed.ok, true, JSON.stringify(resumed));

  await until(async () => (await onlineIds(c, n2.httpUrl, 'dora')).length === 0, 6_000, 'dead node released');
  const releasedAfter = Date.now() - killedAt;
  const { nodeTimeoutMs = 0, nodeHeartbeatMs = 0 } = c.serverOptions;
  assert.ok(releasedAfter < nodeTimeoutMs + 3 * nodeHeartbeatMs + 1_000, `released after ${releasedAfter} ms`);
  assert.deepEqual(await onlineIds(c, n1.httpUrl, 'alice'), [l1.data.instId, l2.data.instId].sort((a, b) => a - b), 'only the dead node’s alice is gone');
  assert.deepEqual(await onlineIds(c, n1.httpUrl, 'mo'), [m1.data.instId], 'the moved instance stays');
  // Nobody alive was kicked, and the live sessions still work.
  for (const client of [live1, live2, moved]) {
    assert.equal((await client.request({ type: 'time' })).ok, true);
    assert.deepEqual(client.kicks(), []);
  }
  const stats = await rest(c, n1.httpUrl, 'tabchat_admin/get_stats', {});
  assert.deepEqual(stats.Nodes.map((n: { Node: string }) => n.Node).sort(), ['node1', 'node2']);
  const metrics = await (await fetch(`${n1.httpUrl}/metrics`)).text() + (await (await fetch(`${n2.httpUrl}/metrics`)).text());
  assert.match(metrics, /tabchat_cluster_reaped_instances_total\{node="node[12]"\} 2/);
});

/** A Node SDK chat on `wsUrl` (destroyed after the test) that records what it receives. */
async function chatOn(t: TestContext, c: TestCluster, wsUrl: string, userID: string) {
  const chat: Chat = TabChat.create({ SDKAppID: c.sdkAppId, server: wsUrl })!;
  chat.setLogLevel(3);
  t.after(() => chat.destroy().catch(() => undefined));
  const inbox: Message[] = [];
  const kicks: string[] = [];
  chat.on(TabChat.EVENT.MESSAGE_RECEIVED, (e) => inbox.push(...(e.data as Message[])));
  chat.on(TabChat.EVENT.KICKED_OUT, (e) => kicks.push((e.data as { type: string }).type));
  const ready = new Promise((r) => chat.on(TabChat.EVENT.SDK_READY, r));
  await chat.login({ userID, userSig: c.sig(userID) });
  await ready;
  return { chat, inbox, kicks };
}

test('Redis restarted mid-run: logins fail fast with 9030 while it is down, sessions keep messaging, and after it is back the registry is rebuilt and missed pushes arrive', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 1 }, { nodes: 2 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const alice = await chatOn(t, c, n1.wsUrl, 'alice');
  const bob = await chatOn(t, c, n2.wsUrl, 'bob');
  const send = (text: string) => alice.chat.sendMessage(alice.chat.createTextMessage({ to: 'bob', conversationType: 'C2C', payload: { text } }));
  await send('before');
  await until(() => bob.inbox.length === 1, 3000, 'push before the outage');

  const { redis } = c.services;
  await redis.kill();
  t.after(async () => {
    if (!redis.running) await redis.start();
  });
  await until(() => !n1.server.context.engine.available && !n2.server.context.engine.available, 3000, 'nodes notice');
  // New logins fail fast with the code.
  const newcomer = await RawClient.connect(n1.wsUrl);
  t.after(() => newcomer.close());
  const started = Date.now();
  const refused = await newcomer.login(c.sdkAppId, 'carol', c.sig('carol'));
  assert.deepEqual([refused.ok, refused.code], [false, CODE.ENGINE_UNAVAILABLE]);
  assert.ok(Date.now() - started < 1_000, `refused in ${Date.now() - started} ms`);
  const restDown = await rest(c, n2.httpUrl, 'openim/query_online_status', { To_Account: ['bob'] });
  assert.equal(restDown.ErrorCode, CODE.ENGINE_UNAVAILABLE);
  // Existing sessions stay up: alice's message is stored (Postgres) and acknowledged; the
  // push to bob's node cannot cross while Redis is away.
  await send('during');
  assert.ok(alice.chat.isReady() && bob.chat.isReady());

  await redis.start(); // empty: no persistence
  // Back: the nodes re-register what they hold, and bob catches up on the missed push.
  await until(() => bob.inbox.length === 2, 8_000, `missed push caught up (bob has ${bob.inbox.map((m) => m.payload.text)})`);
  assert.deepEqual(bob.inbox.map((m) => m.payload.text), ['before', 'during']);
  assert.equal((await onlineIds(c, n2.httpUrl, 'alice')).length, 1, 'node 1 re-registered alice');
  assert.equal((await onlineIds(c, n1.httpUrl, 'bob')).length, 1, 'node 2 re-registered bob');
  // Limits hold across nodes again: alice logging in on node 2 (limit 1) kicks alice on node 1.
  const alice2 = await chatOn(t, c, n2.wsUrl, 'alice');
  await until(() => alice.kicks.length === 1, 3000, 'alice on node 1 kicked');
  assert.deepEqual(alice.kicks, ['multipleAccount']);
  assert.deepEqual(alice2.kicks, []);
  await alice2.chat.sendMessage(alice2.chat.createTextMessage({ to: 'bob', conversationType: 'C2C', payload: { text: 'after' } }));
  await until(() => bob.inbox.length === 3, 3000, 'push after recovery');
  assert.deepEqual(bob.kicks, []);
});

test('a resume that needs Redis while it is down closes with 4005; once Redis is back the same resume succeeds', async (t) => {
  const c = await startCluster(t, {}, { nodes: 2, resumeWindowMs: 15_000 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const first = await RawClient.connect(n1.wsUrl);
  const a = await first.login(c.sdkAppId, 'alice', c.sig('alice'));
  assert.ok(a.ok);
  first.terminate();
  await until(() => n1.server.context.engine.local.get(a.data.instId)?.owner === null, 3000, 'detached on node 1');
  const { redis } = c.services;
  await redis.kill();
  t.after(async () => {
    if (!redis.running) await redis.start();
  });
  await until(() => !n2.server.context.engine.available, 3000, 'node 2 notices');
  const early = await RawClient.connect(n2.wsUrl);
  early.sendJson({ type: 'resume', id: 1, instId: a.data.instId, token: a.data.token });
  assert.equal((await early.waitClosed()).code, CLOSE.ENGINE_UNAVAILABLE);
  // Node 1 still holds it: a resume there works without Redis.
  const local = await RawClient.connect(n1.wsUrl);
  t.after(() => local.close());
  const here = await local.request({ type: 'resume', instId: a.data.instId, token: a.data.token });
  assert.equal(here.ok, true);
  local.terminate();
  await until(() => n1.server.context.engine.local.get(a.data.instId)?.owner === null, 3000, 'detached again');

  await redis.start();
  await until(() => n1.server.context.engine.available && n2.server.context.engine.available, 5000, 'nodes reconnected');
  const later = await RawClient.connect(n2.wsUrl);
  t.after(() => later.close());
  const resumed = await until(async () => {
    const r = await later.request({ type: 'resume', instId: a.data.instId, token: a.data.token });
    return r.ok ? r : null;
  }, 5000, 'resume on node 2 after recovery');
  assert.equal(resumed.data.instId, a.data.instId);
  await until(() => n1.server.context.engine.local.get(a.data.instId) === undefined, 3000, 'node 1 forgot it');
});

test('rolling restart: a node stopped gracefully (close 4000) leaves its instances resumable on another node; nothing resumed there is released later', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 }, { nodes: 2, resumeWindowMs: 1_500 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const a = await RawClient.connect(n1.wsUrl);
  const b = await RawClient.connect(n1.wsUrl);
  const keep = await a.login(c.sdkAppId, 'alice', c.sig('alice'));
  const drop = await b.login(c.sdkAppId, 'bob', c.sig('bob'));
  assert.ok(keep.ok && drop.ok);
  await n1.close();
  assert.equal((await a.waitClosed()).code, CLOSE.SHUTDOWN);
  // alice's client reconnects through the load balancer to node 2 and resumes; bob's never comes back.
  const moved = await RawClient.connect(n2.wsUrl);
  t.after(() => moved.close());
  const resumed = await moved.request({ type: 'resume', instId: keep.data.instId, token: keep.data.token });
  assert.equal(resumed.ok, true, JSON.stringify(resumed));
  await until(async () => (await onlineIds(c, n2.httpUrl, 'bob')).length === 0, 6_000, 'bob released after the window');
  assert.deepEqual(await onlineIds(c, n2.httpUrl, 'alice'), [keep.data.instId]);
  assert.deepEqual(moved.kicks(), []);
});
