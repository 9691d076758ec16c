/**
 * A protocol-level WebSocket client: sends raw frames, records everything received, and
 * waits for frames or the close by watching its own record (never sleeping). The server
 * tests use it as is; the server benchmark's load clients turn the record off
 * (`record: false`) and take every frame through `onFrame`.
 */
import WebSocket from 'ws';
import { PROTOCOL_VERSION, type Platform, type ServerFrame } from '../../src/protocol/frames.js';

export interface Closed {
  code: number;
  reason: string;
}

export interface RawClientOptions {
  /** `Origin` header (as a page of that origin would send). */
  origin?: string;
  /** Say hello and wait for the welcome (default true). */
  hello?: boolean;
  /** Bind the client end, e.g. "127.0.0.2" (another IP on loopback). */
  localAddress?: string;
  /** false: leave the server's WebSocket pings unanswered (a dead peer). */
  autoPong?: boolean;
  /** Client name in the hello; default "raw-test". */
  client?: string;
  /** Keep every received frame in {@link RawClient.frames} (default true; a load client keeps none). */
  record?: boolean;
}

/** A request waiting for its `result` frame. */
interface Pending {
  resolve(frame: ServerFrame): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

export class RawClient {
  readonly frames: ServerFrame[] = [];
  /** Frames that were not JSON (should never happen). */
  readonly garbage: string[] = [];
  closed: Closed | null = null;
  /** Called with every frame received and its arrival time (`performance.now()`), after the record. */
  onFrame: ((frame: ServerFrame, at: number) => void) | null = null;
  private nextId = 1;
  private waiters = new Set<() => void>();
  private readonly pending = new Map<number, Pending>();

  private constructor(
    readonly ws: WebSocket,
    private readonly record: boolean,
  ) {
    ws.on('message', (data) => this.wsOnMessage(data.toString(), performance.now()));
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const [id, p] of this.pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`socket closed (${code} ${this.closed.reason}) while waiting for the result of #${id}`));
      }
      this.pending.clear();
      this.wake();
    });
    ws.on('error', () => undefined);
  }

  /** Open a socket (and say hello unless `hello: false`). */
  static async connect(url: string, opts: RawClientOptions = {}): Promise<RawClient> {
    const wsOpts: WebSocket.ClientOptions = { perMessageDeflate: false };
    if (opts.origin) wsOpts.origin = opts.origin;
    if (opts.localAddress) wsOpts.localAddress = opts.localAddress;
    if (opts.autoPong !== undefined) wsOpts.autoPong = opts.autoPong;
    const ws = new WebSocket(url, wsOpts);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const client = new RawClient(ws, opts.record ?? true);
    if (opts.hello !== false) {
      let welcomed = false;
      client.onFrame = (frame) => (welcomed ||= frame.type === 'welcome');
      client.sendJson({ type: 'hello', v: PROTOCOL_VERSION, client: opts.client ?? 'raw-test' });
      await client.waitUntil(() => welcomed || undefined, 5000, 'welcome', true);
      client.onFrame = null;
    }
    return client;
  }

  private wsOnMessage(text: string, at: number): void {
    let frame: ServerFrame;
    try {
      frame = JSON.parse(text) as ServerFrame;
    } catch {
      this.garbage.push(text);
      this.wake();
      return;
    }
    if (this.record) this.frames.push(frame);
    if (frame.type === 'result') {
      const p = this.pending.get(frame.id);
      if (p) {
        this.pending.delete(frame.id);
        clearTimeout(p.timer);
        p.resolve(frame);
      }
    }
    this.onFrame?.(frame, at);
    if (this.waiters.size > 0) this.wake();
  }

  /** A fresh request id (for frames sent with {@link send} that expect a result). */
  requestId(): number {
    return this.nextId++;
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
    return this.waitUntil(() => this.frames.find(pred) as T | undefined, timeoutMs, what, true);
  }

  waitClosed(timeoutMs = 5000): Promise<Closed> {
    return this.waitUntil(() => this.closed ?? undefined, timeoutMs, 'close', false);
  }

  /**
   * Resolve with `check()` once it returns a value (checked now, and after every frame and
   * the close); reject on timeout, or on the close when `failOnClose`.
   */
  private waitUntil<T>(check: () => T | undefined, timeoutMs: number, what: string, failOnClose: boolean): Promise<T> {
    return new Promise((resolve, reject) => {
      const waiter = () => {
        const value = check();
        if (value !== undefined) {
          cleanup();
          resolve(value);
        } else if (failOnClose && this.closed) {
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
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
      waiter();
    });
  }

  /** Send a request frame with a fresh id and wait for its result. */
  request(frame: Record<string, unknown>, timeoutMs = 5000): Promise<any> {
    const id = this.requestId();
    return new Promise((resolve, reject) => {
      if (this.closed) return reject(new Error(`socket closed (${this.closed.code} ${this.closed.reason}) before ${String(frame.type)} #${id}`));
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`timed out waiting for the result of ${String(frame.type)} #${id}; got ${JSON.stringify(this.frames).slice(0, 500)}`));
      }, timeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.sendJson({ ...frame, id });
    });
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
