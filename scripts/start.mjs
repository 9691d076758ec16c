#!/usr/bin/env node
// npm start: build what is missing or stale, then run the server with the built-in demo
// config (insecure dev UserSigs, memory store) and print the demo URL.
// Extra arguments are passed on: `npm start -- --port 9000`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
const outputs = ['dist/node/server/cli.js', 'dist/tabchat.js', 'dist/tabchat-worker.js'].map((p) => join(root, p));

function newestSource(dir) {
  let newest = 0;
  if (!existsSync(dir)) return 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(p) : statSync(p).mtimeMs);
  }
  return newest;
}

const stale =
  !existsSync(stamp) ||
  outputs.some((p) => !existsSync(p)) ||
  Math.max(...['src', 'server', 'worker'].map((d) => newestSource(join(root, d)))) > statSync(stamp).mtimeMs;
if (stale) {
  console.log('start: building (dist/ is missing or older than the sources)…');
  const res = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
const child = spawn(process.execPath, [join(root, 'bin', 'tabchat-server.js'), '--demo', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
