/**
 * Issue 17, item 5: the store is down for a few seconds while clients have messages queued.
 * Each client must back off (with jitter) and probe with ONE message per round instead of
 * re-sending its whole outbox every second, so the refused sends (each a store attempt and
 * a metric sample on the server) stay near one per client per round; once the store is back,
 * every queued message is stored and delivered exactly once, in order.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as outageLasts } from 'node:timers/promises';
import { CODE } from '../../src/protocol/codes.js';
import { chatOn, sample, startFaultCluster, until } from './util.js';

const CLIENTS = 20;
const QUEUED = 10;
/** How long the store refuses: the fault's length (part of the schedule, not a wait for a state). */
const OUTAGE_MS = 5_000;
/** Recovery bound: the longest backoff step after a 5 s outage is 8 s (docs/scaling.md "Failure modes"). */
const RECOVERY_MS = 20_000;

test('store refused for 5 s with 20 clients holding 10 queued messages each: refused sends stay near one per client per backoff round, and everything is delivered once', async (t) => {
  const c = await startFaultCluster(t, {}, { nodes: 1 });
  const node = c.nodes[0]!;
  const sink = await chatOn(t, c, node, 'sink');
  const clients = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => chatOn(t, c, node, `s${i}`)));
  await clients[0]!.send('sink', 'warm');
  await until(() => sink.inbox.length === 1, 5_000, 'a message before the fault');

  // The node's link to Postgres refuses every connection.
  node.pgLink.refuse(true);
  node.pgLink.cut();
  const refusedBefore = sample(await c.metrics(node), 'tabchat_messages_rejected_total', `code="${CODE.STORE_UNAVAILABLE}"`);
  const sent = clients.flatMap((client) => Array.from({ length: QUEUED }, (_, k) => client.send('sink', `${client.userID}:${k}`)));
  await until(async () => sample(await c.metrics(node), 'tabchat_messages_rejected_total', `code="${CODE.STORE_UNAVAILABLE}"`) > refusedBefore, 5_000, 'sends refused');
  await outageLasts(OUTAGE_MS);
  const refused = sample(await c.metrics(node), 'tabchat_messages_rejected_total', `code="${CODE.STORE_UNAVAILABLE}"`) - refusedBefore;
  node.pgLink.refuse(false);

  // The first round refuses what each client had on its way (at most its queue); then one
  // probe per round: 0.5–1 s, 1–2 s, 2–4 s, 4–8 s after the first refusal, so at most 4 in 5 s.
  // Re-sending the whole queue every second would refuse about QUEUED × 5 per client.
  const bound = CLIENTS * (QUEUED + 4);
  t.diagnostic(`refused during the outage: ${refused} (bound ${bound})`);
  assert.ok(refused <= bound, `${refused} sends refused during the ${OUTAGE_MS} ms outage (bound ${bound}: ${CLIENTS} clients × (${QUEUED} + 4 probes))`);

  const backAt = Date.now();
  const results = await Promise.allSettled(sent);
  t.diagnostic(`every send acknowledged ${Date.now() - backAt} ms after the store came back`);
  assert.deepEqual(results.filter((r) => r.status === 'rejected'), [], 'every queued send is acknowledged after the outage');
  const expected = CLIENTS * QUEUED + 1;
  await until(() => sink.inbox.length >= expected, RECOVERY_MS, `delivered (${sink.inbox.length} of ${expected})`).catch(() => undefined);
  const texts = sink.inbox.map((m) => m.payload.text as string);
  assert.equal(texts.length, expected, 'each message delivered once');
  assert.equal(new Set(texts).size, expected);
  for (const client of clients) {
    const own = texts.filter((x) => x.startsWith(`${client.userID}:`));
    assert.deepEqual(own, Array.from({ length: QUEUED }, (_, k) => `${client.userID}:${k}`), `${client.userID}'s messages in order`);
  }
});
