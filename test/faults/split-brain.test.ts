/**
 * Issue 17, item 1: a node loses Redis for longer than `nodeTimeoutMs` while its TCP
 * connection survives (its link is STALLED, not cut: no reconnect ever happens). The other
 * node reaps its instances; when the link resumes, the node must notice on its own
 * heartbeat that it was reaped and reconcile: every acknowledged message reaches the
 * recipient exactly once, the registry shows the user online again, and limit 1 holds
 * across the nodes.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chatOn, sample, startFaultCluster, until, type TestChat } from './util.js';

/** Bound for the recovery after the link resumes (docs/scaling.md "Failure modes"). */
const RECOVERY_MS = 15_000;

/** Sends from `from` to `to` one after the other until stopped; records what was acknowledged. */
function stream(from: TestChat, to: string, tag: string) {
  const acked: string[] = [];
  let stop = false;
  let i = 0;
  const done = (async () => {
    while (!stop) {
      const text = `${tag}${i++}`;
      try {
        await from.send(to, text);
        acked.push(text);
      } catch {
        // not acknowledged: nothing is promised
      }
    }
  })();
  return {
    acked,
    async until(n: number) {
      await until(() => acked.length >= n, 20_000, `${n} acknowledged (${acked.length})`);
    },
    async stop() {
      stop = true;
      await done;
    },
  };
}

test('split brain: a node whose Redis link stalls past the node timeout notices it was reaped and reconciles (nothing acknowledged is stranded, limit 1 holds)', async (t) => {
  const c = await startFaultCluster(t, { maxInstancesPerPlatform: 1 });
  const [n1, n2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
  const alice = await chatOn(t, c, n1, 'alice');
  const bob = await chatOn(t, c, n2, 'bob');
  const s = stream(alice, 'bob', 'm');
  await s.until(10);
  await until(() => bob.inbox.length >= 10, 5_000, 'pushes flow before the fault');

  // Node 2's link to Redis stalls: its socket stays up, nothing moves.
  n2.redisLink.stall();
  await until(async () => sample(await c.metrics(n1), 'tabchat_cluster_reaped_instances_total') >= 1, 15_000, 'node 1 reaps node 2');
  assert.deepEqual(await c.onlineIds(n1, 'bob'), [], 'bob looks offline while node 2 is taken for dead');
  // Node 2 shows it is degraded (readiness, gauge) while staying alive.
  await until(async () => (await fetch(`${n2.httpUrl}/readyz`)).status === 503, 10_000, 'node 2 not ready');
  assert.equal(sample(await c.metrics(n2), 'tabchat_engine_available'), 0);
  assert.equal((await fetch(`${n2.httpUrl}/healthz`)).status, 200);
  const beforeResume = s.acked.length;
  await s.until(beforeResume + 20); // acknowledged while node 2 is reaped
  n2.redisLink.resume();

  await s.until(s.acked.length + 20); // and after the link is back
  await s.stop();
  const acked = s.acked;
  const texts = () => bob.inbox.map((m) => m.payload.text as string);
  await until(() => acked.every((x) => texts().includes(x)), RECOVERY_MS, 'every acknowledged message delivered').catch(() => undefined);
  const missing = acked.filter((x) => !texts().includes(x));
  assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged messages never delivered`);
  assert.equal(new Set(texts()).size, texts().length, 'each message delivered once');
  assert.deepEqual(texts(), acked, 'in order');

  // The registry knows bob again (on node 2), and limit 1 holds across nodes.
  await until(async () => (await c.onlineIds(n1, 'bob')).length === 1, RECOVERY_MS, 'bob online in the registry');
  const bob2 = await chatOn(t, c, n1, 'bob');
  await until(() => bob.kicks.length === 1, 5_000, 'the login on node 1 kicks bob on node 2');
  assert.deepEqual(bob.kicks, ['multipleAccount']);
  assert.deepEqual(bob2.kicks, []);
  assert.equal((await c.onlineIds(n2, 'bob')).length, 1);
  // Operators saw it: node 2 logged it and counts it.
  assert.ok(sample(await c.metrics(n2), 'tabchat_cluster_reaped_self_total') >= 1, 'node 2 counts that it was reaped');
});
