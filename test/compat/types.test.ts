/**
 * A strict TypeScript application written against the reference SDK's typings compiles
 * against tabchat with only its import changed.
 *
 * Each fixture in test/compat/fixtures/ imports `@tencentcloud/chat`. It is type-checked
 * twice with the project's `tsc` (`strict`, bundler resolution as in a Vite or webpack app):
 * first against the reference package (proving the fixture is valid for the reference),
 * then with `@tencentcloud/chat` mapped to tabchat's browser entry (a `paths` mapping: the
 * import swapped, nothing else). Generated type-level checks then compare every constant of
 * the reference (listed at run time) with tabchat's types, and tabchat's `ChatSDK` with the
 * reference's: every member present, return types assignable. tsc's errors name what differs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REFERENCE_TYPINGS, ROOT, loadReference } from './reference.js';

const FIXTURES = join(ROOT, 'test', 'compat', 'fixtures');
const TSC = join(ROOT, 'node_modules', '.bin', 'tsc');
const TABCHAT_ENTRY = join(ROOT, 'src', 'index.ts');
const fixtures = readdirSync(FIXTURES).filter((f) => f.endsWith('.ts')).map((f) => join(FIXTURES, f));

/** Type-check `files` with `@tencentcloud/chat` (and `reference-chat`) mapped as given; returns tsc's output, '' when clean. */
function typecheck(dir: string, name: string, files: string[], paths: Record<string, string>): string {
  const config = join(dir, `tsconfig.${name}.json`);
  writeFileSync(config, JSON.stringify({
    compilerOptions: {
      strict: true,
      target: 'ES2022',
      module: 'ESNext',
      moduleResolution: 'Bundler',
      lib: ['ES2022', 'DOM'],
      types: [],
      noEmit: true,
      skipLibCheck: true,
      paths: Object.fromEntries(Object.entries(paths).map(([key, path]) => [key, [path]])),
    },
    files,
  }, null, 2));
  const res = spawnSync(TSC, ['-p', config, '--pretty', 'false'], { encoding: 'utf8' });
  if (res.error) throw res.error;
  return res.status === 0 ? '' : `${res.stdout}${res.stderr}`.trim();
}

const work = mkdtempSync(join(tmpdir(), 'tabchat-compat-'));
test.after(() => rmSync(work, { recursive: true, force: true }));

test('the fixtures are valid strict TypeScript for the reference SDK', () => {
  assert.ok(fixtures.length >= 4, `fixtures: ${fixtures.join(', ')}`);
  assert.equal(typecheck(work, 'reference', fixtures, { '@tencentcloud/chat': REFERENCE_TYPINGS }), '');
});

test('the same fixtures compile against tabchat with only the import swapped', () => {
  assert.equal(typecheck(work, 'tabchat', fixtures, { '@tencentcloud/chat': TABCHAT_ENTRY }), '');
});

test('types: every reference constant has its value in tabchat; ChatSDK has every reference member, returning assignable types', () => {
  const reference = loadReference();
  const lines = [
    `import TabChat, { type ChatSDK } from '@tencentcloud/chat';`,
    `import type { ChatSDK as ReferenceChatSDK } from 'reference-chat';`,
    `type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;`,
    `type Assignable<A, B> = [A] extends [B] ? true : false;`,
  ];
  // One named check per constant, so tsc's error names the constant that differs.
  for (const table of ['EVENT', 'TYPES', 'TSignaling'] as const) {
    for (const [key, value] of Object.entries(reference[table])) {
      lines.push(`export const ${table}__${key}: Same<\`\${TabChat.${table}.${key}}\`, ${JSON.stringify(String(value))}> = true;`);
    }
  }
  // Members: ChatSDK lacks none.
  lines.push(`export const members_missing: Same<Exclude<keyof ReferenceChatSDK, keyof ChatSDK>, never> = true;`);
  // Returns assignable to the reference's, e.g. logout(): Promise<void>. Not compared: the
  // Message-returning members (tabchat's Message is its own class; the fixtures cover them)
  // and getSignalingInfo (its Signaling is a loose object type).
  lines.push(
    `type Shared = Exclude<keyof ReferenceChatSDK & keyof ChatSDK, 'createTextMessage' | 'createTextAtMessage' | 'createImageMessage' | 'createAudioMessage' | 'createVideoMessage' | 'createCustomMessage' | 'createFaceMessage' | 'createFileMessage' | 'createLocationMessage' | 'createMergerMessage' | 'createForwardMessage' | 'findMessage' | 'getSignalingInfo'>;`,
    `type ReturnMismatch = { [K in Shared]: ChatSDK[K] extends (...args: any[]) => infer R ? (ReferenceChatSDK[K] extends (...args: any[]) => infer S ? (Assignable<R, S> extends true ? never : K) : never) : K }[Shared];`,
    // On a mismatch, tsc's message names the members: "'true' is not assignable to '\"logout\" | …'".
    `export const returns_assignable: [ReturnMismatch] extends [never] ? true : ReturnMismatch = true;`,
    // create(): non-null for a numeric SDKAppID, nullable for any string.
    `const created = TabChat.create({ SDKAppID: 1400000001 });`,
    `export const create_non_null: Same<typeof created, ChatSDK> = true;`,
    `declare const fromConfig: string;`,
    `const maybe = TabChat.create({ SDKAppID: fromConfig });`,
    `export const create_string_nullable: Same<typeof maybe, ChatSDK | null> = true;`,
    // on/off accept any Function.
    `declare const handler: Function;`,
    `created.on(TabChat.EVENT.SDK_READY, handler); created.off('anything', handler);`,
    `export const logout_void: Assignable<ReturnType<ChatSDK['logout']>, Promise<void>> = true;`,
    `export const destroy_void: Assignable<ReturnType<ChatSDK['destroy']>, Promise<void>> = true;`,
  );
  const file = join(work, 'api-types.ts');
  writeFileSync(file, lines.join('\n') + '\n');
  const out = typecheck(work, 'api', [file], { '@tencentcloud/chat': TABCHAT_ENTRY, 'reference-chat': REFERENCE_TYPINGS });
  // Name the failing checks: tsc reports "api-types.ts(LINE,COL)".
  const failing = [...out.matchAll(/api-types\.ts\((\d+),/g)].map((m) => /export const (\w+)/.exec(lines[Number(m[1]) - 1] ?? '')?.[1] ?? `line ${m[1]}`);
  assert.deepEqual([...new Set(failing)], [], out);
  assert.equal(out, '');
});
