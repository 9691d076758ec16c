/**
 * Memory and fairness attacks on the WebSocket (issue items 2 and 4): a client that stops
 * reading and asks for `sync` pages of 12 KB messages in a loop. The server's buffered bytes
 * for it stay under the cap (it stops reading the client), its syncs queue up to a bound and
 * then get 9041, and another client's requests are served meanwhile. Pushes to a client
 * that does not read close it with 4006 past the cap. Read from the server's own figures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import { MAX_QUEUED_SYNCS } from '../../server/connection.js';
import { SYNC_PAGE_BYTES } from '../../server/messages.js';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { getMetrics, metricValue } from './util.js';

const TEXT_12K = 'x'.repeat(12 * 1024);
const PAUSE = 256 * 1024;
const CAP = 1024 * 1024;

/** Fill `userID`'s mailbox with `count` 12 KB messages (from a sender that reads). */
async function fill(ts: TestServer, userID: string, count: number): Promise<void> {
  const sender = await RawClient.connect(ts.wsUrl, { record: false });
  const login = await sender.login(ts.sdkAppId, `${userID}-friend`, ts.sig(`${userID}-friend`));
  for (let i = 0; i < count; i += 50) {
    await Promise.all(
      Array.from({ length: Math.min(50, count - i) }, (_, j) =>
        sender.request({ type: 'send', instId: login.data.instId, clientMsgId: `m${i + j}`, to: userID, text: TEXT_12K }),
      ),
    );
  }
  sender.close();
}

/** The server's connection of `client` (matched by the client's local port). */
function serverConn(ts: TestServer, client: RawClient) {
  const port = (client.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
  for (const conn of ts.server.context.connections) {
    const socket = (conn as unknown as { socket: { remotePort: number } }).socket;
    if (socket.remotePort === port) return conn;
  }
  return undefined;
}

test('a client that stops reading and floods sync: buffered bytes stay under the cap, its syncs queue then get 9041, others are served', async (t) => {
  const ts = await startTestServer({}, {
    store: 'memory',
    rateLimits: { framesPerSecond: 1000, syncsPerSecond: 1000 },
    config: { pauseBufferedBytes: PAUSE, maxBufferedBytes: CAP * 8 },
  });
  t.after(() => ts.close());
  await fill(ts, 'victim', 200);
  const attacker = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2', record: false });
  const login = await attacker.login(ts.sdkAppId, 'victim', ts.sig('victim'));
  const conn = serverConn(ts, attacker)!;
  assert.ok(conn, 'the server side of the attacker');
  // Stop reading, then ask for 400 pages of up to 500 messages (~256 KB each, 100 MB in all).
  const socket = (attacker.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  let peak = 0;
  for (let i = 0; i < 400; i++) {
    attacker.sendJson({ type: 'sync', id: 1000 + i, instId: login.data.instId, afterSeq: 0, limit: 500 });
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
    peak = Math.max(peak, conn.bufferedAmount);
  }
  // The server stopped reading the attacker: wait until it paused, then watch the backlog.
  await until(async () => (metricValue(await getMetrics(ts.httpUrl), 'tabchat_reads_paused_total') ?? 0) > 0, 10_000, 'reads paused');
  const bystander = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.1' });
  const other = await bystander.login(ts.sdkAppId, 'other', ts.sig('other'));
  const sync = await bystander.request({ type: 'sync', instId: other.data.instId, limit: 500 });
  assert.equal(sync.ok, true, 'the bystander is served while the attacker does not read');
  peak = Math.max(peak, conn.bufferedAmount);
  const m = await getMetrics(ts.httpUrl);
  const served = metricValue(m, 'tabchat_messages_delivered_total', { via: 'sync' }) ?? 0;
  assert.ok(peak <= PAUSE + SYNC_PAGE_BYTES + 64 * 1024, `buffered for the slow reader: ${peak} bytes (pause mark ${PAUSE})`);
  assert.ok((metricValue(m, 'tabchat_buffered_bytes_max') ?? Infinity) <= PAUSE + SYNC_PAGE_BYTES + 64 * 1024, 'the metric agrees');
  assert.ok(served < 400 * 20, `only what fit was read: ${served} messages served by sync`);
  // Reading again: the queued syncs are answered, the rest were refused with 9041 (the
  // ones the server read before it paused; those it did not read wait in the socket).
  const results: any[] = [];
  attacker.onFrame = (f) => {
    if (f.type === 'result') results.push(f);
  };
  socket.resume();
  await until(() => results.length >= 10 && results.some((r) => r.ok), 20_000, 'attacker results');
  await until(() => results.length === 400, 60_000, `all 400 answered (${results.length})`);
  assert.ok(results.some((r) => r.code === CODE.SYNC_RATE_LIMITED), '9041 for syncs beyond the queue');
  for (const r of results.filter((r) => r.ok)) {
    const bytes = r.data.messages.reduce((n: number, msg: { text: string }) => n + msg.text.length, 0);
    assert.ok(bytes <= SYNC_PAGE_BYTES, `a page holds at most ${SYNC_PAGE_BYTES} bytes of text (${bytes})`);
    assert.equal(r.data.more, true);
  }
  assert.ok(MAX_QUEUED_SYNCS < 400);
  attacker.close();
  bystander.close();
});

test('pushes to a client that does not read: closed with 4006 past maxBufferedBytes, the buffer never far above it', async (t) => {
  const ts = await startTestServer({}, { rateLimits: { framesPerSecond: 10_000 }, config: { pauseBufferedBytes: PAUSE, maxBufferedBytes: CAP } });
  t.after(() => ts.close());
  const slow = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.2', record: false });
  await slow.login(ts.sdkAppId, 'slow', ts.sig('slow'));
  const conn = serverConn(ts, slow)!;
  const socket = (slow.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
  socket.pause();
  const sender = await RawClient.connect(ts.wsUrl, { record: false });
  const me = await sender.login(ts.sdkAppId, 'pusher', ts.sig('pusher'));
  let peak = 0;
  let i = 0;
  while (ts.server.context.connections.has(conn) && conn.bufferedAmount >= 0 && i < 5_000) {
    const batch = Array.from({ length: 20 }, () => sender.request({ type: 'send', instId: me.data.instId, clientMsgId: `p${i++}`, to: 'slow', text: TEXT_12K }));
    await Promise.all(batch);
    peak = Math.max(peak, conn.bufferedAmount);
    if ((metricValue(await getMetrics(ts.httpUrl), 'tabchat_connections_closed_total', { reason: 'slow' }) ?? 0) > 0) break;
  }
  assert.ok(peak <= CAP + 64 * 1024, `buffered at most ${peak} bytes (cap ${CAP})`);
  assert.equal(metricValue(await getMetrics(ts.httpUrl), 'tabchat_connections_closed_total', { reason: 'slow' }), 1, 'closed as slow');
  socket.resume();
  const closed = await slow.waitClosed(60_000);
  assert.equal(closed.code, CLOSE.SLOW_CONSUMER);
  sender.close();
});
