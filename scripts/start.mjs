#!/usr/bin/env node
// npm start: build the browser files if they are missing or stale (the server serves them),
// then run the server (`tabchat-server`, which runs its sources in a checkout) with the
// built-in demo config (insecure dev UserSigs, memory store) and print the demo URL.
// Extra arguments are passed on: `npm start -- --port 9000`.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'dist', '.build-stamp');
const outputs = ['dist/tabchat.js', 'dist/tabchat-worker.js', 'dist/esm/tabchat.js'].map((p) => join(root, p));

/** Newest modification time of a file, or of the files under a folder (0 if missing). */
function newestSource(path) {
  if (!existsSync(path)) return 0;
  if (!statSync(path).isDirectory()) return statSync(path).mtimeMs;
  return Math.max(0, ...readdirSync(path).map((name) => newestSource(join(path, name))));
}

const stale =
  !existsSync(stamp) ||
  outputs.some((p) => !existsSync(p)) ||
  Math.max(...['src', 'worker', 'vite.config.ts'].map((d) => newestSource(join(root, d)))) > statSync(stamp).mtimeMs;
if (stale) {
  console.log('start: building the browser files (dist/ is missing or older than the sources)…');
  const res = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs'), 'client'], { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) process.exit(res.status ?? 1);
}
const child = spawn(process.execPath, [join(root, 'server', 'bin', 'tabchat-server.js'), '--demo', ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 0 : 1)));
