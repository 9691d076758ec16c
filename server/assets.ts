/**
 * Where the server finds the files it serves besides its API (the drop-in builds at
 * `/tabchat.js`, `/tabchat-worker.js` and `/esm/`, the demo page at `/`) and the demo config
 * of `--demo`. Two layouts:
 *
 * - the installed package (this file compiled to `dist/server/assets.js`): the build copies
 *   them into the package, under `dist/client/`, `dist/demo/` and `dist/config/demo.json`;
 * - a repository checkout (this file run from its source through tsx): the repository's own
 *   `dist/` (written by `npm run build`), `demo/` and `config/demo.json`.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const file = fileURLToPath(import.meta.url);
const here = dirname(file);
/** Running from the compiled package rather than from the sources. */
const compiled = file.endsWith('.js');
/** The package's `dist/` (compiled), or the repository root (sources). */
const base = join(here, '..');

export const ASSETS = {
  /** `tabchat.js`, `tabchat-worker.js` (with their source maps) and `esm/`. */
  clientBuilds: compiled ? join(base, 'client') : join(base, 'dist'),
  /** The demo page served at `/`. */
  demo: join(base, 'demo'),
  /** The config of `tabchat-server --demo`. */
  demoConfig: join(base, 'config', 'demo.json'),
} as const;

/** The server package's version (its package.json: server/package.json in a checkout). */
export function serverVersion(): string {
  const packageJson = compiled ? join(here, '..', '..', 'package.json') : join(here, 'package.json');
  return (JSON.parse(readFileSync(packageJson, 'utf8')) as { version: string }).version;
}
