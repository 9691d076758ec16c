/**
 * Seeded fuzzing of the WebSocket protocol and the REST API against a real server.
 *
 *   TABCHAT_FUZZ_SEED=1234 TABCHAT_FUZZ_ITERATIONS=20000 node --import tsx --test test/server/fuzz.test.ts
 *
 * The seed is printed; re-run with it to reproduce a failure. Asserts: nothing throws in
 * the process, the server logs no error, every server frame and REST answer is well-formed
 * (no internal-error codes), connections only ever close with a documented code, and a
 * control client logged in before the run is untouched and still answers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { Writable } from 'node:stream';
import { CLOSE, CODE } from '../../src/protocol/codes.js';
import { PLATFORMS, PROTOCOL_VERSION, parseServerFrame, type ServerFrame } from '../../src/protocol/frames.js';
import { RawClient } from '../helpers/raw-client.js';
import { Rng } from '../helpers/rng.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { createLogger } from '../../server/log.js';
import { onlineIds } from './util.js';

const SEED = process.env.TABCHAT_FUZZ_SEED !== undefined && process.env.TABCHAT_FUZZ_SEED !== '' ? Number(process.env.TABCHAT_FUZZ_SEED) >>> 0 : randomInt(2 ** 31);
const ITERATIONS = Math.max(1, Number(process.env.TABCHAT_FUZZ_ITERATIONS ?? 5000) || 5000);
const REST_ITERATIONS = Math.max(50, Math.round(ITERATIONS / 10));
const CONNECTIONS = 6;
const SYNC_EVERY = 100;
/** Ids of the fuzzer's own sync requests; random frames never use this range. */
const SYNC_ID_BASE = 2 ** 52;

// Printed at load time so the seed is visible even if the test hangs or crashes.
console.log(`# tabchat fuzz: TABCHAT_FUZZ_SEED=${SEED} TABCHAT_FUZZ_ITERATIONS=${ITERATIONS} (REST requests: ${REST_ITERATIONS})`);

// ---------------------------------------------------------------- value generators

const FUZZ_USERS = ['f0', 'f1', 'f2', 'f3', 'f4', 'f5'];
const CONTROL_USER = 'control';
const TYPES = ['hello', 'login', 'resume', 'logout', 'time', 'ping', 'send', 'sync', 'ack', 'msg', 'welcome', 'result', 'kick', 'pong', 'error', '', 'HELLO', 'login ', '__proto__', 'constructor'];
const EDGE_NUMBERS = [
  0, -0, 1, -1, 0.5, -0.5, 1.0000001, 255, 256, 65535, 65536,
  2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -(2 ** 53), 1e21, 1e308, -1e308, 5e-324,
  1400000001, 1400000002, 1400009999, PROTOCOL_VERSION, PROTOCOL_VERSION + 1,
];
const EDGE_STRINGS = [
  '', ' ', 'a', 'null', 'undefined', '0', '-1', 'NaN', 'true', '[]', '{}', '"', '\\', '\u0000', '\u0000abc',
  '\ud800', '\udfff', '\ud83d\ude00', '🙂🙂🙂', '你好', 'é', '\u202e', 'a\nb', '\r\n', '%00', '%2e%2e/', '../../etc/passwd',
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '*', 'https://evil.example',
  ...PLATFORMS, 'web', 'WEB', 'iphone', ...FUZZ_USERS, 'eJyrVgrxCdYrSy1SslIy0jNQ0gHzM1NS80oy0zLBwhWZiflZpXlQqeKU7MSC',
];

function randomString(rng: Rng): string {
  switch (rng.int(6)) {
    case 0:
      return rng.pick(EDGE_STRINGS);
    case 1: {
      // random code units, including lone surrogates and controls
      let s = '';
      const n = rng.int(40);
      for (let i = 0; i < n; i++) s += String.fromCharCode(rng.chance(0.7) ? 32 + rng.int(95) : rng.int(0x10000));
      return s;
    }
    case 2:
      return rng.pick(EDGE_STRINGS).repeat(1 + rng.int(200));
    case 3:
      return 'x'.repeat(rng.pick([127, 128, 129, 4095, 4096, 4097, 20_000]));
    case 4:
      // over maxPayloadBytes (64 KiB) now and then
      return rng.chance(0.15) ? 'y'.repeat(70_000) : 'z'.repeat(rng.int(3000));
    default:
      return rng.pick(FUZZ_USERS);
  }
}

function randomValue(rng: Rng, depth = 0): unknown {
  const k = rng.int(depth > 3 ? 4 : 7);
  switch (k) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.chance(0.5) ? rng.pick(EDGE_NUMBERS) : (rng.next() - 0.5) * 10 ** rng.int(20);
    case 3:
      return randomString(rng);
    case 4:
      return Array.from({ length: rng.int(5) }, () => randomValue(rng, depth + 1));
    case 5: {
      const o: Record<string, unknown> = {};
      const n = rng.int(5);
      for (let i = 0; i < n; i++) o[rng.chance(0.5) ? rng.pick(['type', 'id', 'v', 'instId', 'token', 'userID', 'userSig', 'platform', 'sdkAppId', 'to', 'text', 'clientMsgId', 'seq', 'afterSeq', 'limit', '__proto__']) : randomString(rng).slice(0, 20)] = randomValue(rng, depth + 1);
      return o;
    }
    default: {
      // deep nesting
      let v: unknown = randomValue(rng, 4);
      const n = 1 + rng.int(60);
      for (let i = 0; i < n; i++) v = rng.chance(0.5) ? [v] : { a: v };
      return v;
    }
  }
}

// ---------------------------------------------------------------- frame generation

interface Known {
  /** Recent instIds of successful logins anywhere. */
  instIds: number[];
  tokens: Map<number, string>;
  /** instIds logged in on the connection the next frame goes to (most likely still held). */
  own: number[];
}

function randomId(rng: Rng): unknown {
  if (rng.chance(0.85)) return 1 + rng.int(1_000_000);
  return rng.chance(0.5) ? rng.pick([0, -1, 0.5, 2 ** 53, 1e308, -0]) : randomValue(rng, 2);
}

function validFrame(rng: Rng, ts: TestServer, known: Known): Record<string, unknown> {
  const user = rng.pick(FUZZ_USERS);
  // Fixed number of draws whatever `known` holds, so a seed replays the same frame sequence
  // (only the instIds/tokens learnt from the server may differ between runs).
  const [a, b, c, fallback] = [rng.next(), rng.next(), rng.next(), 1 + rng.int(5000)];
  const instId =
    known.own.length > 0 && a < 0.6
      ? known.own[Math.floor(c * known.own.length)]!
      : known.instIds.length > 0 && b < 0.7
        ? known.instIds[Math.floor(c * known.instIds.length)]!
        : fallback;
  switch (rng.pick(['hello', 'login', 'login', 'login', 'resume', 'logout', 'logout', 'time', 'ping', 'send', 'send', 'sync', 'ack'] as const)) {
    case 'hello':
      return { type: 'hello', v: PROTOCOL_VERSION, client: 'fuzz/1' };
    case 'login': {
      const sig = rng.chance(0.8)
        ? ts.sig(user, rng.chance(0.1) ? { expire: rng.int(3), time: Math.floor(Date.now() / 1000) - rng.int(3) } : {})
        : ts.sig(rng.pick(FUZZ_USERS), { key: rng.chance(0.5) ? 'wrong' : ts.secretKey });
      return { type: 'login', id: randomId(rng), sdkAppId: ts.sdkAppId, userID: user, userSig: sig, platform: rng.pick(PLATFORMS) };
    }
    case 'resume':
      return { type: 'resume', id: randomId(rng), instId, token: rng.chance(0.7) ? (known.tokens.get(instId) ?? 'nope') : randomString(rng).slice(0, 200) };
    case 'logout':
      return { type: 'logout', id: randomId(rng), instId };
    case 'time':
      return { type: 'time', id: randomId(rng) };
    case 'ping':
      return { type: 'ping' };
    // C2C messages (never to the control user, whose client must stay silent).
    case 'send':
      return {
        type: 'send',
        id: randomId(rng),
        instId,
        clientMsgId: rng.chance(0.3) ? 'dup' : `m${rng.int(1e9)}`,
        to: rng.pick(FUZZ_USERS),
        text: rng.chance(0.8) ? `hello ${rng.int(1000)} 🙂` : rng.pick(['', 'é'.repeat(6200), 'x'.repeat(12 * 1024), 'x'.repeat(12 * 1024 + 1)]),
      };
    case 'sync':
      return { type: 'sync', id: randomId(rng), instId, ...(rng.chance(0.5) ? { afterSeq: rng.int(20) } : {}), ...(rng.chance(0.5) ? { limit: 1 + rng.int(600) } : {}) };
    case 'ack':
      return { type: 'ack', instId, seq: rng.int(30) };
  }
}

function mutateObject(rng: Rng, frame: Record<string, unknown>): unknown {
  const keys = Object.keys(frame);
  const n = 1 + rng.int(3);
  for (let i = 0; i < n; i++) {
    switch (rng.int(7)) {
      case 0:
        if (keys.length > 0) delete frame[rng.pick(keys)];
        break;
      case 1:
      case 2:
        if (keys.length > 0) frame[rng.pick(keys)] = randomValue(rng);
        break;
      case 3:
        frame.type = rng.pick(TYPES);
        break;
      case 4:
        Object.defineProperty(frame, rng.pick(['__proto__', 'constructor', 'extra', 'id', 'toJSON']), { value: randomValue(rng, 2), enumerable: true, configurable: true, writable: true });
        break;
      case 5:
        return rng.chance(0.5) ? [frame] : { frame };
      default:
        frame[randomString(rng).slice(0, 30)] = randomValue(rng, 1);
    }
  }
  return frame;
}

function mutateText(rng: Rng, text: string): string {
  switch (rng.int(6)) {
    case 0:
      return text.slice(0, rng.int(text.length + 1)); // truncated JSON
    case 1: {
      const at = rng.int(text.length + 1);
      return text.slice(0, at) + rng.pick(['"', '{', '}', ',', ':', '\\', '\u0000', '\ud800', ']', 'null', '1e999', '-', ' ']) + text.slice(at);
    }
    case 2: {
      const at = rng.int(text.length);
      return text.slice(0, at) + String.fromCharCode(text.charCodeAt(at) ^ (1 << rng.int(7))) + text.slice(at + 1);
    }
    case 3:
      return text + text;
    case 4:
      // numbers JSON.parse turns into Infinity / -0 / huge precision
      return text.replace(/:(\d+)/, rng.pick([':1e999', ':-1e999', ':-0', ':1.0', ':1400000001.0000000001', ':9007199254740993']));
    default:
      return ' \t\n' + text + ' \n';
  }
}

type Payload = { text: string } | { binary: Buffer };

function randomPayload(rng: Rng, ts: TestServer, known: Known): Payload {
  const r = rng.next();
  if (r < 0.015) return { binary: Buffer.from(Array.from({ length: rng.int(64) }, () => rng.int(256))) };
  if (r < 0.3) return { text: JSON.stringify(validFrame(rng, ts, known)) };
  if (r < 0.65) return { text: JSON.stringify(mutateObject(rng, validFrame(rng, ts, known))) ?? 'undefined' };
  if (r < 0.8) return { text: mutateText(rng, JSON.stringify(validFrame(rng, ts, known))) };
  if (r < 0.9) return { text: JSON.stringify(randomValue(rng)) ?? '' };
  if (r < 0.94) return { text: rng.pick(['[', '{', '"']).repeat(1 + rng.int(40_000)) };
  return { text: randomString(rng) };
}

// ---------------------------------------------------------------- well-formedness checks

/**
 * Codes a server answer may carry: any documented code except the internal-error one (an
 * internal error is an exception on a path a client could reach: a bug). Kept as the whole
 * table rather than a hand list so the fuzz keeps working as features (and codes) are added.
 */
const KNOWN_CODES = new Set<number>(Object.values(CODE).filter((c) => c !== CODE.OK && c !== CODE.SERVER_INTERNAL));
/** Close codes the server may use; 1006 (no close frame) or anything undocumented is a failure. */
const CLOSE_CODES = new Set<number>(Object.values(CLOSE));

function checkFrame(frame: ServerFrame, where: string): void {
  const parsed = parseServerFrame(JSON.stringify(frame));
  assert.ok(parsed.ok, `${where}: server sent a frame its own client would drop: ${JSON.stringify(frame).slice(0, 300)}`);
  if (frame.type === 'result' && !frame.ok) {
    assert.ok(KNOWN_CODES.has(frame.code), `${where}: unexpected result code ${frame.code} (${frame.message})`);
    assert.ok(frame.message.length > 0, `${where}: empty message`);
  }
  if (frame.type === 'error') assert.ok(KNOWN_CODES.has(frame.code), `${where}: unexpected error frame ${JSON.stringify(frame)}`);
}

// ---------------------------------------------------------------- the test

interface Slot {
  client: RawClient | null;
  checked: number;
  /** instIds this connection logged in or resumed. */
  own: number[];
}

test(`fuzz: ${ITERATIONS} random/mutated frames and ${REST_ITERATIONS} random REST requests (seed ${SEED})`, async (t) => {
  t.diagnostic(`seed ${SEED}: re-run with TABCHAT_FUZZ_SEED=${SEED} TABCHAT_FUZZ_ITERATIONS=${ITERATIONS}`);
  const processErrors: string[] = [];
  /** Set on the first failure so the loops stop instead of running on against a broken server. */
  let stop = false;
  let onStop = () => {};
  const stopped = new Promise<void>((resolve) => (onStop = resolve));
  const halt = () => {
    stop = true;
    onStop();
  };
  const onError = (err: unknown) => {
    halt();
    processErrors.push(err instanceof Error ? (err.stack ?? err.message) : String(err));
  };
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  t.after(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });

  // Capture the server's own error logs (internal errors are bugs).
  const serverErrors: string[] = [];
  const logSink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (!line) continue;
        try {
          const rec = JSON.parse(line) as { level?: string };
          if (rec.level === 'error' || rec.level === 'fatal') serverErrors.push(line);
        } catch {
          serverErrors.push(`unparsable log line: ${line}`);
        }
      }
      cb();
    },
  });
  const ts = await startTestServer(
    { maxInstancesPerPlatform: 1, loginPolicy: 'multi' },
    {
      logger: createLogger('warn', 'fuzz', logSink),
      rateLimits: { framesPerSecond: 1_000_000, loginFailuresPerIp: 1_000_000_000, loginFailuresPerUser: 1_000_000_000 },
      resumeWindowMs: 2000,
    },
  );
  t.after(() => ts.close());

  // The control client: logged in before the run, must be untouched by it.
  const control = await RawClient.connect(ts.wsUrl);
  const controlLogin = await control.login(ts.sdkAppId, CONTROL_USER, ts.sig(CONTROL_USER));
  assert.equal(controlLogin.ok, true);
  const controlInstId: number = controlLogin.data.instId;

  const rng = new Rng(SEED);
  const known: Known = { instIds: [], tokens: new Map(), own: [] };
  const closes = new Map<number, number>();
  let syncSeq = 0;
  /** What the server answered, for the diagnostic line (coverage at a glance). */
  const answers = new Map<string, number>();
  let connectionsOpened = 0;

  const harvest = (slot: Slot, where: string) => {
    const c = slot.client;
    if (!c) return;
    assert.deepEqual(c.garbage, [], `${where}: non-JSON frame from the server`);
    for (; slot.checked < c.frames.length; slot.checked++) {
      const f = c.frames[slot.checked]!;
      checkFrame(f, where);
      const key = f.type === 'result' ? (f.ok ? 'ok' : String(f.code)) : f.type === 'error' ? `error ${f.code}` : f.type;
      answers.set(key, (answers.get(key) ?? 0) + 1);
      if (f.type === 'result' && f.ok) {
        const d = f.data as { instId?: unknown; token?: unknown };
        if (typeof d.instId === 'number' && typeof d.token === 'string') {
          known.instIds.push(d.instId);
          known.tokens.set(d.instId, d.token);
          if (known.instIds.length > 200) known.instIds.shift();
          slot.own.push(d.instId);
          if (slot.own.length > 20) slot.own.shift();
        }
      }
    }
  };
  const retire = (slot: Slot, where: string) => {
    const c = slot.client!;
    harvest(slot, where);
    const code = c.closed!.code;
    assert.ok(CLOSE_CODES.has(code), `${where}: connection closed with unexpected code ${code} (${c.closed!.reason})`);
    closes.set(code, (closes.get(code) ?? 0) + 1);
    slot.client = null;
  };
  const slots: Slot[] = Array.from({ length: CONNECTIONS }, () => ({ client: null, checked: 0, own: [] }));
  const ensure = async (slot: Slot, where: string): Promise<RawClient> => {
    // Drawn every time (used only on reconnect) so the draw sequence does not depend on timing.
    const hello = rng.chance(0.85);
    const origin = rng.chance(0.2) ? { origin: 'https://fuzz.example' } : {};
    if (slot.client?.closed) retire(slot, where);
    if (!slot.client) {
      slot.client = await RawClient.connect(ts.wsUrl, { hello, ...origin });
      slot.checked = 0;
      slot.own = [];
      connectionsOpened++;
    }
    return slot.client;
  };
  /** Wait until every open connection has processed what it was sent (a time round trip). */
  const sync = async (where: string) => {
    await Promise.all(
      slots.map(async (slot) => {
        const c = slot.client;
        if (!c || c.closed) return;
        const id = SYNC_ID_BASE + ++syncSeq;
        c.sendJson({ type: 'time', id });
        try {
          await Promise.race([c.waitFor((f) => f.type === 'result' && f.id === id, 10_000, `sync ${id}`), stopped]);
        } catch (err) {
          if (!c.closed) throw new Error(`${where}: no answer to a time request on an open connection (${(err as Error).message})`);
        }
        harvest(slot, where);
      }),
    );
  };

  const wsFuzz = async () => {
    for (let i = 0; i < ITERATIONS && !stop; i++) {
      const where = `seed ${SEED}, frame #${i}`;
      const slot = slots[rng.int(CONNECTIONS)]!;
      const c = await ensure(slot, where);
      known.own = slot.own;
      const p = randomPayload(rng, ts, known);
      if (c.ws.readyState === c.ws.OPEN) c.send('binary' in p ? p.binary : p.text);
      if (i % SYNC_EVERY === SYNC_EVERY - 1) await sync(where);
    }
    await sync(`seed ${SEED}, end of frames`);
    for (const slot of slots) if (slot.client?.closed) retire(slot, `seed ${SEED}, end`);
  };

  const restResults = { ok: 0, fail: 0, byCode: new Map<number, number>() };
  const restFuzz = async () => {
    let next = 0;
    const worker = async () => {
      while (next < REST_ITERATIONS && !stop) {
        const n = next++;
        // One generator per request: the same seed gives the same requests whatever the interleaving.
        await restRequest(new Rng((SEED ^ Math.imul(n + 1, 0x9e3779b9)) >>> 0), ts, n, restResults);
      }
    };
    await Promise.all(Array.from({ length: 6 }, worker));
  };

  const stopOnFailure = (p: Promise<void>) =>
    p.catch((err: unknown) => {
      halt();
      throw err;
    });
  await Promise.all([stopOnFailure(wsFuzz()), stopOnFailure(restFuzz())]);
  assert.deepEqual(processErrors, [], `uncaught errors in the process (seed ${SEED})`);

  // ---- the control client is untouched
  const controlTime = await control.request({ type: 'time' });
  assert.equal(controlTime.ok, true, 'control answers a time request');
  assert.equal(control.closed, null, 'control still connected');
  assert.deepEqual(control.kicks(), [], `control was kicked (seed ${SEED})`);
  assert.deepEqual(control.frames.filter((f) => f.type === 'error' || (f.type === 'result' && !f.ok)), [], `control got errors (seed ${SEED})`);
  assert.deepEqual(await onlineIds(ts, CONTROL_USER), [controlInstId], 'control still logged in');
  assert.equal((await fetch(`${ts.httpUrl}/healthz`)).status, 200);

  t.diagnostic(
    `frames answered ${JSON.stringify(Object.fromEntries([...answers].sort()))}; ` +
      `connections opened ${connectionsOpened}; closes ${JSON.stringify(Object.fromEntries(closes))}; instances seen ${known.tokens.size}; ` +
      `REST ok ${restResults.ok} fail ${restResults.fail} codes ${JSON.stringify(Object.fromEntries(restResults.byCode))}`,
  );
  assert.deepEqual(processErrors, [], `uncaught errors in the process (seed ${SEED})`);
  assert.deepEqual(serverErrors, [], `the server logged errors (seed ${SEED})`);
  // The run must have exercised something real.
  assert.ok(known.tokens.size > 0, 'some fuzz logins succeeded');
  assert.ok(restResults.ok > 0 && restResults.fail > 0, 'REST fuzz reached both outcomes');
  control.close();
  for (const slot of slots) slot.client?.close();
});

// ---------------------------------------------------------------- REST fuzz

/** Percent-encode for a path; lone surrogates become an invalid UTF-8 sequence on purpose. */
function pathPart(s: string): string {
  try {
    return encodeURIComponent(s);
  } catch {
    return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '')) + '%ED%A0%80';
  }
}

const REST_COMMANDS = ['im_open_login_svc/kick', 'openim/query_online_status', 'tabchat_admin/get_login_settings', 'tabchat_admin/set_login_settings', 'tabchat_admin/get_stats'];
const REST_METHODS = [...Array<string>(24).fill('POST'), 'GET', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'];

function restBody(rng: Rng, command: string): string | undefined {
  const r = rng.next();
  if (r < 0.5) {
    let body: Record<string, unknown>;
    switch (command) {
      case 'im_open_login_svc/kick':
        body = { UserID: rng.chance(0.7) ? rng.pick(FUZZ_USERS) : randomValue(rng, 2) };
        break;
      case 'openim/query_online_status':
        body = {
          To_Account: rng.chance(0.8) ? Array.from({ length: rng.int(rng.chance(0.05) ? 600 : 8) }, () => (rng.chance(0.7) ? rng.pick([...FUZZ_USERS, CONTROL_USER]) : randomValue(rng, 2))) : randomValue(rng, 2),
          IsNeedDetail: rng.pick([0, 1, true, '1', null]),
        };
        break;
      case 'tabchat_admin/set_login_settings':
        body = {
          ...(rng.chance(0.7) ? { MaxInstancesPerPlatform: rng.chance(0.7) ? 1 + rng.int(3) : randomValue(rng, 1) } : {}),
          ...(rng.chance(0.7) ? { LoginPolicy: rng.chance(0.7) ? rng.pick(['single', 'dual', 'triple', 'multi']) : randomValue(rng, 1) } : {}),
        };
        break;
      default:
        body = {};
    }
    return JSON.stringify(rng.chance(0.3) ? mutateObject(rng, body) : body) ?? '';
  }
  if (r < 0.65) return JSON.stringify(randomValue(rng)) ?? '';
  if (r < 0.8) return mutateText(rng, JSON.stringify({ To_Account: FUZZ_USERS, UserID: 'f1', IsNeedDetail: 1 }));
  if (r < 0.85) return 'x'.repeat(rng.pick([65_536, 65_537, 70_000, 200_000]));
  if (r < 0.9) return '';
  if (r < 0.95) return '['.repeat(1 + rng.int(50_000));
  return undefined;
}

async function restRequest(rng: Rng, ts: TestServer, n: number, results: { ok: number; fail: number; byCode: Map<number, number> }): Promise<void> {
  const where = `seed ${SEED}, REST #${n}`;
  const method = rng.pick(REST_METHODS);
  const v4 = rng.chance(0.85);
  let path: string;
  if (v4) {
    const command = rng.chance(0.8) ? rng.pick(REST_COMMANDS) : rng.pick([pathPart(randomString(rng).slice(0, 50)), 'openim/', '', '..%2f..%2fpackage.json', 'im_open_login_svc/kick/extra', '__proto__', 'constructor']);
    const q = new URLSearchParams();
    const param = (name: string, good: () => string) => {
      const r = rng.next();
      if (r < 0.9) q.append(name, good());
      else if (r < 0.96) q.append(name, randomString(rng).slice(0, 300));
      else if (r < 0.98) q.append(name, '');
      // else: missing
    };
    param('sdkappid', () => (rng.chance(0.9) ? String(ts.sdkAppId) : rng.pick(['1400009999', '0', '99999999999', '-1', '1e9'])));
    param('identifier', () => (rng.chance(0.9) ? ts.adminIdentifier : rng.pick(FUZZ_USERS)));
    param('usersig', () => (rng.chance(0.85) ? ts.sig(ts.adminIdentifier) : rng.chance(0.5) ? ts.sig(ts.adminIdentifier, { key: 'wrong' }) : ts.sig(ts.adminIdentifier).slice(0, 30)));
    param('random', () => String(rng.int(2 ** 32)));
    param('contenttype', () => 'json');
    if (rng.chance(0.1)) q.append('sdkappid', String(ts.sdkAppId + 1)); // duplicate parameter
    const commandForBody = REST_COMMANDS.includes(command) ? command : rng.pick(REST_COMMANDS);
    path = `/v4/${command}?${q}`;
    const body = method === 'GET' || method === 'HEAD' ? undefined : restBody(rng, commandForBody);
    let res: Response;
    try {
      res = await fetch(ts.httpUrl + path, { method, ...(body !== undefined ? { body } : {}) });
    } catch (err) {
      // Only a body far beyond maxBodyBytes may be cut off.
      assert.ok(body !== undefined && body.length > 65_536 * 16, `${where}: ${method} ${path.slice(0, 120)} failed: ${(err as Error).message}`);
      return;
    }
    assert.equal(res.status, 200, `${where}: ${method} ${path.slice(0, 120)} answered HTTP ${res.status}`);
    if (method === 'HEAD') return void (await res.arrayBuffer());
    assert.match(res.headers.get('content-type') ?? '', /^application\/json/, `${where}: content-type`);
    const text = await res.text();
    let json: any;
    try {
      json = JSON.parse(text);
    } catch {
      assert.fail(`${where}: REST answer is not JSON: ${text.slice(0, 200)}`);
    }
    assert.equal(typeof json.ErrorCode, 'number', `${where}: ErrorCode`);
    assert.ok(Number.isInteger(json.ErrorCode), `${where}: integer ErrorCode`);
    assert.equal(typeof json.ErrorInfo, 'string', `${where}: ErrorInfo`);
    assert.equal(json.ActionStatus, json.ErrorCode === 0 ? 'OK' : 'FAIL', `${where}: ActionStatus`);
    assert.notEqual(json.ErrorCode, CODE.SERVER_INTERNAL, `${where}: internal error for ${method} ${path.slice(0, 200)}: ${json.ErrorInfo}`);
    if (json.ErrorCode === 0) results.ok++;
    else results.fail++;
    results.byCode.set(json.ErrorCode, (results.byCode.get(json.ErrorCode) ?? 0) + 1);
    return;
  }
  path = rng.pick([
    '/', '/healthz', '/metrics', '/ws', '/tabchat.js', '/esm/x.js', '/dev/usersig?sdkappid=1400000001&userID=f1',
    '/..%2f..%2fpackage.json', '/%2e%2e/%2e%2e/package.json', `/${pathPart(randomString(rng).slice(0, 100))}`, '/%', '/%00',
  ]);
  let res: Response;
  try {
    res = await fetch(ts.httpUrl + path, { method: rng.pick(['GET', 'GET', 'HEAD', 'POST', 'DELETE']) });
  } catch (err) {
    assert.fail(`${where}: ${path} failed: ${(err as Error).message}`);
  }
  await res.arrayBuffer();
  assert.ok(res.status < 500, `${where}: ${path} answered ${res.status}`);
  if (path === '/healthz') assert.equal(res.status, 200);
}
