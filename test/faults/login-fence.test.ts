/**
 * Issue 17, item 3: logins answered 9030 because the node's Redis link stalled must have no
 * effect when the link resumes and their scripts finally reach Redis: no kick of the user's
 * real session elsewhere, no instance left behind. Also item 6: while the link is stalled
 * the node reports it (readiness 503, `tabchat_engine_available` 0, refusals by code).
 */
import { test } from 'node:test';
import { createHash } from 'node:crypto';
import { LOGIN } from '../../server/redis-scripts.js';
import assert from 'node:assert/strict';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient, chatOn, sample, startFaultCluster, until } from './util.js';

test('logins answered 9030 during a Redis stall never run later: no kick, no ghost instance; the node reports the stall', async (t) => {
  // A node timeout far above the stall: this is about the logins, not about reaping.
  const c = await startFaultCluster(t, { maxInstancesPerPlatform: 1 }, { nodeHeartbeatMs: 300, nodeTimeoutMs: 20_000 });
  const [n1, n2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
  const bob = await chatOn(t, c, n2, 'bob');
  const [real] = await c.onlineIds(n1, 'bob');
  assert.ok(real);

  // The link stalls the moment node 1 sends a login script: the logins are in flight.
  const loginSha = createHash('sha1').update(LOGIN).digest('hex');
  n1.redisLink.stallOn((chunk) => chunk.includes(loginSha) || chunk.includes('multipleAccount'));
  const clients = await Promise.all([1, 2, 3, 4].map(() => RawClient.connect(n1.wsUrl)));
  t.after(() => clients.forEach((x) => x.close()));
  const answers = await Promise.all(clients.map((x) => x.login(c.sdkAppId, 'bob', c.sig('bob'))));
  assert.deepEqual(answers.map((a) => a.code), answers.map(() => CODE.ENGINE_UNAVAILABLE), 'every login answered 9030');
  assert.equal(n1.redisLink.state, 'stall', 'a login script was in flight when the link stalled');
  // The node says so while the link is stalled.
  await until(async () => (await fetch(`${n1.httpUrl}/readyz`)).status === 503, 10_000, 'node 1 not ready');
  const metrics = await c.metrics(n1);
  assert.equal(sample(metrics, 'tabchat_engine_available'), 0);
  assert.ok(sample(metrics, 'tabchat_logins_total', `result="${CODE.ENGINE_UNAVAILABLE}"`) >= 4);
  assert.equal((await fetch(`${n1.httpUrl}/healthz`)).status, 200, 'alive all the same');

  n1.redisLink.resume();
  await until(async () => (await fetch(`${n1.httpUrl}/readyz`)).status === 200, 10_000, 'node 1 ready again');
  // A marker behind every late script: a login of another user, sent after the resume on
  // the same connection to Redis, has run once it is answered.
  const marker = await RawClient.connect(n1.wsUrl);
  t.after(() => marker.close());
  assert.equal((await marker.login(c.sdkAppId, 'zed', c.sig('zed'))).ok, true);
  assert.deepEqual(await c.onlineIds(n2, 'bob'), [real], 'no instance of a refused login exists');
  assert.deepEqual(bob.kicks, [], 'the real session was not kicked');
  assert.ok(bob.chat.isReady());
});
