/**
 * Browser builds, all from ONE `vite build` (run after `tsc -p tsconfig.build.json`, which
 * writes dist/node and dist/types; this config never empties dist/):
 *
 * - `dist/esm/tabchat.js`: ESM entry `src/index.ts` (default export TabChat) for bundlers
 *   and `<script type="module">`; self-contained (comlink is bundled).
 * - `dist/tabchat.js`: drop-in IIFE defining the global `TabChat`, minified, no imports.
 * - `dist/tabchat-worker.js` (and a copy at `dist/esm/tabchat-worker.js`, next to the ESM
 *   entry): the SharedWorker, a classic script (IIFE) with a stable name, so it runs as
 *   `new SharedWorker(url, {name})` without `type: 'module'` in every engine.
 *
 * The tab and worker builds share `__TABCHAT_BUILD__` (package version + a hash of the
 * sources), which names the SharedWorker and is checked on register (code 9012).
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, defineConfig, type InlineConfig, type Plugin } from 'vite';

const root = dirname(fileURLToPath(import.meta.url));
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };

/** Every file under `dir` (sorted, recursive), for the build hash. */
function listFiles(dir: string): string[] {
  let out: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return out;
  }
  for (const name of names) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out = out.concat(listFiles(path));
    else if (/\.ts$/.test(name)) out.push(path);
  }
  return out;
}

function sourceHash(): string {
  const hash = createHash('sha256');
  for (const file of [...listFiles(join(root, 'src')), ...listFiles(join(root, 'worker'))]) {
    hash.update(file.slice(root.length)).update('\0').update(readFileSync(file)).update('\0');
  }
  return hash.digest('hex').slice(0, 10);
}

const BUILD = `${pkg.version}+${sourceHash()}`;
const define = {
  __TABCHAT_VERSION__: JSON.stringify(pkg.version),
  __TABCHAT_BUILD__: JSON.stringify(BUILD),
};
const outDir = resolve(root, 'dist');

/** The IIFE builds have no `import.meta`; the tab code falls back to `document.currentScript`. */
const iifeDefine = { ...define, 'import.meta.url': 'undefined' };

function classicBuild(entry: string, name: string, fileName: string): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    define: iifeDefine,
    build: {
      outDir,
      emptyOutDir: false,
      copyPublicDir: false,
      target: 'es2020',
      minify: true,
      sourcemap: true,
      lib: { entry: resolve(root, entry), name, formats: ['iife'], fileName: () => fileName },
    },
  };
}

/** After the ESM build: the drop-in IIFE and the worker, in the same `vite build`. */
function classicBuilds(): Plugin {
  let done = false;
  return {
    name: 'tabchat-classic-builds',
    apply: 'build',
    async closeBundle() {
      if (done) return;
      done = true;
      await build(classicBuild('src/index.ts', 'TabChat', 'tabchat.js'));
      await build(classicBuild('worker/index.ts', 'TabChatWorker', 'tabchat-worker.js'));
      mkdirSync(join(outDir, 'esm'), { recursive: true });
      copyFileSync(join(outDir, 'tabchat-worker.js'), join(outDir, 'esm', 'tabchat-worker.js'));
      // eslint-disable-next-line no-console
      console.log(`tabchat browser builds done (build ${BUILD})`);
    },
  };
}

export default defineConfig({
  root,
  define,
  plugins: [classicBuilds()],
  build: {
    outDir,
    emptyOutDir: false,
    copyPublicDir: false,
    target: 'es2020',
    minify: true,
    sourcemap: true,
    lib: {
      entry: resolve(root, 'src/index.ts'),
      formats: ['es'],
      fileName: () => 'esm/tabchat.js',
    },
  },
});
