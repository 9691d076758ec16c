/**
 * Server benchmark. Starts the real server in its own process (child) and drives it from
 * this process with protocol-level clients (ws), each figure next to its baseline from the
 * same run:
 *
 *  - naive: one WebSocket per instance (what a per-tab SDK costs the server);
 *  - tabchat: 10 instances per WebSocket (what one SharedWorker with 10 tabs costs).
 *
 * 1. Capacity (store `memory`): BENCH_INSTANCES (default 15,000: the largest round count
 *    under the ~19,000 sockets one process may hold with `ulimit -n` 20,000) logged in with
 *    real UserSig checks; logins/s, server RSS per instance, REST kick → kick-frame latency
 *    and login-kick (multipleAccount) latency with all of them logged in.
 * 2. Relay (stores `memory` and `sqlite:` = the default, WAL + synchronous=FULL):
 *    BENCH_RELAY_INSTANCES (default 10,000) logged in as pairs of users (user i ↔ user
 *    i + N/2, never on the same socket); C2C `send` frames at fixed offered rates
 *    (BENCH_RELAY_RATES, default 1000,5000,10000,20000,30000 msg/s — the last one above
 *    the 20k target, so a server that can relay more shows it —, BENCH_RELAY_SECONDS = 5 s
 *    each); end-to-end latency from the sender's timestamp (taken just before `ws.send`)
 *    to the recipient's `msg` push (both clocks = this process's `performance.now()`),
 *    send → `result` (stored) latency, sent / accepted / delivered counts, server CPU from
 *    /proc/<pid>/stat and this process's CPU (the load client shares the two cores).
 *    Bounded: at most max(1,000, rate / 5) sends are in flight (200 ms of the offered rate);
 *    a step stops offering after its duration and waits at most 15 s for the rest; once a
 *    step manages less than half its offered rate (saturated), the higher rates are skipped.
 *
 * Env: BENCH_INSTANCES, BENCH_KICKS (200), BENCH_INFLIGHT (200 sockets opening at once),
 * BENCH_RELAY_INSTANCES, BENCH_RELAY_RATES, BENCH_RELAY_SECONDS, BENCH_SOURCE_ADDRESSES
 * (4: client sockets bind 127.0.0.1..127.0.0.N, so ephemeral ports never run short).
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerFrame } from '../src/protocol/frames.js';
import { generateUserSig } from '../server/usersig.js';
import { BUILT_CLI, startCli, type CliServer } from '../test/helpers/cli.js';
import { RawClient } from '../test/helpers/raw-client.js';

const envInt = (name: string, dflt: number) => {
  const v = Number(process.env[name] ?? dflt);
  return Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
};
export const envList = (name: string, dflt: string) =>
  (process.env[name] ?? dflt)
    .split(',')
    .map(Number)
    .filter((n) => Number.isFinite(n) && n > 0);

const INSTANCES = envInt('BENCH_INSTANCES', 15_000);
export const KICKS = envInt('BENCH_KICKS', 200);
const INFLIGHT = envInt('BENCH_INFLIGHT', 200);
const RELAY_INSTANCES = envInt('BENCH_RELAY_INSTANCES', 10_000);
const RELAY_RATES = envList('BENCH_RELAY_RATES', '1000,5000,10000,20000,30000');
export const RELAY_SECONDS = envInt('BENCH_RELAY_SECONDS', 5);
const SOURCE_ADDRESSES = envInt('BENCH_SOURCE_ADDRESSES', 4);
export const SDK_APP_ID = 1400000001;
export const KEY = randomBytes(32).toString('hex');
export const ADMIN = 'administrator';
const CLK_TCK = 100; // getconf CLK_TCK on Linux

export interface Stats {
  p50: number;
  p99: number;
  n: number;
}

export function stats(samples: number[]): Stats {
  const s = Float64Array.from(samples).sort();
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99), n: s.length };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ server process

export interface ServerProc {
  proc: ChildProcess;
  url: string;
  wsUrl: string;
  rssKb(): number;
  /** utime + stime of the server process, in seconds. */
  cpuSeconds(): number;
  stop(): Promise<void>;
}

/** Every child still running when this process exits is killed (and its temp folder removed). */
const live = new Set<() => void>();
process.once('exit', () => {
  for (const f of live) f();
});

export function cpuSecondsOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): utime = field 14, stime = field 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

export interface ServerOptions {
  /** "memory", "sqlite" (a file in the server's temp folder) or a postgres:// URL. */
  store: string;
  redis?: string;
  redisPrefix?: string;
  node?: string;
  /** Config `storeBatch` (e.g. `{baseline: true}`: the previous store design). */
  storeBatch?: Record<string, unknown>;
}

/** Start the real server CLI in a child process with a bench config in a temp folder. */
export async function startServer(opts: ServerOptions = { store: 'memory' }): Promise<ServerProc> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-bench-'));
  const configPath = join(dir, 'config.json');
  const config: Record<string, unknown> = {
    apps: [{ sdkAppId: SDK_APP_ID, secretKey: KEY, adminIdentifier: ADMIN, maxInstancesPerPlatform: 1000, loginPolicy: 'multi' }],
    store: opts.store === 'sqlite' ? `sqlite:${join(dir, 'tabchat.db')}` : opts.store,
    logLevel: 'warn',
    maxConnections: 19_000,
    // One load client on a few addresses plays every user: the per-address and per-user limits are off.
    rateLimits: { loginFailuresPerIp: 1e9, framesPerSecond: 1e6, connectionsPerIp: 18_999, loginsPerIp: 1e9, loginsPerUser: 1e9, connectionsPerUser: 1e6, syncsPerSecond: 1e6 },
  };
  if (opts.redis) config.redis = opts.redis;
  if (opts.redisPrefix) config.redisPrefix = opts.redisPrefix;
  if (opts.storeBatch) config.storeBatch = opts.storeBatch;
  writeFileSync(configPath, JSON.stringify(config));
  const args = ['--config', configPath, '--port', '0'];
  if (opts.node) args.push('--node', opts.node);
  let server: CliServer | undefined;
  const cleanup = () => {
    if (server && server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  live.add(cleanup);
  try {
    // The built server when present (what operators run), else the sources through tsx.
    server = await startCli(args, { entry: existsSync(BUILT_CLI) ? 'built' : 'sources', stderr: 'inherit' });
  } catch (err) {
    cleanup();
    live.delete(cleanup);
    throw err;
  }
  const cli = server;
  const { child } = cli;
  return {
    proc: child,
    url: cli.httpUrl,
    wsUrl: cli.wsUrl,
    rssKb() {
      const status = readFileSync(`/proc/${child.pid}/status`, 'utf8');
      return Number(/VmRSS:\s+(\d+)/.exec(status)![1]);
    },
    cpuSeconds: () => cpuSecondsOf(child.pid!),
    stop: async () => {
      await cli.stop('SIGTERM', 15_000);
      cleanup();
      live.delete(cleanup);
    },
  };
}

// ------------------------------------------------------------------ protocol client

/** Counters of one relay step, shared by every client. */
export class RelaySink {
  sent = 0;
  accepted = 0;
  rejected = 0;
  delivered = 0;
  /** Pushes of an earlier step that arrived late, or duplicates. */
  stray = 0;
  lastDeliveryAt = 0;
  e2e: number[] = [];
  ack: number[] = [];
  codes = new Map<number, number>();
  /** `ack` frames the load client sent (acking clients only). */
  acks = 0;
  constructor(readonly tag: string) {}
}

let sourceIndex = 0;
/** The next client source address, 127.0.0.1 .. 127.0.0.N round-robin. */
export function nextSource(): string {
  return `127.0.0.${1 + (sourceIndex++ % SOURCE_ADDRESSES)}`;
}

/** One protocol client socket carrying one or several instances (the shared raw client, recording nothing). */
export class Client {
  /** Relay sends in flight: request id → timestamp. */
  private sends = new Map<number, number>();
  onKick: ((instId: number, at: number) => void) | null = null;
  static sink: RelaySink | null = null;
  /**
   * Ack like the SDK does (null: never ack, the old load client): each instance sends one
   * `ack` of its highest seq this long after the first message it has not acknowledged
   * (DEFAULT_ACK_DELAY_MS = 200 in src/core/defaults.ts: one ack per burst).
   */
  static ackDelayMs: number | null = null;
  /** Per instance: highest seq received, and whether its ack is scheduled. */
  private positions = new Map<number, { seq: number; timer: NodeJS.Timeout | null }>();
  private constructor(readonly raw: RawClient) {
    raw.onFrame = (frame, at) => this.rawOnFrame(frame, at);
  }
  static async open(wsUrl: string, localAddress?: string): Promise<Client> {
    return new Client(await RawClient.connect(wsUrl, { client: 'bench', record: false, ...(localAddress ? { localAddress } : {}) }));
  }
  private rawOnFrame(frame: ServerFrame, at: number): void {
    switch (frame.type) {
      case 'msg': {
        const sink = Client.sink;
        if (Client.ackDelayMs !== null) this.position(frame.instId, frame.message.seq);
        if (frame.message.flow !== 'in' || !sink) return;
        const bar = frame.message.text.indexOf('|');
        if (frame.message.text.slice(0, bar) !== sink.tag) return void sink.stray++;
        sink.delivered++;
        sink.lastDeliveryAt = at;
        sink.e2e.push(at - Number(frame.message.text.slice(bar + 1)));
        return;
      }
      case 'result': {
        const t0 = this.sends.get(frame.id);
        if (t0 === undefined) return; // a request's result: RawClient resolved it
        this.sends.delete(frame.id);
        const sink = Client.sink;
        if (!sink) return;
        if (frame.ok) {
          sink.accepted++;
          sink.ack.push(at - t0);
        } else {
          sink.rejected++;
          sink.codes.set(frame.code, (sink.codes.get(frame.code) ?? 0) + 1);
        }
        return;
      }
      case 'kick':
        this.onKick?.(frame.instId, at);
        return;
    }
  }
  private position(instId: number, seq: number): void {
    let p = this.positions.get(instId);
    if (!p) this.positions.set(instId, (p = { seq: 0, timer: null }));
    p.seq = Math.max(p.seq, seq);
    if (p.timer || Client.ackDelayMs === null) return;
    const pos = p;
    pos.timer = setTimeout(() => {
      pos.timer = null;
      if (this.raw.closed) return;
      this.raw.send(`{"type":"ack","instId":${instId},"seq":${pos.seq}}`);
      if (Client.sink) Client.sink.acks++;
    }, Client.ackDelayMs);
  }
  async login(userID: string, userSig: string): Promise<number> {
    const r = (await this.raw.request({ type: 'login', sdkAppId: SDK_APP_ID, userID, userSig, platform: 'Web' }, 120_000)) as ServerFrame;
    if (r.type !== 'result' || !r.ok) throw new Error(`login failed: ${JSON.stringify(r)}`);
    return (r.data as { instId: number }).instId;
  }
  /** A relay `send`: the text carries the sink's tag and the send timestamp. */
  sendMessage(instId: number, to: string, tag: string, seq: number): void {
    const id = this.raw.requestId();
    const t0 = performance.now();
    this.sends.set(id, t0);
    this.raw.send(`{"type":"send","id":${id},"instId":${instId},"clientMsgId":"${tag}-${seq}","to":"${to}","text":"${tag}|${t0}"}`);
  }
  close(): void {
    for (const p of this.positions.values()) if (p.timer) clearTimeout(p.timer);
    this.raw.terminate();
  }
}

export async function pool<T>(items: T[], limit: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
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

export async function rest(httpUrl: string, command: string, body: unknown, adminSig: string): Promise<void> {
  const q = new URLSearchParams({ sdkappid: String(SDK_APP_ID), identifier: ADMIN, usersig: adminSig, random: '1', contenttype: 'json' });
  const res = await fetch(`${httpUrl}/v4/${command}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  const reply = (await res.json()) as { ErrorCode: number };
  if (reply.ErrorCode !== 0) throw new Error(`REST ${command}: ${JSON.stringify(reply)}`);
}

export const adminSig = () => generateUserSig({ sdkAppId: SDK_APP_ID, key: KEY, identifier: ADMIN });

/** One logged-in instance. */
export interface Slot {
  user: string;
  sig: string;
  client: Client;
  instId: number;
}

/**
 * Log in `count` users (`prefix` + index) with `perSocket` instances per socket;
 * `wsUrlFor(i)` picks the node of user i's socket. Returns the slots and the seconds taken.
 */
export async function loginAll(count: number, perSocket: number, wsUrlFor: (i: number) => string, prefix = 'u'): Promise<{ slots: Slot[]; clients: Client[]; seconds: number }> {
  const users = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const sigs = users.map((u) => generateUserSig({ sdkAppId: SDK_APP_ID, key: KEY, identifier: u }));
  const slots: Slot[] = new Array(count);
  const clients: Client[] = [];
  const socketCount = Math.ceil(count / perSocket);
  const started = performance.now();
  await pool(Array.from({ length: socketCount }, (_, i) => i), INFLIGHT, async (s) => {
    const c = await Client.open(wsUrlFor(s * perSocket), nextSource());
    clients[s] = c;
    for (let k = 0; k < perSocket; k++) {
      const i = s * perSocket + k;
      if (i < count) slots[i] = { user: users[i]!, sig: sigs[i]!, client: c, instId: await c.login(users[i]!, sigs[i]!) };
    }
  });
  return { slots, clients, seconds: (performance.now() - started) / 1000 };
}

export interface KickResult {
  restKick: Stats;
  loginKick: Stats;
}

/**
 * REST kick (on `restUrl`) → kick frame latency over KICKS slots spread over `slots`; then,
 * with the limit set to 1, a new login (over a socket to `loginWsUrl`) of another KICKS
 * slots' users → the old instance's kick frame (multipleAccount).
 */
export async function measureKicks(slots: Slot[], restUrl: string, loginWsUrl: string, kicks = KICKS): Promise<KickResult> {
  const sig = adminSig();
  const n = slots.length;
  const restSamples: number[] = [];
  const kickTargets = new Set<number>();
  for (let k = 0; k < kicks; k++) {
    const i = Math.floor((k * n) / kicks);
    kickTargets.add(i);
    const slot = slots[i]!;
    const got = new Promise<number>((resolve) => (slot.client.onKick = (id, at) => id === slot.instId && resolve(at)));
    const t0 = performance.now();
    await rest(restUrl, 'im_open_login_svc/kick', { UserID: slot.user }, sig);
    restSamples.push((await got) - t0);
  }
  await rest(restUrl, 'tabchat_admin/set_login_settings', { MaxInstancesPerPlatform: 1 }, sig);
  const loginKickSamples: number[] = [];
  const extra = await Client.open(loginWsUrl);
  for (let k = 0; k < kicks; k++) {
    const i = Math.floor(((k + 0.5) * n) / kicks);
    if (kickTargets.has(i)) continue;
    const slot = slots[i]!;
    const got = new Promise<number>((resolve) => (slot.client.onKick = (id, at) => id === slot.instId && resolve(at)));
    const t0 = performance.now();
    await extra.login(slot.user, slot.sig);
    loginKickSamples.push((await got) - t0);
  }
  extra.close();
  for (const s of slots) s.client.onKick = null;
  return { restKick: stats(restSamples), loginKick: stats(loginKickSamples) };
}

// ------------------------------------------------------------------ relay

export interface RelayStep {
  offered: number;
  seconds: number;
  /** Frames actually sent per second (below `offered` when the client or the in-flight cap held it back). */
  sentPerSec: number;
  sent: number;
  accepted: number;
  rejected: number;
  delivered: number;
  /** accepted − delivered after the drain. */
  lost: number;
  /** Delivered messages per second, from the first send to the last delivery. */
  relayedPerSec: number;
  e2e: Stats;
  ack: Stats;
  /** Cores used by the server process(es) while sending (summed over nodes). */
  serverCpu: number;
  /** Cores used by this (load client) process. */
  clientCpu: number;
  codes: Record<string, number>;
  /** `ack` frames the load client sent during the step (0 unless {@link Client.ackDelayMs}). */
  acks: number;
}

let relayRun = 0;

/**
 * Drive `pairs` (sender slot → recipient slot) at each offered rate for RELAY_SECONDS;
 * messages go round-robin over the pairs. `cpu()` reads the server CPU seconds.
 */
export async function runRelay(pairs: Array<[Slot, Slot]>, rates: number[], cpu: () => number): Promise<RelayStep[]> {
  const steps: RelayStep[] = [];
  let next = 0;
  for (const rate of rates) {
    const prev = steps[steps.length - 1];
    if (prev && prev.sentPerSec < prev.offered / 2) {
      console.log(`  relay ${rate}/s: skipped (saturated at ${prev.offered}/s)`);
      continue;
    }
    const sink = new RelaySink(`r${relayRun++}`);
    Client.sink = sink;
    const cap = Math.max(1000, Math.floor(rate / 5)); // 200 ms of the offered rate
    const durationMs = RELAY_SECONDS * 1000;
    const cpu0 = cpu();
    const ccpu0 = process.cpuUsage();
    const t0 = performance.now();
    let due0 = 0; // messages dropped from the schedule because the client fell behind
    for (;;) {
      const elapsed = performance.now() - t0;
      if (elapsed >= durationMs) break;
      let due = Math.floor((rate * elapsed) / 1000) - due0;
      // More than 100 ms behind: the client cannot keep up; drop that part of the schedule.
      const behind = due - sink.sent - rate / 10;
      if (behind > 0) {
        due0 += behind;
        due -= behind;
      }
      while (sink.sent < due && sink.sent - sink.accepted - sink.rejected < cap) {
        const [from, to] = pairs[next++ % pairs.length]!;
        from.client.sendMessage(from.instId, to.user, sink.tag, sink.sent++);
      }
      await sleep(1);
    }
    const sendSeconds = (performance.now() - t0) / 1000;
    const cpu1 = cpu();
    const ccpu = process.cpuUsage(ccpu0);
    // Drain: every send answered and every accepted message delivered, at most 15 s.
    const drainUntil = performance.now() + 15_000;
    while (performance.now() < drainUntil && (sink.accepted + sink.rejected < sink.sent || sink.delivered < sink.accepted)) await sleep(5);
    Client.sink = null;
    const step: RelayStep = {
      offered: rate,
      seconds: sendSeconds,
      sentPerSec: sink.sent / sendSeconds,
      sent: sink.sent,
      accepted: sink.accepted,
      rejected: sink.rejected,
      delivered: sink.delivered,
      lost: sink.accepted - sink.delivered,
      relayedPerSec: sink.delivered / (Math.max(sink.lastDeliveryAt - t0, 1) / 1000),
      e2e: stats(sink.e2e),
      ack: stats(sink.ack),
      serverCpu: (cpu1 - cpu0) / sendSeconds,
      clientCpu: (ccpu.user + ccpu.system) / 1e6 / sendSeconds,
      codes: Object.fromEntries(sink.codes),
      acks: sink.acks,
    };
    console.log(
      `  relay ${rate}/s: sent ${step.sent} accepted ${step.accepted} delivered ${step.delivered} (${step.relayedPerSec.toFixed(0)}/s), ` +
        `e2e p50 ${step.e2e.p50.toFixed(1)} p99 ${step.e2e.p99.toFixed(1)} ms, server ${step.serverCpu.toFixed(2)} core, client ${step.clientCpu.toFixed(2)} core`,
    );
    steps.push(step);
    await sleep(500);
  }
  return steps;
}

// ------------------------------------------------------------------ scenarios

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

async function capacityScenario(name: string, perSocket: number): Promise<ScenarioResult> {
  const server = await startServer({ store: 'memory' });
  try {
    const rssBefore = server.rssKb();
    const { slots, clients, seconds } = await loginAll(INSTANCES, perSocket, () => server.wsUrl);
    await sleep(500);
    const rssAfter = server.rssKb();
    const kicks = await measureKicks(slots, server.url, server.wsUrl);
    for (const c of clients) c.close();
    const r: ScenarioResult = {
      name,
      instancesPerSocket: perSocket,
      instances: INSTANCES,
      sockets: clients.length,
      loginsPerSec: INSTANCES / seconds,
      rssPerInstanceKb: (rssAfter - rssBefore) / INSTANCES,
      ...kicks,
    };
    console.log(`server bench: ${name}: ${r.loginsPerSec.toFixed(0)} logins/s, ${r.rssPerInstanceKb.toFixed(1)} KB/instance, kick p99 ${r.restKick.p99.toFixed(1)} / ${r.loginKick.p99.toFixed(1)} ms`);
    return r;
  } finally {
    await server.stop();
  }
}

export interface RelayResult {
  name: string;
  store: string;
  instancesPerSocket: number;
  instances: number;
  sockets: number;
  steps: RelayStep[];
}

/** Pairs user i → user i + N/2 (different sockets in both layouts). */
export function halfPairs(slots: Slot[]): Array<[Slot, Slot]> {
  const half = Math.floor(slots.length / 2);
  return Array.from({ length: half }, (_, i) => [slots[i]!, slots[i + half]!] as [Slot, Slot]);
}

async function relayScenario(store: 'memory' | 'sqlite', perSocket: number): Promise<RelayResult> {
  const name = `${store === 'sqlite' ? 'sqlite (default)' : 'memory'}, ${perSocket === 1 ? 'naive: 1 socket per instance' : `tabchat: ${perSocket} per socket`}`;
  console.log(`server bench: relay ${name}`);
  const server = await startServer({ store });
  try {
    const { slots, clients } = await loginAll(RELAY_INSTANCES, perSocket, () => server.wsUrl);
    // Both directions of each pair: the first half sends to the second, then the other way.
    const pairs = halfPairs(slots);
    const both = [...pairs, ...pairs.map(([a, b]) => [b, a] as [Slot, Slot])];
    const steps = await runRelay(both, RELAY_RATES, () => server.cpuSeconds());
    for (const c of clients) c.close();
    return { name, store, instancesPerSocket: perSocket, instances: RELAY_INSTANCES, sockets: clients.length, steps };
  } finally {
    await server.stop();
  }
}

export interface ServerBenchResult {
  config: { instances: number; kicks: number; relayInstances: number; relayRates: number[]; relaySeconds: number; sourceAddresses: number };
  capacity: ScenarioResult[];
  relay: RelayResult[];
  seconds: number;
}

export async function runServerBench(): Promise<ServerBenchResult> {
  const started = performance.now();
  const capacity = [await capacityScenario('naive: 1 socket per instance', 1), await capacityScenario('tabchat: 10 instances per socket', 10)];
  const relay: RelayResult[] = [];
  for (const store of ['memory', 'sqlite'] as const) {
    for (const perSocket of [1, 10]) relay.push(await relayScenario(store, perSocket));
  }
  return {
    config: { instances: INSTANCES, kicks: KICKS, relayInstances: RELAY_INSTANCES, relayRates: RELAY_RATES, relaySeconds: RELAY_SECONDS, sourceAddresses: SOURCE_ADDRESSES },
    capacity,
    relay,
    seconds: (performance.now() - started) / 1000,
  };
}

// ------------------------------------------------------------------ report

export const fmt = (n: number, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : 'n/a');
export const pp = (s: Stats, d = 1) => `${fmt(s.p50, d)} / ${fmt(s.p99, d)}`;

export function serverTable(results: ScenarioResult[]): string {
  const f = fmt;
  const [base] = results;
  const lines = [
    '| scenario | instances | sockets | logins/s | RSS per instance (KB) | REST kick → kick p50 / p99 (ms) | login kick p50 / p99 (ms) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    const ratio = base && r !== base ? ` (${f(r.loginsPerSec / base.loginsPerSec, 2)}×)` : '';
    const rssRatio = base && r !== base ? ` (${f(r.rssPerInstanceKb / base.rssPerInstanceKb, 2)}×)` : '';
    lines.push(
      `| ${r.name} | ${r.instances} | ${r.sockets} | ${f(r.loginsPerSec, 0)}${ratio} | ${f(r.rssPerInstanceKb)}${rssRatio} | ${pp(r.restKick, 2)} | ${pp(r.loginKick, 2)} |`,
    );
  }
  return lines.join('\n');
}

/** One row per step of every relay result. */
export function relayTable(results: Array<{ name: string; sockets: number; instances: number; steps: RelayStep[] }>): string {
  const f = fmt;
  const lines = [
    '| scenario | offered msg/s | sent msg/s | relayed msg/s | sent / accepted / delivered | lost | send → msg push p50 / p99 (ms) | send → stored result p50 / p99 (ms) | server CPU (cores) | load client CPU (cores) |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of results) {
    for (const s of r.steps) {
      const codes = Object.keys(s.codes).length ? ` (refused: ${Object.entries(s.codes).map(([c, n]) => `${c}×${n}`).join(', ')})` : '';
      lines.push(
        `| ${r.name} (${r.instances} inst., ${r.sockets} sockets) | ${s.offered} | ${f(s.sentPerSec, 0)} | ${f(s.relayedPerSec, 0)} | ${s.sent} / ${s.accepted} / ${s.delivered}${codes} | ${s.lost} | ${pp(s.e2e)} | ${pp(s.ack)} | ${f(s.serverCpu, 2)} | ${f(s.clientCpu, 2)} |`,
      );
    }
  }
  return lines.join('\n');
}
