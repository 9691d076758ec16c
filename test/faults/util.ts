/**
 * Helpers of the fault-injection suite (not a test file): one private redis-server and one
 * private PostgreSQL (fsync on, as in production) per test file, and per test a cluster of
 * in-process nodes whose links to Redis and to Postgres each go through a {@link TcpProxy}
 * of their own, so a test can stall, blackhole or cut ONE node's link while every process
 * and TCP connection stays up.
 */
import { after, type TestContext } from 'node:test';
import { randomBytes } from 'node:crypto';
import TabChat, { type Chat, type Message } from '../../src/node/index.js';
import { startPostgres, startRedis, type PostgresServer, type RedisServer } from '../helpers/services.js';
import { startTestServer, type TestAppOptions, type TestServer, type TestServerOptions } from '../helpers/server.js';
import { generateUserSig } from '../../server/usersig.js';
import { TcpProxy } from './tcp-proxy.js';

export { until, RawClient } from '../helpers/raw-client.js';
export { TcpProxy } from './tcp-proxy.js';

interface Services {
  redis: RedisServer;
  pg: PostgresServer;
}

let services: Promise<Services> | null = null;

after(async () => {
  if (!services) return;
  const s = await services.catch(() => null);
  if (s) await Promise.allSettled([s.redis.close(), s.pg.close()]);
});

function sharedServices(): Promise<Services> {
  services ??= (async () => {
    const [redis, pg] = await Promise.all([startRedis(), startPostgres({ durable: true })]);
    return { redis, pg };
  })();
  return services;
}

/** Liveness of the fault clusters: a silent node is taken for dead after 1.2 s. */
export const FAULT_LIVENESS = { nodeHeartbeatMs: 200, nodeTimeoutMs: 1_200 };

export interface FaultNode extends TestServer {
  /** This node's link to Redis. */
  redisLink: TcpProxy;
  /** This node's link to Postgres. */
  pgLink: TcpProxy;
}

export interface FaultCluster {
  services: Services;
  nodes: FaultNode[];
  sdkAppId: number;
  /** This test's database (direct, not through a proxy). */
  store: string;
  sig(userID: string): string;
  /** POST a REST command as the admin to a node. */
  rest(node: TestServer, command: string, body: unknown): Promise<any>;
  /** instIds query_online_status reports for `userID`, asking `node`. */
  onlineIds(node: TestServer, userID: string): Promise<number[]>;
  /** The node's /metrics text. */
  metrics(node: TestServer): Promise<string>;
}

let counter = 0;

/** A cluster of `nodes` in-process nodes, each behind its own proxies; closed after the test. */
export async function startFaultCluster(t: TestContext, app: TestAppOptions = {}, opts: TestServerOptions & { nodes?: number } = {}): Promise<FaultCluster> {
  const svc = await sharedServices();
  const n = ++counter;
  const prefix = `f${n}-${randomBytes(2).toString('hex')}:`;
  const store = await svc.pg.createDatabase(`f${n}_${randomBytes(3).toString('hex')}`);
  const secretKey = randomBytes(32).toString('hex');
  const sdkAppId = app.sdkAppId ?? 1400000001;
  const { nodes: count = 2, ...rest } = opts;
  const nodes: FaultNode[] = [];
  const proxies: TcpProxy[] = [];
  t.after(async () => {
    for (const p of proxies) p.resume();
    await Promise.allSettled(nodes.map((s) => s.close()));
    await Promise.allSettled(proxies.map((p) => p.close()));
  });
  for (let i = 1; i <= count; i++) {
    const redisLink = await TcpProxy.start(svc.redis.port);
    const pgLink = await TcpProxy.start(Number(new URL(store).port));
    proxies.push(redisLink, pgLink);
    const server = await startTestServer(
      { ...app, secretKey, sdkAppId },
      { ...FAULT_LIVENESS, ...rest, store: pgLink.rewrite(store), redis: redisLink.rewrite(svc.redis.url), redisPrefix: prefix, node: `node${i}` },
    );
    nodes.push(Object.assign(server, { redisLink, pgLink }));
  }
  const sig = (userID: string) => generateUserSig({ sdkAppId, key: secretKey, identifier: userID, expire: 86_400 });
  const restCall = async (node: TestServer, command: string, body: unknown) => {
    const q = new URLSearchParams({ sdkappid: String(sdkAppId), identifier: 'administrator', usersig: sig('administrator'), random: '1', contenttype: 'json' });
    const res = await fetch(`${node.httpUrl}/v4/${command}?${q}`, { method: 'POST', body: JSON.stringify(body) });
    return res.json();
  };
  return {
    services: svc,
    nodes,
    sdkAppId,
    store,
    sig,
    rest: restCall,
    async onlineIds(node, userID) {
      const r = await restCall(node, 'openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
      if (r.ErrorCode !== 0) throw new Error(`query_online_status failed: ${JSON.stringify(r)}`);
      return ((r.QueryResult[0].Detail ?? []) as Array<{ InstId: number }>).map((d) => d.InstId).sort((a, b) => a - b);
    },
    async metrics(node) {
      return (await fetch(`${node.httpUrl}/metrics`)).text();
    },
  };
}

export interface TestChat {
  chat: Chat;
  userID: string;
  inbox: Message[];
  kicks: string[];
  send(to: string, text: string): Promise<unknown>;
}

/** A Node SDK chat logged in on `node` (destroyed after the test) that records what it receives. */
export async function chatOn(t: TestContext, c: FaultCluster, node: TestServer, userID: string): Promise<TestChat> {
  const chat: Chat = TabChat.create({ SDKAppID: c.sdkAppId, server: node.wsUrl })!;
  chat.setLogLevel(4);
  t.after(() => chat.destroy().catch(() => undefined));
  const inbox: Message[] = [];
  const kicks: string[] = [];
  chat.on(TabChat.EVENT.MESSAGE_RECEIVED, (e) => inbox.push(...(e.data as Message[])));
  chat.on(TabChat.EVENT.KICKED_OUT, (e) => kicks.push((e.data as { type: string }).type));
  const ready = new Promise((r) => chat.on(TabChat.EVENT.SDK_READY, r));
  await chat.login({ userID, userSig: c.sig(userID) });
  await ready;
  const send = (to: string, text: string) => chat.sendMessage(chat.createTextMessage({ to, conversationType: 'C2C', payload: { text } }));
  return { chat, userID, inbox, kicks, send };
}

/** A Prometheus sample's value in a /metrics text (0 when absent). */
export function sample(text: string, name: string, labels = ''): number {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (!rest.startsWith('{') && !rest.startsWith(' ')) continue;
    if (labels && !rest.includes(labels)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return 0;
}
