/**
 * Issue 17, item 4: Redis restarts empty and the nodes reconnect at different times. The
 * receiving node is back first (it re-registers its instances and lets them catch up); the
 * sending node's link is still down, so the messages it acknowledges meanwhile are stored
 * but cannot be routed. When the sending node's link is back, every one of them must reach
 * the recipient, without any further message to reveal the gap.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatOn, sample, startFaultCluster, until } from './util.js';

/** Bound for the recovery after the sending node's link is back (docs/scaling.md "Failure modes"). */
const RECOVERY_MS = 15_000;

test('Redis restarted empty, the sending node reconnects last: messages it acknowledged while its link was down reach the recipient on the other node', async (t) => {
  const c = await startFaultCluster(t, { maxInstancesPerPlatform: 1 });
  const [n1, n2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
  const alice = await chatOn(t, c, n1, 'alice');
  const bob = await chatOn(t, c, n2, 'bob');
  const texts = () => bob.inbox.map((m) => m.payload.text as string);
  await alice.send('bob', 'before');
  await until(() => texts().includes('before'), 5_000, 'pushes flow before the fault');

  // Node 1 (the sender's) loses Redis and cannot reconnect; Redis restarts empty.
  n1.redisLink.refuse(true);
  n1.redisLink.cut();
  const { redis } = c.services;
  await redis.kill();
  t.after(async () => {
    if (!redis.running) await redis.start();
  });
  await until(async () => sample(await c.metrics(n1), 'tabchat_engine_available') === 0, 5_000, 'node 1 notices');
  await redis.start();
  // Node 2 is back first: it re-registers bob (and has let him catch up).
  await until(async () => (await c.onlineIds(n2, 'bob').catch(() => [])).length === 1, 10_000, 'node 2 re-registered bob');

  // Sent through node 1 while its link is down: stored (Postgres) and acknowledged.
  const gap: string[] = [];
  for (let i = 0; i < 10; i++) {
    await alice.send('bob', `gap${i}`);
    gap.push(`gap${i}`);
  }
  assert.equal(sample(await c.metrics(n1), 'tabchat_engine_available'), 0, 'node 1 still cut off while alice sends');

  // Node 1's link is back; nothing else is sent, so no later push can reveal the gap.
  n1.redisLink.refuse(false);
  await until(() => gap.every((x) => texts().includes(x)), RECOVERY_MS, 'every message of the gap delivered').catch(() => undefined);
  const missing = gap.filter((x) => !texts().includes(x));
  assert.deepEqual(missing, [], `${missing.length} of ${gap.length} acknowledged messages never delivered`);
  assert.deepEqual(texts(), ['before', ...gap], 'each once, in order');
  // Node 1 re-registered alice too: the cluster knows both again.
  await until(async () => (await c.onlineIds(n2, 'alice').catch(() => [])).length === 1, RECOVERY_MS, 'node 1 re-registered alice');
});
