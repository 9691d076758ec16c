/**
 * The chat server as a library: `createChatServer(config)` listens and returns a handle.
 * The `tabchat-server` command (cli.ts) is a thin wrapper around it.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import { CLOSE } from '../src/protocol/codes.js';
import { Authenticator } from './auth.js';
import type { ServerConfig } from './config.js';
import { Connection } from './connection.js';
import type { ServerContext } from './context.js';
import type { InstanceEngine, InstanceEngineEvents } from './engine.js';
import { MemoryEngine } from './engine-memory.js';
import { handleHttp, serveMetrics } from './http.js';
import { createLogger, type Logger } from './log.js';
import { LogSampler } from './log-sampler.js';
import { MessageService } from './messages.js';
import { ConversationService } from './conversations.js';
import { ClusterMetrics, Metrics } from './metrics.js';
import type { MessageStore } from './store.js';
import { openStore } from './store-open.js';
import { SocketGuard, effectiveLimits, endAndDestroy } from './sockets.js';
import { SyncScheduler } from './sync-scheduler.js';

export { validateConfig, loadConfigFile, ConfigError, type ServerConfig, type AppConfig } from './config.js';
export { generateUserSig, verifyUserSig, decodeUserSig } from './usersig.js';
export type { MessageStore, StoredMessage, MailboxEntry } from './store.js';
export { openStore } from './store-open.js';
export type { InstanceEngine, ClusterStats, LoginSettings } from './engine.js';

export interface ChatServerOptions {
  /** Use this logger instead of a pino logger on stdout. */
  logger?: Logger;
  /** Node id for logs, metrics and cluster stats; default config `node`, else random. */
  node?: string;
}

export interface ChatServer {
  /** The port actually bound (useful with port 0). */
  readonly port: number;
  readonly httpUrl: string;
  readonly wsUrl: string;
  /** Where `/metrics` is served when config `metrics.port` is set (else on {@link httpUrl}). */
  readonly metricsUrl: string;
  readonly context: ServerContext;
  /**
   * Graceful stop: refuse new logins, tell every client to reconnect (close 4000), wait up
   * to `shutdownGraceMs` for sockets to go, then close the rest and the listener.
   */
  close(): Promise<void>;
}

/** Best client IP: the socket's address (put a proxy's X-Forwarded-For handling in front if needed). */
function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? 'unknown';
}

/**
 * A cluster node with a local store (`sqlite:`, `memory`): fine while it is the only node on
 * its Redis (a config may set `redis` and keep the default `sqlite:` store), but
 * a second node would read other mailboxes than the first. Refuse to start next to live
 * nodes; warn otherwise.
 */
async function checkLocalStoreAlone(engine: InstanceEngine, storeKind: string, node: string, log: Logger): Promise<void> {
  const others = ((await engine.stats()).nodes ?? []).map((n) => n.node).filter((id) => id !== node);
  if (others.length > 0) {
    throw new Error(
      `store "${storeKind}" keeps messages on this machine, but node(s) ${others.join(', ')} are live on the same Redis: give every node the same postgres:// store`,
    );
  }
  log.warn({ store: storeKind }, 'cluster engine with a local message store: run a single node, or move every node to one postgres:// store before adding nodes');
}

export async function createChatServer(config: ServerConfig, options: ChatServerOptions = {}): Promise<ChatServer> {
  const node = options.node ?? config.node ?? `n-${randomBytes(3).toString('hex')}`;
  const log = options.logger ?? createLogger(config.logLevel, node);
  const apps = new Map(config.apps.map((a) => [a.sdkAppId, { ...a, allowedOrigins: [...a.allowedOrigins] }]));
  const connections = new Set<Connection>();
  let engine: InstanceEngine | undefined;
  const metrics = new Metrics(node, () => engine?.countByPlatform() ?? new Map(), () => {
    let max = 0;
    for (const conn of connections) max = Math.max(max, conn.bufferedAmount);
    return max;
  });
  const events: InstanceEngineEvents = {
    onKick: (kick) => {
      metrics.kicks.inc({ type: kick.type });
      log.info({ sdkAppId: kick.sdkAppId, userID: kick.userID, platform: kick.platform, instId: kick.instId, type: kick.type }, 'kick');
    },
    onRelease: (instId, why) => log.debug({ instId, why }, 'instance released'),
  };
  const store = await openStore(config.store, config.storeBatch, config.mailbox);
  let messages: MessageService | undefined;
  try {
    if (config.redis === undefined) {
      engine = new MemoryEngine(config.resumeWindowMs, events, () => connections.size);
    } else {
      const { RedisEngine } = await import('./engine-redis.js');
      engine = await RedisEngine.start({
        url: config.redis,
        prefix: config.redisPrefix,
        node,
        resumeWindowMs: config.resumeWindowMs,
        heartbeatMs: config.nodeHeartbeatMs,
        nodeTimeoutMs: config.nodeTimeoutMs,
        apps,
        log,
        metrics: new ClusterMetrics(metrics.registry),
        connections: () => connections.size,
        events: {
          ...events,
          onPush: (count) => metrics.messagesDelivered.inc({ via: 'push' }, count),
          onResync: (instances) => void messages?.resync(instances),
        },
      });
    }
    if (engine.kind === 'redis' && store.kind !== 'postgres') await checkLocalStoreAlone(engine, store.kind, node, log);
  } catch (err) {
    await engine?.close().catch(() => undefined);
    await store.close();
    throw err;
  }
  messages = new MessageService(store, engine, metrics, log, config.mailbox);
  const limits = effectiveLimits(config);
  if (limits.lowered) {
    log.warn(
      { maxConnections: limits.maxConnections, connectionsPerIp: limits.perIp, maxSockets: limits.maxSockets },
      'socket limits lowered to fit the open-file limit of the process (ulimit -n) and to keep slots for other addresses',
    );
  }
  const sampler = new LogSampler(log);
  const ctx: ServerContext = {
    config,
    apps,
    engine,
    auth: new Authenticator(apps, engine, config.rateLimits),
    metrics,
    store,
    messages,
    conversations: new ConversationService(store, engine, log),
    log,
    sampler,
    node,
    connections,
    userConnections: new Map(),
    sockets: new SocketGuard(limits, metrics, log, sampler),
    syncs: new SyncScheduler(store.kind === 'postgres' ? 4 : 1),
    shuttingDown: false,
  };
  const cleanup = async (what: { engine: InstanceEngine; store: MessageStore }) => {
    await what.engine.close().catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'engine close failed'));
    await what.store.close();
  };

  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxPayloadBytes, perMessageDeflate: false, clientTracking: false });
  const timeouts = {
    headersTimeout: config.handshakeTimeoutMs,
    requestTimeout: Math.max(config.handshakeTimeoutMs, 30_000),
    connectionsCheckingInterval: Math.min(1_000, config.handshakeTimeoutMs),
  };
  const http: Server = createServer(timeouts, (req, res) => {
    ctx.sockets.handshakeDone(req.socket);
    capUnreadBody(ctx, req, res);
    handleHttp(ctx, req, res, clientIp(req)).catch((err: unknown) => {
      log.error({ err: err instanceof Error ? err.stack : String(err) }, 'HTTP handler failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('internal error\n');
    });
  });
  http.on('connection', (socket) => ctx.sockets.admit(socket));
  // A malformed request, or one whose headers did not arrive in time: answer, then destroy
  // the socket (an `end()` alone would leave it half-open, holding a descriptor, for as long
  // as the peer keeps its side).
  http.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT';
    metrics.socketsRefused.inc({ reason: timedOut ? 'handshake-timeout' : 'bad-request' });
    endAndDestroy(socket, `HTTP/1.1 ${timedOut ? '408 Request Timeout' : '400 Bad Request'}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
  });
  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    ctx.sockets.handshakeDone(socket);
    const refuse = (status: string) => endAndDestroy(socket, `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    let pathname: string;
    try {
      pathname = new URL(req.url ?? '/', 'http://localhost').pathname;
    } catch {
      return refuse('400 Bad Request');
    }
    if (pathname !== '/ws') return refuse('404 Not Found');
    if (ctx.shuttingDown) return refuse('503 Service Unavailable');
    if (connections.size >= limits.maxConnections) {
      sampler.warn('maxConnections', { max: limits.maxConnections }, 'connection refused: maxConnections reached');
      return refuse('503 Service Unavailable');
    }
    socket.on('error', () => socket.destroy());
    wss.handleUpgrade(req, socket, head, (ws) => {
      const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
      const conn = new Connection(ws, clientIp(req), origin, ctx, socket);
      connections.add(conn);
      metrics.connections.set(connections.size);
    });
  });

  // Heartbeat sweep: terminate sockets that did not answer the previous ping.
  const sweep = setInterval(() => {
    for (const conn of connections) {
      if (!conn.isAlive) {
        log.debug({ conn: conn.id }, 'terminating dead connection');
        conn.terminate();
        continue;
      }
      conn.ping();
    }
  }, config.heartbeatMs);
  sweep.unref();

  try {
    await new Promise<void>((resolve, reject) => {
      http.once('error', reject);
      http.listen(config.port, config.host, () => {
        http.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    clearInterval(sweep);
    await cleanup({ engine, store });
    throw err;
  }
  const address = http.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.port;
  const urlHost = (host: string) => (host.includes(':') ? `[${host}]` : host);
  const hostForUrl = urlHost(config.host);
  const httpUrl = `http://${hostForUrl}:${port}`;
  let metricsServer: Server | undefined;
  let metricsUrl = httpUrl;
  if (config.metrics.port !== undefined) {
    const ms = createServer(timeouts, (req, res) => {
      capUnreadBody(ctx, req, res);
      const pathname = (req.url ?? '/').split('?')[0];
      if (pathname !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' });
        return void res.end('not found\n');
      }
      serveMetrics(ctx, req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    ms.on('clientError', (_err, socket: Duplex) => endAndDestroy(socket, 'HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n'));
    try {
      await new Promise<void>((resolve, reject) => {
        ms.once('error', reject);
        ms.listen(config.metrics.port, config.metrics.host, () => {
          ms.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      clearInterval(sweep);
      await new Promise<void>((resolve) => http.close(() => resolve()));
      await cleanup({ engine, store });
      throw err;
    }
    metricsServer = ms;
    const maddr = ms.address();
    metricsUrl = `http://${urlHost(config.metrics.host)}:${typeof maddr === 'object' && maddr !== null ? maddr.port : config.metrics.port}`;
  }
  log.info({ port, host: config.host, apps: [...apps.keys()], devUserSig: config.devUserSig, store: store.kind, engine: engine.kind }, 'listening');
  if (config.devUserSig) log.warn('devUserSig is on: GET /dev/usersig issues UserSigs to anyone. Demo use only.');

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      ctx.shuttingDown = true;
      clearInterval(sweep);
      log.info({ connections: connections.size }, 'shutting down');
      const listenerClosed = new Promise<void>((resolve) => http.close(() => resolve()));
      for (const conn of connections) conn.close(CLOSE.SHUTDOWN, 'server shutting down');
      const deadline = Date.now() + config.shutdownGraceMs;
      while (connections.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const conn of connections) conn.terminate();
      http.closeAllConnections();
      await listenerClosed;
      if (metricsServer) {
        const closed = new Promise<void>((resolve) => metricsServer!.close(() => resolve()));
        metricsServer.closeAllConnections();
        await closed;
      }
      ctx.syncs.close();
      ctx.messages.close();
      sampler.close();
      wss.close();
      await cleanup({ engine: ctx.engine, store });
      log.info('stopped');
      // The destination is asynchronous: wait until the last lines are written, so a
      // process.exit() right after close() loses nothing.
      // Bounded: a destination whose reader went away (a closed pipe) may never call back.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1_000);
        log.flush(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    })();
    return closing;
  };

  return { port, httpUrl, wsUrl: `ws://${hostForUrl}:${port}/ws`, metricsUrl, context: ctx, close };
}

/**
 * A request answered before its body was read (failed REST auth, 404, 405, /healthz): the
 * HTTP server would read and discard the rest of the body for as long as the client sends
 * it. Allow at most `maxBodyBytes` more, then cut the socket.
 */
function capUnreadBody(ctx: ServerContext, req: IncomingMessage, res: ServerResponse): void {
  // 'prefinish': before the HTTP server's own 'finish' handler would start discarding the
  // body unseen (and unbounded); reading it here keeps the count.
  res.once('prefinish', () => {
    if (req.complete || req.destroyed || req.listenerCount('data') > 0) return;
    let discarded = 0;
    req.on('data', (chunk: Buffer) => {
      discarded += chunk.length;
      ctx.metrics.httpBodyDiscarded.inc(chunk.length);
      if (discarded > ctx.config.maxBodyBytes) req.socket.destroy();
    });
    req.resume();
  });
}
