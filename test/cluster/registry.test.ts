/**
 * The cluster-wide instance registry: three in-process server nodes on one private Redis
 * (and a private Postgres), real sockets. Limits and policy kick across nodes, REST kicks
 * and revocation reach every node, resume works on another node, settings and stats are
 * cluster-wide, logins racing on several nodes stay within the limit.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient, onlineIds, rest, startCluster, until } from './util.js';

const nowSec = () => Math.floor(Date.now() / 1000);

test('limit 2: a1 on node 1, a2 on node 2, a3 on node 3 kicks a1 with multipleAccount; a2 untouched', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 });
  const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
  const clients = await Promise.all([RawClient.connect(n1.wsUrl), RawClient.connect(n2.wsUrl), RawClient.connect(n3.wsUrl)]);
  t.after(() => clients.forEach((x) => x.close()));
  const [c1, c2, c3] = clients as [RawClient, RawClient, RawClient];
  const a1 = await c1.login(c.sdkAppId, 'alice', c.sig('alice'));
  const a2 = await c2.login(c.sdkAppId, 'alice', c.sig('alice'));
  assert.ok(a1.ok && a2.ok);
  assert.notEqual(a1.data.instId, a2.data.instId);
  const a3 = await c3.login(c.sdkAppId, 'alice', c.sig('alice'));
  assert.ok(a3.ok);
  const kick = await c1.waitFor((f) => f.type === 'kick', 3000, 'kick of a1 on node 1');
  assert.deepEqual(kick, { type: 'kick', instId: a1.data.instId, reason: 'multipleAccount' });
  // Settle node 2 (its connection saw everything node 2 did) and check it was left alone.
  assert.ok((await c2.request({ type: 'time' })).ok);
  assert.deepEqual([c2.kicks(), c3.kicks()], [[], []]);
  for (const node of c.nodes) {
    assert.deepEqual(await onlineIds(c, node.httpUrl, 'alice'), [a2.data.instId, a3.data.instId].sort((x, y) => x - y), `as seen from ${node.httpUrl}`);
  }
  // LoginOrder numbers the user's logins across the cluster: a2 and a3 are logins 2 and 3.
  const detail = (await rest(c, n1.httpUrl, 'openim/query_online_status', { To_Account: ['alice'], IsNeedDetail: 1 })).QueryResult[0].Detail;
  assert.deepEqual(
    detail.map((d: { InstId: number; LoginOrder: number }) => [d.InstId, d.LoginOrder]).sort((x: number[], y: number[]) => x[1]! - y[1]!),
    [[a2.data.instId, 2], [a3.data.instId, 3]],
  );
  // a1 is gone everywhere: its resume, on any node, reports the kick.
  const r = await RawClient.connect(n2.wsUrl);
  t.after(() => r.close());
  const resumed = await r.request({ type: 'resume', instId: a1.data.instId, token: a1.data.token });
  assert.deepEqual([resumed.ok, resumed.code, resumed.data], [false, CODE.KICKED_OUT_MULT_ACCOUNT, { kickType: 'multipleAccount' }]);
  // The kicked connection's node counts the instance gone; metrics carry the node label.
  const metrics = await (await fetch(`${n3.httpUrl}/metrics`)).text();
  assert.match(metrics, /tabchat_kicks_total\{type="multipleAccount",node="node3"\} 1/);
  assert.match(metrics, /tabchat_engine_available\{node="node3"\} 1/);
});

test('login policy across nodes: single → a Mac login on node 2 kicks Web on node 1 (multipleDevice); triple keeps Web', async (t) => {
  const c = await startCluster(t, { loginPolicy: 'single' }, { nodes: 2 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const c1 = await RawClient.connect(n1.wsUrl);
  const c2 = await RawClient.connect(n2.wsUrl);
  t.after(() => [c1, c2].forEach((x) => x.close()));
  const web = await c1.login(c.sdkAppId, 'u', c.sig('u'), 'Web');
  const mac = await c2.login(c.sdkAppId, 'u', c.sig('u'), 'Mac');
  assert.ok(web.ok && mac.ok);
  assert.deepEqual(await c1.waitFor((f) => f.type === 'kick'), { type: 'kick', instId: web.data.instId, reason: 'multipleDevice' });
  // Settings changed through node 1 apply to the very next login on node 2.
  const set = await rest(c, n1.httpUrl, 'tabchat_admin/set_login_settings', { LoginPolicy: 'triple' });
  assert.equal(set.LoginPolicy, 'triple');
  const web2 = await c1.login(c.sdkAppId, 'u', c.sig('u'), 'Web');
  const win = await c2.login(c.sdkAppId, 'u', c.sig('u'), 'Windows');
  assert.ok(web2.ok && win.ok);
  assert.deepEqual(await c2.waitFor((f) => f.type === 'kick'), { type: 'kick', instId: mac.data.instId, reason: 'multipleDevice' }, 'desktop kicks desktop');
  assert.equal(c1.kicks().length, 1, 'Web stays under triple');
  const got = await rest(c, n2.httpUrl, 'tabchat_admin/get_login_settings', {});
  assert.deepEqual([got.MaxInstancesPerPlatform, got.LoginPolicy], [1, 'triple']);
  // The other node's copy follows the broadcast too.
  await until(() => n2.server.context.apps.get(c.sdkAppId)?.loginPolicy === 'triple', 2000, 'node 2 settings copy');
});

test('REST kick sent to node 2 reaches the instances on nodes 1 and 3; revocation holds on every node', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 5 });
  const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
  const c1 = await RawClient.connect(n1.wsUrl);
  const c3 = await RawClient.connect(n3.wsUrl);
  t.after(() => [c1, c3].forEach((x) => x.close()));
  const oldSig = c.sig('victim', { time: nowSec() - 5 });
  const v1 = await c1.login(c.sdkAppId, 'victim', oldSig, 'Web');
  const v3 = await c3.login(c.sdkAppId, 'victim', oldSig, 'Android');
  const other = await c3.login(c.sdkAppId, 'bystander', c.sig('bystander'));
  assert.ok(v1.ok && v3.ok && other.ok);
  const kicked = await rest(c, n2.httpUrl, 'im_open_login_svc/kick', { UserID: 'victim' });
  assert.equal(kicked.ErrorCode, 0);
  assert.deepEqual(await c1.waitFor((f) => f.type === 'kick'), { type: 'kick', instId: v1.data.instId, reason: 'REST_API_Kick' });
  assert.deepEqual(await c3.waitFor((f) => f.type === 'kick'), { type: 'kick', instId: v3.data.instId, reason: 'REST_API_Kick' });
  assert.equal(c3.kicks().length, 1, 'the bystander on node 3 stays');
  assert.deepEqual(await onlineIds(c, n1.httpUrl, 'bystander'), [other.data.instId]);
  // The old UserSig is refused on node 3 and node 1; a newer one works.
  for (const client of [c3, c1]) {
    const again = await client.login(c.sdkAppId, 'victim', oldSig);
    assert.deepEqual([again.ok, again.code], [false, CODE.USERSIG_REVOKED]);
  }
  const fresh = await c3.login(c.sdkAppId, 'victim', c.sig('victim', { time: nowSec() + 1 }));
  assert.equal(fresh.ok, true);
});

test('resume on another node: ownership moves silently, login order is kept, kicks and messages follow the instance', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 2 }, { resumeWindowMs: 5_000 });
  const [n1, n2, n3] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0], typeof c.nodes[0]];
  const first = await RawClient.connect(n1.wsUrl);
  const a1 = await first.login(c.sdkAppId, 'alice', c.sig('alice'));
  assert.ok(a1.ok);
  // The connection to node 1 drops (the client's network, or node 1's load balancer).
  first.terminate();
  await until(async () => {
    const r = await rest(c, n3.httpUrl, 'openim/query_online_status', { To_Account: ['alice'], IsNeedDetail: 1 });
    return r.QueryResult[0].Detail?.[0]?.Connected === false;
  }, 3000, 'alice detached');
  const moved = await RawClient.connect(n2.wsUrl);
  t.after(() => moved.close());
  const resumed = await moved.request({ type: 'resume', instId: a1.data.instId, token: a1.data.token });
  assert.equal(resumed.ok, true, JSON.stringify(resumed));
  await until(() => n1.server.context.engine.local.get(a1.data.instId) === undefined, 2000, 'node 1 forgot the instance');
  assert.ok(n2.server.context.engine.local.get(a1.data.instId), 'node 2 holds it');
  const detail = (await rest(c, n1.httpUrl, 'openim/query_online_status', { To_Account: ['alice'], IsNeedDetail: 1 })).QueryResult[0].Detail;
  assert.deepEqual(detail.map((d: { InstId: number; Connected: boolean }) => [d.InstId, d.Connected]), [[a1.data.instId, true]]);
  // A wrong token on yet another node does not steal it.
  const thief = await RawClient.connect(n3.wsUrl);
  t.after(() => thief.close());
  const stolen = await thief.request({ type: 'resume', instId: a1.data.instId, token: 'x'.repeat(24) });
  assert.deepEqual([stolen.ok, stolen.code], [false, CODE.RESUME_FAILED]);
  // A message from bob on node 3 is pushed to alice on node 2.
  const bob = await thief.login(c.sdkAppId, 'bob', c.sig('bob'));
  assert.ok(bob.ok);
  const sent = await thief.request({ type: 'send', instId: bob.data.instId, clientMsgId: 'm1', to: 'alice', text: 'hi on node 2' });
  assert.equal(sent.ok, true);
  const pushed = await moved.waitFor((f) => f.type === 'msg', 3000, 'push on node 2');
  assert.equal((pushed as { message: { text: string } }).message.text, 'hi on node 2');
  // The resumed instance is still the oldest: two more logins kick it, on node 2.
  const a2 = await thief.login(c.sdkAppId, 'alice', c.sig('alice'));
  const a3 = await thief.login(c.sdkAppId, 'alice', c.sig('alice'));
  assert.ok(a2.ok && a3.ok);
  assert.deepEqual(await moved.waitFor((f) => f.type === 'kick'), { type: 'kick', instId: a1.data.instId, reason: 'multipleAccount' });
  assert.deepEqual(thief.kicks(), []);
});

test('UserSig expiry: the owning node kicks with userSigExpired; a resume elsewhere reports it', async (t) => {
  const c = await startCluster(t, {}, { nodes: 2 });
  const [n1, n2] = c.nodes as [typeof c.nodes[0], typeof c.nodes[0]];
  const a = await RawClient.connect(n1.wsUrl);
  const b = await RawClient.connect(n1.wsUrl);
  t.after(() => [a, b].forEach((x) => x.close()));
  // Expires at the start of the second after next (about 1–2 s from now).
  const short = (user: string) => c.sig(user, { time: nowSec() - 10, expire: 11 });
  const online = await a.login(c.sdkAppId, 'exp1', short('exp1'));
  const away = await b.login(c.sdkAppId, 'exp2', short('exp2'));
  assert.ok(online.ok && away.ok);
  b.terminate();
  assert.deepEqual(await a.waitFor((f) => f.type === 'kick', 4000), { type: 'kick', instId: online.data.instId, reason: 'userSigExpired' });
  await until(async () => (await onlineIds(c, n2.httpUrl, 'exp2')).length === 0, 4000, 'exp2 expired');
  const r = await RawClient.connect(n2.wsUrl);
  t.after(() => r.close());
  const resumed = await r.request({ type: 'resume', instId: away.data.instId, token: away.data.token });
  assert.deepEqual([resumed.ok, resumed.code, resumed.data], [false, CODE.KICKED_OUT_USERSIG_EXPIRED, { kickType: 'userSigExpired' }]);
});

test('twelve logins of one user racing on three nodes with limit 1: exactly one instance survives, every other one is kicked once', async (t) => {
  const c = await startCluster(t, { maxInstancesPerPlatform: 1 });
  const clients = await Promise.all(Array.from({ length: 12 }, (_, i) => RawClient.connect(c.nodes[i % 3]!.wsUrl)));
  t.after(() => clients.forEach((x) => x.close()));
  const results = await Promise.all(clients.map((x) => x.login(c.sdkAppId, 'racer', c.sig('racer'))));
  assert.ok(results.every((r) => r.ok), JSON.stringify(results.filter((r) => !r.ok)));
  await until(() => clients.reduce((n, x) => n + x.kicks().length, 0) === 11, 5000, '11 kicks');
  const survivors = clients.filter((x) => x.kicks().length === 0);
  assert.equal(survivors.length, 1);
  const survivor = results[clients.indexOf(survivors[0]!)]!.data.instId;
  for (const node of c.nodes) assert.deepEqual(await onlineIds(c, node.httpUrl, 'racer'), [survivor]);
  assert.ok(clients.every((x) => x.kicks().length <= 1), 'nobody kicked twice');
});

test('get_stats on any node sums every node; each node lists its own; docs/scaling.md documents every cluster metric', async (t) => {
  const c = await startCluster(t, {}, { nodes: 3 });
  const clients: RawClient[] = [];
  t.after(() => clients.forEach((x) => x.close()));
  const platforms = ['Web', 'Android', 'Mac'] as const;
  for (const [i, node] of c.nodes.entries()) {
    const client = await RawClient.connect(node.wsUrl);
    clients.push(client);
    assert.ok((await client.login(c.sdkAppId, `s${i}`, c.sig(`s${i}`), platforms[i])).ok);
  }
  const stats = await until(async () => {
    const s = await rest(c, c.nodes[2]!.httpUrl, 'tabchat_admin/get_stats', {});
    return s.InstancesTotal === 3 && s.Connections === 3 && s.Nodes?.length === 3 ? s : null;
  }, 3000, 'stats from all nodes');
  assert.deepEqual(stats.Instances, { Web: 1, Android: 1, Mac: 1 });
  assert.equal(stats.Node, 'node3');
  assert.deepEqual(
    stats.Nodes.map((n: { Node: string; InstancesTotal: number; Connections: number }) => [n.Node, n.InstancesTotal, n.Connections]).sort(),
    [['node1', 1, 1], ['node2', 1, 1], ['node3', 1, 1]],
  );
  const doc = readFileSync(new URL('../../docs/scaling.md', import.meta.url), 'utf8');
  const metrics = await c.nodes[0]!.server.context.metrics.registry.getMetricsAsJSON();
  const cluster = metrics.map((m) => m.name).filter((n) => /^tabchat_(engine|cluster)_/.test(n));
  assert.ok(cluster.length >= 4);
  assert.deepEqual(cluster.filter((n) => !doc.includes(`\`${n}\``)), []);
});
