/**
 * A protocol-level WebSocket client for server tests: sends raw frames, records everything
 * received, and waits for frames or the close by polling its own record (never sleeping).
 */
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type Platform, type ServerFrame } from '../../src/protocol/frames.js';

export interface Closed {
  code: number;
  reason: string;
}

export class RawClient {
  readonly frames: ServerFrame[] = [];
  /** Frames that were not JSON (should never happen). */
  readonly garbage: string[] = [];
  closed: Closed | null = null;
  private nextId = 1;
  private waiters = new Set<() => void>();

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      const text = data.toString();
      try {
        this.frames.push(JSON.parse(text) as ServerFrame);
      } catch {
        this.garbage.push(text);
      }
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  /**
   * Open a socket (and say hello unless `hello: false`). `localAddress` binds the client end
   * (e.g. "127.0.0.2", to act as another IP on loopback); `autoPong: false` leaves the
   * server's WebSocket pings unanswered (a dead peer).
   */
  static async connect(
    url: string,
    opts: { origin?: string; hello?: boolean; localAddress?: string; autoPong?: boolean } = {},
  ): Promise<RawClient> {
    const wsOpts: WebSocket.ClientOptions = {};
    if (opts.origin) wsOpts.origin = opts.origin;
    if (opts.localAddress) wsOpts.localAddress = opts.localAddress;
    if (opts.autoPong !== undefined) wsOpts.autoPong = opts.autoPong;
    const ws = new WebSocket(url, wsOpts);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = new RawClient(ws);
    if (opts.hello !== false) {
      client.sendJson({ type: 'hello', v: PROTOCOL_VERSION, client: 'raw-test' });
      await client.waitFor((f) => f.type === 'welcome');
    }
    return client;
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  send(raw: string | Buffer): void {
    this.ws.send(raw);
  }

  sendJson(frame: unknown): void {
    this.ws.send(JSON.stringify(frame));
  }

  /** Wait until a received frame matches (searching from the start), or time out. */
  waitFor<T extends ServerFrame = ServerFrame>(pred: (f: ServerFrame) => boolean, timeoutMs = 5000, what = 'frame'): Promise<T> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const hit = this.frames.find(pred);
        if (hit) {
          cleanup();
          resolve(hit as T);
        } else if (this.closed) {
          cleanup();
          reject(new Error(`socket closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`timed out waiting for ${what}; got ${JSON.stringify(this.frames).slice(0, 500)}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  waitClosed(timeoutMs = 5000): Promise<Closed> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.closed) {
          cleanup();
          resolve(this.closed);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error('timed out waiting for close'));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Send a request frame with a fresh id and wait for its result. */
  async request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
    const id = this.nextId++;
    this.sendJson({ ...frame, id });
    return this.waitFor((f) => f.type === 'result' && f.id === id, timeoutMs, `result of ${String(frame.type)} #${id}`);
  }

  login(sdkAppId: number, userID: string, userSig: string, platform: Platform = 'Web'): Promise<any> {
    return this.request({ type: 'login', sdkAppId, userID, userSig, platform });
  }

  kicks(): Array<{ instId: number; reason: string }> {
    return this.frames.filter((f) => f.type === 'kick') as Array<{ instId: number; reason: string }>;
  }

  close(): void {
    this.ws.close();
  }

  terminate(): void {
    this.ws.terminate();
  }
}

/** Poll `fn` until it returns a truthy value (or throw after `timeoutMs`). */
export async function until<T>(fn: () => T | Promise<T>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
