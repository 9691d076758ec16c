/**
 * Helpers of the message suite, on top of the client suite's harness: an inbox that records
 * every MESSAGE_RECEIVED, text-message shortcuts, a temporary folder for sqlite files, a
 * sqlite file whose commits can be made to fail, and a bare SessionEngine on a test server.
 */
import type { TestContext } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import WebSocket from 'ws';
import { SessionEngine } from '../../src/core/engine.js';
import type { MemoryOutbox } from '../../src/core/outbox.js';
import type { Logger } from '../../src/protocol/data.js';
import type { LoginParams, WebSocketConstructor } from '../../src/core/types.js';
import type { Chat, Message } from '../../src/node/index.js';
import { SqliteStore } from '../../server/store-sqlite.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { EVENT, until } from '../client/util.js';

export { EVENT, harness, rejection, until } from '../client/util.js';

/** Every message a chat received (MESSAGE_RECEIVED), in order, plus the number of events. */
export class Inbox {
  readonly messages: Message[] = [];
  events = 0;
  constructor(chat: Chat) {
    chat.on(EVENT.MESSAGE_RECEIVED, (event) => {
      this.events++;
      this.messages.push(...(event.data as Message[]));
    });
  }
  texts(): string[] {
    return this.messages.map((m) => m.payload.text);
  }
  /** Wait until at least `count` messages arrived; returns them all. */
  async waitCount(count: number, timeoutMs = 10_000): Promise<Message[]> {
    await until(() => this.messages.length >= count, timeoutMs, `${count} messages; got ${this.messages.length}`);
    return this.messages;
  }
  /** Wait until a message with this text arrived; returns it. */
  async waitText(text: string, timeoutMs = 10_000): Promise<Message> {
    const hit = await until(() => this.messages.find((m) => m.payload.text === text), timeoutMs, `message ${JSON.stringify(text)}; got ${JSON.stringify(this.texts()).slice(0, 300)}`);
    return hit!; // until() only returns a truthy value
  }
}

/** Create a C2C text message to `to`. */
export function text(chat: Chat, to: string, body: string): Message {
  return chat.createTextMessage({ to, conversationType: 'C2C', payload: { text: body } });
}

/** Create and send a C2C text message; resolves with the sent message. */
export async function say(chat: Chat, to: string, body: string): Promise<Message> {
  const res = await chat.sendMessage(text(chat, to, body));
  return res.data.message;
}

/** A temporary folder removed when the test ends. */
export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'tabchat-msg-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Whether the numbers are 1, 2, 3 … n (no gap, no duplicate). */
export function isGapless(seqs: number[], first = 1): boolean {
  return seqs.every((seq, i) => seq === first + i);
}

/**
 * Create a sqlite store file at `path` whose transaction fails at COMMIT when it stored a
 * message with the text "fail the commit": a deferred foreign key is checked at COMMIT.
 */
export async function sqliteFileFailingOnCommit(path: string): Promise<void> {
  await (await SqliteStore.open(path)).close();
  const raw = new Database(path);
  raw.exec(`CREATE TABLE boom (message_id TEXT REFERENCES messages (id) DEFERRABLE INITIALLY DEFERRED);
            CREATE TRIGGER boom AFTER INSERT ON messages WHEN NEW.text = 'fail the commit'
            BEGIN INSERT INTO boom VALUES ('no such message'); END`);
  raw.close();
}

/** A logger that drops everything. */
export const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

/** A test server closed when the test ends. */
export async function server(t: { after(fn: () => Promise<void>): void }): Promise<TestServer> {
  const ts = await startTestServer();
  t.after(() => ts.close());
  return ts;
}

/** A SessionEngine (no Chat on top) on the test server, closed when the test ends. */
export function engine(t: { after(fn: () => void): void }, ts: TestServer, options: { outbox?: MemoryOutbox; framesPerSecond?: number } = {}): SessionEngine {
  const e = new SessionEngine({ url: ts.wsUrl, WebSocket: WebSocket as unknown as WebSocketConstructor, logger: quiet, ...options });
  t.after(() => e.close());
  return e;
}

/** Login parameters of `userID` on the test server (Web). */
export function params(ts: TestServer, userID: string): LoginParams {
  return { sdkAppId: ts.sdkAppId, userID, userSig: ts.sig(userID), platform: 'Web' };
}
