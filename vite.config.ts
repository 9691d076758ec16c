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
 *
 * Size: the drop-in `tabchat.js` has a budget of 10 KB gzip. The {@link inlineCodes} plugin
 * replaces every `CODE.NAME` of src/protocol/codes.ts with its number, so the `CODE` table
 * itself is not shipped (the minifier does not inline object members), and the code texts a
 * tab needs are the small `CLIENT_CODE_TEXT` table only.
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

/** `NAME → number` of the `CODE` table in src/protocol/codes.ts (read as text: plain `NAME: 1234,` lines). */
function readCodes(): Map<string, number> {
  const source = readFileSync(join(root, 'src', 'protocol', 'codes.ts'), 'utf8');
  const block = /export const CODE = \{([\s\S]*?)\n\} as const;/.exec(source);
  if (!block?.[1]) throw new Error('vite.config.ts: cannot find the CODE table in src/protocol/codes.ts');
  const codes = new Map<string, number>();
  for (const match of block[1].matchAll(/^\s*([A-Z][A-Z0-9_]*): (\d+),/gm)) codes.set(match[1]!, Number(match[2]));
  if (codes.size < 10) throw new Error('vite.config.ts: the CODE table of src/protocol/codes.ts looks empty');
  return codes;
}

/**
 * Replace `CODE.NAME` by its number in our own modules (after TypeScript is stripped), so
 * the `CODE` object is tree-shaken away. An unknown name fails the build.
 */
function inlineCodes(): Plugin {
  const codes = readCodes();
  return {
    name: 'tabchat-inline-codes',
    transform(code, id) {
      if (!/\/(src|worker)\/.*\.ts$/.test(id) || !code.includes('CODE.')) return null;
      const out = code.replace(/\bCODE\.([A-Z][A-Z0-9_]*)\b/g, (_, name: string) => {
        const value = codes.get(name);
        if (value === undefined) throw new Error(`${id}: CODE.${name} is not in src/protocol/codes.ts`);
        return String(value);
      });
      return { code: out, map: null };
    },
  };
}
const define = {
  __TABCHAT_VERSION__: JSON.stringify(pkg.version),
  __TABCHAT_BUILD__: JSON.stringify(BUILD),
};
const outDir = resolve(root, 'dist');

/**
 * Syntax level of the browser bundles. ES2022 keeps class fields and `#private` members
 * native (lowering them to es2020 adds a define-property helper call per field, about 0.5 KB
 * gzip); every browser with BroadcastChannel and Web Locks (Safari 15.4+, Chrome 69+,
 * Firefox 96+) runs ES2022 class syntax.
 */
const BROWSER_TARGET = 'es2022';

/** Build options of every browser build (the ESM one and the IIFE ones). */
const browserBuild = {
  outDir,
  emptyOutDir: false,
  copyPublicDir: false,
  target: BROWSER_TARGET,
  minify: true,
  sourcemap: true,
} as const;

/** The IIFE builds have no `import.meta`; the tab code falls back to `document.currentScript`. */
const iifeDefine = { ...define, 'import.meta.url': 'undefined' };

function classicBuild(entry: string, name: string, fileName: string): InlineConfig {
  return {
    configFile: false,
    root,
    logLevel: 'warn',
    define: iifeDefine,
    plugins: [inlineCodes()],
    build: {
      ...browserBuild,
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
  plugins: [inlineCodes(), classicBuilds()],
  build: {
    ...browserBuild,
    lib: {
      entry: resolve(root, 'src/index.ts'),
      formats: ['es'],
      fileName: () => 'esm/tabchat.js',
    },
  },
});
