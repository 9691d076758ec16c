/**
 * Shared helpers of the client suite: a per-test harness around a real chat server and
 * Node chat instances, an event recorder, and waits that poll or listen with a timeout
 * (never a fixed sleep).
 */
import type { TestContext } from 'node:test';
import TabChat, { type Chat, type ChatEvent, type NodeCreateOptions } from '../../src/node/index.js';
import { startTestServer, type TestAppOptions, type TestServer, type TestServerOptions } from '../helpers/server.js';
import { until } from '../helpers/raw-client.js';

export { until };
export const { EVENT, TYPES } = TabChat;

/** Events every recorder listens to. */
const ALL_EVENTS = Object.values(EVENT);

/** Every event a chat emitted, in order. */
export class Recorder {
  readonly events: ChatEvent[] = [];
  constructor(chat: Chat) {
    for (const name of ALL_EVENTS) chat.on(name, (event) => this.events.push(event));
  }
  names(): string[] {
    return this.events.map((e) => e.name);
  }
  /** Wait until an event named `name` has been recorded (counting from the start); returns it. */
  async waitFor(name: string, timeoutMs = 5000): Promise<ChatEvent> {
    const hit = await until(() => this.events.find((e) => e.name === name), timeoutMs, `event ${name}; got [${this.names().join(', ')}]`);
    return hit!; // until() only returns a truthy value
  }
  clear(): void {
    this.events.length = 0;
  }
}

/** Wait for the next `name` event of `chat`, or reject after `timeoutMs`. */
export function nextEvent(chat: Chat, name: string, timeoutMs = 5000): Promise<ChatEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      chat.off(name, handler);
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    const handler = (event: ChatEvent) => {
      clearTimeout(timer);
      chat.off(name, handler);
      resolve(event);
    };
    chat.on(name, handler);
  });
}

/** The settled error of a promise that must reject. */
export async function rejection(promise: Promise<unknown>): Promise<{ code: number; message: string; data: Record<string, unknown> }> {
  try {
    await promise;
  } catch (err) {
    return err as { code: number; message: string; data: Record<string, unknown> };
  }
  throw new Error('expected a rejection, got a resolution');
}

export interface Harness {
  server: TestServer;
  /** A new Node chat on this server (destroyed after the test), with its event recorder. */
  chat(options?: Partial<NodeCreateOptions>): { chat: Chat; rec: Recorder };
  /** Create, log in and wait for SDK_READY. */
  ready(userID: string, options?: Partial<NodeCreateOptions> & { userSig?: string }): Promise<{ chat: Chat; rec: Recorder; instanceID: number }>;
  /** `Detail[]` of query_online_status for one user. */
  online(userID: string): Promise<Array<{ Platform: string; InstId: number; Connected: boolean }>>;
}

/** Start a server for this test; everything is torn down when the test ends. */
export async function harness(t: TestContext, app: TestAppOptions = {}, opts: TestServerOptions = {}): Promise<Harness> {
  const server = await startTestServer(app, opts);
  const chats: Chat[] = [];
  t.after(async () => {
    await Promise.allSettled(chats.map((c) => c.destroy()));
    await server.close();
  });
  const h: Harness = {
    server,
    chat(options = {}) {
      const chat = TabChat.create({ SDKAppID: server.sdkAppId, server: server.wsUrl, ...options });
      if (!chat) throw new Error('create() returned null');
      chat.setLogLevel(3);
      chats.push(chat);
      return { chat, rec: new Recorder(chat) };
    },
    async ready(userID, options = {}) {
      const { userSig = server.sig(userID), ...createOptions } = options;
      const { chat, rec } = h.chat(createOptions);
      const res = await chat.login({ userID, userSig });
      await rec.waitFor(EVENT.SDK_READY);
      return { chat, rec, instanceID: res.data.instanceID ?? 0 };
    },
    async online(userID) {
      const reply = await server.rest('openim/query_online_status', { To_Account: [userID], IsNeedDetail: 1 });
      return reply.QueryResult[0].Detail;
    },
  };
  return h;
}
