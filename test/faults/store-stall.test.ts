/**
 * Issue 17, item 2: a send whose store call timed out (Postgres stalled past the 5 s query
 * timeout: the client got 9031) still commits when Postgres resumes; the client's retry
 * with the same clientMsgId is answered with the stored message as a duplicate. The
 * recipient, online on the other node, must still get it pushed: a duplicate send ensures
 * delivery.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { CODE } from '../../src/protocol/codes.js';
import { RawClient, chatOn, sample, startFaultCluster, until } from './util.js';

test('a send answered 9031 that committed later: the retry (a duplicate) is pushed to the online recipient', async (t) => {
  const c = await startFaultCluster(t, { maxInstancesPerPlatform: 1 });
  const [n1, n2] = c.nodes as [(typeof c.nodes)[0], (typeof c.nodes)[0]];
  const bob = await chatOn(t, c, n2, 'bob');
  // Three senders on node 1, each on its own connection (a connection's sends are handled
  // in order; three connections send at once).
  const senders = await Promise.all(
    ['s1', 's2', 's3'].map(async (userID) => {
      const client = await RawClient.connect(n1.wsUrl);
      t.after(() => client.close());
      const login = await client.login(c.sdkAppId, userID, c.sig(userID));
      assert.ok(login.ok);
      const instId = login.data.instId;
      return (clientMsgId: string) => client.request({ type: 'send', instId, clientMsgId, to: 'bob', text: `${userID}:${clientMsgId}` }, 20_000);
    }),
  );
  const everyone = (clientMsgId: string) => Promise.all(senders.map((send) => send(clientMsgId)));
  // Sent at once, they leave three open connections in node 1's store pool.
  assert.deepEqual((await everyone('warm')).map((r) => r.ok), [true, true, true]);
  await until(() => bob.inbox.length === 3, 5_000, 'pushes before the fault');

  // Node 1's link to Postgres stalls with three sends on their way: each times out (9031).
  n1.pgLink.stall();
  const refused = await everyone('late');
  assert.deepEqual(refused.map((r) => r.code), [CODE.STORE_UNAVAILABLE, CODE.STORE_UNAVAILABLE, CODE.STORE_UNAVAILABLE]);
  // The stalled transactions reach Postgres when the link resumes, and commit.
  n1.pgLink.resume();
  const db = new pg.Client({ connectionString: c.store });
  await db.connect();
  t.after(() => db.end());
  const committed = async () => (await db.query("SELECT count(*)::int AS n FROM tabchat_messages WHERE client_msg_id = 'late'")).rows[0].n as number;
  await until(async () => (await committed()) === 3, 15_000, 'the timed-out sends committed').catch(() => undefined);
  assert.equal(await committed(), 3, 'the timed-out sends committed');
  assert.equal(bob.inbox.length, 3, 'nothing pushed for a send its sender was told failed');

  // The clients retry with the same clientMsgIds: duplicates, which must be delivered.
  const retried = await everyone('late');
  assert.deepEqual(retried.map((r) => r.ok), [true, true, true]);
  await until(() => bob.inbox.length === 6, 5_000, 'the duplicates reached bob').catch(() => undefined);
  assert.deepEqual(bob.inbox.map((m) => m.payload.text).sort(), ['s1:warm', 's2:warm', 's3:warm', 's1:late', 's2:late', 's3:late'].sort());
  const metrics = await c.metrics(n1);
  assert.equal(sample(metrics, 'tabchat_messages_duplicate_total'), 3);
  // Operators see the store outage: refused sends counted by code.
  assert.equal(sample(metrics, 'tabchat_messages_rejected_total', `code="${CODE.STORE_UNAVAILABLE}"`), 3);
});
