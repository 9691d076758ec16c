/**
 * Docs stay next to the code: every error code and close code in src/protocol/codes.ts has
 * a heading (or table row) in docs/errors.md, every metric the server registers is listed
 * in docs/operations.md, and every metric of a cluster node in docs/scaling.md.
 *
 * Docs stand alone: no tracked file cites documents that users of the repository never see
 * (facts about the reference SDK live in docs/reference-behaviour.md), every relative link
 * in README.md and docs/*.md reaches an existing file and heading, and the README lists
 * every doc.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CLOSE, CODE } from '../src/protocol/codes.js';
import { ClusterMetrics, Metrics } from '../server/metrics.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const errorsDoc = read('docs/errors.md');
const opsDoc = read('docs/operations.md');
const scalingDoc = read('docs/scaling.md');

test('every error code has a heading in docs/errors.md', () => {
  const missing = Object.entries(CODE)
    .filter(([, code]) => code !== 0)
    .filter(([name, code]) => !errorsDoc.includes(`### ${code} ${name}`))
    .map(([name, code]) => `${code} ${name}`);
  assert.deepEqual(missing, []);
});

test('every close code is in the close-code table of docs/errors.md', () => {
  const missing = Object.entries(CLOSE).filter(([, code]) => !errorsDoc.includes(`| ${code} |`));
  assert.deepEqual(missing, []);
});

test('every tabchat metric is documented in docs/operations.md', async () => {
  const metrics = new Metrics('docs', () => new Map());
  const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !n.startsWith('tabchat_process_'));
  assert.ok(names.includes('tabchat_connections'));
  const missing = names.filter((n) => !opsDoc.includes(`\`${n}\``));
  assert.deepEqual(missing, []);
});

test('every cluster metric is documented in docs/scaling.md', async () => {
  const metrics = new Metrics('docs', () => new Map());
  const before = new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
  new ClusterMetrics(metrics.registry);
  const names = (await metrics.registry.getMetricsAsJSON()).map((m) => m.name).filter((n) => !before.has(n));
  assert.ok(names.includes('tabchat_engine_available'));
  const missing = names.filter((n) => !scalingDoc.includes(`\`${n}\``));
  assert.deepEqual(missing, []);
});

// ---------------------------------------------------------------- no external citations

/**
 * Citations of the project's private working notes: the reference notes and their section
 * numbers, the contract and design files, the seed page, the shared folder. Written so that
 * this file does not match itself (escapes and character classes).
 */
const EXTERNAL_CITATIONS: RegExp[] = [
  /\bREF\s*\u00a7/,
  /\bspec\s*\u00a7/,
  /(?<![\w-])api\.md\b/, // not docs/client-api.md
  /(?<![\w-])design\.md\b/,
  /\bnotes\/[\w-]+\.md/,
  /tencent-chat-referenc[e]/,
  /multitab-pitfall[s]/,
  /(server|style)-anchor[s]/,
  /login-and-logout\.tx[t]/,
  /\.\.\/share[d]\b/,
  /\/work\/share[d]\b/,
];

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8' })
    .split('\0')
    .filter((path) => path !== '' && !path.split('/').includes('node_modules') && path !== 'package-lock.json')
    .filter((path) => existsSync(join(ROOT, path)) && statSync(join(ROOT, path)).isFile());
}

test('no tracked file cites documents outside the repository', () => {
  const found: string[] = [];
  for (const path of trackedFiles()) {
    const text = read(path);
    if (text.includes('\0')) continue; // binary
    text.split('\n').forEach((line, i) => {
      if (!EXTERNAL_CITATIONS.some((re) => re.test(line))) return;
      found.push(`${path}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.deepEqual(found, [], 'cite docs/reference-behaviour.md (or state the fact) instead');
});

// ---------------------------------------------------------------- links

const DOCS = readdirSync(join(ROOT, 'docs'))
  .filter((name) => name.endsWith('.md'))
  .map((name) => `docs/${name}`);

/** Markdown without fenced code blocks and inline code, where links are not links. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '``');
}

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to '-', repeats numbered. */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, '');
  for (const [, heading] of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = heading!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1') // a link keeps its text
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '')
      .replace(/ /g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

test('every relative link in README.md and docs/*.md reaches an existing file and heading', () => {
  const broken: string[] = [];
  for (const file of ['README.md', ...DOCS]) {
    const text = prose(read(file));
    for (const [, rawTarget] of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = rawTarget!;
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:, ...
      const [pathPart, anchor] = target.split('#', 2) as [string, string | undefined];
      const resolved = pathPart === '' ? join(ROOT, file) : resolve(join(ROOT, dirname(file)), decodeURIComponent(pathPart));
      const shown = `${file}: (${target})`;
      if (!resolved.startsWith(ROOT) || !existsSync(resolved)) {
        broken.push(`${shown}: no file ${relative(ROOT, resolved)}`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(readFileSync(resolved, 'utf8')).has(anchor)) {
        broken.push(`${shown}: no heading #${anchor} in ${relative(ROOT, resolved)}`);
      }
    }
  }
  assert.deepEqual(broken, []);
});

test("the README's documentation list links every doc", () => {
  const readme = read('README.md');
  const start = readme.indexOf('\n## Documentation\n');
  assert.notEqual(start, -1, 'README.md has a "## Documentation" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const missing = DOCS.filter((doc) => !section.includes(`](${doc})`));
  assert.deepEqual(missing, []);
});
