/**
 * Browser `online` / `offline` in the hub's host (worker/network.ts → Hub.networkChanged →
 * SessionEngine.setOnline). Playwright cannot fire them in a SharedWorker (setOffline does
 * not reach it), so the events are dispatched here on an EventTarget standing for the
 * host's global, with a real session engine and server.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { SessionEngine } from '../../src/core/engine.js';
import type { NetState } from '../../src/protocol/data.js';
import type { InstanceEvents } from '../../src/core/types.js';
import { watchNetwork } from '../../worker/network.js';
import { until } from '../helpers/raw-client.js';
import { startTestServer } from '../helpers/server.js';

const quiet = { debug() {}, info() {}, warn() {}, error() {} };

test('offline closes the socket and waits; online reconnects at once and resumes silently', async (t) => {
  // A long reconnect backoff: only the `online` event can explain a quick reconnect.
  const server = await startTestServer({}, { resumeWindowMs: 30_000 });
  const engine = new SessionEngine({ url: server.wsUrl, WebSocket, clientName: 'network-test', logger: quiet, backoff: () => 20_000 });
  t.after(async () => {
    engine.close();
    await server.close();
  });
  const net: NetState[] = [];
  engine.onNetState((state) => net.push(state));
  const kicked: string[] = [];
  const lost: unknown[] = [];
  const events = { onKicked: (type: string) => kicked.push(type), onLost: (error: unknown) => lost.push(error), onMessages: () => {} } as unknown as InstanceEvents;
  const { handle } = await engine.login({ sdkAppId: server.sdkAppId, userID: 'alice', userSig: server.sig('alice'), platform: 'Web' }, events);
  assert.deepEqual(net, ['connecting', 'connected']);

  const global = new EventTarget();
  const stop = watchNetwork(global, (online) => engine.setOnline(online));
  t.after(stop);

  global.dispatchEvent(new Event('offline'));
  assert.deepEqual(net, ['connecting', 'connected', 'connecting'], 'offline closes the socket at once');
  assert.equal(engine.netState, 'connecting');
  // The server sees the connection go; the instance waits in its resume window.
  await until(async () => server.server.context.connections.size === 0, 5_000, 'the server to see the socket close');
  const online = async () => (await server.rest('openim/query_online_status', { To_Account: ['alice'], IsNeedDetail: 1 })).QueryResult[0].Detail;
  assert.deepEqual((await online()).map((d: { Connected: boolean }) => d.Connected), [false]);

  const backAt = Date.now();
  global.dispatchEvent(new Event('online'));
  await until(() => engine.netState === 'connected', 5_000, 'connected after online');
  assert.ok(Date.now() - backAt < 5_000, 'reconnected without waiting for the backoff');
  await until(async () => (await online()).every((d: { Connected: boolean }) => d.Connected), 5_000, 'the instance attached again');
  assert.deepEqual((await online()).map((d: { InstId: number }) => d.InstId), [handle.instId], 'resumed: same instance');
  assert.deepEqual(net, ['connecting', 'connected', 'connecting', 'connected']);
  assert.deepEqual(kicked, []);
  assert.deepEqual(lost, []);

  // A second `online` while connected changes nothing; `offline` twice closes once.
  global.dispatchEvent(new Event('online'));
  global.dispatchEvent(new Event('offline'));
  global.dispatchEvent(new Event('offline'));
  assert.deepEqual(net.slice(4), ['connecting']);
  global.dispatchEvent(new Event('online'));
  await until(() => engine.netState === 'connected', 5_000, 'connected after the second online');
});
