#!/usr/bin/env node
// npm test: type check, build, Node integration tests (node:test), then the Playwright e2e
// suite in Debian Chromium. `npm test -- unit` or `-- e2e` runs one part.
import { spawnSync } from 'node:child_process';
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

if (only !== 'e2e') {
  run('type check', bin('tsc'), ['-p', 'tsconfig.json', '--noEmit']);
  const files = testFiles(join(root, 'test')).sort();
  if (files.length === 0) {
    console.error('no test files found under test/');
    process.exit(1);
  }
  run(`node tests (${files.length} files)`, process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', ...files]);
}
if (only !== 'unit') {
  run('build', process.execPath, [join(root, 'scripts', 'build.mjs')]);
  run('e2e (Playwright, Chromium)', bin('playwright'), ['test']);
}
