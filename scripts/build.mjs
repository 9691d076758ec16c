#!/usr/bin/env node
// npm run build: both packages of the repository.
//   node scripts/build.mjs          client, then server
//   node scripts/build.mjs client   the `tabchat` package: dist/ (prepack of the root package)
//   node scripts/build.mjs server   the `tabchat-server` package: server/dist/ (needs the client build)
//
// client: the Node entry and the types with tsc (dist/node, dist/types), then the browser
//   bundles with vite (dist/tabchat.js, dist/tabchat-worker.js, dist/esm/), size budget checked.
// server: server/ plus the protocol code it imports (src/protocol/) compiled with tsc into
//   server/dist/, and copies of what it serves and reads: the client builds (server/dist/client/),
//   demo/ and config/demo.json. The server package is self-contained: see docs/architecture.md.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const serverDist = join(root, 'server', 'dist');
const bin = (name) => join(root, 'node_modules', '.bin', name);
/** The client build files the server serves (tabchat.js, tabchat-worker.js, their maps, esm/). */
const SERVED_CLIENT_FILES = ['tabchat.js', 'tabchat.js.map', 'tabchat-worker.js', 'tabchat-worker.js.map', 'esm'];
/** The drop-in script's budget (docs/architecture.md "Builds"): gzip, default level, in bytes. */
const TAB_BUDGET_BYTES = 15_872;

function run(what, cmd, args) {
  const started = Date.now();
  const res = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (res.status !== 0) {
    console.error(`build: ${[cmd, ...args].join(' ')} failed (exit ${res.status ?? res.signal})`);
    process.exit(1);
  }
  console.log(`build: ${what} done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

function buildClient() {
  rmSync(dist, { recursive: true, force: true });
  run('tsc (client)', bin('tsc'), ['-p', 'tsconfig.build.json']);
  run('vite build', bin('vite'), ['build', '--logLevel', 'warn']);
  const tabBytes = gzipSync(readFileSync(join(dist, 'tabchat.js'))).length;
  console.log(`build: dist/tabchat.js is ${tabBytes} bytes gzip (budget ${TAB_BUDGET_BYTES})`);
  if (tabBytes > TAB_BUDGET_BYTES) {
    console.error(`build: dist/tabchat.js is over its budget of ${TAB_BUDGET_BYTES} bytes gzip: keep code out of the tab bundle (see docs/architecture.md "Builds")`);
    process.exit(1);
  }
  writeFileSync(join(dist, '.build-stamp'), new Date().toISOString() + '\n');
}

function buildServer() {
  const missing = SERVED_CLIENT_FILES.filter((f) => !existsSync(join(dist, f)));
  if (missing.length > 0) {
    console.error(`build: the server package needs the client build first (missing in dist/: ${missing.join(', ')}); run "node scripts/build.mjs"`);
    process.exit(1);
  }
  rmSync(serverDist, { recursive: true, force: true });
  run('tsc (server)', bin('tsc'), ['-p', join('server', 'tsconfig.build.json')]);
  mkdirSync(join(serverDist, 'client'), { recursive: true });
  for (const file of SERVED_CLIENT_FILES) cpSync(join(dist, file), join(serverDist, 'client', file), { recursive: true });
  cpSync(join(root, 'demo'), join(serverDist, 'demo'), { recursive: true });
  mkdirSync(join(serverDist, 'config'), { recursive: true });
  cpSync(join(root, 'config', 'demo.json'), join(serverDist, 'config', 'demo.json'));
  console.log('build: server/dist done (compiled server + protocol, client builds, demo, demo config)');
}

const target = process.argv[2] ?? 'all';
if (!['all', 'client', 'server'].includes(target)) {
  console.error(`build: unknown target "${target}" (all, client or server)`);
  process.exit(2);
}
if (target !== 'server') buildClient();
if (target !== 'client') buildServer();
