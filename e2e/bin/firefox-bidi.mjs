#!/usr/bin/env node
/**
 * Stock Firefox (Debian's firefox-esr) for Playwright's WebDriver BiDi driver.
 *
 * Playwright drives stock Firefox over BiDi with `channel: 'moz-firefox'`: it starts the
 * executable with `--remote-debugging-port=0 --headless --profile <dir>`, waits for the line
 * "WebDriver BiDi listening on ws://..." on stderr and connects to it. Playwright 1.65 sends a
 * few commands that Firefox ESR 153 does not implement yet (for instance
 * `emulation.setMediaFeaturesOverride`, sent for every new context even when the test asks for
 * no emulation), and treats their "unknown command" error as fatal.
 *
 * This executable stands in for Firefox: it starts the real one with the same arguments, puts a
 * WebSocket relay in front of its BiDi endpoint and announces the relay instead. Every command
 * and event passes through unchanged; only an "unknown command" answer to one of the
 * emulation commands in OPTIONAL (none of which the specs rely on) becomes an empty success.
 * It ends with Firefox, and stops Firefox when it is stopped.
 *
 * FIREFOX_PATH overrides the browser (default /usr/bin/firefox-esr).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { WebSocket, WebSocketServer } from 'ws';

/** Commands whose absence is answered with an empty success (nothing the specs depend on). */
const OPTIONAL = new Set([
  'emulation.setMediaFeaturesOverride',
  'emulation.setScreenSettingsOverride',
  'emulation.setScreenOrientationOverride',
]);
/** Messages held while the upstream socket opens (Playwright sends session.new at once). */
const MAX_PENDING = 1000;

const firefox = spawn(process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr', process.argv.slice(2), {
  stdio: ['ignore', 'inherit', 'pipe'],
});
const stop = (signal) => {
  if (firefox.exitCode === null) firefox.kill(signal);
};
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP']) process.on(signal, () => stop(signal));
firefox.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

const lines = createInterface({ input: firefox.stderr });
lines.on('line', (line) => {
  const match = /WebDriver BiDi listening on (ws:\/\/\S+)$/.exec(line);
  if (!match) {
    process.stderr.write(line + '\n');
    return;
  }
  relay(match[1].replace(/\/$/, ''));
});

function relay(upstreamBase) {
  const server = new WebSocketServer({ host: '127.0.0.1', port: 0, maxPayload: 256 * 1024 * 1024 });
  server.on('listening', () => {
    const { port } = server.address();
    process.stderr.write(`WebDriver BiDi listening on ws://127.0.0.1:${port}\n`);
  });
  server.on('connection', (client, req) => {
    const upstream = new WebSocket(upstreamBase + (req.url ?? ''), { maxPayload: 256 * 1024 * 1024 });
    const pending = [];
    /** id -> method, for the OPTIONAL commands in flight only. */
    const optional = new Map();
    const warned = new Set();
    upstream.on('open', () => {
      for (const data of pending.splice(0)) upstream.send(data);
    });
    client.on('message', (data) => {
      const text = data.toString();
      try {
        const msg = JSON.parse(text);
        if (OPTIONAL.has(msg.method)) optional.set(msg.id, msg.method);
      } catch {
        // not JSON: Firefox answers it
      }
      if (upstream.readyState === WebSocket.OPEN) upstream.send(text);
      else if (pending.length < MAX_PENDING) pending.push(text);
      else client.close(1011, 'relay backlog full');
    });
    upstream.on('message', (data) => {
      let text = data.toString();
      if (optional.size > 0) {
        try {
          const msg = JSON.parse(text);
          const method = optional.get(msg.id);
          if (method !== undefined) {
            optional.delete(msg.id);
            if (msg.type === 'error' && msg.error === 'unknown command') {
              if (!warned.has(method)) process.stderr.write(`firefox-bidi: ${method} is not implemented by this Firefox; answered with success\n`);
              warned.add(method);
              text = JSON.stringify({ type: 'success', id: msg.id, result: {} });
            }
          }
        } catch {
          // pass through
        }
      }
      if (client.readyState === WebSocket.OPEN) client.send(text);
    });
    const closeBoth = () => {
      if (client.readyState === WebSocket.OPEN) client.close();
      if (upstream.readyState === WebSocket.OPEN || upstream.readyState === WebSocket.CONNECTING) upstream.terminate();
    };
    client.on('close', closeBoth);
    upstream.on('close', closeBoth);
    client.on('error', closeBoth);
    upstream.on('error', closeBoth);
  });
}
