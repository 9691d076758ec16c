/**
 * Scale-out benchmark: two server nodes (child processes, CLI `--node`) on a private
 * redis-server and PostgreSQL (test/helpers/services.ts: temp folders, free ports, Postgres
 * with fsync=off, stopped at the end), compared in the same run with
 *
 *  - the same Redis + Postgres config with ONE node (every instance on it), and
 *  - the embedded single-node default (no Redis, store `sqlite:` = the default).
 *
 * BENCH_CLUSTER_INSTANCES (default 4,000; one socket each) log in, users u0..u(N/2−1) on
 * node 1 and the rest on node 2. Measured:
 *  - REST kick on node 2 of a user whose instance is on node 1 → its kick frame;
 *  - login on node 2 (limit 1 per platform) of a user whose instance is on node 1 → the old
 *    instance's kick frame (multipleAccount);
 *  - relay: sender on node 1 → recipient on node 2 (user i → user i + N/2), offered rates
 *    BENCH_CLUSTER_RATES (default 1000,2500,5000 msg/s, BENCH_RELAY_SECONDS each), the same
 *    figures as the single-node relay (bench/server-bench.ts).
 * Everything (four or five processes plus this one) shares the machine's two cores.
 */
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../test/helpers/services.js';
import {
  KICKS,
  envList,
  fmt,
  halfPairs,
  loginAll,
  measureKicks,
  pp,
  relayTable,
  runRelay,
  sleep,
  startServer,
  type RelayStep,
  type ServerProc,
  type Stats,
} from './server-bench.js';

const INSTANCES = Number(process.env.BENCH_CLUSTER_INSTANCES ?? 4000);
const RATES = envList('BENCH_CLUSTER_RATES', '1000,2500,5000');

export interface ClusterScenario {
  name: string;
  nodes: number;
  instances: number;
  sockets: number;
  loginsPerSec: number;
  restKick: Stats;
  loginKick: Stats;
  steps: RelayStep[];
  failed?: string;
}

export interface ClusterBenchResult {
  config: { instances: number; rates: number[]; kicks: number; postgres: string };
  scenarios: ClusterScenario[];
  seconds: number;
  skipped?: string;
}

async function scenario(name: string, servers: ServerProc[]): Promise<ClusterScenario> {
  console.log(`cluster bench: ${name}`);
  const [n1, n2 = n1] = servers as [ServerProc, ServerProc?];
  const half = Math.floor(INSTANCES / 2);
  const { slots, clients, seconds } = await loginAll(INSTANCES, 1, (i) => (i < half ? n1.wsUrl : n2!.wsUrl), 'c');
  const cpu = () => servers.reduce((sum, s) => sum + s.cpuSeconds(), 0);
  try {
    // Relay first (the kicks below remove instances): node 1 → node 2.
    const steps = await runRelay(halfPairs(slots), RATES, cpu);
    // Kick targets: users on node 1; REST call and new logins on node 2.
    const kicks = await measureKicks(slots.slice(0, half), n2!.url, n2!.wsUrl);
    console.log(`  kicks: REST p50/p99 ${pp(kicks.restKick, 2)} ms, login ${pp(kicks.loginKick, 2)} ms`);
    return { name, nodes: servers.length, instances: INSTANCES, sockets: clients.length, loginsPerSec: INSTANCES / seconds, ...kicks, steps };
  } finally {
    for (const c of clients) c.close();
  }
}

export async function runClusterBench(): Promise<ClusterBenchResult> {
  const started = performance.now();
  const config = { instances: INSTANCES, rates: RATES, kicks: KICKS, postgres: '' };
  let redis: RedisServer | null = null;
  let pg: PostgresServer | null = null;
  const scenarios: ClusterScenario[] = [];
  const run = async (name: string, start: () => Promise<ServerProc[]>) => {
    const servers: ServerProc[] = [];
    try {
      servers.push(...(await start()));
      scenarios.push(await scenario(name, servers));
    } catch (err) {
      console.error(`cluster bench: ${name} failed:`, err);
      scenarios.push({ name, nodes: servers.length, instances: INSTANCES, sockets: 0, loginsPerSec: NaN, restKick: { p50: NaN, p99: NaN, n: 0 }, loginKick: { p50: NaN, p99: NaN, n: 0 }, steps: [], failed: String(err instanceof Error ? err.message : err) });
    } finally {
      for (const s of servers) await s.stop();
      await sleep(500);
    }
  };
  try {
    try {
      [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
    } catch (err) {
      return { config, scenarios, seconds: 0, skipped: `no Redis/Postgres: ${err instanceof Error ? err.message : String(err)}` };
    }
    const version = await (async () => {
      const { default: pgLib } = await import('pg');
      const c = new pgLib.Client({ connectionString: pg!.url() });
      await c.connect();
      const r = await c.query<{ server_version: string }>('SHOW server_version');
      await c.end();
      return r.rows[0]?.server_version ?? '?';
    })();
    config.postgres = version;
    let db = 0;
    // Each scenario: a fresh database and Redis prefix.
    const cluster = async (nodes: number) => {
      const url = await pg!.createDatabase(`bench${db++}`);
      const prefix = `bench${db}:`;
      const out: ServerProc[] = [];
      for (let k = 1; k <= nodes; k++) out.push(await startServer({ store: url, redis: redis!.url, redisPrefix: prefix, node: `bench-${k}` }));
      return out;
    };
    await run('2 nodes, Redis + Postgres (node 1 → node 2)', () => cluster(2));
    await run('1 node, Redis + Postgres', () => cluster(1));
    await run('1 node, embedded default (sqlite:)', async () => [await startServer({ store: 'sqlite' })]);
  } finally {
    await pg?.close();
    await redis?.close();
  }
  return { config, scenarios, seconds: (performance.now() - started) / 1000 };
}

export function clusterTables(r: ClusterBenchResult): string {
  if (r.skipped) return `Skipped: ${r.skipped}.`;
  const base = r.scenarios.find((s) => s.nodes === 1 && s.name.includes('Redis'));
  const ratio = (v: number, b: number | undefined) => (b && Number.isFinite(v) && Number.isFinite(b) && b > 0 ? ` (${(v / b).toFixed(2)}×)` : '');
  const lines = [
    '| scenario | instances | logins/s | REST kick (on node 2) → kick frame p50 / p99 (ms) | login on node 2 → kick frame p50 / p99 (ms) |',
    '|---|---|---|---|---|',
    ...r.scenarios.map((s) =>
      s.failed
        ? `| ${s.name} | ${s.instances} | failed: ${s.failed.split('\n')[0]} | | |`
        : `| ${s.name} | ${s.instances} | ${fmt(s.loginsPerSec, 0)}${s === base ? '' : ratio(s.loginsPerSec, base?.loginsPerSec)} | ${pp(s.restKick, 2)} | ${pp(s.loginKick, 2)} |`,
    ),
    '',
    relayTable(r.scenarios.filter((s) => !s.failed)),
  ];
  return lines.join('\n');
}
