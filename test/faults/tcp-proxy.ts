/**
 * A TCP proxy for fault injection (test harness, not a test file): it sits between a server
 * node and Redis or Postgres, so a test can break ONE link while both processes and the
 * node's TCP connection stay up, the way a paused VM, a congested switch or a healing
 * partition behave:
 *
 * - `stall()`: stop forwarding in both directions (the sockets stop reading; bytes wait in
 *   the kernel buffers, the peers see silence, nothing is lost); `resume()` lets them flow.
 * - `blackhole()`: keep reading and drop every byte (both directions) until `resume()`.
 * - `cut()`: reset every open connection (RST), as a NAT or firewall timeout does; new
 *   connections are accepted again at once (or refused while `refuse(true)`).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type ProxyMode = 'pass' | 'stall' | 'blackhole';

interface Pair {
  client: Socket;
  upstream: Socket;
  /** Bytes from the client held back by a {@link TcpProxy.stallOn} trigger (sent on resume). */
  held: Buffer[];
}

export class TcpProxy {
  private mode: ProxyMode = 'pass';
  private refusing = false;
  private trigger: ((chunk: Buffer) => boolean) | null = null;
  private readonly pairs = new Set<Pair>();

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {
    server.on('connection', (client) => this.accept(client));
  }

  /** A proxy on a free port of 127.0.0.1 forwarding to `host:port`. */
  static start(port: number, host = '127.0.0.1'): Promise<TcpProxy> {
    const server = createServer({ pauseOnConnect: true });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const address = server.address();
        resolve(new TcpProxy(server, typeof address === 'object' && address ? address.port : 0, { host, port }));
      });
    });
  }

  /** `url` with its port replaced by the proxy's (a redis:// or postgres:// URL of the target). */
  rewrite(url: string): string {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(this.port);
    return u.toString();
  }

  /** Open proxied connections. */
  get connections(): number {
    return this.pairs.size;
  }

  get state(): ProxyMode {
    return this.mode;
  }

  stall(): void {
    this.mode = 'stall';
    for (const p of this.pairs) {
      p.client.pause();
      p.upstream.pause();
    }
  }

  /**
   * Stall the link the moment the node sends bytes that `match` (e.g. one Lua script's
   * call): that chunk and everything after it wait, in order, until `resume()`. The fault
   * then hits a request in flight, not before or after it.
   */
  stallOn(match: (chunk: Buffer) => boolean): void {
    this.trigger = match;
  }

  blackhole(): void {
    this.mode = 'blackhole';
    for (const p of this.pairs) {
      p.client.resume();
      p.upstream.resume();
    }
  }

  resume(): void {
    this.mode = 'pass';
    this.trigger = null;
    for (const p of this.pairs) {
      for (const chunk of p.held.splice(0)) p.upstream.write(chunk);
      p.client.resume();
      p.upstream.resume();
    }
  }

  /** New connections are reset at once while `on`. */
  refuse(on: boolean): void {
    this.refusing = on;
  }

  /** Reset every open connection (the peers get ECONNRESET). */
  cut(): void {
    for (const p of this.pairs) {
      reset(p.client);
      reset(p.upstream);
    }
    this.pairs.clear();
  }

  /** Stop listening and reset every connection (does not wait for late reconnect attempts). */
  async close(): Promise<void> {
    this.refusing = true;
    this.cut();
    this.server.close();
    this.server.unref();
  }

  private accept(client: Socket): void {
    if (this.refusing) {
      reset(client);
      return;
    }
    const upstream = connect(this.target);
    const pair: Pair = { client, upstream, held: [] };
    this.pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (this.mode === 'blackhole') return;
        if (from === client && (this.mode === 'stall' || this.trigger?.(chunk))) {
          // Read before the pause took effect, or the trigger: hold it until resume().
          pair.held.push(chunk);
          if (this.mode !== 'stall') this.stall();
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once('drain', () => {
            if (this.mode !== 'stall') from.resume();
          });
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    upstream.once('connect', () => {
      if (this.mode !== 'stall') client.resume();
    });
    if (this.mode === 'stall') upstream.pause();
  }
}

/**
 * Reset `socket` (RST), or just close it when its write side already ended: a socket whose
 * FIN (shutdown) is under way cannot be reset (libuv answers EINVAL) and Node 20 then leaves
 * its handle half-closed for good: nothing keeps the event loop alive, but the process
 * spins at 100 % CPU in its exit cleanup and never exits (seen with the fault tests: Redis
 * closes a link, the proxy's auto-end starts the FIN, then close() resets it).
 */
function reset(socket: Socket): void {
  if (socket.writableEnded) socket.destroy();
  else socket.resetAndDestroy();
}
