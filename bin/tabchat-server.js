#!/usr/bin/env node
// Entry of the `tabchat-server` command; the code lives in server/cli.ts (built to dist/).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const built = new URL('../dist/node/server/cli.js', import.meta.url);
if (!existsSync(fileURLToPath(built))) {
  process.stderr.write('tabchat-server: dist/ is missing; run "npm run build" first\n');
  process.exit(2);
}
const { main } = await import(built.href);
await main(process.argv.slice(2));
