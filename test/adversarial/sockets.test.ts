/**
 * Attacks on descriptors and slots (issue items 3 and 5): plain TCP sockets that send
 * nothing or a malformed request are destroyed by the server (not left half-open); under
 * `ulimit -n 256`, 300 such sockets from one address leave /healthz and logins working for
 * others; WebSockets that never say hello cannot take every slot from one address.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { RawClient, until } from '../helpers/raw-client.js';
import { startTestServer } from '../helpers/server.js';
import { generateUserSig } from '../../server/usersig.js';
import { getMetrics, httpGet, metricValue, rawSocket, startChildServer, type RawSocket } from './util.js';

test('silent and malformed sockets are destroyed by the server, not left half-open', async (t) => {
  const ts = await startTestServer({}, { config: { handshakeTimeoutMs: 300 } });
  t.after(() => ts.close());
  const port = ts.server.port;
  const baseline = ts.server.context.sockets.count();
  const silent: RawSocket[] = [];
  const malformed: RawSocket[] = [];
  for (let i = 0; i < 20; i++) silent.push(await rawSocket(port, '127.0.0.2'));
  for (let i = 0; i < 20; i++) {
    const s = await rawSocket(port, '127.0.0.3');
    s.socket.write('NOT A REQUEST\r\n\r\n');
    malformed.push(s);
  }
  // The client never closes its side (allowHalfOpen): an `end()` alone would leave every
  // one of these open on the server, holding a descriptor. The server must destroy them.
  await until(() => [...silent, ...malformed].every((s) => s.ended()), 10_000, 'the server to end every socket');
  for (const s of malformed) assert.match(s.received(), /^HTTP\/1\.1 400/, 'malformed: a 400 before the close');
  await until(() => ts.server.context.sockets.count() === baseline, 5_000, 'the server to release every socket (destroyed, not half-open)');
  const m = await getMetrics(ts.httpUrl);
  assert.ok((metricValue(m, 'tabchat_sockets_refused_total', { reason: 'handshake-timeout' }) ?? 0) >= 20, 'silent ones timed out');
  assert.ok((metricValue(m, 'tabchat_sockets_refused_total', { reason: 'bad-request' }) ?? 0) >= 20, 'malformed ones answered 400');
});

test('ulimit -n 256: 300 silent sockets from one address; /healthz and a login still work from another', async (t) => {
  const server = await startChildServer({}, 256);
  t.after(() => server.close());
  const attacker: RawSocket[] = [];
  t.after(() => attacker.forEach((s) => s.socket.destroy()));
  for (let i = 0; i < 300; i++) {
    try {
      attacker.push(await rawSocket(server.port, '127.0.0.2'));
    } catch {
      // a refused connect counts as held for the attacker's purpose
    }
  }
  // Every socket the server kept open counts against the address; the rest were refused.
  const metrics = await httpGet(`${server.httpUrl}/metrics`, '127.0.0.1');
  assert.equal(metrics.status, 200);
  const held = metricValue(metrics.body, 'tabchat_sockets') ?? 0;
  assert.ok(held < 256 - 64, `the server holds ${held} sockets, inside its file limit`);
  assert.ok((metricValue(metrics.body, 'tabchat_sockets_refused_total', { reason: 'per-ip' }) ?? 0) > 0, 'the address was capped');
  const health = await httpGet(`${server.httpUrl}/healthz`, '127.0.0.1');
  assert.equal(health.status, 200, 'a bystander reaches /healthz');
  const ws = new WebSocket(server.wsUrl, { localAddress: '127.0.0.1', perMessageDeflate: false } as WebSocket.ClientOptions);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  const replies: any[] = [];
  ws.on('message', (d) => replies.push(JSON.parse(d.toString())));
  ws.send(JSON.stringify({ type: 'hello', v: 1 }));
  ws.send(JSON.stringify({ type: 'login', id: 1, sdkAppId: server.sdkAppId, userID: 'bystander', userSig: generateUserSig({ sdkAppId: server.sdkAppId, key: server.secretKey, identifier: 'bystander', expire: 3600 }), platform: 'Web' }));
  const result = await until(() => replies.find((r) => r.type === 'result' && r.id === 1), 15_000, 'the login result');
  assert.equal(result.ok, true, JSON.stringify(result));
  ws.close();
});

test('WebSockets that never say hello cannot take every slot from one address (rateLimits.connectionsPerIp)', async (t) => {
  const ts = await startTestServer({}, { maxConnections: 40, helloTimeoutMs: 60_000 });
  t.after(() => ts.close());
  const squatters: WebSocket[] = [];
  t.after(() => squatters.forEach((w) => w.terminate()));
  let refused = 0;
  for (let i = 0; i < 60; i++) {
    const w = new WebSocket(ts.wsUrl, { localAddress: '127.0.0.2', perMessageDeflate: false } as WebSocket.ClientOptions);
    w.on('error', () => undefined);
    const opened = await new Promise<boolean>((resolve) => {
      w.once('open', () => resolve(true));
      w.once('close', () => resolve(false));
      w.once('unexpected-response', () => resolve(false));
    });
    if (opened) squatters.push(w);
    else refused++;
  }
  assert.ok(refused > 0, 'the address was refused past its share');
  assert.ok(squatters.length < 40, `one address holds ${squatters.length} of 40 slots`);
  const bystander = await RawClient.connect(ts.wsUrl, { localAddress: '127.0.0.1' });
  const r = await bystander.login(ts.sdkAppId, 'bob', ts.sig('bob'));
  assert.equal(r.ok, true, JSON.stringify(r));
  bystander.close();
});
