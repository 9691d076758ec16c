#!/usr/bin/env node
// npm run build: server + Node entry + types with tsc, then the browser bundles with vite.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function run(cmd, args) {
  const started = Date.now();
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`build: ${[cmd, ...args].join(' ')} failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
  console.log(`build: ${args[0] === '-p' ? 'tsc' : args.join(' ')} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

rmSync(join(root, 'dist'), { recursive: true, force: true });
run(bin('tsc'), ['-p', 'tsconfig.build.json']);
run(bin('vite'), ['build', '--logLevel', 'warn']);
mkdirSync(join(root, 'dist'), { recursive: true });
// The drop-in script's budget (docs/architecture.md "Builds"): gzip, default level, in bytes.
const TAB_BUDGET_BYTES = 10_000;
const tabBytes = gzipSync(readFileSync(join(root, 'dist', 'tabchat.js'))).length;
console.log(`build: dist/tabchat.js is ${tabBytes} bytes gzip (budget ${TAB_BUDGET_BYTES})`);
if (tabBytes > TAB_BUDGET_BYTES) {
  console.error(`build: dist/tabchat.js is over its budget of ${TAB_BUDGET_BYTES} bytes gzip: keep code out of the tab bundle (see docs/architecture.md "Builds")`);
  process.exit(1);
}
writeFileSync(join(root, 'dist', '.build-stamp'), new Date().toISOString() + '\n');
