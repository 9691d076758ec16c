/**
 * Server capacity benchmark. Starts the real server in its own process and drives it from
 * this process with protocol-level clients:
 *
 *  - naive: one WebSocket per instance (what a per-tab SDK costs the server);
 *  - tabchat: 10 instances per WebSocket (what one SharedWorker with 10 tabs costs);
 *
 * and for each: login throughput with real UserSig checks, server RSS per instance, REST
 * kick → kick-frame latency and login-kick (multipleAccount) latency under that load.
 *
 * Env: BENCH_INSTANCES (default 4000), BENCH_KICKS (default 200), BENCH_INFLIGHT (default 200).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type ServerFrame } from '../src/protocol/frames.js';
import { generateUserSig } from '../server/usersig.js';

const INSTANCES = Number(process.env.BENCH_INSTANCES ?? 4000);
const KICKS = Number(process.env.BENCH_KICKS ?? 200);
const INFLIGHT = Number(process.env.BENCH_INFLIGHT ?? 200);
const SDK_APP_ID = 1400000001;
const KEY = randomBytes(32).toString('hex');
const ADMIN = 'administrator';

export interface Stats {
  p50: number;
  p99: number;
  n: number;
}

export function stats(samples: number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

interface ServerProc {
  proc: ChildProcess;
  url: string;
  rssKb(): number;
  stop(): Promise<void>;
}

async function startServer(): Promise<ServerProc> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-bench-'));
  const configPath = join(dir, 'config.json');
  writeFileSync(
    configPath,
    JSON.stringify({
      apps: [{ sdkAppId: SDK_APP_ID, secretKey: KEY, adminIdentifier: ADMIN, maxInstancesPerPlatform: 1000, loginPolicy: 'multi' }],
      store: 'memory',
      logLevel: 'warn',
      maxConnections: 19_000,
      rateLimits: { loginFailuresPerIp: 1e9, framesPerSecond: 1e6 },
    }),
  );
  // The built server when present (what operators run), else the sources through tsx.
  const entry = existsSync('dist/node/server/cli.js') ? ['dist/node/server/cli.js'] : ['--import', 'tsx', 'server/cli.ts'];
  const proc = spawn(process.execPath, [...entry, '--config', configPath, '--port', '0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    proc.once('exit', (code) => reject(new Error(`server exited with ${code} before listening`)));
  });
  proc.stdout!.resume();
  return {
    proc,
    url,
    rssKb() {
      const status = readFileSync(`/proc/${proc.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
    },
    stop: () =>
      new Promise((resolve) => {
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}

/** One protocol client socket carrying several instances. */
class Client {
  private nextId = 1;
  private pending = new Map<number, (f: ServerFrame) => void>();
  onKick: ((instId: number, at: number) => void) | null = null;
  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const at = performance.now();
      const frame = JSON.parse(data.toString()) as ServerFrame;
      if (frame.type === 'result') {
        this.pending.get(frame.id)?.(frame);
        this.pending.delete(frame.id);
      } else if (frame.type === 'kick') this.onKick?.(frame.instId, at);
    });
  }
  static async open(wsUrl: string): Promise<Client> {
    const ws = new WebSocket(wsUrl, { perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    const c = new Client(ws);
    await new Promise<void>((resolve) => {
      ws.once('message', () => resolve());
      ws.send(JSON.stringify({ type: 'hello', v: PROTOCOL_VERSION, client: 'bench' }));
    });
    return c;
  }
  request(frame: Record<string, unknown>): Promise<ServerFrame> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }
  async login(userID: string, userSig: string): Promise<number> {
    const r = await this.request({ type: 'login', sdkAppId: SDK_APP_ID, userID, userSig, platform: 'Web' });
    if (r.type !== 'result' || !r.ok) throw new Error(`login failed: ${JSON.stringify(r)}`);
    return (r.data as { instId: number }).instId;
  }
  close(): void {
    this.ws.terminate();
  }
}

async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        await fn(items[i]!, i);
      }
    }),
  );
}

async function rest(httpUrl: string, command: string, body: unknown, adminSig: string): Promise<void> {
  const q = new URLSearchParams({ sdkappid: String(SDK_APP_ID), identifier: ADMIN, usersig: adminSig, random: '1', contenttype: 'json' });
  const res = await fetch(`${httpUrl}/v4/${command}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  const reply = (await res.json()) as { ErrorCode: number };
  if (reply.ErrorCode !== 0) throw new Error(`REST ${command}: ${JSON.stringify(reply)}`);
}

export interface ScenarioResult {
  name: string;
  instancesPerSocket: number;
  instances: number;
  sockets: number;
  loginsPerSec: number;
  rssPerInstanceKb: number;
  restKick: Stats;
  loginKick: Stats;
}

async function scenario(name: string, perSocket: number): Promise<ScenarioResult> {
  const server = await startServer();
  const wsUrl = server.url.replace('http', 'ws') + '/ws';
  const adminSig = generateUserSig({ sdkAppId: SDK_APP_ID, key: KEY, identifier: ADMIN });
  const socketCount = Math.ceil(INSTANCES / perSocket);
  const users = Array.from({ length: INSTANCES }, (_, i) => `u${i}`);
  const sigs = users.map((u) => generateUserSig({ sdkAppId: SDK_APP_ID, key: KEY, identifier: u }));
  const rssBefore = server.rssKb();

  const clients: Client[] = [];
  const started = performance.now();
  await pool(Array.from({ length: socketCount }, (_, i) => i), INFLIGHT, async (s) => {
    const c = await Client.open(wsUrl);
    clients[s] = c;
    for (let k = 0; k < perSocket; k++) {
      const i = s * perSocket + k;
      if (i < INSTANCES) await c.login(users[i]!, sigs[i]!);
    }
  });
  const loginSecs = (performance.now() - started) / 1000;
  const rssAfter = server.rssKb();

  // REST kick → kick frame latency. Each kicked user's socket reports the arrival time.
  const restSamples: number[] = [];
  const kickTargets = Array.from({ length: KICKS }, (_, k) => Math.floor((k * INSTANCES) / KICKS));
  for (const i of kickTargets) {
    const c = clients[Math.floor(i / perSocket)]!;
    const got = new Promise<number>((resolve) => (c.onKick = (_id, at) => resolve(at)));
    const t0 = performance.now();
    await rest(server.url, 'im_open_login_svc/kick', { UserID: users[i] }, adminSig);
    restSamples.push((await got) - t0);
  }

  // Login-kick latency: a new login of user v (limit 1 on a fresh app setting) kicks the old one.
  await rest(server.url, 'tabchat_admin/set_login_settings', { MaxInstancesPerPlatform: 1 }, adminSig);
  const loginKickSamples: number[] = [];
  const extra = await Client.open(wsUrl);
  for (let k = 0; k < KICKS; k++) {
    const i = Math.floor(((k + 0.5) * INSTANCES) / KICKS);
    if (kickTargets.includes(i)) continue;
    const c = clients[Math.floor(i / perSocket)]!;
    const got = new Promise<number>((resolve) => (c.onKick = (_id, at) => resolve(at)));
    const t0 = performance.now();
    await extra.login(users[i]!, sigs[i]!);
    loginKickSamples.push((await got) - t0);
  }
  extra.close();
  for (const c of clients) c.close();
  await server.stop();
  return {
    name,
    instancesPerSocket: perSocket,
    instances: INSTANCES,
    sockets: socketCount,
    loginsPerSec: INSTANCES / loginSecs,
    rssPerInstanceKb: (rssAfter - rssBefore) / INSTANCES,
    restKick: stats(restSamples),
    loginKick: stats(loginKickSamples),
  };
}

export async function runServerBench(): Promise<ScenarioResult[]> {
  const naive = await scenario('naive: 1 socket per tab', 1);
  const shared = await scenario('tabchat: 10 tabs per socket', 10);
  return [naive, shared];
}

export function serverTable(results: ScenarioResult[]): string {
  const f = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
  const [base] = results;
  const lines = [
    '| scenario | instances | sockets | logins/s | RSS per instance (KB) | REST kick → kick p50 / p99 (ms) | login kick p50 / p99 (ms) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const ratio = base && r !== base ? ` (${f(r.loginsPerSec / base.loginsPerSec, 2)}×)` : '';
    const rssRatio = base && r !== base ? ` (${f(r.rssPerInstanceKb / base.rssPerInstanceKb, 2)}×)` : '';
    lines.push(
      `| ${r.name} | ${r.instances} | ${r.sockets} | ${f(r.loginsPerSec, 0)}${ratio} | ${f(r.rssPerInstanceKb)}${rssRatio} | ${f(r.restKick.p50, 2)} / ${f(r.restKick.p99, 2)} | ${f(r.loginKick.p50, 2)} / ${f(r.loginKick.p99, 2)} |`,
    );
  }
  return lines.join('\n');
}
