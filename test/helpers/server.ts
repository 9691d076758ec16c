/**
 * Start a real chat server on an ephemeral port for a test, with helpers to sign UserSigs
 * and call the REST API. No mocks: this is the production server object.
 */
import { randomBytes } from 'node:crypto';
import { createChatServer, validateConfig, type ChatServer } from '../../server/index.js';
import type { LoginPolicy, ServerConfig } from '../../server/config.js';
import { createLogger, type Logger } from '../../server/log.js';
import { generateUserSig } from '../../server/usersig.js';

export interface TestAppOptions {
  sdkAppId?: number;
  /** The app's secret key; default random (cluster nodes of one test must share it). */
  secretKey?: string;
  maxInstancesPerPlatform?: number;
  loginPolicy?: LoginPolicy;
  enabled?: boolean;
  allowedOrigins?: string[];
}

export interface TestServerOptions {
  resumeWindowMs?: number;
  heartbeatMs?: number;
  helloTimeoutMs?: number;
  maxPayloadBytes?: number;
  /** Close connections that carry no instance after this long (close 4004). Default 60 000 ms. */
  idleTimeoutMs?: number;
  /** Upgrade requests beyond this many open sockets get HTTP 503. */
  maxConnections?: number;
  /** Largest accepted REST body (config maxBodyBytes). */
  maxBodyBytes?: number;
  /** How long close() waits for clients before terminating them. Default 1000 ms. */
  shutdownGraceMs?: number;
  devUserSig?: boolean;
  rateLimits?: Partial<ServerConfig['rateLimits']>;
  /** More config keys (validated like a config file's), applied last. */
  config?: Record<string, unknown>;
  /** Extra apps, e.g. to test cross-app signatures. */
  extraApps?: Array<{
    sdkAppId: number;
    secretKey: string;
    enabled?: boolean;
    allowedOrigins?: string[];
    maxInstancesPerPlatform?: number;
    loginPolicy?: LoginPolicy;
    adminIdentifier?: string;
  }>;
  /** Extra static routes (config `static`): URL prefix → directory. */
  static?: Record<string, string>;
  /** Use this logger instead of the default one (e.g. to capture error logs). */
  logger?: Logger;
  /** pino level for the server log; default "silent" (set TABCHAT_TEST_LOG=debug to see). */
  logLevel?: string;
  /** Config `store`: "memory" (default), "sqlite:PATH" or a postgres:// URL. */
  store?: string;
  /** Config `storeBatch`: group commit bounds of a sqlite store. */
  storeBatch?: { maxMessages?: number; maxWaitMs?: number };
  /** Config `redis`: run as one node of a cluster on this Redis (needs a postgres store). */
  redis?: string;
  /** Config `redisPrefix` (give each test its own, so tests sharing a Redis never see each other). */
  redisPrefix?: string;
  /** Node id (logs, metrics, cluster stats); default "test". */
  node?: string;
  /** Config `nodeHeartbeatMs` / `nodeTimeoutMs` (cluster liveness). */
  nodeHeartbeatMs?: number;
  nodeTimeoutMs?: number;
}

export interface TestServer {
  server: ChatServer;
  wsUrl: string;
  httpUrl: string;
  sdkAppId: number;
  secretKey: string;
  adminIdentifier: string;
  /** A UserSig for `userID` in the test app. */
  sig(userID: string, opts?: { expire?: number; time?: number; sdkAppId?: number; key?: string }): string;
  /** POST a REST command (e.g. "im_open_login_svc/kick") as the admin; returns the parsed body. */
  rest(command: string, body: unknown, query?: Record<string, string>): Promise<any>;
  setLoginSettings(settings: { MaxInstancesPerPlatform?: number; LoginPolicy?: LoginPolicy }): Promise<any>;
  /** Drop every WebSocket server-side without a close frame (like a network cut). */
  dropConnections(): void;
  /**
   * Stop the server gracefully (clients get close 4000) and start a new one with the same
   * config on the SAME port, so clients reconnect to it; `server` then names the new one.
   * With a sqlite store the new server opens the same file. Instances do not survive it
   * (the registry is in memory): clients resume, get 9005 and log in again.
   * @param whileDown - runs after the old server stopped and before the new one starts
   */
  restart(whileDown?: () => Promise<void>): Promise<void>;
  close(): Promise<void>;
}

export async function startTestServer(app: TestAppOptions = {}, opts: TestServerOptions = {}): Promise<TestServer> {
  const sdkAppId = app.sdkAppId ?? 1400000001;
  const secretKey = app.secretKey ?? randomBytes(32).toString('hex');
  const adminIdentifier = 'administrator';
  const config = validateConfig({
    apps: [
      {
        sdkAppId,
        secretKey,
        adminIdentifier,
        maxInstancesPerPlatform: app.maxInstancesPerPlatform ?? 1,
        loginPolicy: app.loginPolicy ?? 'multi',
        allowedOrigins: app.allowedOrigins ?? ['*'],
        enabled: app.enabled ?? true,
      },
      ...(opts.extraApps ?? []),
    ],
    devUserSig: opts.devUserSig ?? false,
    store: opts.store ?? 'memory',
    port: 0,
    host: '127.0.0.1',
    resumeWindowMs: opts.resumeWindowMs ?? 10_000,
    heartbeatMs: opts.heartbeatMs ?? 25_000,
    helloTimeoutMs: opts.helloTimeoutMs ?? 10_000,
    maxPayloadBytes: opts.maxPayloadBytes ?? 65_536,
    maxBodyBytes: opts.maxBodyBytes ?? 65_536,
    ...(opts.idleTimeoutMs !== undefined ? { idleTimeoutMs: opts.idleTimeoutMs } : {}),
    ...(opts.maxConnections !== undefined ? { maxConnections: opts.maxConnections } : {}),
    shutdownGraceMs: opts.shutdownGraceMs ?? 1_000,
    rateLimits: opts.rateLimits ?? {},
    ...(opts.static ? { static: opts.static } : {}),
    ...(opts.storeBatch !== undefined ? { storeBatch: opts.storeBatch } : {}),
    ...(opts.redis !== undefined ? { redis: opts.redis } : {}),
    ...(opts.redisPrefix !== undefined ? { redisPrefix: opts.redisPrefix } : {}),
    ...(opts.nodeHeartbeatMs !== undefined ? { nodeHeartbeatMs: opts.nodeHeartbeatMs } : {}),
    ...(opts.nodeTimeoutMs !== undefined ? { nodeTimeoutMs: opts.nodeTimeoutMs } : {}),
    ...opts.config,
  });
  const node = opts.node ?? 'test';
  const logLevel = opts.logLevel ?? process.env.TABCHAT_TEST_LOG ?? 'silent';
  const logger = opts.logger ?? createLogger(logLevel, 'test', process.stderr);
  const server = await createChatServer(config, { logger, node });
  const sig: TestServer['sig'] = (userID, o = {}) =>
    generateUserSig({ sdkAppId: o.sdkAppId ?? sdkAppId, key: o.key ?? secretKey, identifier: userID, expire: o.expire ?? 86_400, ...(o.time !== undefined ? { time: o.time } : {}) });
  const rest: TestServer['rest'] = async (command, body, query = {}) => {
    const q = new URLSearchParams({
      sdkappid: String(sdkAppId),
      identifier: adminIdentifier,
      usersig: sig(adminIdentifier),
      random: String(Math.floor(Math.random() * 4294967295)),
      contenttype: 'json',
      ...query,
    });
    const res = await fetch(`${ts.server.httpUrl}/v4/${command}?${q}`, { method: 'POST', body: typeof body === 'string' ? body : JSON.stringify(body) });
    if (res.status !== 200) throw new Error(`REST ${command} answered HTTP ${res.status}`);
    return res.json();
  };
  const ts: TestServer = {
    server,
    wsUrl: server.wsUrl,
    httpUrl: server.httpUrl,
    sdkAppId,
    secretKey,
    adminIdentifier,
    sig,
    rest,
    setLoginSettings: (settings) => rest('tabchat_admin/set_login_settings', settings),
    dropConnections: () => {
      for (const conn of ts.server.context.connections) conn.terminate();
    },
    restart: async (whileDown) => {
      const port = ts.server.port;
      await ts.server.close();
      await whileDown?.();
      ts.server = await createChatServer({ ...config, port }, { logger, node });
    },
    close: () => ts.server.close(),
  };
  return ts;
}
