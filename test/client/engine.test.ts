/**
 * Engine edge cases the real server never produces on purpose: a server that goes silent,
 * a server that ends the connection with a terminal code. A protocol-level fake server
 * (a real `ws` WebSocket server speaking our frames) plays those parts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket, { WebSocketServer } from 'ws';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import { PROTOCOL_VERSION } from '../../src/protocol/frames.js';
import { fullJitterBackoff } from '../../src/core/defaults.js';
import { SessionEngine } from '../../src/core/engine.js';
import type { ErrorData, NetState } from '../../src/protocol/data.js';
import type { WebSocketConstructor } from '../../src/core/types.js';
import { until } from '../helpers/raw-client.js';

interface FakeServer {
  url: string;
  connections: WebSocket[];
  /** Every frame received, in order, with the index of the connection it came on. */
  received: Array<{ conn: number; frame: any }>;
  close(): Promise<void>;
}

/**
 * Answers hello and login like the real server; `onLogin` decides what happens after the
 * login result (e.g. go silent, or close with a code).
 */
async function fakeServer(opts: { heartbeatMs: number; onLogin?: (ws: WebSocket, conn: number) => void }): Promise<FakeServer> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const state: FakeServer = {
    url: `ws://127.0.0.1:${(wss.address() as { port: number }).port}`,
    connections: [],
    received: [],
    close: () =>
      new Promise<void>((resolve) => {
        for (const ws of wss.clients) ws.terminate();
        wss.close(() => resolve());
      }),
  };
  let nextInst = 1;
  wss.on('connection', (ws) => {
    const conn = state.connections.push(ws) - 1;
    ws.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      state.received.push({ conn, frame });
      if (frame.type === 'hello') {
        ws.send(JSON.stringify({ type: 'welcome', v: PROTOCOL_VERSION, serverTime: Date.now(), heartbeatMs: opts.heartbeatMs, resumeWindowMs: 10_000, node: 'fake' }));
      } else if (frame.type === 'login') {
        const instId = nextInst++;
        ws.send(JSON.stringify({ type: 'result', id: frame.id, ok: true, data: { instId, token: `t${instId}`, userID: frame.userID, serverTime: Date.now(), expireAt: Date.now() + 3_600_000 } }));
        opts.onLogin?.(ws, conn);
      } else if (frame.type === 'resume') {
        ws.send(JSON.stringify({ type: 'result', id: frame.id, ok: true, data: { instId: frame.instId, serverTime: Date.now(), expireAt: Date.now() + 3_600_000 } }));
      }
      // ping is deliberately never answered: the fake stays silent after login.
    });
  });
  return state;
}

const params = { sdkAppId: 1400000001, userID: 'alice', userSig: 'sig', platform: 'Web' as const };
const quietLogger = { debug() {}, info() {}, warn() {}, error() {} };

function events() {
  const lost: ErrorData[] = [];
  const kicked: string[] = [];
  const restored: Array<{ instId: number; relogin: boolean }> = [];
  return {
    lost,
    kicked,
    restored,
    handlers: { onLost: (e: ErrorData) => lost.push(e), onKicked: (t: string) => kicked.push(t), onRestored: (i: { instId: number; relogin: boolean }) => restored.push(i) },
  };
}

test('a server that goes silent is closed with 4001 and the instance resumes on a new socket', { timeout: 15_000 }, async (t) => {
  const server = await fakeServer({ heartbeatMs: 100 });
  t.after(() => server.close());
  const engine = new SessionEngine({
    url: server.url,
    WebSocket: WebSocket as unknown as WebSocketConstructor,
    silenceMarginMs: 100,
    backoff: () => 10,
    logger: quietLogger,
  });
  t.after(() => engine.close());
  const net: NetState[] = [];
  engine.onNetState((s) => net.push(s));
  const ev = events();
  const { handle } = await engine.login(params, ev.handlers);
  const closeCode = new Promise<number>((resolve) => server.connections[0]!.once('close', (code) => resolve(code)));
  assert.equal(await closeCode, CLOSE.HEARTBEAT_TIMEOUT);
  // The instance comes back on a second socket through a silent resume with its token.
  await until(() => server.received.some((r) => r.conn === 1 && r.frame.type === 'resume'), 5000, 'resume on a new socket');
  const resume = server.received.find((r) => r.conn === 1 && r.frame.type === 'resume')!.frame;
  assert.equal(resume.instId, handle.instId);
  assert.equal(resume.token, `t${handle.instId}`);
  await until(() => ev.restored.length === 1, 5000, 'onRestored');
  assert.deepEqual(ev.restored[0], { instId: handle.instId, relogin: false });
  assert.deepEqual(ev.lost, []);
  assert.deepEqual(ev.kicked, []);
  // Pings were sent while waiting, and the net state went connecting → connected twice.
  assert.ok(server.received.some((r) => r.conn === 0 && r.frame.type === 'ping'));
  assert.deepEqual(net, ['connecting', 'connected', 'connecting', 'connected']);
});

test('a terminal close (4500) ends every instance with 9002 and is not retried', { timeout: 15_000 }, async (t) => {
  const server = await fakeServer({
    heartbeatMs: 25_000,
    onLogin: (ws) => setImmediate(() => ws.close(CLOSE.PROTOCOL_VERSION, 'protocol version mismatch')),
  });
  t.after(() => server.close());
  const engine = new SessionEngine({ url: server.url, WebSocket: WebSocket as unknown as WebSocketConstructor, backoff: () => 10, logger: quietLogger });
  t.after(() => engine.close());
  const ev = events();
  await engine.login(params, ev.handlers);
  await until(() => ev.lost.length === 1, 5000, 'onLost');
  assert.equal(ev.lost[0]!.code, CODE.PROTOCOL_VERSION_MISMATCH);
  assert.equal(ev.lost[0]!.data?.closeCode, CLOSE.PROTOCOL_VERSION);
  assert.equal(engine.instanceCount, 0);
  assert.equal(engine.netState, 'disconnected');
  // No reconnect: a later login opens exactly one new socket, and only because it was asked to.
  assert.equal(server.connections.length, 1);
  await engine.login(params, events().handlers);
  assert.equal(server.connections.length, 2);
});

test('fullJitterBackoff stays within [min, max] and grows with the attempt', () => {
  const low = fullJitterBackoff({ minMs: 500, maxMs: 10_000, random: () => 0 });
  const high = fullJitterBackoff({ minMs: 500, maxMs: 10_000, random: () => 0.999999 });
  for (let attempt = 0; attempt < 20; attempt++) {
    assert.equal(low(attempt), 500);
    assert.ok(high(attempt) <= 10_000);
  }
  assert.ok(high(1) > high(0));
  assert.ok(high(3) > high(1));
  assert.equal(Math.round(high(30)), 10_000);
});
