#!/usr/bin/env node
// The `tabchat-server` command; the code is server/cli.ts.
// - Installed package: the compiled CLI (dist/server/cli.js, written by the package's build).
// - Repository checkout (server/cli.ts is next to this folder and tsx is installed): the
//   sources, through tsx, so the command always runs the code you see, built or not.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = new URL('../cli.ts', import.meta.url);
const built = new URL('../dist/server/cli.js', import.meta.url);

async function sourcesLoader() {
  if (!existsSync(fileURLToPath(source))) return null;
  try {
    return await import('tsx/esm/api');
  } catch {
    return null; // a checkout installed without devDependencies: use the build
  }
}

const tsx = await sourcesLoader();
let cli;
if (tsx) {
  tsx.register();
  cli = await import(source.href);
} else if (existsSync(fileURLToPath(built))) {
  cli = await import(built.href);
} else {
  process.stderr.write('tabchat-server: the server is not built (dist/server/cli.js is missing); run "npm run build"\n');
  process.exit(2);
}
await cli.main(process.argv.slice(2));
