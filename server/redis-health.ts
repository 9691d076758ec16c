/**
 * The Redis engine's two connections to Redis (commands, and the subscriber of the node
 * channels) and their health:
 *
 * - whether Redis can be reached now ({@link RedisLink.available}, gauge
 *   `tabchat_engine_available`);
 * - calls that must fail fast: no offline queue, a short command timeout, and any failure
 *   becomes {@link EngineUnavailableError} (9030 for the client);
 * - background work whose failure is only counted (`tabchat_engine_errors_total`) and
 *   repaired by the reconcile pass after the next reconnect;
 * - one warning per outage, and a callback once Redis is back.
 */
import { Cluster, Redis } from 'ioredis';
import { EngineUnavailableError } from './engine.js';
import type { Logger } from './log.js';
import type { ClusterMetrics } from './metrics.js';
import { SCRIPTS, type ScriptCommands } from './redis-scripts.js';

/** Redis commands that do not answer within this time fail (9030 for the caller). */
const COMMAND_TIMEOUT_MS = 2_000;

export type RedisClient = Redis | Cluster;
/** The command connection, with the Lua scripts as methods. */
export type RedisCommands = RedisClient & ScriptCommands;

export interface RedisLinkOptions {
  /** `redis://…`, `rediss://…`, or `redis+cluster://host:port,host:port` (Redis Cluster). */
  url: string;
  /** This node's key (names the connections in `CLIENT LIST`). */
  nodeKey: string;
  metrics: ClusterMetrics;
  log: Logger;
  /** Redis is reachable again after an outage (not called for the first connection). */
  onBack(): void;
}

/** Turn a Redis failure into 9030 (the caller fails fast); other errors pass through. */
function unavailable(err: unknown): Error {
  if (err instanceof EngineUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new EngineUnavailableError(`the cluster engine (Redis) is unavailable: ${message}`);
}

export class RedisLink {
  readonly cmd: RedisCommands;
  readonly sub: RedisClient;
  private everReady = false;
  private stopped = false;
  private outageLogged = false;
  /** Connected, but Redis stopped answering (a stalled link): set by a failed heartbeat or a timed-out call. */
  private stalled = false;

  constructor(private readonly opts: RedisLinkOptions) {
    const common = {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      commandTimeout: COMMAND_TIMEOUT_MS,
      connectTimeout: COMMAND_TIMEOUT_MS,
      protocol: 2 as const,
      retryStrategy: (times: number) => Math.min(50 * 2 ** Math.min(times, 5), 1_000),
      scripts: SCRIPTS,
    };
    if (opts.url.startsWith('redis+cluster://')) {
      const nodes = opts.url.slice('redis+cluster://'.length).split(',').map((hostPort) => {
        const [host, port] = hostPort.split(':');
        return { host: host ?? '127.0.0.1', port: Number(port ?? 6379) };
      });
      const clusterOptions = { lazyConnect: true, enableOfflineQueue: false, redisOptions: { ...common, lazyConnect: undefined }, scripts: common.scripts };
      this.cmd = new Cluster(nodes, clusterOptions) as RedisCommands;
      this.sub = new Cluster(nodes, clusterOptions);
    } else {
      this.cmd = new Redis(opts.url, { ...common, connectionName: `tabchat:${opts.nodeKey}` }) as RedisCommands;
      this.sub = new Redis(opts.url, { ...common, connectionName: `tabchat-sub:${opts.nodeKey}` });
    }
  }

  /** Open both connections (rejects when Redis cannot be reached). */
  async connect(): Promise<void> {
    this.cmd.on('error', (err: Error) => this.redisOnError('command', err));
    this.sub.on('error', (err: Error) => this.redisOnError('subscriber', err));
    this.cmd.on('ready', () => this.redisOnReady('command'));
    this.sub.on('ready', () => this.redisOnReady('subscriber'));
    this.cmd.on('close', () => this.redisOnClose());
    await Promise.all([this.cmd.connect(), this.sub.connect()]);
  }

  /** The node has joined the cluster: from now on a reconnect calls `onBack`. */
  joined(): void {
    this.everReady = true;
    this.opts.metrics.available.set(1);
  }

  /** Whether Redis commands can be sent now (false once stopped). */
  get available(): boolean {
    return !this.stopped && this.connected;
  }

  /**
   * Whether this node can serve what needs Redis now: connected, and not stalled (its last
   * heartbeat failed or a call timed out, and no heartbeat succeeded since). Logins and REST
   * calls fail fast with 9030 while it is false; readiness and `tabchat_engine_available`
   * follow it.
   */
  get usable(): boolean {
    return this.available && !this.stalled;
  }

  /** A heartbeat went through: Redis answers. */
  healthy(): void {
    if (!this.stalled) return;
    this.stalled = false;
    if (this.connected) this.opts.metrics.available.set(1);
    this.opts.log.info('cluster engine (Redis) answers again');
  }

  /** A heartbeat (or a call) failed while the connection stays up: the link is stalled or Redis is overloaded. */
  unhealthy(op: string, err: unknown): void {
    if (this.stopped) return;
    this.opts.metrics.available.set(0);
    if (this.stalled) return;
    this.stalled = true;
    this.opts.log.warn(
      { op, err: err instanceof Error ? err.message : String(err) },
      'cluster engine (Redis) does not answer: logins and REST calls fail with 9030 until it does',
    );
  }

  /** Whether the command connection is up (also during the shutdown's last writes). */
  get connected(): boolean {
    return this.cmd.status === 'ready';
  }

  /** The engine is shutting down or shut down. */
  get closed(): boolean {
    return this.stopped;
  }

  /** Throw 9030 unless Redis can be used now. */
  check(): void {
    if (this.stopped) throw new EngineUnavailableError('the server is shutting down');
    if (!this.connected) throw new EngineUnavailableError();
    if (this.stalled) throw new EngineUnavailableError('the cluster engine (Redis) does not answer');
  }

  /** Run a Redis call for a caller that must fail fast: any failure becomes 9030. */
  async call<T>(op: string, fn: () => Promise<T>): Promise<T> {
    this.check();
    try {
      return await fn();
    } catch (err) {
      this.opts.metrics.errors.inc({ op });
      if (err instanceof Error && /timed? ?out/i.test(err.message)) this.unhealthy(op, err);
      throw unavailable(err);
    }
  }

  /** Fire-and-forget Redis work: failures are counted and logged at debug; reconcile repairs. */
  background(op: string, work: Promise<unknown>): void {
    work.catch((err: unknown) => {
      this.opts.metrics.errors.inc({ op });
      this.opts.log.debug({ op, err: err instanceof Error ? err.message : String(err) }, 'cluster engine call failed (repaired on reconnect)');
    });
  }

  /** Refuse every further call, then close both connections. */
  async close(): Promise<void> {
    this.stopped = true;
    this.opts.metrics.available.set(0);
    await Promise.allSettled([this.sub.quit(), this.cmd.quit()]);
    this.disconnect();
  }

  /** Drop both connections at once (a start that failed). */
  disconnect(): void {
    this.cmd.disconnect();
    this.sub.disconnect();
  }

  private redisOnError(which: string, err: Error): void {
    if (!this.outageLogged) this.opts.log.warn({ redis: which, err: err.message }, 'cluster engine (Redis) error');
    this.outageLogged = true;
  }

  private redisOnClose(): void {
    this.opts.metrics.available.set(0);
    if (!this.stopped && this.everReady && !this.outageLogged) {
      this.opts.log.warn('lost the connection to the cluster engine (Redis): new logins fail with 9030 until it is back');
      this.outageLogged = true;
    }
  }

  private redisOnReady(which: string): void {
    if (which === 'command') this.stalled = false;
    if (this.connected) this.opts.metrics.available.set(1);
    if (!this.everReady || this.stopped) return;
    this.opts.log.info({ redis: which }, 'cluster engine (Redis) reachable again: reconciling');
    this.outageLogged = false;
    this.opts.onBack();
  }
}
