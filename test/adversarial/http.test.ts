/**
 * The HTTP surface (issue items 8 and 12): a request answered before its body is read
 * (failed REST auth, /healthz, 405) cannot make the server read an endless body; /metrics
 * can be protected with a bearer token or moved to its own port.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestServer } from '../helpers/server.js';
import { httpGet, metricValue, rawSocket } from './util.js';

const MAX_BODY = 64 * 1024;

for (const [what, head] of [
  ['/healthz', 'POST /healthz HTTP/1.1'],
  ['a 405', 'PUT /tabchat.js HTTP/1.1'],
  ['a failed REST auth', 'POST /v4/openim/query_online_status?sdkappid=1400000001&identifier=administrator&usersig=bad&random=1 HTTP/1.1'],
] as const) {
  test(`an endless body after an early answer (${what}) is cut after maxBodyBytes`, async (t) => {
    const ts = await startTestServer({}, { maxBodyBytes: MAX_BODY });
    t.after(() => ts.close());
    const raw = await rawSocket(ts.server.port);
    raw.socket.write(`${head}\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n`);
    const chunk = `${(16 * 1024).toString(16)}\r\n${'y'.repeat(16 * 1024)}\r\n`;
    // Write until the server cuts the socket (or 64 MB: far beyond any bound).
    let written = 0;
    while (!raw.ended() && written < 64 * 1024 * 1024) {
      if (!raw.socket.write(chunk)) await new Promise((r) => raw.socket.once('drain', r).once('close', r));
      written += chunk.length;
    }
    assert.ok(raw.ended(), `the server cut the socket (${written} bytes written)`);
    assert.match(raw.received(), /^HTTP\/1\.1 (200|405)/, 'the early answer came first');
    const metrics = await httpGet(`${ts.httpUrl}/metrics`);
    const discarded = metricValue(metrics.body, 'tabchat_http_body_discarded_bytes_total') ?? 0;
    assert.ok(discarded <= 2 * MAX_BODY, `read and discarded ${discarded} bytes`);
    raw.socket.destroy();
  });
}

test('/metrics with a bearer token: 401 without it, 200 with it', async (t) => {
  const token = 'a-metrics-token-of-some-length';
  const ts = await startTestServer({}, { config: { metrics: { token } } });
  t.after(() => ts.close());
  assert.equal((await httpGet(`${ts.httpUrl}/metrics`)).status, 401);
  assert.equal((await httpGet(`${ts.httpUrl}/metrics`, '127.0.0.1', { authorization: 'Bearer wrong-token-wrong-token!!' })).status, 401);
  const ok = await httpGet(`${ts.httpUrl}/metrics`, '127.0.0.1', { authorization: `Bearer ${token}` });
  assert.equal(ok.status, 200);
  assert.match(ok.body, /tabchat_connections/);
});

test('/metrics on its own port: the main port answers 404', async (t) => {
  const ts = await startTestServer({}, { config: { metrics: { port: 0, host: '127.0.0.1' } } });
  t.after(() => ts.close());
  assert.equal((await httpGet(`${ts.httpUrl}/metrics`)).status, 404);
  assert.notEqual(ts.server.metricsUrl, ts.httpUrl);
  const m = await httpGet(`${ts.server.metricsUrl}/metrics`);
  assert.equal(m.status, 200);
  assert.match(m.body, /tabchat_sockets/);
  assert.equal((await httpGet(`${ts.server.metricsUrl}/healthz`)).status, 404, 'only /metrics there');
});
