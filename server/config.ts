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

export interface RateLimitConfig {
  /** Failed logins (and failed REST auth) allowed per IP per `windowSeconds`. Default 30. */
  loginFailuresPerIp: number;
  /** Failed logins allowed per app+userID per `windowSeconds`. Default 10. */
  loginFailuresPerUser: number;
  /** Default 60. */
  windowSeconds: number;
  /** Frames a connection may send per second (burst = 2×). Default 100. */
  framesPerSecond: number;
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
  /** Upgrade requests beyond this many open sockets get HTTP 503. Default 18 000. */
  maxConnections: number;
  /** Time a client has to send `hello`. Default 10 000 ms. */
  helloTimeoutMs: number;
  /** A connection without any instance for this long is closed (4004). Default 60 000 ms. */
  idleTimeoutMs: number;
  /** How long SIGTERM waits for clients to go before closing the rest. Default 5 000 ms. */
  shutdownGraceMs: number;
  /** pino level: trace, debug, info, warn, error, fatal, silent. Default "info". */
  logLevel: string;
  rateLimits: RateLimitConfig;
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
    helloTimeoutMs: int(raw.helloTimeoutMs, 'helloTimeoutMs', 10_000, 100, 600_000),
    idleTimeoutMs: int(raw.idleTimeoutMs, 'idleTimeoutMs', 60_000, 100, 86_400_000),
    shutdownGraceMs: int(raw.shutdownGraceMs, 'shutdownGraceMs', 5_000, 0, 600_000),
    logLevel: str(raw.logLevel, 'logLevel', 'info'),
    rateLimits: {
      loginFailuresPerIp: int(rl.loginFailuresPerIp, 'rateLimits.loginFailuresPerIp', DEFAULT_RATE_LIMITS.loginFailuresPerIp, 1, 1e9),
      loginFailuresPerUser: int(rl.loginFailuresPerUser, 'rateLimits.loginFailuresPerUser', DEFAULT_RATE_LIMITS.loginFailuresPerUser, 1, 1e9),
      windowSeconds: int(rl.windowSeconds, 'rateLimits.windowSeconds', DEFAULT_RATE_LIMITS.windowSeconds, 1, 86_400),
      framesPerSecond: int(rl.framesPerSecond, 'rateLimits.framesPerSecond', DEFAULT_RATE_LIMITS.framesPerSecond, 1, 1e6),
    },
    static: staticRoutes,
    storeBatch: {
      maxMessages: int(batch.maxMessages, 'storeBatch.maxMessages', DEFAULT_STORE_BATCH.maxMessages, 1, 10_000),
      maxWaitMs: int(batch.maxWaitMs, 'storeBatch.maxWaitMs', DEFAULT_STORE_BATCH.maxWaitMs, 0, 10_000),
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
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(config.logLevel)) {
    throw new ConfigError('logLevel must be one of trace, debug, info, warn, error, fatal, silent');
  }
  return config;
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
