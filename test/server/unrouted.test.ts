/**
 * The bounded list of recipients whose pushes a cluster node could not route (server/redis-unrouted.ts):
 * notices in chunks, one notice for everyone past the bound, and nothing forgotten when a
 * publish fails. The cluster path itself is replayed by test/faults/reconnect-order.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Gauge, Registry } from 'prom-client';
import { createLogger } from '../../server/log.js';
import type { RedisLink } from '../../server/redis-health.js';
import { SYNC_CHUNK_USERS, UnroutedUsers } from '../../server/redis-unrouted.js';

function setup(maxUsers: number) {
  const link = { usable: true };
  const published: Array<Array<[number, string]> | 'all'> = [];
  let failing = false;
  const gauge = new Gauge({ name: 'unrouted', help: 'test', registers: [new Registry()] });
  const unrouted = new UnroutedUsers(
    link as unknown as RedisLink,
    async (users) => {
      if (failing) throw new Error('link down');
      published.push(users);
    },
    gauge,
    createLogger('silent', 'test'),
    maxUsers,
  );
  const gaugeValue = async () => (await gauge.get()).values[0]?.value;
  return { link, published, unrouted, gaugeValue, fail: (on: boolean) => (failing = on) };
}

test('each recipient is named once, in chunks, and only once the link answers', async () => {
  const s = setup(10_000);
  s.link.usable = false;
  for (let i = 0; i < SYNC_CHUNK_USERS + 10; i++) s.unrouted.note(1400000001, `u${i}`);
  s.unrouted.note(1400000001, 'u0'); // already listed
  assert.equal(await s.gaugeValue(), SYNC_CHUNK_USERS + 10);
  await s.unrouted.flush();
  assert.equal(s.published.length, 0, 'nothing published while the link does not answer');
  s.link.usable = true;
  await s.unrouted.flush();
  assert.deepEqual(
    s.published.map((p) => (p === 'all' ? p : p.length)),
    [SYNC_CHUNK_USERS, 10],
  );
  const named = s.published.flatMap((p) => (p === 'all' ? [] : p.map(([, u]) => u)));
  assert.equal(new Set(named).size, SYNC_CHUNK_USERS + 10);
  assert.equal(await s.gaugeValue(), 0);
  assert.equal(s.unrouted.pending, false);
  await s.unrouted.flush();
  assert.equal(s.published.length, 2, 'a flush with nothing pending publishes nothing');
});

test('past the bound the list is dropped for one notice to every node (memory stays bounded under a flood of recipients)', async () => {
  const s = setup(100);
  s.link.usable = false;
  for (let i = 0; i < 50_000; i++) s.unrouted.note(1400000001, `flood${i}`);
  assert.equal(await s.gaugeValue(), 100);
  s.link.usable = true;
  await s.unrouted.flush();
  assert.deepEqual(s.published, ['all']);
  assert.equal(s.unrouted.pending, false);
});

test('a notice that fails to publish stays pending for the next flush', async () => {
  const s = setup(10_000);
  s.unrouted.note(1400000001, 'bob');
  s.unrouted.note(1400000002, 'bob');
  s.fail(true);
  await s.unrouted.flush();
  assert.equal(s.unrouted.pending, true);
  assert.equal(await s.gaugeValue(), 2);
  s.fail(false);
  await s.unrouted.flush();
  assert.deepEqual(s.published, [
    [
      [1400000001, 'bob'],
      [1400000002, 'bob'],
    ],
  ]);
});
