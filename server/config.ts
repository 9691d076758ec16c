/**
 * Server configuration: the JSON file of `tabchat-server --config FILE`, validated with
 * clear messages, with every default in one place. See docs/operations.md.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve, dirname } from 'node:path';
import { DEFAULT_STORE_BATCH, type StoreBatchOptions } from './store.js';

export const LOGIN_POLICIES = ['single', 'dual', 'triple', 'multi'] as const;
export type LoginPolicy = (typeof LOGIN_POLICIES)[number];

export interface AppConfig {
  sdkAppId: number;
  /** Used as raw UTF-8 bytes for HMAC-SHA256 (the console "secret key"). */
  secretKey: string;
  /** The App admin account whose UserSig authenticates REST calls. Default "administrator". */
  adminIdentifier: string;
  /** Default 1. */
  maxInstancesPerPlatform: number;
  /** Default "multi". */
  loginPolicy: LoginPolicy;
  /** Page origins allowed to log in over the WebSocket. Default ["*"]. */
  allowedOrigins: string[];
  /** false = expired/unpaid service: every login and REST call fails with 60020. Default true. */
  enabled: boolean;
}

/** Config `rateLimits`: every default and why is in docs/operations.md "Limits and abuse". */
export interface RateLimitConfig {
  /**
   * Failed logins (bad UserSigs, failed REST auth) from one address per `windowSeconds`;
   * beyond it that address's failures are answered 70050. A correct UserSig is never
   * refused because of failures. Default 30.
   */
  loginFailuresPerIp: number;
  /** Failed logins for one app+userID from one address per `windowSeconds` (then as above). Default 10. */
  loginFailuresPerUser: number;
  /** Default 60. */
  windowSeconds: number;
  /** Frames a connection may send per second (burst = 2×). Default 100. */
  framesPerSecond: number;
  /** Open sockets (WebSocket or plain HTTP) per client address. Default 1,000. */
  connectionsPerIp: number;
  /** Connections of this node that may carry instances of one app+userID at once. Default 20. */
  connectionsPerUser: number;
  /** Login attempts (successful or not) per client address per `windowSeconds`. Default 3,000. */
  loginsPerIp: number;
  /** Successful logins of one app+userID per `windowSeconds`. Default 60. */
  loginsPerUser: number;
  /** `sync` requests one instance may have served per second (more wait, a few queued; beyond: 9041). Default 20. */
  syncsPerSecond: number;
}

/** Config `mailbox`: per-user quota and retention of the message store. */
export interface MailboxConfig {
  /** Entries (messages in or out) one mailbox may hold. Default 10,000. */
  maxMessages: number;
  /** Bytes of text (UTF-8) one mailbox may hold. Default 50 MiB. */
  maxBytes: number;
  /** Messages older than this are deleted (0 = kept forever). Default 30 days. */
  retentionSeconds: number;
}

/** Config `metrics`: where `/metrics` is served and who may read it. */
export interface MetricsConfig {
  /** Serve `/metrics` on this port instead of the main one (the main port answers 404). */
  port?: number;
  /** Address of the metrics listener (with `port`). Default "127.0.0.1". */
  host: string;
  /** When set, `/metrics` needs `Authorization: Bearer <token>` (401 otherwise). */
  token?: string;
}

export interface ServerConfig {
  apps: AppConfig[];
  /** Demo only: GET /dev/usersig issues UserSigs to anyone. Default false. */
  devUserSig: boolean;
  /** "memory", "sqlite:PATH" (default "sqlite:./tabchat.db") or a postgres:// URL. */
  store: string;
  /**
   * Group commit of the sqlite store: sends arriving together are stored in one transaction
   * (one fsync), each acknowledged after it committed. Default `{maxMessages: 256, maxWaitMs: 0}`
   * (commit at the end of the event-loop turn).
   */
  storeBatch: StoreBatchOptions;
  /**
   * Absent: embedded single-node engine. A `redis://` (`rediss://`, `redis+cluster://h:p,h:p`)
   * URL makes this process one node of a cluster on that Redis (needs a postgres store).
   */
  redis?: string;
  /** Key and channel prefix in Redis (several clusters can share one Redis). Default "tabchat:". */
  redisPrefix: string;
  /** Node id in logs, metrics and cluster stats; default random (`n-xxxxxx`). */
  node?: string;
  /** How often a cluster node refreshes its liveness key. Default 3 000 ms. */
  nodeHeartbeatMs: number;
  /** A node whose liveness key is older than this is dead: its instances are released. Default 10 000 ms. */
  nodeTimeoutMs: number;
  port: number;
  host: string;
  /** How long a dropped connection's instances stay resumable. Default 10 000 ms. */
  resumeWindowMs: number;
  /** Server WebSocket ping interval; clients ping as often. Default 25 000 ms. */
  heartbeatMs: number;
  /** Largest accepted WebSocket frame. Default 65 536 bytes. */
  maxPayloadBytes: number;
  /** Largest accepted REST body. Default 65 536 bytes. */
  maxBodyBytes: number;
  /**
   * Upgrade requests beyond this many open WebSockets get HTTP 503; plain sockets beyond it
   * plus a small headroom are refused. Lowered at start to what the process's file limit allows. Default 18 000.
   */
  maxConnections: number;
  /** Time a new socket has to complete its HTTP request (or WebSocket upgrade) headers. Default 10 000 ms. */
  handshakeTimeoutMs: number;
  /** Bytes buffered for one socket above which the server stops reading its requests. Default 1 MiB. */
  pauseBufferedBytes: number;
  /** Bytes buffered for one socket above which it is closed (4006). Default 4 MiB. */
  maxBufferedBytes: number;
  /** Time a client has to send `hello`. Default 10 000 ms. */
  helloTimeoutMs: number;
  /** A connection without any instance for this long is closed (4004). Default 60 000 ms. */
  idleTimeoutMs: number;
  /** How long SIGTERM waits for clients to go before closing the rest. Default 5 000 ms. */
  shutdownGraceMs: number;
  /** pino level: trace, debug, info, warn, error, fatal, silent. Default "info". */
  logLevel: string;
  rateLimits: RateLimitConfig;
  mailbox: MailboxConfig;
  metrics: MetricsConfig;
  /** Extra static routes, URL prefix → directory (used by tests and custom demos). */
  static: Record<string, string>;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const DEFAULT_RATE_LIMITS: RateLimitConfig = {
  loginFailuresPerIp: 30,
  loginFailuresPerUser: 10,
  windowSeconds: 60,
  framesPerSecond: 100,
  connectionsPerIp: 1_000,
  connectionsPerUser: 20,
  loginsPerIp: 3_000,
  loginsPerUser: 60,
  syncsPerSecond: 20,
};

export const DEFAULT_MAILBOX: Readonly<MailboxConfig> = {
  maxMessages: 10_000,
  maxBytes: 50 * 1024 * 1024,
  retentionSeconds: 30 * 86_400,
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function int(v: unknown, path: string, dflt: number, min: number, max: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(`${path} must be an integer between ${min} and ${max} (got ${JSON.stringify(v)})`);
  }
  return v;
}

function str(v: unknown, path: string, dflt?: string): string {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== 'string' || v.length === 0) throw new ConfigError(`${path} must be a non-empty string`);
  return v;
}

/** Validate one app; `path` names it in messages. Exported for the admin REST call. */
export function validateApp(raw: unknown, path: string): AppConfig {
  if (!isObj(raw)) throw new ConfigError(`${path} must be an object`);
  const sdkAppId = raw.sdkAppId;
  if (typeof sdkAppId !== 'number' || !Number.isInteger(sdkAppId) || sdkAppId <= 0 || sdkAppId > 0xffffffff) {
    throw new ConfigError(`${path}.sdkAppId must be a positive 32-bit integer`);
  }
  const loginPolicy = raw.loginPolicy ?? 'multi';
  if (!(LOGIN_POLICIES as readonly unknown[]).includes(loginPolicy)) {
    throw new ConfigError(`${path}.loginPolicy must be one of ${LOGIN_POLICIES.join(', ')}`);
  }
  const origins = raw.allowedOrigins ?? ['*'];
  if (!Array.isArray(origins) || origins.some((o) => typeof o !== 'string' || o.length === 0)) {
    throw new ConfigError(`${path}.allowedOrigins must be an array of origins like "https://example.com" or "*"`);
  }
  if (raw.enabled !== undefined && typeof raw.enabled !== 'boolean') throw new ConfigError(`${path}.enabled must be a boolean`);
  return {
    sdkAppId,
    secretKey: str(raw.secretKey, `${path}.secretKey`),
    adminIdentifier: str(raw.adminIdentifier, `${path}.adminIdentifier`, 'administrator'),
    maxInstancesPerPlatform: int(raw.maxInstancesPerPlatform, `${path}.maxInstancesPerPlatform`, 1, 1, 1000),
    loginPolicy: loginPolicy as LoginPolicy,
    allowedOrigins: origins as string[],
    enabled: raw.enabled ?? true,
  };
}

/**
 * Validate a parsed config object and fill defaults. `baseDir` resolves relative paths
 * (the config file's folder).
 */
export function validateConfig(raw: unknown, baseDir = process.cwd()): ServerConfig {
  if (!isObj(raw)) throw new ConfigError('config must be a JSON object');
  if (!Array.isArray(raw.apps) || raw.apps.length === 0) throw new ConfigError('config.apps must be a non-empty array');
  const apps = raw.apps.map((a, i) => validateApp(a, `apps[${i}]`));
  const ids = new Set<number>();
  for (const app of apps) {
    if (ids.has(app.sdkAppId)) throw new ConfigError(`apps: sdkAppId ${app.sdkAppId} appears twice`);
    ids.add(app.sdkAppId);
  }
  if (raw.devUserSig !== undefined && typeof raw.devUserSig !== 'boolean') throw new ConfigError('devUserSig must be a boolean');
  const store = str(raw.store, 'store', 'sqlite:./tabchat.db');
  if (!(store === 'memory' || store.startsWith('sqlite:') || /^postgres(ql)?:\/\//.test(store))) {
    throw new ConfigError('store must be "memory", "sqlite:PATH" or a postgres:// URL');
  }
  if (raw.redis !== undefined && (typeof raw.redis !== 'string' || !/^(rediss?:\/\/|redis\+cluster:\/\/[^,/]+)/.test(raw.redis))) {
    throw new ConfigError('redis must be a redis:// (or rediss://, redis+cluster://host:port,host:port) URL');
  }
  const redisPrefix = str(raw.redisPrefix, 'redisPrefix', 'tabchat:');
  if (/[{}]/.test(redisPrefix)) throw new ConfigError('redisPrefix must not contain "{" or "}" (they are Redis Cluster hash tags)');
  if (raw.node !== undefined && (typeof raw.node !== 'string' || !/^[A-Za-z0-9._:-]{1,64}$/.test(raw.node))) {
    throw new ConfigError('node must be 1..64 characters of A-Z a-z 0-9 . _ : -');
  }
  const batch = raw.storeBatch ?? {};
  if (!isObj(batch)) throw new ConfigError('storeBatch must be an object like {"maxMessages": 256, "maxWaitMs": 0}');
  const rl = raw.rateLimits ?? {};
  if (!isObj(rl)) throw new ConfigError('rateLimits must be an object');
  const mb = raw.mailbox ?? {};
  if (!isObj(mb)) throw new ConfigError('mailbox must be an object like {"maxMessages": 10000, "maxBytes": 52428800, "retentionSeconds": 2592000}');
  const mx = raw.metrics ?? {};
  if (!isObj(mx)) throw new ConfigError('metrics must be an object like {"port": 9464, "host": "127.0.0.1", "token": "…"}');
  const staticRoutes: Record<string, string> = {};
  if (raw.static !== undefined) {
    if (!isObj(raw.static)) throw new ConfigError('static must be an object of "/prefix/": "dir"');
    for (const [prefix, dir] of Object.entries(raw.static)) {
      if (!prefix.startsWith('/') || !prefix.endsWith('/')) throw new ConfigError(`static: prefix "${prefix}" must start and end with "/"`);
      staticRoutes[prefix] = resolve(baseDir, str(dir, `static["${prefix}"]`));
    }
  }
  const config: ServerConfig = {
    apps,
    devUserSig: raw.devUserSig === true,
    store: store.startsWith('sqlite:') && !isAbsolute(store.slice(7)) ? `sqlite:${resolve(baseDir, store.slice(7))}` : store,
    port: int(raw.port, 'port', 8080, 0, 65535),
    host: str(raw.host, 'host', '127.0.0.1'),
    resumeWindowMs: int(raw.resumeWindowMs, 'resumeWindowMs', 10_000, 0, 3_600_000),
    heartbeatMs: int(raw.heartbeatMs, 'heartbeatMs', 25_000, 100, 600_000),
    maxPayloadBytes: int(raw.maxPayloadBytes, 'maxPayloadBytes', 64 * 1024, 1024, 16 * 1024 * 1024),
    maxBodyBytes: int(raw.maxBodyBytes, 'maxBodyBytes', 64 * 1024, 1024, 16 * 1024 * 1024),
    maxConnections: int(raw.maxConnections, 'maxConnections', 18_000, 1, 1_000_000),
    handshakeTimeoutMs: int(raw.handshakeTimeoutMs, 'handshakeTimeoutMs', 10_000, 100, 600_000),
    pauseBufferedBytes: int(raw.pauseBufferedBytes, 'pauseBufferedBytes', 1024 * 1024, 16 * 1024, 1024 * 1024 * 1024),
    maxBufferedBytes: int(raw.maxBufferedBytes, 'maxBufferedBytes', 4 * 1024 * 1024, 64 * 1024, 1024 * 1024 * 1024),
    helloTimeoutMs: int(raw.helloTimeoutMs, 'helloTimeoutMs', 10_000, 100, 600_000),
    idleTimeoutMs: int(raw.idleTimeoutMs, 'idleTimeoutMs', 60_000, 100, 86_400_000),
    shutdownGraceMs: int(raw.shutdownGraceMs, 'shutdownGraceMs', 5_000, 0, 600_000),
    logLevel: str(raw.logLevel, 'logLevel', 'info'),
    rateLimits: {
      loginFailuresPerIp: int(rl.loginFailuresPerIp, 'rateLimits.loginFailuresPerIp', DEFAULT_RATE_LIMITS.loginFailuresPerIp, 1, 1e9),
      loginFailuresPerUser: int(rl.loginFailuresPerUser, 'rateLimits.loginFailuresPerUser', DEFAULT_RATE_LIMITS.loginFailuresPerUser, 1, 1e9),
      windowSeconds: int(rl.windowSeconds, 'rateLimits.windowSeconds', DEFAULT_RATE_LIMITS.windowSeconds, 1, 86_400),
      framesPerSecond: int(rl.framesPerSecond, 'rateLimits.framesPerSecond', DEFAULT_RATE_LIMITS.framesPerSecond, 1, 1e6),
      connectionsPerIp: int(rl.connectionsPerIp, 'rateLimits.connectionsPerIp', DEFAULT_RATE_LIMITS.connectionsPerIp, 1, 1_000_000),
      connectionsPerUser: int(rl.connectionsPerUser, 'rateLimits.connectionsPerUser', DEFAULT_RATE_LIMITS.connectionsPerUser, 1, 1_000_000),
      loginsPerIp: int(rl.loginsPerIp, 'rateLimits.loginsPerIp', DEFAULT_RATE_LIMITS.loginsPerIp, 1, 1e9),
      loginsPerUser: int(rl.loginsPerUser, 'rateLimits.loginsPerUser', DEFAULT_RATE_LIMITS.loginsPerUser, 1, 1e9),
      syncsPerSecond: int(rl.syncsPerSecond, 'rateLimits.syncsPerSecond', DEFAULT_RATE_LIMITS.syncsPerSecond, 1, 1e6),
    },
    mailbox: {
      maxMessages: int(mb.maxMessages, 'mailbox.maxMessages', DEFAULT_MAILBOX.maxMessages, 1, 1e9),
      maxBytes: int(mb.maxBytes, 'mailbox.maxBytes', DEFAULT_MAILBOX.maxBytes, 16 * 1024, 2 ** 40),
      retentionSeconds: int(mb.retentionSeconds, 'mailbox.retentionSeconds', DEFAULT_MAILBOX.retentionSeconds, 0, 100 * 365 * 86_400),
    },
    metrics: validateMetrics(mx),
    static: staticRoutes,
    storeBatch: {
      maxMessages: int(batch.maxMessages, 'storeBatch.maxMessages', DEFAULT_STORE_BATCH.maxMessages, 1, 10_000),
      maxWaitMs: int(batch.maxWaitMs, 'storeBatch.maxWaitMs', DEFAULT_STORE_BATCH.maxWaitMs, 0, 10_000),
      ...(batch.baseline === undefined ? {} : { baseline: storeBaseline(batch.baseline) }),
    },
    redisPrefix,
    nodeHeartbeatMs: int(raw.nodeHeartbeatMs, 'nodeHeartbeatMs', 3_000, 50, 60_000),
    nodeTimeoutMs: int(raw.nodeTimeoutMs, 'nodeTimeoutMs', 10_000, 200, 600_000),
  };
  if (raw.redis !== undefined) config.redis = raw.redis as string;
  if (raw.node !== undefined) config.node = raw.node as string;
  if (config.nodeTimeoutMs < 2 * config.nodeHeartbeatMs) {
    throw new ConfigError('nodeTimeoutMs must be at least twice nodeHeartbeatMs (a live node must never look dead)');
  }
  if (config.maxBufferedBytes <= config.pauseBufferedBytes) {
    throw new ConfigError('maxBufferedBytes must be larger than pauseBufferedBytes (reading pauses first, the close comes later)');
  }
  if (config.rateLimits.connectionsPerIp >= config.maxConnections && raw.rateLimits !== undefined && (raw.rateLimits as Obj).connectionsPerIp !== undefined) {
    throw new ConfigError(`rateLimits.connectionsPerIp (${config.rateLimits.connectionsPerIp}) must be below maxConnections (${config.maxConnections}): one address must never take every slot`);
  }
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(config.logLevel)) {
    throw new ConfigError('logLevel must be one of trace, debug, info, warn, error, fatal, silent');
  }
  return config;
}

function validateMetrics(mx: Obj): MetricsConfig {
  const metrics: MetricsConfig = { host: str(mx.host, 'metrics.host', '127.0.0.1') };
  if (mx.port !== undefined) metrics.port = int(mx.port, 'metrics.port', 0, 0, 65535);
  if (mx.token !== undefined) {
    if (typeof mx.token !== 'string' || mx.token.length < 16 || /\s/.test(mx.token)) {
      throw new ConfigError('metrics.token must be a string of at least 16 characters without spaces');
    }
    metrics.token = mx.token;
  }
  return metrics;
}

/** Read and validate a config file. Relative paths inside resolve against its folder. */
export function loadConfigFile(path: string): ServerConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`config file ${path} is not valid JSON: ${(err as Error).message}`);
  }
  return validateConfig(raw, dirname(resolve(path)));
}

/** Whether a page origin may log in to `app`. A missing origin (non-browser client) needs "*". */
export function originAllowed(app: AppConfig, origin: string | undefined): boolean {
  if (app.allowedOrigins.includes('*')) return true;
  if (origin === undefined) return false;
  return app.allowedOrigins.includes(origin);
}

/** `storeBatch.baseline`: true, or absent (the benchmark's same-run baseline; docs/operations.md). */
function storeBaseline(value: unknown): boolean {
  if (typeof value !== 'boolean') throw new ConfigError('storeBatch.baseline must be true or false');
  return value;
}
