/**
 * Helpers of the message suite, on top of the client suite's harness: an inbox that records
 * every MESSAGE_RECEIVED, text-message shortcuts, and a temporary folder for sqlite files.
 */
import type { TestContext } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Chat, Message } from '../../src/node/index.js';
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
