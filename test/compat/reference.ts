/**
 * The reference SDK as the compatibility suite reads it, from its npm package
 * (`@tencentcloud/chat`, a devDependency at an exact version; never imported by shipped
 * code): its runtime tables (the package's CommonJS main loads in Node as it is; it prints
 * one version line on load, silenced here) and the member list of its chat instance, from
 * its typings (`export declare class ChatSDK { … }` in index.d.ts).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(import.meta.url);
/** The folder of the reference package. */
export const REFERENCE_DIR = dirname(require.resolve('@tencentcloud/chat/package.json'));
/** Its typings. */
export const REFERENCE_TYPINGS = join(REFERENCE_DIR, 'index.d.ts');

export type Table = Record<string, string | number>;

export interface ReferenceRuntime {
  version: string;
  EVENT: Table;
  TYPES: Table;
  TSignaling: Table;
}

/** The reference's `TencentCloudChat` object, loaded once (its version line silenced). */
export function loadReference(): ReferenceRuntime {
  const log = console.log;
  console.log = () => {};
  try {
    const loaded = require('@tencentcloud/chat') as ReferenceRuntime & { default?: ReferenceRuntime; VERSION: string };
    const chat = loaded.default ?? loaded;
    return { version: (chat as unknown as { VERSION: string }).VERSION, EVENT: chat.EVENT, TYPES: chat.TYPES, TSignaling: chat.TSignaling };
  } finally {
    console.log = log;
  }
}

/** Method names of the reference's `ChatSDK` class, in declaration order, from its typings. */
export function referenceMembers(): string[] {
  const typings = readFileSync(REFERENCE_TYPINGS, 'utf8');
  const start = typings.indexOf('export declare class ChatSDK {');
  const end = typings.indexOf('\n}', start);
  if (start < 0 || end < 0) throw new Error(`${REFERENCE_TYPINGS}: no "export declare class ChatSDK" block`);
  const names = [...typings.slice(start, end).matchAll(/^ {2}([A-Za-z]\w*)\(/gm)].map((m) => m[1]!);
  return [...new Set(names)];
}

/**
 * The conversation members (getConversationList, getMessageList, setMessageRead,
 * getTotalUnreadMessageCount, deleteConversation), implemented by the conversations work:
 * the member checks count them as implemented.
 */
export const CONVERSATION_MEMBERS = ['getConversationList', 'getMessageList', 'setMessageRead', 'getTotalUnreadMessageCount', 'deleteConversation'];

/** Names that differ between two tables: missing on either side or with another value. */
export function tableDiff(ours: Table, theirs: Table): string[] {
  const names = new Set([...Object.keys(ours), ...Object.keys(theirs)]);
  return [...names].filter((name) => !Object.is(ours[name], theirs[name])).map((name) =>
    !(name in ours) ? `${name} (missing in tabchat)` : !(name in theirs) ? `${name} (not in the reference)` : `${name} (${JSON.stringify(ours[name])} ≠ ${JSON.stringify(theirs[name])})`,
  );
}
