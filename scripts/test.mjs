#!/usr/bin/env node
// npm test: type check, Node integration tests (node:test), the protocol fuzzer at scale
// (>= 100,000 inputs, seeded), the packaging test (both tarballs packed, installed in empty
// folders and used), build, the Playwright e2e suite in Debian Chromium (both projects:
// SharedWorker and leader-tab fallback), the coordinator specs in Debian's Firefox ESR (the
// `firefox` project), then a 2-minute seeded soak.
// `npm test -- unit`, `-- packaging` or `-- e2e` runs one part.
import { spawnSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const only = process.argv[2];

function run(label, cmd, args, env = {}) {
  const started = Date.now();
  console.log(`\n=== ${label}`);
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (res.status !== 0) {
    console.error(`=== ${label}: FAILED (exit ${res.status ?? res.signal}) after ${secs} s`);
    process.exit(1);
  }
  console.log(`=== ${label}: ok in ${secs} s`);
}

function testFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return e.name === 'helpers' ? [] : testFiles(p);
    return e.name.endsWith('.test.ts') ? [relative(root, p)] : [];
  });
}

// The protocol/REST fuzzer at scale runs as its own step (below); the default node run
// skips it. 91,000 frames + 9,100 REST bodies (a tenth) = 100,100 inputs, ~1.5 min here.
const FUZZ_FILE = join('test', 'server', 'fuzz.test.ts');
// The packaging test runs alone too: packing rebuilds dist/ and server/dist/, which no
// other test may see half-written (npm installs and a better-sqlite3 compile: minutes).
const PACKAGING_FILE = join('test', 'packaging', 'pack.test.ts');
const FUZZ_ITERATIONS = process.env.TABCHAT_FUZZ_ITERATIONS ?? '91000';
// One seed per run, printed, so a CI failure is reproducible: TABCHAT_FUZZ_SEED=<seed>.
const FUZZ_SEED = process.env.TABCHAT_FUZZ_SEED || String(randomInt(2 ** 31));
// The soak (e2e/soak.spec.ts) runs only when TABCHAT_SOAK_MS is set: 2 minutes in CI.
const SOAK_MS = process.env.TABCHAT_SOAK_MS ?? '120000';
const SOAK_SEED = process.env.TABCHAT_SOAK_SEED || String(randomInt(2 ** 31));

const PARTS = ['unit', 'packaging', 'e2e'];
if (only !== undefined && !PARTS.includes(only)) {
  console.error(`npm test: unknown part "${only}" (${PARTS.join(', ')})`);
  process.exit(2);
}
const runs = (part) => only === undefined || only === part;

if (runs('unit')) {
  run('type check', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  const files = testFiles(join(root, 'test')).filter((f) => f !== FUZZ_FILE && f !== PACKAGING_FILE).sort();
  if (files.length === 0) {
    console.error('no test files found under test/');
    process.exit(1);
  }
  run(`node tests (${files.length} files)`, process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
  console.log(`\n# fuzz seed: TABCHAT_FUZZ_SEED=${FUZZ_SEED} TABCHAT_FUZZ_ITERATIONS=${FUZZ_ITERATIONS}`);
  run(`fuzz (${FUZZ_ITERATIONS} frames + ${Math.round(Number(FUZZ_ITERATIONS) / 10)} REST bodies, seed ${FUZZ_SEED})`, process.execPath,
    ['--import', 'tsx', '--test', '--test-reporter=spec', '--test-timeout=600000', FUZZ_FILE],
    { TABCHAT_FUZZ_SEED: FUZZ_SEED, TABCHAT_FUZZ_ITERATIONS: FUZZ_ITERATIONS });
}
if (runs('packaging')) {
  run('packaging (npm pack of both packages, installed in empty folders)', process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', PACKAGING_FILE]);
}
if (runs('e2e')) {
  run('build', process.execPath, [join(root, 'scripts', 'build.mjs')]);
  run('e2e (Playwright, Chromium: sharedworker + leader projects)', bin('playwright'), ['test', '--project=sharedworker', '--project=leader']);
  // The coordinator specs again in stock Firefox ESR over WebDriver BiDi (playwright.config.ts
  // `firefox` project; scripts/setup.sh installs firefox-esr), SharedWorker path only.
  run('e2e (Playwright, Firefox ESR over WebDriver BiDi: coordinator specs)', bin('playwright'), ['test', '--project=firefox']);
  console.log(`\n# soak seed: TABCHAT_SOAK_SEED=${SOAK_SEED} TABCHAT_SOAK_MS=${SOAK_MS}`);
  run(`soak (${SOAK_MS} ms, seed ${SOAK_SEED})`, bin('playwright'), ['test', '--project=sharedworker', 'e2e/soak.spec.ts'],
    { TABCHAT_SOAK_MS: SOAK_MS, TABCHAT_SOAK_SEED: SOAK_SEED });
}
