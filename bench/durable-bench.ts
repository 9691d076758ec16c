/**
 * Durable relay benchmark: messages relayed through the durable stores, with load clients
 * that acknowledge like the SDK (one `ack` per instance 200 ms after the first message it
 * has not acknowledged), each next to its baseline from the same run: the previous store
 * design (config `storeBatch.baseline`: sqlite commits on the event loop with a savepoint
 * per send and a transaction per ack; Postgres one transaction per send).
 *
 *  1. `sqlite:` (WAL, synchronous=FULL): the writer thread vs the baseline.
 *  2. Redis + Postgres, Postgres DURABLE (fsync, synchronous_commit and full_page_writes on):
 *     1 node batched vs 1 node baseline, and 2 nodes batched (sender on node 1, recipient
 *     on node 2).
 *
 * Each scenario: BENCH_DURABLE_INSTANCES (default 2,000) instances, 10 per socket, as pairs
 * (user i ↔ user i + N/2, both directions); offered rates BENCH_DURABLE_RATES (default
 * 5000,10000,20000,25000) for sqlite and BENCH_DURABLE_PG_RATES (default
 * 2500,5000,10000,15000) for Postgres, BENCH_RELAY_SECONDS each (the relay driver of
 * bench/server-bench.ts). Also measured, for the capacity model of docs/scaling.md: server
 * CPU per relayed message, Redis commands and bytes per message and per login (INFO
 * before/after), Postgres transactions, rows and WAL fsyncs per message (pg_stat_database,
 * pg_stat_wal before/after the relay).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pgLib from 'pg';
import { SqliteStore } from '../server/store-sqlite.js';
import { Redis } from 'ioredis';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../test/helpers/services.js';
import { Client, envList, fmt, loginAll, pp, runRelay, sleep, startServer, stats, type RelayStep, type ServerProc, type Slot } from './server-bench.js';

const INSTANCES = Number(process.env.BENCH_DURABLE_INSTANCES ?? 2000);
const PER_SOCKET = 10;
const SQLITE_RATES = envList('BENCH_DURABLE_RATES', '5000,10000,20000,25000');
const PG_RATES = envList('BENCH_DURABLE_PG_RATES', '2500,5000,10000,15000');
/** The SDK's ack delay (src/core/defaults.ts DEFAULT_ACK_DELAY_MS). */
const ACK_DELAY_MS = 200;

/** Counters of Redis and Postgres over a phase, divided by what the phase did. */
export interface ServiceCosts {
  redisCommands: number;
  redisBytesIn: number;
  redisBytesOut: number;
  pgCommits: number;
  pgRowsInserted: number;
  pgRowsUpdated: number;
  pgWalSyncs: number;
  pgWalBytes: number;
  /** Calls of tabchat_send_batch / tabchat_ack_batch (pg_stat_user_functions). */
  pgSendBatches: number;
  pgAckBatches: number;
}

export interface DurableScenario {
  name: string;
  store: 'sqlite' | 'postgres';
  baseline: boolean;
  nodes: number;
  instances: number;
  sockets: number;
  steps: RelayStep[];
  /** Per accepted message over the whole relay (Postgres scenarios). */
  perMessage?: ServiceCosts;
  /** Per login (Postgres scenarios: the login phase). */
  perLogin?: ServiceCosts;
  failed?: string;
}

/** The sqlite store alone, in this process: how fast it stores, and how long it blocks the event loop. */
export interface StoreOnlyResult {
  name: string;
  sends: number;
  acks: number;
  sendsPerSec: number;
  /** Event-loop delay while storing (ms): p99 and max. */
  loopDelayP99: number;
  loopDelayMax: number;
  /** Ticks of the 1 ms ticker (few: the loop was blocked most of the time). */
  loopSamples: number;
  batches: number;
}

const STORE_SENDS = Number(process.env.BENCH_STORE_SENDS ?? 40_000);
/** storeBatch.maxMessages of the store-alone rows (the server default, 256, unless BENCH_STORE_BATCH). */
const STORE_BATCH = Number(process.env.BENCH_STORE_BATCH ?? 256);

/**
 * STORE_SENDS sends (1,000 users, 2,000 in flight, like 2,000 clients each waiting for its
 * result) plus one ack per 4 sends, through a fresh `sqlite:` file (synchronous=FULL).
 */
export async function storeOnly(baseline: boolean): Promise<StoreOnlyResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-store-bench-'));
  const store = await SqliteStore.open(join(dir, 'bench.db'), { maxMessages: STORE_BATCH, maxWaitMs: 0, ...(baseline ? { baseline: true } : {}) });
  // A 1 ms ticker: each gap between ticks beyond 1 ms is time the event loop could not run
  // (monitorEventLoopDelay records nothing when the loop never comes round to its timer).
  const gaps: number[] = [];
  let last = performance.now();
  let ticking = true;
  const tick = () => {
    const now = performance.now();
    gaps.push(now - last - 1);
    last = now;
    if (ticking) setTimeout(tick, 1);
  };
  setTimeout(tick, 1);
  let next = 0;
  let acks = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: 2000 }, async () => {
      while (next < STORE_SENDS) {
        const i = next++;
        const from = `s${i % 1000}`;
        const r = await store.send({ id: `m${i}`, sdkAppId: 1, from, to: `s${(i + 500) % 1000}`, clientMsgId: `c${i}`, text: `store bench ${i}`, time: Date.now() });
        if (i % 4 === 0) {
          acks++;
          await store.ack(1, r.message.to, r.message.toSeq);
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  ticking = false;
  gaps.push(performance.now() - last - 1);
  const delay = stats(gaps.map((g) => Math.max(0, g)));
  const batches = store.stats.batches;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  return {
    name: baseline ? 'baseline: commit on the event loop, savepoint per send, transaction per ack' : 'writer thread, no savepoints, acks in the group commit',
    sends: STORE_SENDS,
    acks,
    sendsPerSec: STORE_SENDS / seconds,
    loopDelayP99: delay.p99,
    loopDelayMax: Math.max(...gaps),
    loopSamples: gaps.length,
    batches,
  };
}

export function storeOnlyTable(rows: StoreOnlyResult[]): string {
  const base = rows.find((r) => r.name.startsWith('baseline'));
  return [
    '| sqlite: store alone (synchronous=FULL) | sends | acks | sends stored/s | vs baseline | event-loop blocked: p99 / longest (ms) of a 1 ms ticker\'s gaps | ticks | group commits |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.name} | ${r.sends} | ${r.acks} | ${fmt(r.sendsPerSec, 0)} | ${base && r !== base ? `${fmt(r.sendsPerSec / base.sendsPerSec, 2)}×` : 'baseline'} | ${fmt(r.loopDelayP99, 1)} / ${fmt(r.loopDelayMax, 1)} | ${r.loopSamples} | ${r.batches} |`),
  ].join('\n');
}

export interface DurableBenchResult {
  storeOnly: StoreOnlyResult[];
  config: { instances: number; perSocket: number; sqliteRates: number[]; pgRates: number[]; postgres: string; ackDelayMs: number };
  scenarios: DurableScenario[];
  seconds: number;
}

const ZERO: ServiceCosts = { redisCommands: 0, redisBytesIn: 0, redisBytesOut: 0, pgCommits: 0, pgRowsInserted: 0, pgRowsUpdated: 0, pgWalSyncs: 0, pgWalBytes: 0, pgSendBatches: 0, pgAckBatches: 0 };

async function counters(redisUrl: string | null, pgUrl: string | null): Promise<ServiceCosts> {
  const out = { ...ZERO };
  if (redisUrl) {
    const r = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    await r.connect();
    const info = await r.info('stats');
    await r.quit();
    const field = (k: string) => Number(new RegExp(`^${k}:(\\d+)`, 'm').exec(info)?.[1] ?? NaN);
    out.redisCommands = field('total_commands_processed');
    out.redisBytesIn = field('total_net_input_bytes');
    out.redisBytesOut = field('total_net_output_bytes');
  }
  if (pgUrl) {
    const c = new pgLib.Client({ connectionString: pgUrl });
    await c.connect();
    const db = await c.query('SELECT xact_commit, tup_inserted, tup_updated FROM pg_stat_database WHERE datname = current_database()');
    const wal = await c.query('SELECT wal_sync, wal_bytes FROM pg_stat_wal');
    const fns = await c.query<{ funcname: string; calls: string }>('SELECT funcname, calls FROM pg_stat_user_functions');
    const calls = (name: string) => Number(fns.rows.find((r) => r.funcname === name)?.calls ?? 0);
    out.pgSendBatches = calls('tabchat_send_batch');
    out.pgAckBatches = calls('tabchat_ack_batch');
    await c.end();
    out.pgCommits = Number(db.rows[0].xact_commit);
    out.pgRowsInserted = Number(db.rows[0].tup_inserted);
    out.pgRowsUpdated = Number(db.rows[0].tup_updated);
    out.pgWalSyncs = Number(wal.rows[0].wal_sync);
    out.pgWalBytes = Number(wal.rows[0].wal_bytes);
  }
  return out;
}

function per(a: ServiceCosts, b: ServiceCosts, n: number): ServiceCosts {
  const o = { ...ZERO };
  for (const k of Object.keys(o) as Array<keyof ServiceCosts>) o[k] = n > 0 ? (b[k] - a[k]) / n : NaN;
  return o;
}

async function scenario(
  name: string,
  meta: Pick<DurableScenario, 'store' | 'baseline'>,
  servers: ServerProc[],
  rates: number[],
  services: { redisUrl: string | null; pgUrl: string | null },
): Promise<DurableScenario> {
  console.log(`durable bench: ${name}`);
  const [n1, n2 = n1] = servers as [ServerProc, ServerProc?];
  const half = INSTANCES / 2;
  // pg_stat counters are flushed by backends at transaction end / idle; a short pause lets them land.
  const c0 = await counters(services.redisUrl, services.pgUrl);
  const { slots, clients } = await loginAll(INSTANCES, PER_SOCKET, (i) => (i < half ? n1.wsUrl : n2!.wsUrl), 'd');
  await sleep(1000);
  const c1 = await counters(services.redisUrl, services.pgUrl);
  try {
    const pairs: Array<[Slot, Slot]> = Array.from({ length: half }, (_, i) => [slots[i]!, slots[i + half]!]);
    // One node: both directions. Two nodes: node 1 → node 2 only (every message crosses).
    const relayPairs = servers.length > 1 ? pairs : [...pairs, ...pairs.map(([a, b]) => [b, a] as [Slot, Slot])];
    Client.ackDelayMs = ACK_DELAY_MS;
    const steps = await runRelay(relayPairs, rates, () => servers.reduce((sum, s) => sum + s.cpuSeconds(), 0));
    await sleep(2000); // backends report their statistics at most once a second
    const c2 = await counters(services.redisUrl, services.pgUrl);
    const accepted = steps.reduce((n, s) => n + s.accepted, 0);
    const measured = services.redisUrl || services.pgUrl;
    return {
      name,
      ...meta,
      nodes: servers.length,
      instances: INSTANCES,
      sockets: clients.length,
      steps,
      ...(measured ? { perMessage: per(c1, c2, accepted), perLogin: per(c0, c1, INSTANCES) } : {}),
    };
  } finally {
    Client.ackDelayMs = null;
    for (const c of clients) c.close();
  }
}

export async function runDurableBench(): Promise<DurableBenchResult> {
  const started = performance.now();
  const config = { instances: INSTANCES, perSocket: PER_SOCKET, sqliteRates: SQLITE_RATES, pgRates: PG_RATES, postgres: '', ackDelayMs: ACK_DELAY_MS };
  const scenarios: DurableScenario[] = [];
  const storeRows = [await storeOnly(false), await storeOnly(true)];
  for (const r of storeRows) console.log(`durable bench: store alone, ${r.name}: ${r.sendsPerSec.toFixed(0)} sends/s, loop delay p99 ${r.loopDelayP99.toFixed(1)} max ${r.loopDelayMax.toFixed(1)} ms`);
  const run = async (name: string, meta: Pick<DurableScenario, 'store' | 'baseline'>, rates: number[], start: () => Promise<{ servers: ServerProc[]; redisUrl: string | null; pgUrl: string | null }>) => {
    const servers: ServerProc[] = [];
    try {
      const s = await start();
      servers.push(...s.servers);
      scenarios.push(await scenario(name, meta, servers, rates, s));
    } catch (err) {
      console.error(`durable bench: ${name} failed:`, err);
      scenarios.push({ name, ...meta, nodes: servers.length, instances: INSTANCES, sockets: 0, steps: [], failed: String(err instanceof Error ? err.message : err) });
    } finally {
      for (const s of servers) await s.stop();
    }
  };
  const sqlite = { store: 'sqlite' as const };
  await run('sqlite:, writer thread (this design)', { ...sqlite, baseline: false }, SQLITE_RATES, async () => ({ servers: [await startServer({ store: 'sqlite' })], redisUrl: null, pgUrl: null }));
  await run('sqlite:, baseline (commit on the event loop, savepoint per send, transaction per ack)', { ...sqlite, baseline: true }, SQLITE_RATES, async () => ({
    servers: [await startServer({ store: 'sqlite', storeBatch: { baseline: true } })],
    redisUrl: null,
    pgUrl: null,
  }));
  let redis: RedisServer | null = null;
  let pg: PostgresServer | null = null;
  try {
    [redis, pg] = await Promise.all([startRedis(), startPostgres({ durable: true })]);
    const c = new pgLib.Client({ connectionString: pg.url() });
    await c.connect();
    const v = await c.query<{ server_version: string; fsync: string; sc: string }>(
      "SELECT current_setting('server_version') AS server_version, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc",
    );
    await c.end();
    config.postgres = `PostgreSQL ${v.rows[0]!.server_version}, fsync=${v.rows[0]!.fsync}, synchronous_commit=${v.rows[0]!.sc}`;
    let db = 0;
    const cluster = async (nodes: number, baseline: boolean) => {
      const url = await pg!.createDatabase(`durable${db++}`);
      const prefix = `durable${db}:`;
      const servers: ServerProc[] = [];
      for (let k = 1; k <= nodes; k++) {
        servers.push(await startServer({ store: url, redis: redis!.url, redisPrefix: prefix, node: `durable-${k}`, ...(baseline ? { storeBatch: { baseline: true } } : {}) }));
      }
      return { servers, redisUrl: redis!.url, pgUrl: url };
    };
    const postgres = { store: 'postgres' as const };
    await run('1 node, Redis + Postgres (durable), batched (this design)', { ...postgres, baseline: false }, PG_RATES, () => cluster(1, false));
    await run('1 node, Redis + Postgres (durable), baseline (one transaction per send)', { ...postgres, baseline: true }, PG_RATES, () => cluster(1, true));
    await run('2 nodes, Redis + Postgres (durable), batched (node 1 → node 2)', { ...postgres, baseline: false }, PG_RATES, () => cluster(2, false));
  } catch (err) {
    console.error('durable bench: Redis/Postgres part failed:', err);
    scenarios.push({ name: 'Redis + Postgres', store: 'postgres', baseline: false, nodes: 0, instances: INSTANCES, sockets: 0, steps: [], failed: String(err instanceof Error ? err.message : err) });
  } finally {
    await pg?.close();
    await redis?.close();
  }
  return { storeOnly: storeRows, config, scenarios, seconds: (performance.now() - started) / 1000 };
}

/** The best step without loss, refusal or unanswered send (highest relayed msg/s), with `extra` also required. */
export function bestStep(s: DurableScenario | undefined, extra: (step: RelayStep) => boolean = () => true): RelayStep | undefined {
  return s?.steps.filter((x) => x.lost === 0 && x.rejected === 0 && x.accepted === x.sent && extra(x)).sort((a, b) => b.relayedPerSec - a.relayedPerSec)[0];
}

export const describeStep = (s: RelayStep | undefined, cpuPerMsg = true) =>
  s
    ? `${fmt(s.relayedPerSec, 0)} msg/s at ${s.offered} offered, send→stored p99 ${fmt(s.ack.p99)} ms, ${fmt(s.acks / s.seconds, 0)} acks/s` +
      (cpuPerMsg ? `, server ${fmt((s.serverCpu * 1e6) / s.relayedPerSec, 0)} µs CPU/msg` : '')
    : 'no loss-free step';

export interface Verdict {
  target: string;
  met: boolean;
  detail: string;
}

/** The issue's durable target lines (exact wording), each with the same-run baseline. */
export function durableTargets(r: DurableBenchResult): Verdict[] {
  const find = (store: string, baseline: boolean, nodes = 1) => r.scenarios.find((s) => s.store === store && s.baseline === baseline && s.nodes === nodes && !s.failed);
  const sq = find('sqlite', false);
  const sqBase = find('sqlite', true);
  const sqBest = bestStep(sq, (s) => s.ack.p99 < 50);
  const pgs = find('postgres', false);
  const pgBase = find('postgres', true);
  const pgBest = bestStep(pgs);
  const pg2 = find('postgres', false, 2);
  return [
    {
      target: 'over 20,000 relayed messages/s on one node, zero loss (store sqlite:, the durable default)',
      met: !!sqBest && sqBest.relayedPerSec > 20_000,
      detail:
        `synchronous=FULL, acking load client, send→stored p99 < 50 ms required: ` +
        (sqBest ? `best ${describeStep(sqBest)}` : `no loss-free step had p99 < 50 ms (best loss-free step: ${describeStep(bestStep(sq))})`) +
        `; baseline (previous design) best ${describeStep(bestStep(sqBase))}`,
    },
    {
      target: 'over 10,000 relayed messages/s, Redis + Postgres',
      met: !!pgBest && pgBest.relayedPerSec > 10_000,
      detail: `one node, Postgres durable (${r.config.postgres || 'not started'}), zero loss: best ${describeStep(pgBest)}; baseline (one transaction per send) best ${describeStep(bestStep(pgBase))}; also reported: 2 nodes ${describeStep(bestStep(pg2))}`,
    },
  ];
}

export function durableTable(r: DurableBenchResult): string {
  const f = fmt;
  const lines = [
    '| scenario | offered msg/s | sent msg/s | relayed msg/s | vs baseline | sent / accepted / delivered | lost | send → msg push p50 / p99 (ms) | send → stored p50 / p99 (ms) | acks sent/s | server CPU (cores) | server µs CPU / msg |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of r.scenarios) {
    if (s.failed) {
      lines.push(`| ${s.name} | failed: ${s.failed.split('\n')[0]} | | | | | | | | | | |`);
      continue;
    }
    const base = s.baseline ? undefined : r.scenarios.find((b) => b.baseline && b.store === s.store && !b.failed);
    for (const x of s.steps) {
      const b = base?.steps.find((y) => y.offered === x.offered);
      const ratio = b ? `${f(x.relayedPerSec / b.relayedPerSec, 2)}×` : s.baseline ? 'baseline' : '—';
      lines.push(
        `| ${s.name} (${s.instances} inst., ${s.sockets} sockets, ${s.nodes} node${s.nodes > 1 ? 's' : ''}) | ${x.offered} | ${f(x.sentPerSec, 0)} | ${f(x.relayedPerSec, 0)} | ${ratio} | ${x.sent} / ${x.accepted} / ${x.delivered} | ${x.lost} | ${pp(x.e2e)} | ${pp(x.ack)} | ${f(x.acks / x.seconds, 0)} | ${f(x.serverCpu, 2)} | ${f((x.serverCpu * 1e6) / x.relayedPerSec, 0)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** RSS per instance and per socket, from the two capacity rows (1 and 10 instances per socket). */
export function rssSplit(capacity: Array<{ instancesPerSocket: number; rssPerInstanceKb: number }>): { socketKb: number; instanceKb: number } | null {
  const one = capacity.find((c) => c.instancesPerSocket === 1);
  const ten = capacity.find((c) => c.instancesPerSocket === 10);
  if (!one || !ten) return null;
  // one = socket + instance; ten = socket / 10 + instance.
  const socketKb = ((one.rssPerInstanceKb - ten.rssPerInstanceKb) * 10) / 9;
  return { socketKb, instanceKb: one.rssPerInstanceKb - socketKb };
}

/** The capacity model's inputs in one list (docs/scaling.md re-derives the model from them). */
export function capacityInputs(r: DurableBenchResult, capacity: Array<{ instancesPerSocket: number; rssPerInstanceKb: number }>): string {
  const f = fmt;
  const cpuPerMsg = (s: DurableScenario | undefined) => {
    const b = bestStep(s);
    return b ? (b.serverCpu * 1e6) / b.relayedPerSec / (s!.nodes || 1) : NaN;
  };
  const find = (store: string, nodes: number) => r.scenarios.find((s) => s.store === store && !s.baseline && s.nodes === nodes && !s.failed);
  const sq = find('sqlite', 1);
  const pg1 = find('postgres', 1);
  const pg2 = find('postgres', 2);
  const rss = rssSplit(capacity);
  const m = pg2?.perMessage ?? pg1?.perMessage;
  const l = pg2?.perLogin ?? pg1?.perLogin;
  const batches = (c: ServiceCosts | undefined) => (c ? c.pgSendBatches : NaN);
  const lines = [
    '| input | measured | from |',
    '|---|---|---|',
    `| server CPU per relayed message, per node (µs) | ${f(cpuPerMsg(sq), 0)} (sqlite:) / ${f(cpuPerMsg(pg1), 0)} (Redis + Postgres, 1 node) / ${f(cpuPerMsg(pg2), 0)} (2 nodes: each message costs both nodes this much) | best loss-free step, server cores × 10⁶ ÷ relayed msg/s ÷ nodes |`,
    `| Redis commands per message / per login | ${f(m?.redisCommands ?? NaN, 2)} / ${f(l?.redisCommands ?? NaN, 2)} | ${pg2 ? '2-node' : '1-node'} scenario, INFO commandstats total |`,
    `| Redis bytes in + out per message / per login | ${f((m?.redisBytesIn ?? NaN) + (m?.redisBytesOut ?? NaN), 0)} / ${f((l?.redisBytesIn ?? NaN) + (l?.redisBytesOut ?? NaN), 0)} | INFO total_net_input_bytes + total_net_output_bytes |`,
    `| Postgres send batches per message (1 ÷ mean batch size) | ${f(batches(pg1?.perMessage), 4)} (1 node) / ${f(batches(pg2?.perMessage), 4)} (2 nodes) | pg_stat_user_functions calls of tabchat_send_batch |`,
    `| Postgres ack batches per message | ${f(pg1?.perMessage?.pgAckBatches ?? NaN, 4)} (1 node) / ${f(pg2?.perMessage?.pgAckBatches ?? NaN, 4)} (2 nodes) | pg_stat_user_functions calls of tabchat_ack_batch (the load clients ack like the SDK) |`,
    `| Postgres rows written per message (inserted + updated) | ${f((m?.pgRowsInserted ?? NaN) + (m?.pgRowsUpdated ?? NaN), 2)} | pg_stat_database, acks included |`,
    `| Postgres WAL fsyncs per message / per batch (send and ack batches) | ${f(m?.pgWalSyncs ?? NaN, 4)} / ${f((m?.pgWalSyncs ?? NaN) / ((m?.pgSendBatches ?? NaN) + (m?.pgAckBatches ?? NaN) || NaN), 2)} | pg_stat_wal wal_sync (other writes flush too) |`,
    `| Postgres WAL bytes per message | ${f(m?.pgWalBytes ?? NaN, 0)} | pg_stat_wal wal_bytes |`,
    `| server RSS per socket / per instance (KB) | ${rss ? `${f(rss.socketKb)} / ${f(rss.instanceKb)}` : 'n/a'} | the capacity rows (1 and 10 instances per socket), store memory |`,
  ];
  return lines.join('\n');
}

/** The measured inputs of the capacity model (docs/scaling.md), per scenario with services. */
export function costTable(r: DurableBenchResult): string {
  const f = fmt;
  const lines = [
    '| scenario | per message: Redis commands | Redis bytes in / out | Postgres transactions (reads included) | rows inserted / updated | WAL fsyncs | WAL bytes | per login: Redis commands | Redis bytes in / out | Postgres transactions |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const s of r.scenarios) {
    if (!s.perMessage || !s.perLogin) continue;
    const m = s.perMessage;
    const l = s.perLogin;
    lines.push(
      `| ${s.name} | ${f(m.redisCommands, 2)} | ${f(m.redisBytesIn, 0)} / ${f(m.redisBytesOut, 0)} | ${f(m.pgCommits, 3)} | ${f(m.pgRowsInserted, 2)} / ${f(m.pgRowsUpdated, 2)} | ${f(m.pgWalSyncs, 3)} | ${f(m.pgWalBytes, 0)} | ${f(l.redisCommands, 2)} | ${f(l.redisBytesIn, 0)} / ${f(l.redisBytesOut, 0)} | ${f(l.pgCommits, 3)} |`,
    );
  }
  return lines.join('\n');
}

// `node --import tsx bench/durable-bench.ts`: this part alone (npm run bench runs it with the rest).
if (process.argv[1] && import.meta.url === (await import('node:url')).pathToFileURL(process.argv[1]).href) {
  const r = await runDurableBench();
  console.log(`\n${r.config.postgres}\n\n${durableTargets(r).map((v) => `- ${v.target}: **${v.met ? 'met' : 'NOT met'}** (${v.detail}).`).join('\n')}\n\n${storeOnlyTable(r.storeOnly)}\n\n${durableTable(r)}\n\n${costTable(r)}\n\n${capacityInputs(r, [])}`);
  process.exit(0);
}
