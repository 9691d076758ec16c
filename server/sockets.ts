/**
 * Every TCP socket the listener accepts, before HTTP or WebSocket sees it: counted per
 * client address and in total, refused beyond the limits, and given a deadline to finish
 * its request headers (or upgrade). A socket that sends nothing, or half a request, holds
 * a descriptor only until that deadline. See docs/operations.md "Limits and abuse".
 */
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from './log.js';
import type { LogSampler } from './log-sampler.js';
import type { Metrics } from './metrics.js';

/** Descriptors kept for everything that is not a client socket (files, the store, Redis, logs). */
const RESERVED_FDS = 64;
/** Plain HTTP sockets (health checks, REST, metrics) allowed beyond `maxConnections` WebSockets. */
export const HTTP_HEADROOM = 64;
/** How long a refused or finished socket may take to flush its last bytes before it is destroyed. */
const FLUSH_MS = 1_000;

/** The soft limit on open files of this process (Linux `/proc/self/limits`), or undefined where unknown. */
export function openFileLimit(): number | undefined {
  try {
    const match = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'utf8'));
    return match?.[1] === undefined || match[1] === 'unlimited' ? undefined : Number(match[1]);
  } catch {
    return undefined;
  }
}

export interface SocketLimits {
  /** WebSocket connections (the upgrade answers 503 beyond it). */
  maxConnections: number;
  /** All sockets; beyond it a new socket is refused at once. */
  maxSockets: number;
  perIp: number;
  handshakeTimeoutMs: number;
}

/**
 * The limits in force: `maxConnections` and `connectionsPerIp` from the config, lowered so
 * that the sockets fit the process's file limit and one address never holds every slot.
 */
export function effectiveLimits(
  config: { maxConnections: number; handshakeTimeoutMs: number; rateLimits: { connectionsPerIp: number } },
  fileLimit: number | undefined = openFileLimit(),
): SocketLimits & { lowered: boolean } {
  let maxConnections = config.maxConnections;
  let maxSockets = maxConnections + HTTP_HEADROOM;
  if (fileLimit !== undefined && maxSockets > fileLimit - RESERVED_FDS) {
    maxSockets = Math.max(2, fileLimit - RESERVED_FDS);
    maxConnections = Math.max(1, Math.min(maxConnections, maxSockets - Math.min(HTTP_HEADROOM, Math.floor(maxSockets / 4))));
  }
  const perIp = Math.max(1, Math.min(config.rateLimits.connectionsPerIp, maxConnections - 1));
  return {
    maxConnections,
    maxSockets,
    perIp,
    handshakeTimeoutMs: config.handshakeTimeoutMs,
    lowered: maxConnections !== config.maxConnections || perIp !== config.rateLimits.connectionsPerIp,
  };
}

/** Send `response` (if the socket still takes it), then destroy the socket once it is flushed, or after {@link FLUSH_MS}. */
export function endAndDestroy(socket: Duplex, response?: string): void {
  if (socket.destroyed) return;
  if (!socket.writable) {
    socket.destroy();
    return;
  }
  const timer = setTimeout(() => socket.destroy(), FLUSH_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
  socket.once('finish', () => socket.destroy());
  socket.end(response);
}

export class SocketGuard {
  private readonly perIp = new Map<string, number>();
  private readonly deadlines = new Map<Socket, NodeJS.Timeout>();
  private open = 0;

  constructor(
    readonly limits: SocketLimits,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly sampler: LogSampler,
  ) {}

  /** Open sockets from `ip` (all addresses when absent). */
  count(ip?: string): number {
    return ip === undefined ? this.open : (this.perIp.get(ip) ?? 0);
  }

  /** A new TCP socket: count it and arm its header deadline, or refuse it (503, then destroyed). */
  admit(socket: Socket): void {
    const ip = socket.remoteAddress;
    if (ip === undefined) {
      socket.destroy();
      return;
    }
    const fromIp = this.perIp.get(ip) ?? 0;
    const reason = this.open >= this.limits.maxSockets ? 'max-sockets' : fromIp >= this.limits.perIp ? 'per-ip' : undefined;
    if (reason !== undefined) {
      this.metrics.socketsRefused.inc({ reason });
      this.sampler.warn(`socket refused ${reason} ${ip}`, { ip, reason, perIp: this.limits.perIp, maxSockets: this.limits.maxSockets }, 'socket refused');
      socket.on('error', () => undefined);
      endAndDestroy(socket, 'HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    this.open++;
    this.perIp.set(ip, fromIp + 1);
    this.metrics.sockets.set(this.open);
    const deadline = setTimeout(() => {
      this.deadlines.delete(socket);
      this.metrics.socketsRefused.inc({ reason: 'handshake-timeout' });
      socket.destroy();
    }, this.limits.handshakeTimeoutMs);
    deadline.unref();
    this.deadlines.set(socket, deadline);
    socket.once('close', () => {
      this.handshakeDone(socket);
      this.open--;
      const left = (this.perIp.get(ip) ?? 1) - 1;
      if (left === 0) this.perIp.delete(ip);
      else this.perIp.set(ip, left);
      this.metrics.sockets.set(this.open);
    });
  }

  /** The socket's first request headers (or its upgrade) arrived: no deadline any more (the HTTP server's own timeouts take over). */
  handshakeDone(socket: Socket | Duplex): void {
    const deadline = this.deadlines.get(socket as Socket);
    if (deadline === undefined) return;
    clearTimeout(deadline);
    this.deadlines.delete(socket as Socket);
  }
}
