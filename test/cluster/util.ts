/**
 * Helpers of the cluster suite (not a test file): one private Redis and one private Postgres
 * per test file, and per test a cluster of N in-process server nodes on them with their own
 * Redis key prefix and their own database (tests never see each other's data). A node can
 * also be a separate `tabchat-server` process (to be killed for real).
 */
import { after, type TestContext } from 'node:test';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../helpers/services.js';
import { startTestServer, type TestAppOptions, type TestServer, type TestServerOptions } from '../helpers/server.js';
import { generateUserSig } from '../../server/usersig.js';
import type { LoginPolicy } from '../../server/config.js';

export { until, RawClient } from '../helpers/raw-client.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface Services {
  redis: RedisServer;
  pg: PostgresServer;
}

let services: Promise<Services> | null = null;

// Registered while the test file loads, so it runs after the file's last test (an after()
// registered inside a test would run after that test).
after(async () => {
  if (!services) return;
  const s = await services.catch(() => null);
  if (s) await Promise.allSettled([s.redis.close(), s.pg.close()]);
});

/** This file's Redis and Postgres (started on first use, stopped when the file's tests end). */
export function sharedServices(): Promise<Services> {
  services ??= (async () => {
    const [redis, pg] = await Promise.all([startRedis(), startPostgres()]);
    return { redis, pg };
  })();
  return services;
}

/** Liveness settings of the test clusters: a dead node is found within ~1.5 s. */
export const FAST_LIVENESS = { nodeHeartbeatMs: 200, nodeTimeoutMs: 1_200 };

export interface ClusterOptions extends TestServerOptions {
  nodes?: number;
}

export interface TestCluster {
  services: Services;
  nodes: TestServer[];
  sdkAppId: number;
  secretKey: string;
  /** Redis key prefix of this test's cluster. */
  prefix: string;
  /** This test's database. */
  store: string;
  /** Options the nodes were started with (to start more, e.g. as a process). */
  serverOptions: TestServerOptions;
  app: TestAppOptions;
  sig(userID: string, opts?: { expire?: number; time?: number }): string;
  /** Start one more in-process node. */
  addNode(node: string): Promise<TestServer>;
}

let counter = 0;

/** A cluster of in-process nodes `node1`… on this file's Redis and a fresh database; closed after the test. */
export async function startCluster(t: TestContext, app: TestAppOptions = {}, opts: ClusterOptions = {}): Promise<TestCluster> {
  const svc = await sharedServices();
  const n = ++counter;
  const prefix = `t${n}-${randomBytes(2).toString('hex')}:`;
  const store = await svc.pg.createDatabase(`t${n}_${randomBytes(3).toString('hex')}`);
  const secretKey = randomBytes(32).toString('hex');
  const sdkAppId = app.sdkAppId ?? 1400000001;
  const fullApp: TestAppOptions = { ...app, secretKey, sdkAppId };
  const { nodes: count = 3, ...rest } = opts;
  const serverOptions: TestServerOptions = { ...FAST_LIVENESS, ...rest, store, redis: svc.redis.url, redisPrefix: prefix };
  const nodes: TestServer[] = [];
  t.after(async () => {
    await Promise.allSettled(nodes.map((s) => s.close()));
  });
  const addNode = async (node: string) => {
    const server = await startTestServer(fullApp, { ...serverOptions, node });
    nodes.push(server);
    return server;
  };
  for (let i = 1; i <= count; i++) await addNode(`node${i}`);
  return {
    services: svc,
    nodes,
    sdkAppId,
    secretKey,
    prefix,
    store,
    serverOptions,
    app: fullApp,
    sig: (userID, o = {}) =>
      generateUserSig({ sdkAppId, key: secretKey, identifier: userID, expire: o.expire ?? 86_400, ...(o.time !== undefined ? { time: o.time } : {}) }),
    addNode,
  };
}

export interface ProcessNode {
  readonly wsUrl: string;
  readonly httpUrl: string;
  readonly process: ChildProcess;
  /** SIGKILL: the node dies without a word (no close frames, no Redis cleanup). */
  kill(): Promise<void>;
}

/** Run a node as a separate `tabchat-server` process (from source) of `cluster`. */
export async function startProcessNode(t: TestContext, cluster: TestCluster, node: string): Promise<ProcessNode> {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-node-'));
  const config = join(dir, 'tabchat.json');
  const o = cluster.serverOptions;
  writeFileSync(
    config,
    JSON.stringify({
      apps: [
        {
          sdkAppId: cluster.sdkAppId,
          secretKey: cluster.secretKey,
          maxInstancesPerPlatform: cluster.app.maxInstancesPerPlatform ?? 1,
          loginPolicy: (cluster.app.loginPolicy ?? 'multi') satisfies LoginPolicy,
        },
      ],
      store: cluster.store,
      redis: o.redis,
      redisPrefix: o.redisPrefix,
      nodeHeartbeatMs: o.nodeHeartbeatMs,
      nodeTimeoutMs: o.nodeTimeoutMs,
      resumeWindowMs: o.resumeWindowMs ?? 10_000,
      logLevel: process.env.TABCHAT_TEST_LOG ?? 'silent',
      port: 0,
    }),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'server', 'cli.ts'), '--config', config, '--node', node], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const kill = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  };
  t.after(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  const httpUrl = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`node ${node} did not start in 20 s: ${out}`)), 20_000);
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`node ${node} exited with ${code}: ${out}`));
    });
  });
  return { wsUrl: httpUrl.replace(/^http/, 'ws') + '/ws', httpUrl, process: child, kill };
}

/** POST a REST command as the admin to any node (`httpUrl`). */
export async function rest(cluster: TestCluster, httpUrl: string, command: string, body: unknown): Promise<any> {
  const q = new URLSearchParams({
    sdkappid: String(cluster.sdkAppId),
    identifier: 'administrator',
    usersig: cluster.sig('administrator'),
    random: '1',
    contenttype: 'json',
  });
  const res = await fetch(`${httpUrl}/v4/${command}?${q}`, { method: 'POST', body: JSON.stringify(body) });
  return res.json();
}

/** Sorted instIds query_online_status reports for `userID`, asking node `httpUrl`. */
export async function onlineIds(cluster: TestCluster, httpUrl: string, userID: string): Promise<number[]> {
  const r = await rest(cluster, httpUrl, 'openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
  if (r.ErrorCode !== 0) throw new Error(`query_online_status failed: ${JSON.stringify(r)}`);
  return ((r.QueryResult[0].Detail ?? []) as Array<{ InstId: number }>).map((d) => d.InstId).sort((a, b) => a - b);
}

