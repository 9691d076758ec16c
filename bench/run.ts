/**
 * `npm run bench`: every benchmark (server capacity, browser tabs, bundle sizes), each next
 * to its baseline from the same run. Writes
 * bench/results/latest.md (tables) and latest.json (raw figures). The benchmark reports;
 * it never fails on a target.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { gzipSync } from 'node:zlib';
import { browserTables, browserTargets, prepareBrowserBench, runBrowserBench, type BrowserBenchResult, type Prepared } from './browser-bench.js';
import { runServerBench, serverTable } from './server-bench.js';

const REFERENCE_SDK_GZIP = 173_956; // @tencentcloud/chat 3.6.6 index.js, multitab-pitfalls.md §7.4

function bundleSizes() {
  const files = [
    { file: 'dist/tabchat.js', budget: 10_000 }, // the same budget scripts/build.mjs enforces
    { file: 'dist/tabchat-worker.js', budget: 25 * 1024 },
  ];
  return files.map(({ file, budget }) => {
    if (!existsSync(file)) return { file, budget, raw: NaN, gzip: NaN };
    const raw = readFileSync(file);
    return { file, budget, raw: raw.length, gzip: gzipSync(raw).length };
  });
}

const started = new Date();
console.log(`bench: ${started.toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`);
// Right after the build (the working tree is shared: a concurrent build may empty dist/
// later): the bundle sizes, and the browser part's copy of dist/.
const bundles = bundleSizes();
let prepared: Prepared;
try {
  prepared = await prepareBrowserBench();
} catch (err) {
  prepared = { skipped: `preparing failed: ${err instanceof Error ? err.message : String(err)}` };
}
const server = await runServerBench();
// The browser part reports a failure in its section instead of losing the server figures.
let browser: BrowserBenchResult | { error: string };
try {
  browser = await runBrowserBench(prepared);
} catch (err) {
  console.error('browser bench failed:', err);
  browser = { error: err instanceof Error ? (err.stack ?? err.message) : String(err) };
}

const md = [
  `# tabchat benchmarks`,
  ``,
  `Run ${started.toISOString()} on ${cpus().length} × ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}. Shared 2-core machine: absolute times are noisy; compare ratios within one run.`,
  ``,
  `## Server (one process; load client in a second process; real UserSig checks)`,
  ``,
  `Baseline: the same instances with one WebSocket each (what a per-tab SDK costs).`,
  ``,
  serverTable(server),
  ``,
  `## Browser tabs: one SharedWorker per profile vs one WebSocket per tab`,
  ``,
  'error' in browser ? `The browser benchmark failed: ${browser.error.split('\n')[0]}` : browserTables(browser),
  ``,
  `## Bundles (gzip, default level)`,
  ``,
  `| file | raw bytes | gzip bytes | budget | reference SDK (gzip) |`,
  `|---|---|---|---|---|`,
  ...bundles.map((b) => `| ${b.file} | ${b.raw} | ${b.gzip} | ${b.budget} (${b.gzip <= b.budget ? 'met' : 'NOT met'}) | ${REFERENCE_SDK_GZIP} |`),
  ``,
].join('\n');

mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/latest.md', md);
writeFileSync(
  'bench/results/latest.json',
  JSON.stringify(
    {
      started: started.toISOString(),
      node: process.version,
      server,
      bundles,
      browser,
      browserTargets: 'error' in browser ? null : browserTargets(browser),
    },
    null,
    2,
  ) + '\n',
);
console.log('\n' + md);
