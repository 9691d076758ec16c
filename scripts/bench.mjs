#!/usr/bin/env node
// npm run bench: build (for bundle sizes and the browser benchmarks), then bench/run.ts.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
for (const args of [[join(root, 'scripts', 'build.mjs')], ['--import', 'tsx', join(root, 'bench', 'run.ts')]]) {
  const res = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
